"""The Data page's parts: uploads streamed to disk, preview, mapping, dry run, commit, datasets.

Uploads are copied to a private temporary file in 1 MiB chunks (never read whole into a second
buffer) and handed to the importer, which reads them with DuckDB's own readers. Every import is
checked first (a dry run in a private in-memory database shows the validation report), then
committed in one atomic write. What a merchandiser reads is plain sentences built from the
report ("12,403 guest orders without a customer id were skipped"), never a traceback: every
:class:`~ltrec.errors.LtrecError` is shown with :func:`ltrec.ui.state.show_error`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import streamlit as st

from ltrec.analytics.export import to_csv
from ltrec.analytics.view import ViewParams
from ltrec.app import services
from ltrec.app.auth import Right
from ltrec.charts.text import markdown_message, markdown_text
from ltrec.config import EVENT_TYPES, get_settings
from ltrec.definitions import pct
from ltrec.errors import BadInputError, LtrecError, TooManyRejectsError
from ltrec.store import connect, read_meta
from ltrec.store import external as ext
from ltrec.store.importing import (
    DROP,
    PRESET_NAMES,
    ImportConfig,
    ImportReport,
    ReadConfig,
    RejectCode,
    SourceFile,
    get_preset,
    guess_mapping,
    match_columns,
    sniff,
)
from ltrec.store.privacy import ENV_KEY
from ltrec.store.profile import DatasetProfile
from ltrec.ui import auth, bytecache, cache, state
from ltrec.ui.widgets import metric_column

CHUNK = 1 << 20
ROLES = ("events", "items", "users")
UPLOAD_TYPES = ["csv", "tsv", "txt", "gz", "parquet", "pq"]
NONE = "(not in the file)"
#: ``None``: detected per file, as the CLI does without ``--delimiter``.
DELIMS: dict[str, str | None] = {
    "detect": None,
    "comma ,": ",",
    "semicolon ;": ";",
    "tab": "\t",
    "pipe |": "|",
}
#: The reject-share slider's upper end.
SLIDER_MAX = 0.5
#: Upload temp files older than this are swept (a session that died leaves its file behind).
STALE_S = 24 * 3600


# ----------------------------------------------------------------------------- uploads


def upload_dir() -> Path:
    """``<data dir>/.uploads`` (private; on the data disk, where the import will write)."""
    path = get_settings().data_dir / ".uploads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _suffix(filename: str) -> str:
    """A safe suffix for the temporary file (the importer checks content, not names; a
    ``.parquet`` suffix only makes a misnamed CSV's error message clearer)."""
    name = filename.lower()
    for suf in (".csv.gz", ".tsv.gz", ".parquet", ".pq", ".csv", ".tsv", ".txt", ".gz"):
        if name.endswith(suf):
            return suf
    return ".dat"


def save_upload(upload: Any, max_mb: int | None = None, root: Path | None = None) -> Path:
    """Stream an uploaded file (any binary file object with ``name``) to a temporary file.

    Copies in 1 MiB chunks and stops with :class:`BadInputError` as soon as the size limit
    (``Settings.max_upload_mb``) is passed, so nothing larger is ever written. The file is
    private to this user (0600) in a private directory.
    """
    limit = (max_mb or get_settings().max_upload_mb) * 2**20
    size = getattr(upload, "size", None)
    name = str(getattr(upload, "name", "upload"))
    if size is not None and size > limit:
        raise BadInputError(
            f"{name} is {size / 2**20:,.0f} MB, above the upload limit of {limit / 2**20:,.0f} MB",
            hint="import it from the command line: ltrec import NAME --events FILE",
        )
    root = root or upload_dir()
    _sweep(root)
    fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=_suffix(name), dir=root)
    path = Path(tmp)
    written = 0
    try:
        with contextlib.suppress(AttributeError, OSError):
            upload.seek(0)
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.read(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise BadInputError(
                        f"{name} is larger than the upload limit of {limit / 2**20:,.0f} MB",
                        hint="import it from the command line: ltrec import NAME --events FILE",
                    )
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _sweep(root: Path) -> None:
    cutoff = time.time() - STALE_S
    for p in root.glob("upload-*"):
        with contextlib.suppress(OSError):
            if p.stat().st_mtime < cutoff:
                p.unlink()


def discard(path: str | Path | None) -> None:
    """Remove an upload's temporary file (only files this module made)."""
    if path is None:
        return
    p = Path(path)
    if p.parent == upload_dir() and p.name.startswith("upload-"):
        p.unlink(missing_ok=True)


def held_upload(role: str, upload: Any) -> Path | None:
    """The temporary file of the current upload for ``role``, saved once per uploaded file.

    A new upload replaces (and deletes) the previous temporary file; removing the upload
    deletes it too.
    """
    key = f"_data_upload_{role}"
    held = st.session_state.get(key)
    if upload is None:
        if held:
            discard(held[1])
            del st.session_state[key]
        return None
    ident = getattr(upload, "file_id", None) or f"{upload.name}:{getattr(upload, 'size', '')}"
    if held and held[0] == ident and Path(held[1]).exists():
        return Path(held[1])
    if held:
        discard(held[1])
    path = save_upload(upload)
    st.session_state[key] = (ident, str(path))
    st.session_state.pop("data_committed", None)  # a new file: the last result is history
    return path


# ----------------------------------------------------------------------------- preview, mapping


def preview(
    path: Path, role: str, read: ReadConfig, label: str, rows: int = 20
) -> tuple[SourceFile, pd.DataFrame]:
    """The file's header and first rows, read the way the importer reads it (explicit dialect,
    every column as text). Raises :class:`BadInputError` for a file the importer would refuse."""
    src = sniff(path, role, read, label)
    con = duckdb.connect()
    try:
        frame = con.execute(
            f"SELECT * FROM {src.reader_sql(rid=False, store_rejects=False)} LIMIT {int(rows)}",  # noqa: S608 - the importer's reader
            src.params(),
        ).df()
    except duckdb.Error as exc:
        raise BadInputError(
            f"{label}: cannot be read ({str(exc).splitlines()[0][:200]})",
            hint="check the delimiter and that the file is CSV with a header, or Parquet",
        ) from None
    finally:
        con.close()
    frame.columns = _unique(src.columns)
    return src, frame


def _unique(columns: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for c in columns:
        c = c or "(blank)"
        n = seen.get(c, 0)
        seen[c] = n + 1
        out.append(c if n == 0 else f"{c} ({n + 1})")
    return out


def mapping_fields(preset: str, columns: list[str]) -> list[tuple[str, bool, str | None]]:
    """(key, required, guessed column) for every key of the preset's events layout."""
    layout = get_preset(preset).events
    found = match_columns(layout, columns)
    return [(k, k in layout.required, found.get(k)) for k in layout.keys]


def overrides(preset: str, columns: list[str], chosen: dict[str, str | None]) -> dict[str, str]:
    """The ``--map`` pairs a mapping form implies: only keys the user changed from the guess."""
    out = {}
    for key, _, guess in mapping_fields(preset, columns):
        pick = chosen.get(key)
        if pick and pick != NONE and pick != guess:
            out[key] = pick
    return out


# ----------------------------------------------------------------------------- plain words

#: A reject code in plain words (``{reason}``: the reason as the importer wrote it). Decided
#: on the code (:class:`RejectCode`), never on the reason's text.
_PHRASES: dict[str, str] = {
    RejectCode.GUEST_ORDER: "guest orders without a customer id",
    RejectCode.MISSING_USER_ID: "rows without a customer id",
    RejectCode.MISSING_ITEM_ID: "rows without a product id",
    RejectCode.CONTROL_CHARACTER_IN_ID: "rows whose id holds a control character ({reason})",
    RejectCode.CANCELLATION: "cancelled orders (invoice numbers starting with C)",
    RejectCode.NON_POSITIVE_QUANTITY: (
        "rows with a zero or negative quantity (returns, corrections)"
    ),
    RejectCode.DUPLICATE_ROW: "exact duplicate rows",
    RejectCode.DUPLICATE_ITEM_ID: (
        "repeated products in the catalogue file (the first one was kept)"
    ),
    RejectCode.DUPLICATE_USER_ID: (
        "repeated customers in the customer file (the first one was kept)"
    ),
    RejectCode.MISSING_TIMESTAMP: "rows without a date",
    RejectCode.UNPARSEABLE_TIMESTAMP: "rows whose date could not be read",
    RejectCode.TIMESTAMP_OUT_OF_RANGE: "rows dated before 1990 or in the future",
    RejectCode.MISSING_EVENT_TYPE: "rows without an event type",
    RejectCode.UNKNOWN_EVENT_TYPE: (
        "rows with an event type ltrec does not know ({reason}: choose what it means under "
        "'Unknown event types' and check again)"
    ),
    RejectCode.MISSING_RATING: "ratings without a value",
    RejectCode.UNPARSEABLE_RATING: "ratings that are not a number",
    RejectCode.MALFORMED_ROW: "lines that are not well-formed CSV ({reason})",
}


def plain(reason: str, n: int, code: str | None = None) -> str:
    """``12,403 guest orders without a customer id were skipped.`` (``code``: the reason's
    :class:`RejectCode`, ``report.reason_codes[reason]``)."""
    phrase = _PHRASES.get(code or "")
    text = phrase.format(reason=reason) if phrase else f"rows rejected because of: {reason}"
    if n == 1:
        text = (
            text.replace("rows ", "row ", 1)
            .replace("orders ", "order ", 1)
            .replace("lines ", "line ", 1)
            .replace("ratings ", "rating ", 1)
        )
    return f"{n:,} {text} {'was' if n == 1 else 'were'} skipped."


def headline(report: ImportReport) -> str:
    loaded = report.rows_loaded
    ev, it, us = (loaded.get(k, 0) for k in ROLES)
    what = f"{ev:,} events, {it:,} products and {us:,} customers"
    if report.dry_run:
        return (
            f"Checked {report.rows_read:,} rows: {what} would be imported into '{report.dataset}'."
        )
    return f"Imported {what} into '{report.dataset}'."


def reasons_frame(report: ImportReport) -> pd.DataFrame:
    total = report.rows_read or 1
    return pd.DataFrame(
        [
            {
                "reason": r,
                "code": report.reason_codes.get(r),
                "rows": n,
                "share": n / total,
                "in plain words": plain(r, n, report.reason_codes.get(r)),
            }
            for r, n in report.rejects_by_reason.items()
        ],
        columns=["reason", "code", "rows", "share", "in plain words"],
    )


def rejects_csv(report: ImportReport, data_dir: Path | None = None) -> bytes:
    """Rejected rows as CSV (formula-escaped): every row of a committed import from the
    dataset's ``rejects`` table, else the report's sample."""
    if report.committed:
        con = connect(report.dataset, data_dir)
        try:
            frame = con.execute(
                "SELECT source_file, line, reason, raw FROM rejects WHERE import_id = ? "
                "ORDER BY source_file, line",
                [report.import_id],
            ).df()
        finally:
            con.close()
    else:
        frame = pd.DataFrame(report.sample_rejects, columns=["file", "line", "reason", "raw"])
    return to_csv(frame)


# ----------------------------------------------------------------------------- datasets


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _row(name: str, version: str) -> dict[str, Any]:
    del version  # cache key only

    con = connect(name, state.data_root())
    try:
        meta = read_meta(con)
    finally:
        con.close()
    row: dict[str, Any] = {
        "dataset": name,
        "kind": "DuckDB",
        "updated": meta.get("updated_at", ""),
        "source": meta.get("source") or meta.get("source_preset") or "",
        "pseudonymised": meta.get("pseudonymized") == "hmac-sha256",
    }
    if "sample_events" in meta:
        row["source"] = (
            f"{meta.get('source', '')}: sample of {int(meta['sample_events']):,} / "
            f"{int(meta.get('sample_total_events', 0)):,} events"
        )
    try:
        # the Overview's cached figures (same cuts and popularity): one aggregation per version
        s = cache.view("stats", name, ViewParams())
    except (LtrecError, duckdb.Error) as exc:
        row["note"] = str(exc).splitlines()[0][:200]
        return row
    row.update(
        events=sum(s.events.values()),
        users=s.users,
        items=s.items,
        tail_items=s.tail_item_share,
        tail_exposure=s.tail_exposure_share,
        gini=s.gini_exposure,
    )
    return row


def datasets_frame() -> pd.DataFrame:
    """One row per dataset: kind, size, tail shares and Gini (DuckDB datasets), source."""
    rows = []
    root = state.data_root()
    for name in state.datasets():
        if state.is_external(name):
            try:
                cfg = ext.load_config(name, root)
                rows.append(
                    {
                        "dataset": name,
                        "kind": f"external ({cfg.backend})",
                        "source": cfg.description or ", ".join(cfg.tables.values()),
                    }
                )
            except LtrecError as err:
                rows.append({"dataset": name, "kind": "external", "note": err.message})
            continue
        try:
            rows.append(_row(name, state.version(name)))
        except LtrecError as err:
            rows.append({"dataset": name, "kind": "DuckDB", "note": err.message})
    cols = [
        "dataset",
        "kind",
        "events",
        "users",
        "items",
        "tail_items",
        "tail_exposure",
        "gini",
        "pseudonymised",
        "source",
        "updated",
        "note",
    ]
    return pd.DataFrame(rows, columns=cols)


def set_active(name: str) -> None:
    """Make ``name`` the active dataset of this session (the sidebar follows on rerun)."""
    st.session_state[state.DATASET_KEY] = name
    st.query_params["ds"] = name


def delete(name: str) -> None:
    """Delete a DuckDB dataset (admins; under the writer lock) and forget cached reads of it."""
    services.delete_dataset(auth.current(), name, state.data_root())
    st.cache_data.clear()
    bytecache.clear_all()
    state.forget_connections()  # cached read connections would hold the deleted file open
    if st.session_state.get(state.DATASET_KEY) == name:
        st.session_state.pop(state.DATASET_KEY, None)
        if st.query_params.get("ds") == name:
            del st.query_params["ds"]


def hmac_key() -> str | None:
    """The pseudonymisation key from Streamlit secrets (``LTREC_HMAC_KEY``) or the environment.

    Only passed down to the importer; never shown, logged or stored.
    """
    try:
        key = st.secrets.get(ENV_KEY)
    except Exception:  # noqa: BLE001 - no secrets file is the common case
        key = None
    return str(key) if key else os.environ.get(ENV_KEY) or None


# ----------------------------------------------------------------------------- the sections


def profile_lines(profile: dict[str, Any]) -> list[str]:
    """The dataset profile (:mod:`ltrec.store.profile`) of an import report in plain lines."""
    p = DatasetProfile.model_validate(profile)
    span = (
        f"{p.first_ts:%Y-%m-%d} to {p.last_ts:%Y-%m-%d}" if p.first_ts and p.last_ts else "none"
    )
    events = ", ".join(f"{n:,} {t}s" for t, n in p.event_counts.items()) or "no events"
    optional = p.optional_columns()
    yes = [k for k, v in optional.items() if v]
    no = [k for k, v in optional.items() if not v]
    lines = [
        f"Events by type: {events}.",
        f"{p.users:,} customers, {p.items:,} products; time span: {span}.",
        f"Funnel stages: {' → '.join(p.funnel_stages) or 'none'}; exposure: "
        + (f"{p.exposure_event}s." if p.exposure_event else "not measured."),
        f"Has {', '.join(yes) or 'none of ' + ', '.join(no)}"
        + (f"; no {', '.join(no)}." if yes and no else "."),
        "Customer segments: "
        + (", ".join(markdown_text(c) for c in p.segment_columns) or "none")
        + ".",
    ]
    if p.repeat_purchase_share is not None:
        lines.append(
            f"Repeat purchases: {pct(p.repeat_purchase_share)} of bought customer-product pairs "
            "were bought at more than one time."
        )
    if p.exposure_note:
        lines.append(p.exposure_note)
    return lines


def reject_hint(err: TooManyRejectsError) -> str:
    """What to do about too many rejects, in terms of this page's own slider (not a CLI flag)."""
    # the slider moves in steps of 0.01, and a share equal to the limit still imports
    need = math.ceil(err.share * 100 - 1e-9) / 100
    if need < err.share:
        need += 0.01
    if need > SLIDER_MAX:
        return (
            f"{pct(err.share)} of the rows were rejected: more than this page allows. Check the "
            "layout and the column choices above, or fix the file."
        )
    return (
        f"Fix the file, or move the slider 'Largest share of rejected rows that still imports' "
        f"to {need:.2f} or more to import the valid rows and keep the rest as rejected rows."
    )


def _report(report: ImportReport, key: str) -> None:
    """The validation report: headline, what the data holds (the dataset profile), reasons in
    plain words, sample rows, download."""
    st.markdown(f"**{headline(report)}**")
    cols = st.columns(4)
    cols[0].metric("Rows read", f"{report.rows_read:,}")
    cols[1].metric("Events imported", f"{report.rows_loaded.get('events', 0):,}")
    cols[2].metric("Rejected", f"{report.rejected:,}", help="Rows that are not imported.")
    cols[3].metric(
        "Rejected share",
        pct(report.reject_share),
        help=f"The import stops when more than {pct(report.max_reject_share)} of the rows are "
        "rejected.",
    )
    profile = getattr(report, "profile", None)
    if profile:
        st.markdown(
            "**What the data holds**",
            help="The dataset profile: the pages show only what the data has (no zero "
            "impressions on a purchase log, funnels with the stages present).",
        )
        st.markdown("\n".join(f"- {line}" for line in profile_lines(profile)))
    if not report.rejected:
        st.success("Every row passed the checks.")
        return
    for reason, n in report.rejects_by_reason.items():
        st.markdown(f"- {plain(reason, n, report.reason_codes.get(reason))}")
    st.dataframe(
        reasons_frame(report),
        hide_index=True,
        column_config={"share": st.column_config.NumberColumn("share", format="percent")},
    )
    if report.sample_rejects:
        st.caption("Examples of skipped rows")
        st.dataframe(pd.DataFrame(report.sample_rejects), hide_index=True)
    try:
        data = rejects_csv(report, state.data_root())
    except LtrecError as err:
        state.show_error(err)
        return
    st.download_button(
        "Download rejected rows (CSV)" if report.committed else "Download examples (CSV)",
        data,
        file_name=f"{report.dataset}_rejects.csv",
        mime="text/csv",
        key=f"{key}_rejects_csv",
        help="Cells that start with = + - @ are prefixed with ' so a spreadsheet shows them "
        "as text.",
    )


def _settings(**kw: Any) -> str:
    return json.dumps(kw, sort_keys=True, default=str)


#: What an unknown event value may become (the Data page's event map control).
EVENT_CHOICES = ("keep as rejects", *EVENT_TYPES, DROP)


def event_map_control(values: list[str]) -> dict[str, str]:
    """One choice per event value the last check found unknown (``unknown_event_types``): an
    event type, or drop (rows left out); the page's ``--event-map``."""
    if not values:
        return {}
    st.markdown(
        "**Unknown event types**",
        help="Values of the event column that no alias maps. Choose an event type for each, "
        "or drop to leave those rows out; left as they are, their rows are rejected.",
    )
    out: dict[str, str] = {}
    grid = st.columns(4)
    for i, value in enumerate(values):
        pick = grid[i % 4].selectbox(
            markdown_text(value), EVENT_CHOICES, key=f"data_event_map_{value}"
        )
        if pick != EVENT_CHOICES[0]:
            out[value] = pick
    return out


def import_section() -> None:
    """Upload -> preview -> mapping -> dry run -> commit (admins only)."""
    if not auth.can(Right.IMPORT):
        st.caption("Importing and deleting data needs the admin role.")
        return
    settings = get_settings()
    st.subheader("Import a file")
    st.caption(
        "CSV (optionally gzip-compressed) with a header, or Parquet. Event logs "
        "(timestamp, visitor, event, item), order lines (InvoiceNo, StockCode, Quantity, ...), "
        "rating logs and the canonical layout are recognised from the header."
    )
    ups: dict[str, Any] = {}
    gen = st.session_state.setdefault("_data_upload_gen", 0)  # a new key empties the uploaders
    # one uploader per row: side by side, the uploader's own limit line ("200MB per file •
    # CSV, ...") is cut at 1280 px
    for col, role, title in (
        (st, "events", "Events or order lines (required)"),
        (st, "items", "Products (optional)"),
        (st, "users", "Customers (optional)"),
    ):
        ups[role] = col.file_uploader(
            title,
            type=UPLOAD_TYPES,
            key=f"data_up_{role}_{gen}",
            max_upload_size=settings.max_upload_mb,
            help=f"Up to {settings.max_upload_mb:,} MB; larger files: `ltrec import` on the "
            "command line.",
        )
    delim_label = st.selectbox(
        "CSV delimiter",
        list(DELIMS),
        key="data_delim",
        help="Detected for each file unless you pick one. Parquet files ignore this.",
    )
    read = ReadConfig(delimiter=DELIMS[delim_label])
    paths: dict[str, Path] = {}
    labels: dict[str, str] = {}
    try:
        for role in ROLES:
            path = held_upload(role, ups[role])
            if path is not None:
                paths[role], labels[role] = path, ups[role].name
    except LtrecError as err:
        state.show_error(err)
        return
    if "events" not in paths:
        _committed()
        st.info("Upload an events file to start.")
        return
    try:
        src, head = preview(paths["events"], "events", read, labels["events"])
        for role in ("items", "users"):
            if role in paths:
                preview(paths[role], role, read, labels[role], rows=1)
    except LtrecError as err:
        state.show_error(err)
        return
    with st.expander(
        f"Preview of {markdown_text(labels['events'])} ({len(src.columns)} columns)", True
    ):
        st.dataframe(head, hide_index=True)

    guessed, _ = guess_mapping(src.columns)
    names = list(PRESET_NAMES)
    preset = st.selectbox(
        "Layout",
        names,
        index=names.index(guessed),
        key="data_preset",
        format_func=lambda n: f"{n}: {get_preset(n).description}",
        help="Guessed from the header; change it if the guess is wrong.",
    )
    st.markdown("**Columns**", help="Which column holds each field (guessed from the header).")
    chosen: dict[str, str | None] = {}
    options = [NONE, *src.columns]
    fields = mapping_fields(preset, src.columns)
    grid = st.columns(4)
    for i, (key, required, guess) in enumerate(fields):
        chosen[key] = grid[i % 4].selectbox(
            f"{key}{' *' if required else ''}",
            options,
            index=options.index(guess) if guess in options else 0,
            key=f"data_map_{preset}_{key}",
        )
    missing = [k for k, req, _ in fields if req and chosen.get(k) in (None, NONE)]
    event_map = event_map_control(st.session_state.get("data_event_values", []))

    default_name = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(labels["events"]).name.split(".")[0])
    name = st.text_input(
        "Dataset name",
        value=default_name.strip("_-")[:64] or "shop",
        key="data_name",
        help="1-64 letters, digits, '_' or '-'. An existing dataset gets the new rows.",
    )
    exists = name in state.datasets()
    replace = st.checkbox(
        "Replace the dataset (start from empty)" if exists else "Replace the dataset",
        value=False,
        key="data_replace",
        disabled=not exists,
        help="Off: events are added and products/customers updated.",
    )
    secret = hmac_key()
    pseudo = st.checkbox(
        "Pseudonymise customer ids",
        value=False,
        key="data_pseudo",
        disabled=secret is None,
        help="Replace every customer id by a keyed HMAC-SHA256 before anything is stored. "
        "The same key gives the same pseudonyms in later imports.",
    )
    if secret is None:
        st.caption(
            f"Pseudonymising needs a secret key: set {ENV_KEY} in `.streamlit/secrets.toml` "
            "or the environment."
        )
    share = st.slider(
        "Largest share of rejected rows that still imports",
        0.0,
        SLIDER_MAX,
        float(settings.max_reject_share),
        0.01,
        key="data_max_reject",
        format="%.2f",
    )
    if missing:
        st.warning(f"Choose the column for: {', '.join(missing)}.")
        return
    kwargs: dict[str, Any] = dict(
        events=paths["events"],
        items=paths.get("items"),
        users=paths.get("users"),
        preset=preset,
        mapping=overrides(preset, src.columns, chosen),
        replace=replace,
        max_reject_share=share,
        config=ImportConfig(read=read, event_map=event_map),
        labels=labels,
        pseudonymize=pseudo,
        hmac_key=secret if pseudo else None,
    )
    sig = _settings(
        name=name,
        paths={k: str(v) for k, v in paths.items()},
        preset=preset,
        mapping=kwargs["mapping"],
        replace=replace,
        share=share,
        pseudo=pseudo,
        delim=read.delimiter,
        event_map=event_map,
    )

    if st.button("Check the file (dry run)", key="data_dry", type="secondary"):
        st.session_state.pop("data_committed", None)
        try:
            with st.spinner("Checking every row ..."):
                rep = services.import_dataset(
                    auth.current(), name, dry_run=True, data_dir=state.data_root(), **kwargs
                )
            st.session_state["data_dry_report"] = (sig, rep, None)
        except TooManyRejectsError as err:
            st.session_state["data_dry_report"] = (sig, err.report, err)
        except LtrecError as err:
            st.session_state.pop("data_dry_report", None)
            state.show_error(err)
        checked = st.session_state.get("data_dry_report")
        if checked and isinstance(checked[1], ImportReport):  # values for the event map control
            known = st.session_state.get("data_event_values", [])
            new = [v for v in checked[1].unknown_event_types if v not in known]
            if new:
                st.session_state["data_event_values"] = [*known, *new]
                st.rerun()  # shows the control above; the report is kept (same settings)
    held = st.session_state.get("data_dry_report")
    if held and held[0] != sig:
        st.info("The settings changed since the last check: check the file again.")
        held = None
    if held:
        _, rep, dry_err = held
        st.markdown("#### Validation report (nothing written yet)")
        if isinstance(dry_err, TooManyRejectsError):
            st.error(markdown_message(dry_err.message))
            st.caption(reject_hint(dry_err))
        elif dry_err is not None:
            state.show_error(dry_err)
        if isinstance(rep, ImportReport):
            _report(rep, "data_dry")
        if dry_err is None and st.button("Import", key="data_commit", type="primary"):
            bar = st.progress(0.0, text="starting")

            def progress(done: float, msg: str) -> None:
                bar.progress(min(max(done, 0.0), 1.0), text=msg)

            try:
                done = services.import_dataset(
                    auth.current(), name, data_dir=state.data_root(), progress=progress, **kwargs
                )
            except LtrecError as e:
                state.show_error(e)
            else:
                bar.progress(1.0, text="done")
                st.session_state["data_committed"] = done
                st.session_state.pop("data_dry_report", None)
                for role in ROLES:
                    held_upload(role, None)
                st.session_state["_data_upload_gen"] = gen + 1
                st.cache_data.clear()
                bytecache.clear_all()
                st.rerun()


def _committed() -> None:
    """The result of the last import of this session (shown until the next upload)."""
    done = st.session_state.get("data_committed")
    if isinstance(done, ImportReport):
        st.success(headline(done))
        _report(done, "data_done")
        if st.button(f"Open '{done.dataset}'", key="data_open"):
            set_active(done.dataset)
            st.rerun()


def datasets_section() -> None:
    """Every dataset with its stats; switch, sample (external) and delete."""
    st.subheader("Datasets")
    names = state.datasets()
    if not names:
        st.info("No datasets yet: import a file above, or run `ltrec demo`.")
        return
    with st.spinner("Reading dataset statistics ..."):
        frame = datasets_frame()
    st.dataframe(
        frame.dropna(axis=1, how="all"),
        hide_index=True,
        column_config={
            # the Overview's KPIs, under the same names and definitions
            "tail_items": metric_column("tail_item_share"),
            "tail_exposure": metric_column("tail_exposure_share"),
            "gini": metric_column("gini_exposure"),
        },
    )
    active = state.active_dataset()
    left, right = st.columns(2)
    with left:
        pick = st.selectbox(
            "Dataset",
            names,
            index=names.index(active) if active in names else 0,
            key="data_pick",
            format_func=state.label,
        )
        if st.button("Make it the active dataset", key="data_switch", disabled=pick == active):
            set_active(pick)
            st.rerun()
        if state.is_external(pick) and auth.can(Right.IMPORT):
            _sample_form(pick)
    with right:
        local = [n for n in names if not state.is_external(n)]
        if not local or not auth.can(Right.DELETE):
            return
        victim = st.selectbox("Delete a dataset", local, key="data_del_pick")
        typed = st.text_input(
            f"Type '{victim}' to confirm",
            key="data_del_confirm",
            help="Deleting removes the dataset file with its saved model runs and simulations.",
        )
        if st.button("Delete", key="data_delete", type="primary", disabled=typed.strip() != victim):
            try:
                delete(victim)
            except LtrecError as err:
                state.show_error(err)
            else:
                st.session_state["data_deleted"] = victim
                st.rerun()
        gone = st.session_state.pop("data_deleted", None)
        if gone:
            st.success(f"Deleted '{gone}'.")


def _sample_form(name: str) -> None:
    try:
        cfg = ext.load_config(name, state.data_root())
    except LtrecError as err:
        state.show_error(err)
        return
    st.caption(
        f"'{name}' stays on {cfg.backend}: the analytics pages query it there. Models train "
        f"on a sample copied into the local dataset '{ext.sample_name(name)}'."
    )
    n = st.number_input(
        "Sample size (events)",
        min_value=100,
        max_value=200_000_000,
        value=cfg.sample.max_events,
        step=10_000,
        key="data_sample_n",
        help="Whole customers are sampled (seeded), so each keeps their full history.",
    )
    if st.button("Fetch a training sample", key="data_sample"):
        try:
            with st.spinner(f"Fetching up to {int(n):,} events from {cfg.backend} ..."):
                rep = services.fetch_sample(
                    auth.current(), name, int(n), cfg.sample.seed, state.data_root()
                )
        except LtrecError as err:
            state.show_error(err)
        else:
            st.cache_data.clear()
            bytecache.clear_all()
            st.session_state["data_sampled"] = rep.summary()
    msg = st.session_state.get("data_sampled")
    if msg:
        st.success(msg)
