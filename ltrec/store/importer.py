"""Validated import of events (and items, users) from CSV or Parquet into a dataset (DESIGN §2).

The pipeline, per file:

1. :func:`~ltrec.store.import_files.sniff` checks the file as a whole (empty, binary, wrong
   delimiter, invalid UTF-8 at the start, gzip bomb, "Parquet" that is not) and reads the header.
2. The columns are resolved against a preset (:mod:`ltrec.store.presets`) and ``--map``
   overrides; a missing required column raises :class:`ColumnNotFoundError`.
3. DuckDB reads the file with an explicit dialect, every column VARCHAR (``read_csv`` with
   ``auto_detect=false`` and ``store_rejects`` for malformed lines; ``read_parquet`` cast to
   VARCHAR), and one SQL pass casts with ``TRY_CAST``/``TRY_STRPTIME`` and gives every bad row a
   reason. Timestamps are detected per file (unix s/ms/us, ISO 8601, common day/month layouts).
   With ``pseudonymize``, every staged user id is then replaced by its keyed HMAC
   (:mod:`ltrec.store.privacy`) and the raw text of rejected rows is withheld, so raw ids never
   reach the file.
4. If more than ``max_reject_share`` of the rows are rejected, :class:`TooManyRejectsError`
   (nothing lands). Otherwise events are appended, items and users upserted (a referenced item
   or user without a row gets one), rejects stored with file, line, reason and raw text, meta
   updated, and :func:`~ltrec.store.finalize.finalize` run, all inside one :func:`writing`.

A dry run does the same in a private in-memory database and returns the full report.
"""

# SQL here is assembled from this module's own fragments: file column names never enter CSV
# SQL (columns are c0..cN), Parquet names and attribute names go through quote_ident, and every
# value from a file or a user is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from ltrec.errors import BadInputError, ColumnNotFoundError, TooManyRejectsError
from ltrec.store import privacy
from ltrec.store.connect import check_name, connect, dataset_path, read_meta, write_meta, writing
from ltrec.store.finalize import finalize
from ltrec.store.import_files import ReadConfig, SourceFile, sniff
from ltrec.store.presets import (
    PRESETS,
    RATING_PURCHASE_MIN,
    Layout,
    Preset,
    get_preset,
    guess_mapping,
    match_columns,
    norm_header,
)
from ltrec.store.schema import (
    EVENT_ALIASES,
    EVENT_COLUMNS,
    ITEM_COLUMNS,
    create_schema,
    quote_ident,
    safe_column_name,
)

__all__ = [
    "ImportConfig",
    "ImportReport",
    "guess_mapping",
    "import_dataset",
    "sniff",
]

Progress = Callable[[str, float | None], None]

#: Lower bound of a plausible event time; anything earlier is "timestamp out of range".
MIN_TS = datetime(1990, 1, 1)
#: Strings that mean "no id" in exports (pandas NaN, SQL NULL), compared lower-cased.
_NULL_IDS = ("", "null", "none", "nan")
_RAW_MAX = 2000


def _sql_str(s: str) -> str:
    """Double single quotes in one of *our* constant strings (reasons written in this module)."""
    return s.replace("'", "''")


#: Event-type aliases as a SQL MAP literal (our constants; a lookup per row is cheaper than a
#: join against an alias table). ``map[key]`` is NULL for an unknown key.
_ALIAS_MAP = (
    "MAP {" + ", ".join(f"'{_sql_str(k.lower())}': '{v}'" for k, v in EVENT_ALIASES.items()) + "}"
)


class ImportConfig(BaseModel):
    """Knobs of the import; the defaults are what the CLI uses.

    Attributes:
        read: how files are read (delimiter, gzip limits).
        rating_purchase_min: ratings preset: a rating at or above this also counts as a purchase.
        future_slack_hours: a timestamp later than now plus this is out of range.
        ts_sample: values sampled per file to detect the timestamp format.
        sample_rejects: rejected rows returned in the report (at most 3 per reason first).
    """

    model_config = ConfigDict(extra="forbid")

    read: ReadConfig = Field(default_factory=ReadConfig)
    rating_purchase_min: float = Field(RATING_PURCHASE_MIN, ge=-1e9, le=1e9)
    future_slack_hours: float = Field(24.0, ge=0.0, le=24.0 * 366)
    ts_sample: int = Field(2000, ge=10, le=100_000)
    sample_rejects: int = Field(20, ge=0, le=1000)


@dataclass
class ImportReport:
    """What an import read, loaded and rejected. ``to_dict`` keys are a public interface."""

    dataset: str
    preset: str
    preset_guessed: bool
    dry_run: bool
    committed: bool = False
    import_id: str = ""
    files: dict[str, str] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)
    ts_formats: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, list[str]] = field(default_factory=dict)
    dropped_columns: dict[str, list[str]] = field(default_factory=dict)
    rows_read_by_file: dict[str, int] = field(default_factory=dict)
    rows_loaded: dict[str, int] = field(default_factory=dict)
    new_rows: dict[str, int] = field(default_factory=dict)
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    sample_rejects: list[dict[str, Any]] = field(default_factory=list)
    max_reject_share: float = 0.05
    seconds: float = 0.0
    pseudonymized: bool = False

    @property
    def rows_read(self) -> int:
        return sum(self.rows_read_by_file.values())

    @property
    def rejected(self) -> int:
        return sum(self.rejects_by_reason.values())

    @property
    def reject_share(self) -> float:
        return self.rejected / self.rows_read if self.rows_read else 0.0

    def reject_summary(self, top: int = 6) -> str:
        """``1,203 rows rejected: 1,100 missing item_id, 103 unparseable timestamp``."""
        if not self.rejected:
            return "no rows rejected"
        parts = [f"{n:,} {r}" for r, n in list(self.rejects_by_reason.items())[:top]]
        more = len(self.rejects_by_reason) - top
        if more > 0:
            parts.append(f"{more} more reason{'s' if more > 1 else ''}")
        noun = "row" if self.rejected == 1 else "rows"
        return f"{self.rejected:,} {noun} rejected: " + ", ".join(parts)

    def summary(self) -> str:
        loaded = ", ".join(
            f"{self.rows_loaded.get(t, 0):,} {t}" for t in ("events", "items", "users")
        )
        if self.dry_run:
            head = f"Dry run, nothing written: '{self.dataset}' would get {loaded}"
        elif self.committed:
            head = f"Imported into '{self.dataset}': {loaded}"
        else:
            head = f"Nothing imported into '{self.dataset}'"
        how = "guessed" if self.preset_guessed else "preset"
        lines = [
            f"{head} ({how} {self.preset}; {self.rows_read:,} rows read in {self.seconds:.1f}s).",
            self.reject_summary()[0].upper() + self.reject_summary()[1:] + ".",
        ]
        if self.rejected and self.committed:
            lines.append("Rejected rows are in the dataset's rejects table.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "committed": self.committed,
            "dry_run": self.dry_run,
            "import_id": self.import_id,
            "preset": self.preset,
            "preset_guessed": self.preset_guessed,
            "files": self.files,
            "formats": self.formats,
            "mapping": self.mapping,
            "ts_formats": self.ts_formats,
            "attributes": self.attributes,
            "dropped_columns": self.dropped_columns,
            "rows_read": self.rows_read,
            "rows_read_by_file": self.rows_read_by_file,
            "rows_loaded": self.rows_loaded,
            "new_rows": self.new_rows,
            "rejected": self.rejected,
            "reject_share": self.reject_share,
            "max_reject_share": self.max_reject_share,
            "rejects_by_reason": self.rejects_by_reason,
            "sample_rejects": self.sample_rejects,
            "summary": self.reject_summary(),
            "seconds": round(self.seconds, 3),
            "pseudonymized": self.pseudonymized,
        }


# ----------------------------------------------------------------------------- SQL helpers


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None):
    """Execute with only the named parameters the statement uses (DuckDB refuses extras)."""
    used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", sql))
    return con.execute(sql, {k: v for k, v in (params or {}).items() if k in used})


def _untrimmed(expr: str) -> str:
    """SQL true when ``trim(expr) = expr`` for certain: pure ASCII (``length``, in characters,
    equals ``strlen``, in bytes) without an edge space. DuckDB's trim strips the Unicode space
    separators (NBSP, U+3000, ...), and ' ' is the only ASCII one. Both tests are far cheaper
    than trim, which was most of an id's cost on 10M rows."""
    return f"(length({expr}) = strlen({expr}) AND NOT (prefix({expr}, ' ') OR suffix({expr}, ' ')))"


def _strip(expr: str) -> str:
    """``trim(expr)``, run only on the values that may need it (:func:`_untrimmed`)."""
    return f"CASE WHEN {_untrimmed(expr)} THEN {expr} ELSE trim({expr}) END"


def _id(expr: str) -> str:
    """An id: trimmed; empty, ``null``, ``none`` and ``nan`` (as exports write them) are NULL."""
    nulls = ", ".join(f"'{v}'" for v in _NULL_IDS)  # fixed constants of this module
    longest = max(len(v) for v in _NULL_IDS)
    t = f"trim({expr})"
    # The common id (longer than the null tokens, nothing to trim) is taken as is, skipping
    # trim() and lower(), which scan every value.
    return (
        f"CASE WHEN strlen({expr}) > {longest} AND {_untrimmed(expr)} THEN {expr} "
        f"WHEN lower({t}) IN ({nulls}) THEN NULL ELSE {t} END"
    )


def _render(template: str, cols: dict[str, int], prefix: str = "s.") -> str:
    """Replace ``{key}`` with the key's VARCHAR column (``s.c3``), or NULL when unmapped."""

    def sub(m: re.Match[str]) -> str:
        idx = cols.get(m.group(1))
        return f"{prefix}c{idx}" if idx is not None else "CAST(NULL AS VARCHAR)"

    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, template)


# ------------------------------------------------------------------------ timestamp formats

_STRPTIME_FORMATS = (
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y",
    "%Y%m%d",
)
_UNIX_SCALE = {"unix_s": 1_000_000, "unix_ms": 1_000, "unix_us": 1}
_UNIX_LIMIT_US = 8 * 10**18


def _ts_expr(fmt: str, raw: str, param: str) -> str:
    """SQL turning the VARCHAR ``raw`` into a TIMESTAMP (NULL when unparseable)."""
    if fmt in _UNIX_SCALE:
        # integers parse as BIGINT (fast); the rest via DOUBLE, so "1420070400.5" works.
        # Beyond year ~255,000 (make_timestamp raises near the BIGINT edges) the value is
        # NULL, an "unparseable timestamp" reject, instead of an error failing the import.
        scale, lim = _UNIX_SCALE[fmt], _UNIX_LIMIT_US
        whole, real = f"TRY_CAST({raw} AS BIGINT)", f"TRY_CAST({raw} AS DOUBLE) * {scale}"
        bound = lim // scale
        slow = f"TRY_CAST(CASE WHEN abs({real}) <= {lim} THEN {real} END AS BIGINT)"
        # CASE ... ELSE, not coalesce(fast, slow): coalesce evaluated the DOUBLE path on
        # every row (3x the cost of the whole expression)
        return (
            f"make_timestamp(CASE WHEN {whole} BETWEEN -{bound} AND {bound} "
            f"THEN {whole} * {scale} ELSE {slow} END)"
        )
    if fmt == "iso":
        # TIMESTAMPTZ honours offsets ("Z", "+02:00"); the session time zone is UTC
        return f"CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AS TIMESTAMP)"
    return f"TRY_STRPTIME({raw}, ${param})"


def _detect_ts(con: duckdb.DuckDBPyConnection, values: list[str]) -> str:
    """The format that parses most of ``values``: ``unix_s|unix_ms|unix_us|iso|<strptime>``.

    Numbers are unix time, scaled by magnitude (seconds below 1e11, i.e. before year 5138;
    milliseconds below 1e14; else microseconds). Ties between day-first and month-first
    layouts go to month-first (the order of ``_STRPTIME_FORMATS``) unless a day > 12 decides.
    """
    vals = [v.strip() for v in values if v and v.strip()]
    if not vals:
        return "iso"
    numeric = [v for v in vals if re.fullmatch(r"[+-]?\d+(\.\d+)?", v)]
    if len(numeric) * 2 > len(vals):
        mags = sorted(abs(float(v)) for v in numeric)
        median = mags[len(mags) // 2]
        return "unix_s" if median < 1e11 else "unix_ms" if median < 1e14 else "unix_us"
    con.execute("CREATE OR REPLACE TEMP TABLE _imp_tsamp (v VARCHAR)")
    con.executemany("INSERT INTO _imp_tsamp VALUES (?)", [(v,) for v in vals])
    counts = {
        "iso": con.execute("SELECT count(TRY_CAST(v AS TIMESTAMPTZ)) FROM _imp_tsamp").fetchone()[0]
    }
    for fmt in _STRPTIME_FORMATS:
        counts[fmt] = con.execute(
            "SELECT count(TRY_STRPTIME(v, $f)) FROM _imp_tsamp", {"f": fmt}
        ).fetchone()[0]
    con.execute("DROP TABLE _imp_tsamp")
    return max(counts, key=lambda k: counts[k])  # first of the maxima: dict order


# ------------------------------------------------------------------------ column binding


@dataclass
class _Bound:
    """A file's keys resolved to column positions."""

    src: SourceFile
    cols: dict[str, int]  # key -> column index
    exprs: dict[str, str]  # canonical field -> template over keys
    mapping: dict[str, str]  # key -> column name (for the report)

    def expr(self, fieldname: str, prefix: str = "s.") -> str | None:
        if fieldname in self.exprs:
            return _render(self.exprs[fieldname], self.cols, prefix)
        if fieldname in self.cols:
            return f"{prefix}c{self.cols[fieldname]}"
        return None


def _find_column(src: SourceFile, column: str) -> int | None:
    for i, c in enumerate(src.columns):
        if c == column:
            return i
    for i, c in enumerate(src.columns):
        if norm_header(c) == norm_header(column) and norm_header(column):
            return i
    return None


def _bind(src: SourceFile, layout: Layout, overrides: dict[str, str], strict: set[str]) -> _Bound:
    """Resolve ``layout`` keys (plus ``overrides``: key -> column) against ``src``'s header.

    Keys in ``strict`` must be found when overridden; others fall back to the preset's
    candidates. A mapped canonical field replaces the preset's derivation of that field.
    """
    found = match_columns(layout, src.columns)
    cols = {k: src.columns.index(c) for k, c in found.items()}
    exprs = dict(layout.exprs)
    for key, column in overrides.items():
        idx = _find_column(src, column)
        if idx is None:
            if key in strict:
                raise ColumnNotFoundError(column, key, src.columns)
            continue
        cols[key] = idx
        exprs.pop(key, None)
    for key in layout.required:
        if key not in cols:
            expected = layout.keys.get(key, (key,))[0]
            err = ColumnNotFoundError(expected, key, src.columns)
            err.args = (f"{src.label}: {err.args[0]}",)
            raise err
    return _Bound(src, cols, exprs, {k: src.columns[i] for k, i in cols.items()})


def _split_mapping(
    mapping: dict[str, str], preset: Preset
) -> dict[str, tuple[dict[str, str], set[str]]]:
    """Route ``--map`` pairs to files: ``items.title=name`` targets one file; a plain key goes
    to the events file when the events layout (or the events table) has it, and to the items /
    users file too when that file has the column. Returns role -> (overrides, strict keys)."""
    out: dict[str, tuple[dict[str, str], set[str]]] = {
        r: ({}, set()) for r in ("events", "items", "users")
    }
    valid = {
        "events": set(preset.events.keys) | set(EVENT_COLUMNS),
        "items": set(preset.items.keys) | set(ITEM_COLUMNS),
        "users": set(preset.users.keys) | {"user_id"},
    }
    for key, column in mapping.items():
        role, dot, sub = key.partition(".")
        if dot and role in out:
            if sub not in valid[role] and not re.fullmatch(r"[A-Za-z_]\w*", sub):
                raise BadInputError(f"--map {key}: unknown field {sub!r}")
            out[role][0][sub] = column
            out[role][1].add(sub)
            continue
        routed = False
        if key in valid["events"]:
            out["events"][0][key] = column
            out["events"][1].add(key)
            routed = True
        for role in ("items", "users"):
            if key in valid[role]:
                out[role][0][key] = column
                if not routed:
                    out[role][1].add(key)
                routed = True
        if not routed:
            fields = sorted(valid["events"] | valid["items"] | valid["users"])
            raise BadInputError(
                f"--map {key}=...: unknown field {key!r}",
                hint=f"fields: {', '.join(fields)}; prefix items. or users. to target one file",
            )
    return out


# ------------------------------------------------------------------------ the import


def _ev_rid(alias: str = "_imp_ev") -> str:
    """The record number (1-based, in file order) of a staged event row; see stage_events."""
    return f"({alias}.rowid + 1)"


class _Importer:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        report: ImportReport,
        cfg: ImportConfig,
        preset: Preset,
        progress: Progress | None,
    ) -> None:
        self.con, self.report, self.cfg, self.preset = con, report, cfg, preset
        self.progress = progress
        now = datetime.now(UTC).replace(tzinfo=None)
        self.params: dict[str, Any] = {
            "min_ts": MIN_TS,
            "max_ts": now + timedelta(hours=cfg.future_slack_hours),
            "rating_purchase_min": cfg.rating_purchase_min,
            "import_id": report.import_id,
        }
        self.counts: dict[str, int] = {}  # stage -> valid rows
        self.stages: list[tuple[str, SourceFile]] = []  # (temp table, file) with rejects
        self.bad: dict[str, int] = {}  # role -> malformed lines
        self.fields: dict[str, tuple[list[str], list[tuple[str, str, str]]]] = {}
        self.event_items: list[str] = []
        self.event_users: list[str] = []
        self.clean: set[str] = set()  # roles whose file read without a malformed line

    def say(self, msg: str, frac: float | None = None) -> None:
        if self.progress is not None:
            self.progress(msg, frac)

    def q(self, sql: str, extra: dict[str, Any] | None = None):
        return _run(self.con, sql, {**self.params, **(extra or {})})

    # -- shared per-file steps

    def _file_params(self, src: SourceFile) -> dict[str, Any]:
        return {**self.params, **src.params()}

    def _sample(self, src: SourceFile, expr: str) -> list[str]:
        sql = (
            f"SELECT {expr} AS v FROM {src.reader_sql(rid=False, store_rejects=False)} s "
            f"WHERE nullif(trim({expr}), '') IS NOT NULL LIMIT {int(self.cfg.ts_sample)}"
        )
        return [r[0] for r in _run(self.con, sql, self._file_params(src)).fetchall()]

    def _ts(self, src: SourceFile, bound: _Bound, fieldname: str, raw: str) -> str:
        """Detect the timestamp format of ``fieldname`` in this file; SQL for the cast."""
        fmt = _detect_ts(self.con, self._sample(src, raw))
        param = f"tsfmt_{src.role}_{fieldname}"
        self.params[param] = fmt
        self.report.ts_formats[f"{src.role}.{fieldname}"] = fmt
        return _ts_expr(fmt, _strip(raw), param)

    def _malformed(self, src: SourceFile) -> int:
        """Lines DuckDB could not parse -> ``_imp_bad_<role>``; invalid UTF-8 stops the import.

        ``c`` is the number of good records before each bad line, used to turn a record
        number back into a file line (exact when no value spans several lines).
        """
        table = f"_imp_bad_{src.role}"
        self.con.execute(
            f"CREATE TEMP TABLE {table} (line BIGINT, c BIGINT, reason VARCHAR, raw VARCHAR)"
        )
        if src.kind == "parquet" or src.role in self.clean:
            return 0
        _, errors = src.reject_tables()
        rows = self.con.execute(
            f"SELECT line, min(error_type), min(csv_line) FROM {errors} GROUP BY line ORDER BY line"
        ).fetchall()
        if not rows:
            return 0
        for line, etype, _ in rows:
            if etype == "INVALID ENCODING":
                raise BadInputError(
                    f"{src.label}: is not valid UTF-8 (line {line})",
                    hint="save it as UTF-8 (in Excel: 'CSV UTF-8'; elsewhere e.g. iconv -f "
                    "latin1 -t utf-8) and import again",
                )
        reasons = {
            "MISSING COLUMNS": "malformed row (too few columns)",
            "TOO MANY COLUMNS": "malformed row (too many columns)",
            "UNQUOTED VALUE": "malformed row (unterminated or stray quote)",
            "LINE SIZE OVER MAXIMUM": "malformed row (line too long)",
        }
        self.con.executemany(
            f"INSERT INTO {table} VALUES (?, ? - ?, ?, ?)",
            [
                (
                    line,
                    line,
                    i + 2,  # c = line - (bad lines up to and including this one) - header
                    reasons.get(etype, f"malformed row ({str(etype).lower()})"),
                    (raw or "")[:_RAW_MAX],
                )
                for i, (line, etype, raw) in enumerate(rows)
            ],
        )
        return len(rows)

    def _line_expr(self, src: SourceFile, bad: int, rid: str = "v.rid") -> str:
        if src.kind == "parquet":
            return rid
        if not bad:
            return f"{rid} + 1"
        return f"{rid} + 1 + (SELECT count(*) FROM _imp_bad_{src.role} b WHERE b.c < {rid})"

    def _raw_expr(self, src: SourceFile) -> str:
        cols = ", ".join(f"coalesce(s.c{i}, '')" for i in range(len(src.columns)))
        delim = "$delim" if src.kind != "parquet" else "','"
        return f"left(concat_ws({delim}, {cols}), {_RAW_MAX})"

    def _stage(self, sql: str, src: SourceFile, rid: bool = True) -> None:
        """Run a staging ``sql`` whose ``{reader}`` reads ``src`` (with a ``rid`` column if
        ``rid``).

        A CSV is read first with ``fail_fast`` (most files are clean, and keeping rejects
        costs a third of the read); a malformed line makes that read fail, and the file is
        read again keeping each bad line with its reason.
        """
        params = self._file_params(src)
        if src.kind != "parquet":
            try:
                reader = src.reader_sql(rid=rid, fail_fast=True)
                _run(self.con, sql.replace("{reader}", reader), params)
                self.clean.add(src.role)
                return
            except duckdb.Error:
                pass  # read again below, keeping the malformed lines
        _run(self.con, sql.replace("{reader}", src.reader_sql(rid=rid)), params)

    def _finish_stage(self, table: str, src: SourceFile) -> None:
        bad = self._malformed(src)
        n = self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
        if n == 0 and bad == 0:
            raise BadInputError(
                f"{src.label}: has a header but no data rows",
                hint="export the data again; only the column names are in the file",
            )
        self.report.rows_read_by_file[src.role] = n + bad
        self.stages.append((table, src))
        self.bad[src.role] = bad

    # -- events

    def stage_events(self, b: _Bound) -> None:
        src, p = b.src, self.preset
        self.say(f"reading {src.label}", 0.05)
        user, item = b.expr("user_id"), b.expr("item_id")
        ts_raw = b.expr("ts")
        mapped_event = "event_type" in b.cols and (
            p.event_type is None or "event_type" in b.mapping
        )
        if p.event_type is not None and not mapped_event:
            et_raw, et = f"'{p.event_type}'", f"'{p.event_type}'"  # preset constant, not input
        else:
            et_raw = b.expr("event_type") or "CAST(NULL AS VARCHAR)"
            # exact spellings first: lower(trim()) on every row cost a tenth of the import
            exact = " ".join(
                f"WHEN '{_sql_str(k)}' THEN '{v}'" for k, v in EVENT_ALIASES.items() if k.islower()
            )
            et = f"CASE {et_raw} {exact} ELSE {_ALIAS_MAP}[lower(trim({et_raw}))] END"
        assert user and item and ts_raw  # required keys, checked by _bind
        ts = self._ts(src, b, "ts", ts_raw)
        null = "CAST(NULL AS VARCHAR)"
        qty, price = b.expr("quantity") or null, b.expr("price") or null
        sess, source = b.expr("session_id") or null, b.expr("source") or null
        extras = [
            (reason, _render(cond, b.cols)) for reason, cond in p.rejects if _keys_bound(cond, b)
        ]
        purchase = _render(p.also_purchase, b.cols) if p.also_purchase else "false"
        item_fields = {f: _render(t, b.cols) for f, t in p.event_items.items() if _keys_bound(t, b)}
        user_fields = {f: _render(t, b.cols) for f, t in p.event_users.items() if _keys_bound(t, b)}
        derived = "".join(f", nullif({e}, '') AS it_{f}" for f, e in item_fields.items())
        derived += "".join(f", nullif({e}, '') AS us_{f}" for f, e in user_fields.items())
        extra_cols = "".join(f", coalesce({c}, false) AS x{i}" for i, (_, c) in enumerate(extras))
        self.event_items, self.event_users = list(item_fields), list(user_fields)

        inner = f"""
            SELECT s.*, {_id(user)} AS user_id, {_id(item)} AS item_id,
                {et_raw} AS et_raw, {et} AS event_type,
                {ts_raw} AS ts_raw, {ts} AS ts,
                nullif({_strip(sess)}, '') AS session_id,
                nullif({_strip(qty)}, '') AS q_raw, TRY_CAST({_strip(qty)} AS DOUBLE) AS qd,
                nullif({_strip(price)}, '') AS p_raw,
                TRY_CAST({_strip(price)} AS DOUBLE) AS pd,
                nullif({_strip(source)}, '') AS source,
                coalesce({purchase}, false) AS purchase
                {extra_cols}{derived}
            FROM {{reader}} s
        """
        checks = [
            ("user_id IS NULL", f"'{_sql_str(p.missing_user_reason)}'"),
            ("item_id IS NULL", "'missing item_id'"),
        ]
        checks += [(f"x{i}", f"'{_sql_str(reason)}'") for i, (reason, _) in enumerate(extras)]
        checks += [
            # nested, so the raw text is trimmed only on the rows that failed to parse
            (
                "event_type IS NULL",
                "CASE WHEN nullif(trim(et_raw), '') IS NULL THEN 'missing event type' "
                "ELSE 'unknown event type ''' || left(trim(et_raw), 40) || '''' END",
            ),
            (
                "ts IS NULL",
                "CASE WHEN nullif(trim(ts_raw), '') IS NULL THEN 'missing timestamp' "
                "ELSE 'unparseable timestamp' END",
            ),
            ("ts < $min_ts OR ts > $max_ts", "'timestamp out of range'"),
            ("q_raw IS NOT NULL AND (qd IS NULL OR NOT isfinite(qd))", "'unparseable quantity'"),
            ("q_raw IS NOT NULL AND qd <= 0", "'non-positive quantity'"),
            ("q_raw IS NOT NULL AND qd <> floor(qd)", "'non-integer quantity'"),
            ("q_raw IS NOT NULL AND qd > 2147483647", "'quantity too large'"),
            ("p_raw IS NOT NULL AND pd IS NULL", "'unparseable price'"),
            ("isnan(pd)", "'NaN price'"),
            ("isinf(pd)", "'infinite price'"),
            ("pd < 0", "'negative price'"),
        ]
        reason = "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r in checks) + " END"
        derived_out = "".join(f", it_{f}" for f in item_fields) + "".join(
            f", us_{f}" for f in user_fields
        )
        # No rid column: row_number() OVER () made the whole read one sequential pipeline
        # (40% of staging). The CTAS keeps read order (preserve_insertion_order, set by
        # import_dataset), so the record number is rowid + 1 (:func:`_ev_rid`).
        sql = f"""
            CREATE TEMP TABLE _imp_ev AS
            SELECT user_id, item_id, event_type, ts, session_id,
                CASE WHEN reason IS NULL THEN CAST(qd AS INTEGER) END AS quantity,
                pd AS price, source, purchase{derived_out}, reason,
                CASE WHEN reason IS NOT NULL THEN {self._raw_expr(src)} END AS raw
            FROM (SELECT *, {reason} AS reason FROM ({inner}) p) s
        """
        self._stage(sql, src, rid=False)
        self._finish_stage("_imp_ev", src)
        self._mark_duplicates(src)

    def _mark_duplicates(self, src: SourceFile) -> None:
        """Exact duplicate events within the file: all but the first are rejects.

        A hash count first (cheap); the window that finds which rows repeat runs only when the
        counts differ (a hash collision just costs that exact check).
        """
        cols = "user_id, item_id, event_type, ts, session_id, quantity, price, source"
        n, distinct = self.con.execute(
            f"SELECT count(*), count(DISTINCT hash({cols})) FROM _imp_ev WHERE reason IS NULL"
        ).fetchone()
        if n == distinct:
            return
        self.con.execute(f"""
            UPDATE _imp_ev SET reason = 'duplicate row' WHERE rowid IN (
                SELECT r FROM (
                    SELECT rowid AS r, row_number() OVER (PARTITION BY {cols} ORDER BY rowid) AS k
                    FROM _imp_ev WHERE reason IS NULL
                ) WHERE k > 1)
        """)
        raw_sql = f"""
            UPDATE _imp_ev SET raw = r.raw
            FROM (SELECT s.rid, {self._raw_expr(src)} AS raw
                  FROM {src.reader_sql(store_rejects=False)} s) r
            WHERE {_ev_rid()} = r.rid AND _imp_ev.reason = 'duplicate row'
        """
        _run(self.con, raw_sql, self._file_params(src))

    # -- items and users files

    def stage_entities(self, b: _Bound, kind: str) -> None:
        """Stage an items or users file into ``_imp_items`` / ``_imp_users``."""
        src = b.src
        self.say(f"reading {src.label}", 0.5 if kind == "items" else 0.6)
        key = "item_id" if kind == "items" else "user_id"
        core = ITEM_COLUMNS if kind == "items" else {"user_id": "VARCHAR"}
        exprs: dict[str, str] = {}
        checks: list[tuple[str, str]] = [(f"{key} IS NULL", f"'missing {key}'")]
        used = {i for k, i in b.cols.items() if k in core}
        for fieldname, ftype in core.items():
            e = b.expr(fieldname)
            if e is None:
                continue
            if fieldname == key:
                exprs[fieldname] = _id(e)
            elif ftype == "DOUBLE":
                exprs[fieldname] = f"TRY_CAST(trim({e}) AS DOUBLE)"
                checks += [
                    (
                        f"nullif(trim({e}), '') IS NOT NULL AND {fieldname} IS NULL",
                        f"'unparseable {fieldname}'",
                    ),
                    (f"isnan({fieldname}) OR isinf({fieldname})", f"'NaN {fieldname}'"),
                    (f"{fieldname} < 0", f"'negative {fieldname}'"),
                ]
            elif ftype == "BOOLEAN":
                exprs[fieldname] = (
                    f"CASE WHEN lower(trim({e})) IN ('true','t','yes','y','1','in stock') THEN true"
                    f" WHEN lower(trim({e})) IN ('false','f','no','n','0','out of stock') THEN "
                    "false END"
                )
                checks.append(
                    (
                        f"nullif(trim({e}), '') IS NOT NULL AND {fieldname} IS NULL",
                        f"'unparseable {fieldname}'",
                    )
                )
            elif ftype == "TIMESTAMP":
                exprs[fieldname] = self._ts(src, b, fieldname, e)
                checks.append(
                    (
                        f"nullif(trim({e}), '') IS NOT NULL AND {fieldname} IS NULL",
                        f"'unparseable {fieldname}'",
                    )
                )
            else:
                exprs[fieldname] = f"nullif({e}, '')"  # text is stored as given
        attrs = self._attributes(src, kind, used)
        sel = ", ".join(f"{e} AS {f}" for f, e in exprs.items())
        attr_sel = "".join(f", {e} AS a{i}" for i, (_, _, e) in enumerate(attrs))
        attr_out = "".join(f", a{i}" for i in range(len(attrs)))
        reason = "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r in checks) + " END"
        table = f"_imp_{kind}"
        # later rows with an id already seen are rejects; the first valid row wins
        sql = f"""
            CREATE TEMP TABLE {table} AS
            SELECT rid, {", ".join(exprs)}{attr_out}, raw,
                CASE WHEN reason IS NULL AND row_number() OVER (
                    PARTITION BY {key}, reason IS NULL ORDER BY rid) > 1
                THEN 'duplicate {key}' ELSE reason END AS reason
            FROM (
                SELECT *, {reason} AS reason FROM (
                    SELECT s.*, {sel}{attr_sel}, {self._raw_expr(src)} AS raw
                    FROM {{reader}} s
                ) s
            )
        """
        self._stage(sql, src)
        self._finish_stage(table, src)
        self.fields[kind] = (list(exprs), attrs)

    def _attributes(self, src: SourceFile, kind: str, used: set[int]) -> list[tuple[str, str, str]]:
        """Extra columns of an items/users file: (store column, type, SQL) each.

        Typed BIGINT or DOUBLE only when every non-empty value casts and none has a leading
        zero (zip codes, SKUs stay text); otherwise VARCHAR, stored as given.
        """
        extra = [i for i in range(len(src.columns)) if i not in used]
        if not extra:
            return []
        probes = ", ".join(
            f"count(nullif(trim(c{i}), '')), "
            # TRY_CAST('35.5' AS BIGINT) rounds to 36: integers are matched, not cast
            f"count(CASE WHEN regexp_full_match(trim(c{i}), '[+-]?[0-9]{{1,18}}') THEN 1 END), "
            f"count(CASE WHEN isfinite(TRY_CAST(trim(c{i}) AS DOUBLE)) THEN 1 END), "
            f"count(CASE WHEN regexp_matches(trim(c{i}), '^[+-]?0[0-9]') THEN 1 END)"
            for i in extra
        )
        row = _run(
            self.con,
            f"SELECT {probes} FROM {src.reader_sql(rid=False, store_rejects=False)}",
            self._file_params(src),
        ).fetchone()
        core = set(ITEM_COLUMNS if kind == "items" else {"user_id"})
        taken = set(core)
        out: list[tuple[str, str, str]] = []
        for j, i in enumerate(extra):
            n, n_int, n_num, n_zero = row[4 * j : 4 * j + 4]
            name = safe_column_name(src.columns[i])
            base, k = name, 2
            while name in taken:
                name, k = f"{base}_{k}"[:63], k + 1
            taken.add(name)
            if n and n_zero == 0 and n_int == n:
                typ, e = "BIGINT", f"TRY_CAST(trim(s.c{i}) AS BIGINT)"
            elif n and n_zero == 0 and n_num == n:
                typ, e = "DOUBLE", f"TRY_CAST(trim(s.c{i}) AS DOUBLE)"
            else:
                typ, e = "VARCHAR", f"nullif(s.c{i}, '')"
            out.append((name, typ, e))
        self.report.attributes[kind] = [n for n, _, _ in out]
        return out

    # -- checks and writes

    def tally(self) -> None:
        """Rejects by reason and a sample of rejected rows, into the report."""
        parts, samples = [], []
        for table, src in self.stages:
            rid = _ev_rid("v") if table == "_imp_ev" else "v.rid"
            line = self._line_expr(src, self.bad[src.role], rid)
            parts.append(
                f"SELECT '{src.role}' AS role, {line} AS line, reason, raw "
                f"FROM {table} v WHERE reason IS NOT NULL"
            )
            parts.append(f"SELECT '{src.role}' AS role, line, reason, raw FROM _imp_bad_{src.role}")
        self.con.execute("CREATE TEMP TABLE _imp_rej AS " + " UNION ALL ".join(parts))
        counts = self.con.execute(
            "SELECT reason, count(*) AS n FROM _imp_rej GROUP BY reason ORDER BY n DESC, reason"
        ).fetchall()
        self.report.rejects_by_reason = {r: n for r, n in counts}
        labels = {src.role: src.label for _, src in self.stages}
        for role, line, reason, raw in self.con.execute(
            "SELECT role, line, reason, raw FROM _imp_rej "
            "QUALIFY row_number() OVER (PARTITION BY reason ORDER BY role, line) <= 3 "
            "ORDER BY role, line LIMIT $n",
            {"n": self.cfg.sample_rejects},
        ).fetchall():
            samples.append(
                {"file": labels[role], "line": line, "reason": reason, "raw": (raw or "")[:300]}
            )
        self.report.sample_rejects = samples

    def write(self, entities: dict[str, _Bound]) -> None:
        con, rep = self.con, self.report
        self.say("writing", 0.7)
        before = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("items", "users")
        }  # noqa: S608
        ev_cols = ", ".join(EVENT_COLUMNS)
        n_ev = con.execute(
            f"INSERT INTO events ({ev_cols}) SELECT {ev_cols} FROM _imp_ev WHERE reason IS NULL"
        ).fetchone()[0]
        if self.preset.also_purchase:
            sel = ev_cols.replace("event_type", "'purchase'")
            n_ev += con.execute(
                f"INSERT INTO events ({ev_cols}) SELECT {sel} FROM _imp_ev "
                "WHERE reason IS NULL AND purchase"
            ).fetchone()[0]
        rep.rows_loaded["events"] = n_ev
        # fields taken from the events file (order lines: description -> title, country)
        self._upsert_derived("items", "item_id", self.event_items, "it_", "arg_min", "rowid")
        self._upsert_derived("users", "user_id", self.event_users, "us_", "arg_max", "ts")
        for kind, key in (("items", "item_id"), ("users", "user_id")):
            ids = []
            if kind in entities:
                self._upsert_file(kind, key)
                ids.append(f"SELECT {key} FROM _imp_{kind} WHERE reason IS NULL")
            if self.event_items if kind == "items" else self.event_users:
                ids.append(f"SELECT {key} FROM _imp_ev WHERE reason IS NULL")
            union = " UNION ALL ".join(ids)
            touched = (
                con.execute(f"SELECT count(DISTINCT k) FROM ({union}) t(k)").fetchone()[0]
                if ids
                else 0
            )
            # a referenced item or user always has a row (title / segments NULL)
            # only ids not there yet (the primary-key index insert dominates at 1M new users)
            added = con.execute(
                f"INSERT INTO {kind} ({key}) SELECT DISTINCT e.{key} FROM _imp_ev e "
                f"WHERE e.reason IS NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {kind} t WHERE t.{key} = e.{key})"
            ).fetchone()[0]
            rep.rows_loaded[kind] = touched + added
            after = con.execute(f"SELECT count(*) FROM {kind}").fetchone()[0]  # noqa: S608
            rep.new_rows[kind] = after - before[kind]
        labels = {src.role: src.label for _, src in self.stages}
        for role, label in labels.items():
            self.q(
                "INSERT INTO rejects SELECT $import_id, $label, line, reason, raw "
                "FROM _imp_rej WHERE role = $role",
                {"label": label, "role": role},
            )
        rep.rows_loaded["rejects"] = rep.rejected
        rep.new_rows["events"] = n_ev

    def _upsert_derived(
        self, kind: str, key: str, fields: list[str], prefix: str, agg: str, order: str
    ) -> None:
        if not fields:
            return
        for f in fields:
            if f not in (ITEM_COLUMNS if kind == "items" else {"user_id"}):
                self._add_column(kind, f, "VARCHAR")
        sel = ", ".join(
            f"{agg}({prefix}{f}, {order}) FILTER (WHERE {prefix}{f} IS NOT NULL) "
            f"AS {quote_ident(f)}"
            for f in fields
        )
        self.con.execute(
            f"CREATE TEMP TABLE _imp_{kind}_derived AS SELECT {key}, {sel} FROM _imp_ev "
            f"WHERE reason IS NULL GROUP BY {key}"
        )
        self._merge(kind, key, f"_imp_{kind}_derived", fields, [quote_ident(f) for f in fields])
        if kind == "users":
            self.report.attributes.setdefault("users", []).extend(
                f for f in fields if f != "user_id"
            )

    def _add_column(self, table: str, name: str, typ: str) -> str:
        """Add an attribute column, or widen an existing one to VARCHAR when types differ.
        Returns the type to cast new values to."""
        have = dict(
            self.con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE table_name = $t AND NOT internal AND database_name = current_database()",
                {"t": table},
            ).fetchall()
        )
        if name not in have:
            self.con.execute(f"ALTER TABLE {table} ADD COLUMN {quote_ident(name)} {typ}")
            return typ
        if have[name] == typ:
            return typ
        if have[name] != "VARCHAR":
            self.con.execute(f"ALTER TABLE {table} ALTER COLUMN {quote_ident(name)} TYPE VARCHAR")
        return "VARCHAR"

    def _upsert_file(self, kind: str, key: str) -> None:
        fields, attrs = self.fields[kind]
        cols = list(fields)
        sel = list(fields)
        for i, (name, typ, _) in enumerate(attrs):
            cast = self._add_column(kind, name, typ)
            cols.append(name)
            sel.append(f"CAST(a{i} AS {cast})")
        self._merge(
            kind, key, f"(SELECT * FROM _imp_{kind} WHERE reason IS NULL)", cols, sel, "rid"
        )

    def _merge(
        self, kind: str, key: str, source: str, cols: list[str], sel: list[str], order: str = ""
    ) -> None:
        """Upsert ``source`` (a table expression with unique keys) into ``kind``: ``sel[i]``
        (SQL over ``source``) feeds ``cols[i]``; a new non-NULL value replaces the stored one,
        NULL keeps it; ids not there yet are inserted (in ``order``).

        An UPDATE plus an anti-join INSERT instead of ``ON CONFLICT``: the tables have no
        primary key to conflict on (see ``schema._DDL``)."""
        pairs = [(quote_ident(c), e) for c, e in zip(cols, sel, strict=True) if c != key]
        proj = "".join(f", {e} AS {c}" for c, e in pairs)
        if pairs and self.con.execute(f"SELECT count(*) > 0 FROM {kind}").fetchone()[0]:
            sets = ", ".join(f"{c} = coalesce(s.{c}, {kind}.{c})" for c, _ in pairs)
            self.con.execute(
                f"UPDATE {kind} SET {sets} FROM (SELECT {key}{proj} FROM {source} s) s "
                f"WHERE {kind}.{key} = s.{key}"
            )
        ident = ", ".join([key] + [c for c, _ in pairs])
        keep = f", {order}" if order else ""
        self.con.execute(
            f"INSERT INTO {kind} ({ident}) SELECT {ident} FROM "
            f"(SELECT {key}{proj}{keep} FROM {source} s) s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {kind} t WHERE t.{key} = s.{key})"
            + (f" ORDER BY {order}" if order else "")
        )


_WITHHELD = "(withheld: user ids are pseudonymised)"


def _check_privacy(
    name: str, data_dir: Path | str | None, replace: bool, key: bytes | None
) -> None:
    """Refuse appending raw ids to a pseudonymised dataset, or the reverse (or another key)."""
    if replace or not dataset_path(name, data_dir).is_file():
        return
    con = connect(name, data_dir)
    try:
        meta = read_meta(con)
        has_events = con.execute("SELECT count(*) > 0 FROM events").fetchone()[0]
    finally:
        con.close()
    privacy.check_compatible(meta, bool(has_events), key)


def _keys_bound(template: str, b: _Bound) -> bool:
    keys = re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", template)
    return all(k in b.cols for k in keys)


def import_dataset(
    name: str,
    events: Path | str,
    items: Path | str | None = None,
    users: Path | str | None = None,
    preset: str | None = None,
    mapping: dict[str, str] | None = None,
    replace: bool = False,
    max_reject_share: float = 0.05,
    dry_run: bool = False,
    data_dir: Path | str | None = None,
    *,
    config: ImportConfig | None = None,
    labels: dict[str, str] | None = None,
    progress: Progress | None = None,
    pseudonymize: bool = False,
    hmac_key: str | bytes | None = None,
) -> ImportReport:
    """Import files into dataset ``name``; all or nothing.

    Args:
        name: dataset name (created if missing).
        events: events / order lines / ratings / transactions file (CSV, CSV.gz or Parquet).
        items, users: optional catalogue and segments files.
        preset: column layout (``canonical``, ``events``, ``orders``, ``ratings``,
            ``completejourney``); guessed from the events header when None.
        mapping: ``{field: column}`` overrides (``items.title``/``users.region`` target one file).
        replace: rebuild the dataset instead of appending events and upserting items/users.
        max_reject_share: the largest share of rejected rows (all files together) that still
            imports; above it :class:`TooManyRejectsError` and nothing changes.
        dry_run: validate and report, write nothing (runs in a private in-memory database).
        config: read and validation knobs.
        labels: display names per role (``{"events": "upload.csv"}``) for uploads saved to a
            temporary path; they are what ``rejects.source_file`` records.
        progress: ``callback(message, fraction or None)``.
        pseudonymize: replace user ids by their keyed HMAC (:mod:`ltrec.store.privacy`)
            before anything is stored; rejected rows keep their reason but not their raw text.
        hmac_key: the key (else ``$LTREC_HMAC_KEY``); never stored or logged.

    Raises:
        BadInputError: a whole-file problem (empty, header only, wrong delimiter, invalid
            UTF-8, not Parquet, gzip bomb), with subclasses :class:`ColumnNotFoundError` and
            :class:`TooManyRejectsError` (its ``report`` attribute holds the full report).
    """
    start = time.perf_counter()
    check_name(name)
    cfg = config or ImportConfig()
    if not 0.0 <= max_reject_share <= 1.0:
        raise BadInputError(f"--max-reject-share must be between 0 and 1, got {max_reject_share}")
    labels = labels or {}
    key = privacy.resolve_key(hmac_key) if pseudonymize else None
    _check_privacy(name, data_dir, replace, key)
    paths = {"events": events, "items": items, "users": users}
    srcs = {
        role: sniff(p, role, cfg.read, labels.get(role))
        for role, p in paths.items()
        if p is not None
    }
    guessed = preset is None
    if preset is None:
        preset, _ = guess_mapping(srcs["events"].columns)
    p = get_preset(preset)
    routed = _split_mapping(dict(mapping or {}), p)
    layouts = {"events": p.events, "items": p.items, "users": p.users}
    bound = {role: _bind(src, layouts[role], *routed[role]) for role, src in srcs.items()}
    report = ImportReport(
        dataset=name,
        preset=p.name,
        preset_guessed=guessed,
        dry_run=dry_run,
        import_id=uuid.uuid4().hex,
        max_reject_share=max_reject_share,
        pseudonymized=key is not None,
        files={r: s.label for r, s in srcs.items()},
        formats={r: s.kind for r, s in srcs.items()},
        mapping={
            (k if r == "events" else f"{r}.{k}"): c
            for r, b in bound.items()
            for k, c in b.mapping.items()
        },
    )
    ev = bound["events"]
    used = set(ev.cols.values())
    report.dropped_columns = {
        "events": [c for i, c in enumerate(srcs["events"].columns) if i not in used]
    }

    def body(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("SET TimeZone = 'UTC'")
        # staged events' record numbers are their rowids (stage_events): keep read order
        con.execute("SET preserve_insertion_order = true")
        imp = _Importer(con, report, cfg, p, progress)
        imp.stage_events(ev)
        for kind in ("items", "users"):
            if kind in bound:
                imp.stage_entities(bound[kind], kind)
        if key is not None:
            imp.say("pseudonymising user ids", 0.65)
            staged = [("_imp_ev", "user_id")] + ([("_imp_users", "user_id")] * ("users" in bound))
            privacy.pseudonymize_columns(con, key, staged)
        imp.tally()
        if key is not None:
            # a rejected line's raw text holds the raw user id: keep only file, line, reason
            con.execute("UPDATE _imp_rej SET raw = NULL").fetchall()
            for sample in report.sample_rejects:
                sample["raw"] = _WITHHELD
        if report.reject_share > max_reject_share:
            report.seconds = time.perf_counter() - start
            raise TooManyRejectsError(
                report.reject_summary(), report.reject_share, max_reject_share, report
            )
        imp.write({k: v for k, v in bound.items() if k != "events"})
        if not dry_run:
            write_meta(
                con,
                {
                    "source_preset": p.name,
                    "repeat_domain": str(p.repeat_domain).lower(),
                    "source_files": json.dumps(report.files),
                    "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "last_import_id": report.import_id,
                    **(
                        {
                            privacy.META_FLAG: privacy.METHOD,
                            privacy.META_CHECK: privacy.key_check(key),
                        }
                        if key is not None
                        else {}
                    ),
                    # as it will read once this write is swapped in
                    "last_import": json.dumps(
                        {
                            **{k: v for k, v in report.to_dict().items() if k != "sample_rejects"},
                            "committed": True,
                        },
                        default=str,
                    ),
                },
            )
            imp.say("finalizing", 0.95)
            finalize(con)
        for table in [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() "
                "WHERE temporary AND starts_with(table_name, '_imp_')"
            ).fetchall()
        ]:
            con.execute(f"DROP TABLE {quote_ident(table)}")

    try:
        if dry_run:
            con = duckdb.connect()
            try:
                create_schema(con)
                body(con)
            finally:
                con.close()
        else:
            with writing(name, data_dir, replace=replace) as con:
                body(con)
            report.committed = True
    except duckdb.Error as exc:
        msg = str(exc).splitlines()[0][:300]
        raise BadInputError(
            f"the input could not be read: {msg}",
            hint="check the file's format (CSV with a header, UTF-8, or Parquet)",
        ) from exc
    report.seconds = time.perf_counter() - start
    return report


#: The preset names, for UIs.
PRESET_NAMES = tuple(PRESETS)
