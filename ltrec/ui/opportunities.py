"""The Opportunities page ("What should I fix?"): neglected categories or brands ranked with
intervals and a verdict per row, and the full list of items to boost with their evidence.

Everything is :func:`ltrec.analytics.opportunities.opportunities`, cached per view; the page
only draws. URL keys: those of :func:`ltrec.ui.widgets.view_controls` plus ``by``
(``category`` or ``brand``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ltrec.analytics.opportunities import Opportunities
from ltrec.charts.opportunities import shares_figure
from ltrec.charts.text import markdown_text
from ltrec.definitions import METRICS, PCT_COLUMN
from ltrec.errors import LtrecError
from ltrec.ui import cache
from ltrec.ui.state import active_dataset, show_error
from ltrec.ui.widgets import require_events, table_with_download, view_controls

PAGE = "app_pages/opportunities.py"
CATEGORY_HELP = (
    "Keep the rows of one top-level category. Buckets, averages and shares stay those of the "
    "whole catalogue: the filter never redefines head and tail inside the category."
)
STATUS_WORDS = {
    "under": "under-exposed",
    "in line": "in line",
    "over": "over-exposed",
    "not measured": "not measured",
}
#: Verdicts shown in words above the table.
TOP_VERDICTS = 3


def _by_control(profile: Any) -> str | None:
    """Category or brand (only those the items table has), kept in the URL as ``by``."""
    offered = [
        b for b, has in (("category", profile.has_categories), ("brand", profile.has_brands)) if has
    ]
    if not offered:
        if "by" in st.query_params:
            del st.query_params["by"]
        return None
    wanted = st.query_params.get("by")
    if "op_by" not in st.session_state or st.session_state["op_by"] not in offered:
        st.session_state["op_by"] = wanted if wanted in offered else offered[0]
    by = st.sidebar.radio(
        "Rank by",
        offered,
        key="op_by",
        format_func=lambda b: {"category": "categories", "brand": "brands"}[b],
        help="Group items by their category path or by their brand.",
    )
    st.query_params["by"] = by
    return by


def render() -> None:
    st.title("Opportunities")
    try:
        name, meta = require_events(active_dataset())
        profile = meta["profile"]
        params = view_controls("op", meta, event=False, category_help=CATEGORY_HELP)
        by = _by_control(profile)
        opp: Opportunities = cache.view(f"opportunities_{by or 'none'}", name, params)
    except LtrecError as err:
        show_error(err)
        st.stop()
    scope = f" · {markdown_text(params.category)} only" if params.category else ""
    st.caption(
        f"Dataset **{markdown_text(name)}**{scope} · buckets, averages and shares are those of "
        "the whole catalogue · 95% intervals"
    )
    if opp.note:
        st.info(opp.note)
    if by is None:
        st.info(
            "This data's items table has no categories or brands, so there are no groups to "
            "rank; import an items file with a category or brand column to see them."
        )
    else:
        _groups(opp, by, name)
    _items(opp, name)


def _groups(opp: Opportunities, by: str, name: str) -> None:
    plural = {"category": "categories", "brand": "brands"}[by]
    st.subheader(f"Neglected {plural}")
    df = opp.categories
    if df.empty:
        st.info(f"No {plural} to rank in this selection.")
        return
    base = "exposure" if opp.exposure_event else "purchases"
    under = df[df["status"] == "under"]
    if len(under):
        st.markdown("\n".join(f"- {markdown_text(v)}" for v in under["verdict"].head(TOP_VERDICTS)))
    else:
        st.markdown(
            f"No {by} gets clearly less {base} than its share of the catalogue "
            "(no 95% upper bound below it)."
        )
    st.plotly_chart(shares_figure(opp), key="fig_op_shares")
    show = _measured(df[GROUP_ORDER])
    show["status"] = show["status"].map(STATUS_WORDS)
    exp = opp.exposure_event
    dem = opp.demand_event
    cfg: dict[str, Any] = {
        "rank": st.column_config.NumberColumn("rank", width="small"),
        "name": st.column_config.TextColumn(by),
        "items": st.column_config.NumberColumn("items", help="catalogue items in the group"),
        "tail_items": st.column_config.NumberColumn(
            "tail items", help="of them in the tail (whole-catalogue buckets)"
        ),
        "exposure": st.column_config.NumberColumn("exposure events", help=f"{exp} events"),
        "demand": st.column_config.NumberColumn("demand events", help=f"{dem} events"),
        "views": st.column_config.NumberColumn("viewing pairs", help="(user, item) pairs viewed"),
        "purchases": st.column_config.NumberColumn(
            "buying pairs", help="(user, item) pairs bought"
        ),
        "catalogue_share": _pct("catalogue", "items of the group / items of the catalogue"),
        "exposure_share": _pct("exposure", f"{exp} events on the group's items / all {exp} events"),
        "exposure_share_low": _pct("exposure 95% low", _INTERVAL),
        "exposure_share_high": _pct("exposure 95% high", _INTERVAL),
        "demand_share": _pct("demand", f"{dem} events on the group's items / all {dem} events"),
        "demand_share_low": _pct("demand 95% low", _INTERVAL),
        "demand_share_high": _pct("demand 95% high", _INTERVAL),
        "conversion": _pct("conversion", METRICS["view_purchase"].help),
        "conversion_low": _pct("conversion 95% low", "Wilson score interval"),
        "conversion_high": _pct("conversion 95% high", "Wilson score interval"),
        "lift": _times("vs shop", "the group's conversion / the shop's"),
        "lift_low": _times("vs shop 95% low", "Wilson bound / the shop's conversion"),
        "lift_high": _times("vs shop 95% high", "Wilson bound / the shop's conversion"),
        "status": st.column_config.TextColumn(
            "status",
            help=f"under-exposed: the 95% upper bound of the {base} share is below the "
            "catalogue share; over-exposed: the lower bound is above it",
        ),
        "verdict": st.column_config.TextColumn("verdict", width="large"),
    }
    table_with_download(
        show,
        f"{name}_neglected_{plural}.csv",
        key="op_groups_csv",
        column_config=cfg,
    )


def _items(opp: Opportunities, name: str) -> None:
    cand = opp.candidates
    n = len(opp.items)
    st.subheader(f"Items to boost ({n:,})")
    if cand is None or cand.basis is None:
        st.info(f"No items to boost: {cand.reason if cand else 'not measured'}.")
        return
    st.markdown(f"**{n:,} candidates to boost**: {markdown_text(cand.label)}.")
    if not n:
        st.info(f"None in this selection{': ' + cand.reason if cand.reason else ''}.")
        return
    show = _measured(opp.items.drop(columns=["similar_head_ids"]))
    cfg: dict[str, Any] = {
        "shrunk": _pct("shrunk conversion", METRICS["shrunk"].help),
        "shrunk_low": _pct("95% low", "Beta posterior interval of the shrunk conversion"),
        "shrunk_high": _pct("95% high", "Beta posterior interval of the shrunk conversion"),
        "lift": _times("vs shop", METRICS["lift"].help),
        "lift_low": _times("vs shop 95% low", "posterior bound / the shop average"),
        "lift_high": _times("vs shop 95% high", "posterior bound / the shop average"),
        "exposure": st.column_config.NumberColumn(
            "exposure", help=f"{opp.exposure_event} events on the item"
        ),
        "views": st.column_config.NumberColumn("views", help="users who viewed the item"),
        "purchases": st.column_config.NumberColumn("purchases", help="users who bought it"),
        "repeat_rate": _pct("repeat rate", "repeat buyers / buyers"),
        "repeat_rate_low": _pct("95% low", "Wilson score interval"),
        "repeat_rate_high": _pct("95% high", "Wilson score interval"),
        "similar_head_items": st.column_config.TextColumn(
            "similar head items",
            help="Head items that most of this item's users also interacted with",
            width="large",
        ),
    }
    table_with_download(
        show,
        f"{name}_items_to_boost.csv",
        key="op_items_csv",
        column_config=cfg,
        height=min(38 + 35 * n, 560),
    )


#: The group table's columns as shown: the answer first, the counts behind it last.
GROUP_ORDER = [
    "rank", "name", "status", "catalogue_share",
    "exposure_share", "exposure_share_low", "exposure_share_high",
    "demand_share", "demand_share_low", "demand_share_high",
    "lift", "lift_low", "lift_high", "conversion", "conversion_low", "conversion_high",
    "items", "tail_items", "exposure", "demand", "views", "purchases", "verdict",
]  # fmt: skip
_INTERVAL = (
    "Wilson interval at the effective sample size (users as clusters: one user's events are "
    "not independent)"
)


def _measured(df: pd.DataFrame) -> pd.DataFrame:
    """Drop the columns the data does not measure (all missing): never shown as zeros."""
    keep = [c for c in df.columns if not df[c].isna().all()]
    return df[keep].copy()


def _pct(label: str, help_: str) -> Any:
    return st.column_config.NumberColumn(label, help=help_, format=PCT_COLUMN)


def _times(label: str, help_: str) -> Any:
    return st.column_config.NumberColumn(label, help=help_, format="%.2fx")
