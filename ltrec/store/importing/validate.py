"""Validate every row in SQL: cast, check and give each bad row a reason.

DuckDB reads a file with every column VARCHAR (:mod:`.read`); one SQL pass per file
(:class:`Stager`) casts with ``TRY_CAST``/``TRY_STRPTIME`` into a temporary staging table and
gives every bad row a reason. Timestamps are detected per file (unix s/ms/us, ISO 8601, common
day/month layouts). :meth:`Stager.tally` gathers the rejects of all files into ``_imp_rej``.
"""

# SQL here is assembled from this package's own fragments: file column names never enter CSV
# SQL (columns are c0..cN), Parquet names and attribute names go through quote_ident, and every
# value from a file or a user is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from ltrec.errors import BadInputError
from ltrec.ids import CONTROL_ID, id_sql
from ltrec.progress import Progress
from ltrec.store.connect import one_row, scalar
from ltrec.store.importing.codes import RejectCode
from ltrec.store.importing.map import (
    DROP,
    Bound,
    event_type_expr,
    keys_bound,
    render,
    sql_str,
)
from ltrec.store.importing.presets import Preset
from ltrec.store.importing.read import SourceFile
from ltrec.store.importing.report import ImportConfig, ImportReport
from ltrec.store.schema import ITEM_COLUMNS, safe_column_name

#: Lower bound of a plausible event time; anything earlier is "timestamp out of range".
MIN_TS = datetime(1990, 1, 1)
_RAW_MAX = 2000


# ----------------------------------------------------------------------------- SQL helpers


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None):
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


def _plain_checks(*checks: tuple[str, RejectCode, str]) -> list[tuple[str, str, str]]:
    """(condition, code, reason text) -> (condition, code SQL, reason SQL)."""
    return [(cond, code.sql(), f"'{sql_str(reason)}'") for cond, code, reason in checks]


def _id_checks(column: str, missing: RejectCode, missing_reason: str) -> list[tuple[str, str, str]]:
    """The checks of an id column: present, and free of control characters (:func:`id_sql`)."""
    return _plain_checks(
        (f"{column} IS NULL", missing, missing_reason),
        (
            f"{column} = {CONTROL_ID}",
            RejectCode.CONTROL_CHARACTER_IN_ID,
            f"control character in {column}",
        ),
    )


def _verdict(checks: list[tuple[str, str, str]]) -> tuple[str, str]:
    """SQL for the reason and the code of the first check whose condition holds (else NULL).
    The code is evaluated only where the reason is not NULL (see the staging queries)."""
    reason = "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, _, r in checks) + " END"
    code = "CASE " + " ".join(f"WHEN {c} THEN {k}" for c, k, _ in checks) + " END"
    return reason, code


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


def ts_expr(fmt: str, raw: str, param: str) -> str:
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
        "iso": scalar(con.execute("SELECT count(TRY_CAST(v AS TIMESTAMPTZ)) FROM _imp_tsamp"))
    }
    for fmt in _STRPTIME_FORMATS:
        counts[fmt] = scalar(
            con.execute("SELECT count(TRY_STRPTIME(v, $f)) FROM _imp_tsamp", {"f": fmt})
        )
    con.execute("DROP TABLE _imp_tsamp")
    return max(counts, key=lambda k: counts[k])  # first of the maxima: dict order


# ------------------------------------------------------------------------ staging


def ev_rid(alias: str = "_imp_ev") -> str:
    """The record number (1-based, in file order) of a staged event row; see stage_events."""
    return f"({alias}.rowid + 1)"


class Stager:
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
        self.event_map = report.event_map  # resolved by import_dataset
        self.types: dict[str, list[str]] = {}  # role -> Parquet column types

    def say(self, msg: str, frac: float) -> None:
        if self.progress is not None:
            self.progress(frac, msg)

    def q(self, sql: str, extra: dict[str, Any] | None = None):
        return run_sql(self.con, sql, {**self.params, **(extra or {})})

    # -- shared per-file steps

    def _file_params(self, src: SourceFile) -> dict[str, Any]:
        return {**self.params, **src.params()}

    def _sample(self, src: SourceFile, expr: str) -> list[str]:
        reader = src.reader_sql(rid=False, store_rejects=False, head=True)
        sql = (
            f"SELECT {expr} AS v FROM {reader} s "
            f"WHERE nullif(trim({expr}), '') IS NOT NULL LIMIT {int(self.cfg.ts_sample)}"
        )
        return [r[0] for r in run_sql(self.con, sql, self._file_params(src)).fetchall()]

    def _id_text(self, b: Bound, fieldname: str) -> str | None:
        """SQL for the text of an id field as the file holds it (before :func:`id_sql`).

        CSV values are text already (every column is read as VARCHAR, never inferred). A Parquet
        column is cast to text by the reader: integers and strings render as written, but a
        float or decimal column (an id column with blanks exported from pandas is float) renders
        ``17850.0``; there an integral value drops its zero fraction, so the id is ``17850``.
        """
        e = b.expr(fieldname)
        idx = b.cols.get(fieldname)
        if e is None or idx is None or fieldname in b.exprs or b.src.kind != "parquet":
            return e
        if self._parquet_types(b.src)[idx].startswith(("FLOAT", "DOUBLE", "DECIMAL")):
            return f"regexp_replace({e}, '^(-?[0-9]+)\\.0+$', '\\1')"
        return e

    def _parquet_types(self, src: SourceFile) -> list[str]:
        if src.role not in self.types:
            rows = run_sql(
                self.con, "DESCRIBE SELECT * FROM read_parquet($path)", src.params()
            ).fetchall()
            self.types[src.role] = [str(r[1]) for r in rows]
        return self.types[src.role]

    def _ts(self, src: SourceFile, bound: Bound, fieldname: str, raw: str) -> str:
        """Detect the timestamp format of ``fieldname`` in this file; SQL for the cast."""
        fmt = _detect_ts(self.con, self._sample(src, raw))
        param = f"tsfmt_{src.role}_{fieldname}"
        self.params[param] = fmt
        self.report.ts_formats[f"{src.role}.{fieldname}"] = fmt
        return ts_expr(fmt, _strip(raw), param)

    def _malformed(self, src: SourceFile) -> int:
        """Lines DuckDB could not parse -> ``_imp_bad_<role>``; invalid UTF-8 stops the import.

        ``c`` is the number of good records before each bad line, used to turn a record
        number back into a file line (exact when no value spans several lines).
        """
        table = f"_imp_bad_{src.role}"
        self.con.execute(
            f"CREATE TEMP TABLE {table} "
            "(line BIGINT, c BIGINT, code VARCHAR, reason VARCHAR, raw VARCHAR)"
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
                    hint="pass --encoding latin-1 if the file is Latin-1, or save it as UTF-8 "
                    "(in Excel: 'CSV UTF-8') and import again",
                )
        reasons = {
            "MISSING COLUMNS": "malformed row (too few columns)",
            "TOO MANY COLUMNS": "malformed row (too many columns)",
            "UNQUOTED VALUE": "malformed row (unterminated or stray quote)",
            "LINE SIZE OVER MAXIMUM": "malformed row (line too long)",
        }
        self.con.executemany(
            f"INSERT INTO {table} VALUES (?, ? - ?, {RejectCode.MALFORMED_ROW.sql()}, ?, ?)",
            [
                (
                    line,
                    line,
                    i + 1 + src.header_lines,  # c = line - (bad lines up to here) - header
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
            return f"{rid} + {src.header_lines}"
        return (
            f"{rid} + {src.header_lines} + "
            f"(SELECT count(*) FROM _imp_bad_{src.role} b WHERE b.c < {rid})"
        )

    def _raw_expr(self, src: SourceFile) -> str:
        # every column adds at least its delimiter, so past the first _RAW_MAX + 1 columns
        # nothing reaches the kept text: the same text, without reading a wide file's tail
        n = min(len(src.columns), _RAW_MAX + 1)
        cols = ", ".join(f"coalesce(s.c{i}, '')" for i in range(n))
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
                run_sql(self.con, sql.replace("{reader}", reader), params)
                self.clean.add(src.role)
                return
            except duckdb.Error:
                pass  # read again below, keeping the malformed lines
        run_sql(self.con, sql.replace("{reader}", src.reader_sql(rid=rid)), params)

    def _finish_stage(self, table: str, src: SourceFile) -> None:
        bad = self._malformed(src)
        n = scalar(self.con.execute(f"SELECT count(*) FROM {table}"))  # noqa: S608
        if n == 0 and bad == 0:
            raise BadInputError(
                f"{src.label}: has a header but no data rows",
                hint="export the data again; only the column names are in the file",
            )
        self.report.rows_read_by_file[src.role] = n + bad
        self.stages.append((table, src))
        self.bad[src.role] = bad

    # -- events

    def stage_events(self, b: Bound) -> None:
        src, p = b.src, self.preset
        self.say(f"reading {src.label}", 0.05)
        user, item = self._id_text(b, "user_id"), self._id_text(b, "item_id")
        ts_raw = b.expr("ts")
        mapped_event = "event_type" in b.cols and (
            p.event_type is None or "event_type" in b.mapping
        )
        if p.event_type is not None and not mapped_event:
            if self.cfg.event_map:  # would be a silent no-op
                raise BadInputError(
                    f"--event-map: the {p.name} preset reads no event column (every row is a "
                    f"{p.event_type})",
                    hint="leave out --event-map, or --map event_type=COLUMN to read one",
                )
            et_raw, et = f"'{p.event_type}'", f"'{p.event_type}'"  # preset constant, not input
        else:
            et_raw = b.expr("event_type") or "CAST(NULL AS VARCHAR)"
            et, et_params = event_type_expr(et_raw, self.event_map)
            self.params.update(et_params)
        assert user and item and ts_raw  # required keys, checked by _bind
        ts = self._ts(src, b, "ts", ts_raw)
        null = "CAST(NULL AS VARCHAR)"
        qty, price = b.expr("quantity") or null, b.expr("price") or null
        sess, source = b.expr("session_id") or null, b.expr("source") or null
        extras = [
            (code, reason, render(cond, b.cols))
            for code, reason, cond in p.rejects
            if keys_bound(cond, b)
        ]
        purchase = render(p.also_purchase, b.cols) if p.also_purchase else "false"
        item_fields = {f: render(t, b.cols) for f, t in p.event_items.items() if keys_bound(t, b)}
        user_fields = {f: render(t, b.cols) for f, t in p.event_users.items() if keys_bound(t, b)}
        derived = "".join(f", nullif({e}, '') AS it_{f}" for f, e in item_fields.items())
        derived += "".join(f", nullif({e}, '') AS us_{f}" for f, e in user_fields.items())
        extra_cols = "".join(f", coalesce({c}, false) AS x{i}" for i, (*_, c) in enumerate(extras))
        self.event_items, self.event_users = list(item_fields), list(user_fields)

        inner = f"""
            SELECT s.*, {id_sql(user)} AS user_id, {id_sql(item)} AS item_id,
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
        C = RejectCode
        # (condition, code, reason): the first condition that holds decides
        checks: list[tuple[str, str, str]] = [
            # rows the user asked to leave out (--event-map VALUE=drop), whatever else they hold
            (f"event_type = '{DROP}'", C.DROPPED_EVENT_TYPE.sql(), "'dropped by --event-map'"),
            *_id_checks("user_id", p.missing_user_code, p.missing_user_reason),
            *_id_checks("item_id", C.MISSING_ITEM_ID, "missing item_id"),
        ]
        checks += [
            (f"x{i}", RejectCode(code).sql(), f"'{sql_str(reason)}'")
            for i, (code, reason, _) in enumerate(extras)
        ]
        checks += [
            # nested, so the raw text is trimmed only on the rows that failed to parse
            (
                "event_type IS NULL",
                f"CASE WHEN nullif(trim(et_raw), '') IS NULL THEN {C.MISSING_EVENT_TYPE.sql()} "
                f"ELSE {C.UNKNOWN_EVENT_TYPE.sql()} END",
                "CASE WHEN nullif(trim(et_raw), '') IS NULL THEN 'missing event type' "
                "ELSE 'unknown event type ''' || left(trim(et_raw), 40) || '''' END",
            ),
            (
                "ts IS NULL",
                f"CASE WHEN nullif(trim(ts_raw), '') IS NULL THEN {C.MISSING_TIMESTAMP.sql()} "
                f"ELSE {C.UNPARSEABLE_TIMESTAMP.sql()} END",
                "CASE WHEN nullif(trim(ts_raw), '') IS NULL THEN 'missing timestamp' "
                "ELSE 'unparseable timestamp' END",
            ),
            *_plain_checks(
                (
                    "ts < $min_ts OR ts > $max_ts",
                    C.TIMESTAMP_OUT_OF_RANGE,
                    "timestamp out of range",
                ),
                (
                    "q_raw IS NOT NULL AND (qd IS NULL OR NOT isfinite(qd))",
                    C.UNPARSEABLE_QUANTITY,
                    "unparseable quantity",
                ),
                ("q_raw IS NOT NULL AND qd <= 0", C.NON_POSITIVE_QUANTITY, "non-positive quantity"),
                (
                    "q_raw IS NOT NULL AND qd <> floor(qd)",
                    C.NON_INTEGER_QUANTITY,
                    "non-integer quantity",
                ),
                (
                    "q_raw IS NOT NULL AND qd > 2147483647",
                    C.QUANTITY_TOO_LARGE,
                    "quantity too large",
                ),
                ("p_raw IS NOT NULL AND pd IS NULL", C.UNPARSEABLE_PRICE, "unparseable price"),
                ("isnan(pd)", C.NAN_PRICE, "NaN price"),
                ("isinf(pd)", C.INFINITE_PRICE, "infinite price"),
                ("pd < 0", C.NEGATIVE_PRICE, "negative price"),
            ),
        ]
        reason, code = _verdict(checks)
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
                CASE WHEN reason IS NOT NULL THEN {code} END AS code,
                CAST(NULL AS VARCHAR) AS raw,  -- filled for rejects by _fill_raw
                CASE WHEN event_type IS NULL OR event_type = '{DROP}'
                    THEN nullif(left(trim(et_raw), 40), '') END AS et_value
            FROM (SELECT *, {reason} AS reason FROM ({inner}) p) s
        """
        self._stage(sql, src, rid=False)
        self._finish_stage("_imp_ev", src)
        self._mark_duplicates(src)
        self._fill_raw(src)

    def _fill_raw(self, src: SourceFile) -> None:
        """The raw text of rejected events, in a second read that runs only when a row was
        rejected. Computing it in the staging read made DuckDB carry every column of every row
        (a 5,000-column file: 4x the read itself)."""
        dropped = RejectCode.DROPPED_EVENT_TYPE.sql()
        wanted = f"_imp_ev.reason IS NOT NULL AND _imp_ev.code <> {dropped}"
        if not scalar(self.con.execute(f"SELECT count(*) FROM _imp_ev WHERE {wanted}")):
            return
        raw_sql = f"""
            UPDATE _imp_ev SET raw = r.raw
            FROM (SELECT s.rid, {self._raw_expr(src)} AS raw
                  FROM {src.reader_sql(store_rejects=False)} s) r
            WHERE {ev_rid()} = r.rid AND {wanted}
        """
        run_sql(self.con, raw_sql, self._file_params(src))

    def _mark_duplicates(self, src: SourceFile) -> None:
        """Exact duplicate events within the file: all but the first are rejects.

        A hash count first (cheap); the window that finds which rows repeat runs only when the
        counts differ (a hash collision just costs that exact check).
        """
        cols = "user_id, item_id, event_type, ts, session_id, quantity, price, source"
        n, distinct = one_row(
            self.con.execute(
                f"SELECT count(*), count(DISTINCT hash({cols})) FROM _imp_ev WHERE reason IS NULL"
            )
        )
        if n == distinct:
            return
        self.con.execute(f"""
            UPDATE _imp_ev SET reason = 'duplicate row', code = {RejectCode.DUPLICATE_ROW.sql()}
            WHERE rowid IN (
                SELECT r FROM (
                    SELECT rowid AS r, row_number() OVER (PARTITION BY {cols} ORDER BY rowid) AS k
                    FROM _imp_ev WHERE reason IS NULL
                ) WHERE k > 1)
        """)

    # -- items and users files

    def stage_entities(self, b: Bound, kind: str) -> None:
        """Stage an items or users file into ``_imp_items`` / ``_imp_users``."""
        src = b.src
        self.say(f"reading {src.label}", 0.5 if kind == "items" else 0.6)
        key = "item_id" if kind == "items" else "user_id"
        core = ITEM_COLUMNS if kind == "items" else {"user_id": "VARCHAR"}
        exprs: dict[str, str] = {}
        C = RejectCode
        checks = _id_checks(
            key, C.MISSING_ITEM_ID if kind == "items" else C.MISSING_USER_ID, f"missing {key}"
        )
        used = {i for k, i in b.cols.items() if k in core}
        for fieldname, ftype in core.items():
            e = b.expr(fieldname)
            if e is None:
                continue
            given = f"nullif(trim({e}), '') IS NOT NULL AND {fieldname} IS NULL"
            if fieldname == key:
                exprs[fieldname] = id_sql(self._id_text(b, key) or e)
            elif ftype == "DOUBLE":
                price = fieldname == "price"
                exprs[fieldname] = f"TRY_CAST(trim({e}) AS DOUBLE)"
                checks += _plain_checks(
                    (
                        given,
                        C.UNPARSEABLE_PRICE if price else C.UNPARSEABLE_VALUE,
                        f"unparseable {fieldname}",
                    ),
                    (
                        f"isnan({fieldname}) OR isinf({fieldname})",
                        C.NAN_PRICE if price else C.UNPARSEABLE_VALUE,
                        f"NaN {fieldname}",
                    ),
                    (
                        f"{fieldname} < 0",
                        C.NEGATIVE_PRICE if price else C.UNPARSEABLE_VALUE,
                        f"negative {fieldname}",
                    ),
                )
            elif ftype == "BOOLEAN":
                exprs[fieldname] = (
                    f"CASE WHEN lower(trim({e})) IN ('true','t','yes','y','1','in stock') THEN true"
                    f" WHEN lower(trim({e})) IN ('false','f','no','n','0','out of stock') THEN "
                    "false END"
                )
                checks += _plain_checks((given, C.UNPARSEABLE_VALUE, f"unparseable {fieldname}"))
            elif ftype == "TIMESTAMP":
                exprs[fieldname] = self._ts(src, b, fieldname, e)
                checks += _plain_checks((given, C.UNPARSEABLE_VALUE, f"unparseable {fieldname}"))
            else:
                exprs[fieldname] = f"nullif({e}, '')"  # text is stored as given
        attrs = self._attributes(src, kind, used)
        sel = ", ".join(f"{e} AS {f}" for f, e in exprs.items())
        attr_sel = "".join(f", {e} AS a{i}" for i, (_, _, e) in enumerate(attrs))
        attr_out = "".join(f", a{i}" for i in range(len(attrs)))
        reason, code = _verdict(checks)
        table = f"_imp_{kind}"
        dup_code = (C.DUPLICATE_ITEM_ID if kind == "items" else C.DUPLICATE_USER_ID).sql()
        # later rows with an id already seen are rejects; the first valid row wins
        sql = f"""
            CREATE TEMP TABLE {table} AS
            SELECT rid, {", ".join(exprs)}{attr_out}, raw,
                CASE WHEN reason IS NOT NULL THEN reason WHEN dup THEN 'duplicate {key}'
                END AS reason,
                CASE WHEN reason IS NOT NULL THEN code
                    WHEN dup THEN {dup_code} END AS code
            FROM (
                SELECT *, reason IS NULL AND row_number() OVER (
                    PARTITION BY {key}, reason IS NULL ORDER BY rid) > 1 AS dup
                FROM (
                    SELECT *, {reason} AS reason, {code} AS code FROM (
                        SELECT s.*, {sel}{attr_sel}, {self._raw_expr(src)} AS raw
                        FROM {{reader}} s
                    ) s
                )
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
        row = run_sql(
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
        """Rejects by reason and code, a sample of rejected rows, the event values no alias or
        ``--event-map`` maps, and the rows ``--event-map`` dropped, into the report."""
        parts, samples = [], []
        dropped = RejectCode.DROPPED_EVENT_TYPE.sql()
        for table, src in self.stages:
            rid = ev_rid("v") if table == "_imp_ev" else "v.rid"
            line = self._line_expr(src, self.bad[src.role], rid)
            parts.append(
                f"SELECT '{src.role}' AS role, {line} AS line, code, reason, raw "
                f"FROM {table} v WHERE reason IS NOT NULL AND code <> {dropped}"
            )
            parts.append(
                f"SELECT '{src.role}' AS role, line, code, reason, raw FROM _imp_bad_{src.role}"
            )
        self.con.execute("CREATE TEMP TABLE _imp_rej AS " + " UNION ALL ".join(parts))
        counts = self.con.execute(
            "SELECT reason, min(code), count(*) AS n FROM _imp_rej GROUP BY reason "
            "ORDER BY n DESC, reason"
        ).fetchall()
        rep = self.report
        rep.rejects_by_reason = {r: n for r, _, n in counts}
        rep.reason_codes = {r: c for r, c, _ in counts}
        rep.rejects_by_code = {}
        for _, c, n in counts:
            rep.rejects_by_code[c] = rep.rejects_by_code.get(c, 0) + n
        for value, is_dropped, n in self.con.execute(
            "SELECT et_value, event_type IS NOT NULL, count(*) AS n FROM _imp_ev "
            "WHERE et_value IS NOT NULL GROUP BY ALL ORDER BY n DESC, et_value"
        ).fetchall():
            (rep.dropped_event_types if is_dropped else rep.unknown_event_types)[value] = n
        labels = {src.role: src.label for _, src in self.stages}
        for role, line, code, reason, raw in self.con.execute(
            "SELECT role, line, code, reason, raw FROM _imp_rej "
            "QUALIFY row_number() OVER (PARTITION BY reason ORDER BY role, line) <= 3 "
            "ORDER BY role, line LIMIT $n",
            {"n": self.cfg.sample_rejects},
        ).fetchall():
            samples.append(
                {
                    "file": labels[role],
                    "line": line,
                    "reason": reason,
                    "raw": (raw or "")[:300],
                    "code": code,
                }
            )
        rep.sample_rejects = samples
