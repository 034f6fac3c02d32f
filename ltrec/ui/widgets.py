"""Page controls whose state lives in the URL (``st.query_params``), and CSV downloads.

Every control reads its first value from the URL and writes its current value back, so a view
can be shared as a link. URL keys: ``cuts`` (e.g. ``0.5,0.8``), ``pop`` (popularity event),
``from`` / ``to`` (ISO dates), ``cat`` (top-level category), ``seg`` (segment dimension).
A malformed value in the URL falls back to the default with a warning, never a traceback.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from ltrec.analytics.export import to_csv
from ltrec.analytics.popularity import PopularityEvent
from ltrec.analytics.view import ViewParams
from ltrec.charts.text import markdown_text
from ltrec.config import get_settings
from ltrec.definitions import PCT_COLUMN, metric
from ltrec.ui import cache
from ltrec.ui.state import empty_state

ALL = "(all)"
POP_EVENTS: list[PopularityEvent] = [
    "interaction", "view", "cart", "purchase", "impression", "weighted"
]  # fmt: skip
HELP = {
    "cuts": "Cumulative interaction shares that cut the buckets. Items are sorted by popularity, "
    "descending; the head is the smallest set of top items that makes the first share of all "
    "interactions (0.8 = 80%). Two cuts (0.5, 0.8) give head / mid / tail. Items with no "
    "interactions are tail (cold).",
    "pop": "What popularity counts: distinct users with a view, cart or purchase "
    "('interaction'), distinct users with one event type, or a weighted sum "
    "(view 1, cart 3, purchase 5 per distinct user).",
    "dates": "Only events on these days (inclusive) are counted.",
    "cat": "Only items whose top-level category is this one (buckets are recomputed inside it).",
    "seg": "A user attribute from the users table, or a derived segment: activity level "
    "(interactions per user, terciles), tenure (new = first seen in the last 30 days of the "
    "data), tail affinity (share of the user's interactions on tail items).",
}


def _qp(key: str) -> str | None:
    value = st.query_params.get(key)
    return value if value not in (None, "") else None


def _init(widget_key: str, value: Any) -> None:
    if widget_key not in st.session_state:
        st.session_state[widget_key] = value


def _parse_cuts(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.replace(";", ",").split(",") if x.strip())


def _fmt_cuts(cuts: tuple[float, ...]) -> str:
    return ",".join(f"{c:g}" for c in cuts)


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def pop_events(profile: Any) -> list[PopularityEvent]:
    """The popularity choices a dataset supports: interactions, each event type it has (in
    :data:`POP_EVENTS` order), and a weighted sum when it has more than one type."""
    if profile is None:
        return list(POP_EVENTS)
    types = [e for e in POP_EVENTS if e in profile.funnel_stages]
    weighted: list[PopularityEvent] = ["weighted"] if len(profile.funnel_stages) > 1 else []
    return ["interaction", *types, *weighted]


def exposure_note(profile: Any) -> None:
    """The plain sentence a page shows when the data does not measure exposure."""
    if profile is not None and profile.exposure_note:
        st.info(profile.exposure_note)


def require_events(name: str | None) -> tuple[str, dict[str, Any]]:
    """The dataset ``name`` and its meta; shows the empty state and stops the page when there is
    no dataset or it holds no events. Raises ``LtrecError`` (for the page to show) on bad data.
    """
    if name is None:
        empty_state()
        st.stop()
    meta = cache.dataset_meta(name)
    if meta["events"] == 0:
        st.caption(f"Dataset: {name}")
        empty_state()
        st.stop()
    return name, meta


def view_controls(
    page: str,
    meta: dict[str, Any],
    *,
    event: bool = True,
    dates: bool = True,
    category: bool = True,
    segments: list[str] | None = None,
    container: Any = None,
    category_help: str | None = None,
) -> ViewParams:
    """Draw the controls of a page (in ``container``, default the sidebar) and return the view.

    Args:
        page: a short page name, used to keep widget keys apart between pages.
        meta: :func:`ltrec.ui.cache.dataset_meta` of the dataset (categories, time span).
        segments: segment dimensions to offer (the Segments page), or None for no such control.
        category_help: the category control's help, when the page's filter means something
            else than "buckets are recomputed inside it".
    """
    box = container or st.sidebar
    default = ViewParams()
    # bucket cuts
    wk = f"{page}_cuts"
    _init(wk, _qp("cuts") or _fmt_cuts(default.cuts))
    text = box.text_input("Bucket cuts", key=wk, help=HELP["cuts"])
    cuts = default.cuts
    try:
        cuts = ViewParams(cuts=_parse_cuts(text)).cuts
    except (ValueError, ValidationError):
        box.warning(  # the text may come from a link (?cuts=...): shown, never rendered
            f"'{markdown_text(text)}' is not a list of increasing shares in (0, 1); using "
            f"{_fmt_cuts(default.cuts)}."
        )
    st.query_params["cuts"] = _fmt_cuts(cuts)
    profile = meta.get("profile")
    # popularity event: only the event types the data has (dataset profile)
    pop: PopularityEvent = default.event
    if event:
        offered = pop_events(profile)
        wk = f"{page}_pop"
        init = _qp("pop")
        _init(wk, init if init in offered else default.event)
        if st.session_state[wk] not in offered:  # an event type of the previous dataset
            st.session_state[wk] = default.event
        pop = box.selectbox("Popularity counts", offered, key=wk, help=HELP["pop"])
        st.query_params["pop"] = pop
    # date range
    start = end = None
    first, last = meta.get("first"), meta.get("last")
    if dates and first is not None and last is not None and not pd.isna(first):
        lo, hi = pd.Timestamp(first).date(), pd.Timestamp(last).date()
        wk = f"{page}_dates"
        q0, q1 = _date(_qp("from")), _date(_qp("to"))
        s0 = min(max(q0 or lo, lo), hi)
        s1 = max(min(q1 or hi, hi), s0)
        _init(wk, (s0, s1))
        held = st.session_state[wk]
        if isinstance(held, tuple | list) and not all(lo <= d <= hi for d in held):
            st.session_state[wk] = (s0, s1)  # another dataset's dates: out of this one's span
        picked = box.date_input(
            "Date range", key=wk, min_value=lo, max_value=hi, help=HELP["dates"]
        )
        if isinstance(picked, tuple | list) and len(picked) == 2:
            start, end = picked
        elif isinstance(picked, tuple | list) and len(picked) == 1:
            start, end = picked[0], hi
        if start == lo and end == hi:
            start = end = None  # the whole span: keep the URL short and the cache shared
        _set_or_drop("from", start.isoformat() if start else None)
        _set_or_drop("to", end.isoformat() if end else None)
    # category: only when the data has categories (dataset profile)
    cat = None
    has_categories = profile is None or profile.has_categories
    if category and has_categories and meta.get("categories"):
        options = [ALL, *meta["categories"]]
        wk = f"{page}_cat"
        init = _qp("cat")
        _init(wk, init if init in options else ALL)
        if st.session_state[wk] not in options:  # a category of the previous dataset
            st.session_state[wk] = ALL
        chosen = box.selectbox("Category", options, key=wk, help=category_help or HELP["cat"])
        cat = None if chosen == ALL else chosen
        _set_or_drop("cat", cat)
    # segment dimension
    seg = None
    if segments:
        wk = f"{page}_seg"
        init = _qp("seg")
        _init(wk, init if init in segments else segments[0])
        if st.session_state[wk] not in segments:
            st.session_state[wk] = segments[0]
        seg = box.selectbox("Segment dimension", segments, key=wk, help=HELP["seg"])
        st.query_params["seg"] = seg
    return ViewParams(
        cuts=cuts,
        event=pop,
        start=start,
        end=end,
        category=cat,
        segment=seg,
        k=get_settings().small_cell_k,
    )


def _set_or_drop(key: str, value: str | None) -> None:
    if value is None:
        if key in st.query_params:
            del st.query_params[key]
    else:
        st.query_params[key] = value


def table_with_download(
    frame: pd.DataFrame,
    file_name: str,
    *,
    key: str,
    column_config: dict[str, Any] | None = None,
    k: int | None = None,
    height: int | None = None,
) -> None:
    """Show a table and a CSV download of it (suppressed small cells, escaped formulas)."""
    st.dataframe(frame, hide_index=True, column_config=column_config, height=height or "auto")
    st.download_button(
        "Download CSV",
        to_csv(frame, k),
        file_name=file_name,
        mime="text/csv",
        key=key,
        help="Cells that start with = + - @ are prefixed with ' so a "
        "spreadsheet shows them as text; segment cells with fewer users than "
        "the small-cell threshold are blank.",
    )


def pct(col: str, help_: str) -> Any:
    """A percentage column with a definition tooltip."""
    return st.column_config.NumberColumn(col, help=help_, format=PCT_COLUMN)


def kpi(box: Any, key: str, value: object, *, note: str = "", **kwargs: Any) -> None:
    """``st.metric`` of a recorded metric: its name as the label, its format, its definition
    as the help (``note`` adds what this page's number is measured on). Every page shows a
    KPI through here, so the same number has the same label and format everywhere."""
    m = metric(key)
    help_ = f"{m.help}. {note}" if note else m.help
    box.metric(m.name, m.format(value), help=help_, **kwargs)


def metric_column(key: str, label: str | None = None) -> Any:
    """A table column of a recorded metric: its name (or ``label``), definition and format."""
    m = metric(key)
    if m.fmt == "pct":
        fmt_ = PCT_COLUMN
    elif m.fmt.endswith("d"):
        fmt_ = "localized"
    else:
        digits = "".join(c for c in m.fmt if c.isdigit()) or "3"
        fmt_ = f"%.{digits}f"
    return st.column_config.NumberColumn(label or m.name, help=m.help, format=fmt_)
