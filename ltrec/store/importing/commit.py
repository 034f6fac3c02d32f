"""Commit an import: the one entry point, :func:`import_dataset`, and the writes it ends with.

The pipeline, per file:

1. :func:`~ltrec.store.importing.read.sniff` checks the file as a whole (empty, binary, wrong
   delimiter, invalid UTF-8 at the start, gzip bomb, "Parquet" that is not) and reads the header.
2. The columns are resolved against a preset (:mod:`~ltrec.store.importing.presets`) and
   ``--map`` overrides (:mod:`~ltrec.store.importing.map`); a missing required column raises
   :class:`ColumnNotFoundError`.
3. DuckDB reads the file with an explicit dialect, every column VARCHAR (``read_csv`` with
   ``auto_detect=false`` and ``store_rejects`` for malformed lines; ``read_parquet`` cast to
   VARCHAR), and one SQL pass (:mod:`~ltrec.store.importing.validate`) casts and gives every bad
   row a reason. With ``pseudonymize``, every staged user id is then replaced by its keyed HMAC
   (:mod:`ltrec.store.privacy`) and the raw text of rejected rows is withheld, so raw ids never
   reach the file.
4. If more than ``max_reject_share`` of the rows are rejected, :class:`TooManyRejectsError`
   (nothing lands). Otherwise events are appended, items and users upserted (a referenced item
   or user without a row gets one), rejects stored with file, line, reason and raw text, meta
   updated, and :func:`~ltrec.store.finalize.finalize` run, all inside one :func:`writing`.

A dry run does the same in a private in-memory database and returns the full report.
"""

# SQL here is assembled from this package's own fragments; attribute names go through
# quote_ident, and every value from a file or a user is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ltrec.config import MAX_REJECT_SHARE, duckdb_config
from ltrec.errors import BadInputError, TooManyRejectsError
from ltrec.progress import Progress
from ltrec.store import privacy
from ltrec.store.connect import (
    check_name,
    connect,
    dataset_path,
    read_meta,
    scalar,
    write_meta,
    writing,
)
from ltrec.store.finalize import finalize
from ltrec.store.importing.map import Bound, bind, resolve_event_map, split_mapping
from ltrec.store.importing.presets import get_preset, guess_mapping
from ltrec.store.importing.read import sniff
from ltrec.store.importing.report import ImportConfig, ImportReport
from ltrec.store.importing.validate import Stager
from ltrec.store.profile import REPEAT_DOMAIN_KEY, read_profile, write_profile
from ltrec.store.schema import EVENT_COLUMNS, ITEM_COLUMNS, create_schema, quote_ident


def write_tables(imp: Stager, entities: dict[str, Bound]) -> None:
    """Append the valid staged events, upsert items and users, store the rejects."""
    con, rep = imp.con, imp.report
    imp.say("writing", 0.7)
    before = {t: scalar(con.execute(f"SELECT count(*) FROM {t}")) for t in ("items", "users")}  # noqa: S608
    ev_cols = ", ".join(EVENT_COLUMNS)
    n_ev = scalar(
        con.execute(
            f"INSERT INTO events ({ev_cols}) SELECT {ev_cols} FROM _imp_ev WHERE reason IS NULL"
        )
    )
    if imp.preset.also_purchase:
        sel = ev_cols.replace("event_type", "'purchase'")
        n_ev += scalar(
            con.execute(
                f"INSERT INTO events ({ev_cols}) SELECT {sel} FROM _imp_ev "
                "WHERE reason IS NULL AND purchase"
            )
        )
    rep.rows_loaded["events"] = n_ev
    # fields taken from the events file (order lines: description -> title, country)
    _upsert_derived(imp, "items", "item_id", imp.event_items, "it_", "arg_min", "rowid")
    _upsert_derived(imp, "users", "user_id", imp.event_users, "us_", "arg_max", "ts")
    for kind, key in (("items", "item_id"), ("users", "user_id")):
        ids = []
        if kind in entities:
            _upsert_file(imp, kind, key)
            ids.append(f"SELECT {key} FROM _imp_{kind} WHERE reason IS NULL")
        if imp.event_items if kind == "items" else imp.event_users:
            ids.append(f"SELECT {key} FROM _imp_ev WHERE reason IS NULL")
        union = " UNION ALL ".join(ids)
        touched = scalar(con.execute(f"SELECT count(DISTINCT k) FROM ({union}) t(k)")) if ids else 0
        # a referenced item or user always has a row (title / segments NULL)
        # only ids not there yet (the primary-key index insert dominates at 1M new users)
        added = scalar(
            con.execute(
                f"INSERT INTO {kind} ({key}) SELECT DISTINCT e.{key} FROM _imp_ev e "
                f"WHERE e.reason IS NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {kind} t WHERE t.{key} = e.{key})"
            )
        )
        rep.rows_loaded[kind] = touched + added
        after = scalar(con.execute(f"SELECT count(*) FROM {kind}"))  # noqa: S608
        rep.new_rows[kind] = after - before[kind]
    labels = {src.role: src.label for _, src in imp.stages}
    for role, label in labels.items():
        imp.q(
            "INSERT INTO rejects (import_id, source_file, line, reason, raw, code) "
            "SELECT $import_id, $label, line, reason, raw, code "
            "FROM _imp_rej WHERE role = $role",
            {"label": label, "role": role},
        )
    rep.rows_loaded["rejects"] = rep.rejected
    rep.new_rows["events"] = n_ev


def _upsert_derived(
    imp: Stager, kind: str, key: str, fields: list[str], prefix: str, agg: str, order: str
) -> None:
    if not fields:
        return
    for f in fields:
        if f not in (ITEM_COLUMNS if kind == "items" else {"user_id"}):
            _add_column(imp, kind, f, "VARCHAR")
    sel = ", ".join(
        f"{agg}({prefix}{f}, {order}) FILTER (WHERE {prefix}{f} IS NOT NULL) AS {quote_ident(f)}"
        for f in fields
    )
    imp.con.execute(
        f"CREATE TEMP TABLE _imp_{kind}_derived AS SELECT {key}, {sel} FROM _imp_ev "
        f"WHERE reason IS NULL GROUP BY {key}"
    )
    _merge(imp, kind, key, f"_imp_{kind}_derived", fields, [quote_ident(f) for f in fields])
    if kind == "users":
        imp.report.attributes.setdefault("users", []).extend(f for f in fields if f != "user_id")


def _add_column(imp: Stager, table: str, name: str, typ: str) -> str:
    """Add an attribute column, or widen an existing one to VARCHAR when types differ.
    Returns the type to cast new values to."""
    have = dict(
        imp.con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE table_name = $t AND NOT internal AND database_name = current_database()",
            {"t": table},
        ).fetchall()
    )
    if name not in have:
        imp.con.execute(f"ALTER TABLE {table} ADD COLUMN {quote_ident(name)} {typ}")
        return typ
    if have[name] == typ:
        return typ
    if have[name] != "VARCHAR":
        imp.con.execute(f"ALTER TABLE {table} ALTER COLUMN {quote_ident(name)} TYPE VARCHAR")
    return "VARCHAR"


def _upsert_file(imp: Stager, kind: str, key: str) -> None:
    fields, attrs = imp.fields[kind]
    cols = list(fields)
    sel = list(fields)
    for i, (name, typ, _) in enumerate(attrs):
        cast = _add_column(imp, kind, name, typ)
        cols.append(name)
        sel.append(f"CAST(a{i} AS {cast})")
    _merge(imp, kind, key, f"(SELECT * FROM _imp_{kind} WHERE reason IS NULL)", cols, sel, "rid")


def _merge(
    imp: Stager, kind: str, key: str, source: str, cols: list[str], sel: list[str], order: str = ""
) -> None:
    """Upsert ``source`` (a table expression with unique keys) into ``kind``: ``sel[i]``
    (SQL over ``source``) feeds ``cols[i]``; a new non-NULL value replaces the stored one,
    NULL keeps it; ids not there yet are inserted (in ``order``).

    An UPDATE plus an anti-join INSERT instead of ``ON CONFLICT``: the tables have no
    primary key to conflict on (see ``schema._DDL``)."""
    pairs = [(quote_ident(c), e) for c, e in zip(cols, sel, strict=True) if c != key]
    proj = "".join(f", {e} AS {c}" for c, e in pairs)
    if pairs and scalar(imp.con.execute(f"SELECT count(*) > 0 FROM {kind}")):
        sets = ", ".join(f"{c} = coalesce(s.{c}, {kind}.{c})" for c, _ in pairs)
        imp.con.execute(
            f"UPDATE {kind} SET {sets} FROM (SELECT {key}{proj} FROM {source} s) s "
            f"WHERE {kind}.{key} = s.{key}"
        )
    ident = ", ".join([key] + [c for c, _ in pairs])
    keep = f", {order}" if order else ""
    imp.con.execute(
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
        has_events = scalar(con.execute("SELECT count(*) > 0 FROM events"))
    finally:
        con.close()
    privacy.check_compatible(meta, bool(has_events), key)


#: Characters DuckDB's file readers expand as a glob pattern in a path.
_GLOB_CHARS = re.compile(r"[*?\[\]{}]")


@contextlib.contextmanager
def _literal_paths(
    paths: dict[str, Path | str | None], labels: dict[str, str]
) -> Iterator[tuple[dict[str, Path | str | None], dict[str, str]]]:
    """Paths DuckDB reads literally. ``read_csv``/``read_parquet`` expand ``*``, ``?`` and ``[``
    in a path as a glob, so ``sales[1].csv`` would read ``sales1.csv`` instead (and ``*.csv``
    every file beside it); such a file is read through a symlink with a plain name in a private
    temporary folder. Labels keep the file's own name for reports and ``rejects``."""
    plain = {r: p for r, p in paths.items() if p is None or not _GLOB_CHARS.search(str(p))}
    if len(plain) == len(paths):
        yield paths, labels
        return
    labels = dict(labels)
    with tempfile.TemporaryDirectory(prefix="ltrec-import-") as tmp:
        out = dict(plain)
        for role, path in paths.items():
            if role in out:
                continue
            path = Path(str(path)).absolute()
            suffix = "".join(s for s in path.suffixes[-2:] if re.fullmatch(r"\.[A-Za-z0-9]+", s))
            link = Path(tmp) / f"{role}{suffix}"
            link.symlink_to(path)
            out[role] = link
            labels.setdefault(role, path.name)
        yield out, labels


def import_dataset(
    name: str,
    events: Path | str,
    items: Path | str | None = None,
    users: Path | str | None = None,
    preset: str | None = None,
    mapping: dict[str, str] | None = None,
    replace: bool = False,
    max_reject_share: float = MAX_REJECT_SHARE,
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
        progress: ``progress(done, message)`` (:mod:`ltrec.progress`).
        pseudonymize: replace user ids by their keyed HMAC (:mod:`ltrec.store.privacy`)
            before anything is stored; rejected rows keep their reason but not their raw text.
        hmac_key: the key (else ``$LTREC_HMAC_KEY``); never stored or logged.

    Raises:
        BadInputError: a whole-file problem (empty, header only, wrong delimiter, invalid
            UTF-8, not Parquet, gzip bomb), with subclasses :class:`ColumnNotFoundError` and
            :class:`TooManyRejectsError` (its ``report`` attribute holds the full report).
    """
    with _literal_paths({"events": events, "items": items, "users": users}, labels or {}) as (
        paths,
        labels,
    ):
        return _import(
            name,
            paths,
            preset,
            mapping,
            replace,
            max_reject_share,
            dry_run,
            data_dir,
            config=config,
            labels=labels,
            progress=progress,
            pseudonymize=pseudonymize,
            hmac_key=hmac_key,
        )


def _import(
    name: str,
    paths: dict[str, Path | str | None],
    preset: str | None,
    mapping: dict[str, str] | None,
    replace: bool,
    max_reject_share: float,
    dry_run: bool,
    data_dir: Path | str | None,
    *,
    config: ImportConfig | None,
    labels: dict[str, str],
    progress: Progress | None,
    pseudonymize: bool,
    hmac_key: str | bytes | None,
) -> ImportReport:
    """:func:`import_dataset` on paths DuckDB reads literally."""
    start = time.perf_counter()
    check_name(name)
    cfg = config or ImportConfig()
    if not 0.0 <= max_reject_share <= 1.0:
        raise BadInputError(f"--max-reject-share must be between 0 and 1, got {max_reject_share}")
    key = privacy.resolve_key(hmac_key) if pseudonymize else None
    _check_privacy(name, data_dir, replace, key)
    srcs = {
        role: sniff(p, role, cfg.read, labels.get(role))
        for role, p in paths.items()
        if p is not None
    }
    guessed = preset is None
    if preset is None:
        preset, _ = guess_mapping(srcs["events"].columns)
    p = get_preset(preset)
    event_map = resolve_event_map(p, cfg.event_map)
    routed = split_mapping(dict(mapping or {}), p, srcs)
    layouts = {"events": p.events, "items": p.items, "users": p.users}
    bound = {role: bind(src, layouts[role], *routed[role]) for role, src in srcs.items()}
    report = ImportReport(
        dataset=name,
        preset=p.name,
        preset_guessed=guessed,
        dry_run=dry_run,
        import_id=uuid.uuid4().hex,
        max_reject_share=max_reject_share,
        pseudonymized=key is not None,
        event_map=event_map,
        files={r: s.label for r, s in srcs.items()},
        formats={r: s.kind for r, s in srcs.items()},
        dialects={r: s.dialect() for r, s in srcs.items()},
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
        imp = Stager(con, report, cfg, p, progress)
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
            err = TooManyRejectsError(
                report.reject_summary(), report.reject_share, max_reject_share, report
            )
            if report.unknown_event_types:  # the likely fix first: map the event values
                err.hint = f"{report.event_map_hint()}\n{err.hint}"
                err.args = (f"{err.message}\n{err.hint}",)
            raise err
        write_tables(imp, {k: v for k, v in bound.items() if k != "events"})
        if not dry_run:
            write_meta(
                con,
                {
                    "source_preset": p.name,
                    REPEAT_DOMAIN_KEY: str(p.repeat_domain).lower(),
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
                            **{
                                k: v
                                for k, v in report.to_dict().items()
                                if k not in ("sample_rejects", "profile")
                            },
                            "committed": True,
                        },
                        default=str,
                    ),
                },
            )
            imp.say("finalizing", 0.95)
            finalize(con)  # stores the dataset profile (ltrec.store.profile) in meta
            report.profile = read_profile(con).to_dict()
        else:  # the profile the data would have once imported (shown by the dry run)
            report.profile = write_profile(con).to_dict()
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
            con = duckdb.connect(config=duckdb_config())  # the worker's memory limit
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
