"""Real-time events: validation, the write-ahead file, and the flusher that moves them into the
store.

* **Validation** applies the importer's own rules: ids by the one id rule
  (:func:`ltrec.ids.clean_id`: trimmed, ``null``/``nan`` missing, a control character rejects
  the event), then, over a batch in a private in-memory DuckDB, the importer's SQL
  (:mod:`ltrec.store.importing.validate`, :mod:`ltrec.store.importing.map`): event values
  through the same aliases, timestamps as ISO 8601 or unix time
  (scaled by magnitude, as the importer detects it) within the importer's range. A rejected
  event names its position, field and reason.
* **Durability**: :class:`EventLog` appends each accepted batch to ``<data_dir>/api/<name>.wal``
  (one JSON line per event, with a sequence number) and fsyncs before the server acknowledges.
  A crash can only tear a line that was never acknowledged; the next open cuts it off.
* **The store**: :class:`Flusher`, one thread per server, moves logged events into the
  dataset's ``live_events`` table in batches through :func:`ltrec.store.connect.writing` (the
  one way to write a store, under its lock; a busy store is retried at the next tick). The
  table's highest ``seq`` is written in the same atomic swap as the rows, so replaying the log
  after a crash inserts only what is missing: every acknowledged event lands exactly once.
  Then the log drops what the store holds.

Live events go to ``live_events``, not ``events``: a saved run checks that the data it was
trained on is unchanged (its fingerprint), so live traffic must not make the served run
unloadable; the writes keep ``data_import_id`` (runs stay fresh). A new training run does not
see them yet.
"""

# SQL here is the importer's fragments over this module's own column names; values are bound.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from ltrec.app.audit import cut_torn_tail  # the same torn-line rule as the audit log
from ltrec.config import EVENT_TYPES
from ltrec.errors import BadIdError, BadInputError, LtrecError, StoreBusyError
from ltrec.files import atomic_write
from ltrec.ids import clean_id
from ltrec.store.connect import connect, file_lock, scalar, writing
from ltrec.store.connect import data_dir as _data_dir
from ltrec.store.importing.map import event_type_expr
from ltrec.store.importing.report import ImportConfig
from ltrec.store.importing.validate import MIN_TS, ts_expr
from ltrec.store.schema import EVENT_COLUMNS, quote_ident

#: Most events in one request.
MAX_BATCH = 1000
#: Table of the store that holds the events the API received.
TABLE = "live_events"
#: The table name as SQL (quoted once; the name is a constant, never user text).
_TABLE_SQL = quote_ident(TABLE)
#: The flusher waits at least this many times as long as its last write took.
DUTY = 10.0
#: Value of ``source`` for events the API received.
SOURCE = "api"
#: Value of ``source`` for the impressions of a served list (the exposure log, issue 22).
EXPOSURE = "recommendation"
#: Columns ``live_events`` has beyond the store's event columns (nullable; an older table gets
#: them at its next write): the experiment and arm of the user, and for an exposure its
#: 1-based position and the served list's id.
EXPOSURE_COLUMNS: dict[str, str] = {
    "experiment": "VARCHAR",
    "arm": "VARCHAR",
    "position": "INTEGER",
    "request_id": "VARCHAR",
}
_DDL = (
    f"CREATE TABLE IF NOT EXISTS {_TABLE_SQL} (seq BIGINT, "
    + ", ".join(f"{c} {t}" for c, t in {**EVENT_COLUMNS, **EXPOSURE_COLUMNS}.items())
    + ")"
)
#: The optional fields of an :class:`Event`, in the log and in ``live_events``.
_OPTIONAL = ("quantity", "price", "experiment", "arm", "position", "request_id")
#: json.dumps(obj, ensure_ascii=False) without building an encoder per call.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
#: Largest quantity (the importer's INTEGER bound).
_MAX_QUANTITY = 2147483647


class EventError(BadInputError):
    """An event the importer's rules reject; ``field`` names where (``events[3].item_id``)."""

    def __init__(self, message: str, field: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


@dataclass(frozen=True)
class Event:
    """A validated event; ``seq`` is its place in the log (0 until logged)."""

    user_id: str
    item_id: str
    event_type: str
    ts: datetime  # naive UTC, like the store
    seq: int = 0
    source: str = SOURCE  # EXPOSURE for the impressions of a served list
    quantity: int | None = None
    price: float | None = None
    experiment: str | None = None
    arm: str | None = None
    position: int | None = None
    request_id: str | None = None

    @property
    def exposure(self) -> bool:
        """An impression the server logged for a list it served (not a user's action)."""
        return self.source == EXPOSURE

    def line(self) -> bytes:
        obj: dict[str, Any] = {
            "seq": self.seq,
            "user_id": self.user_id,
            "item_id": self.item_id,
            "event_type": self.event_type,
            "ts": self.ts.isoformat(),
        }
        if self.source != SOURCE:
            obj["source"] = self.source
        for name in _OPTIONAL:  # only what is set: a plain event's line is as before
            value = getattr(self, name)
            if value is not None:
                obj[name] = value
        return (_ENCODE(obj) + "\n").encode("utf-8")

    def copy(self, **fields: Any) -> Event:
        """This event with some fields changed, for values already checked (a plain copy of the
        fields: dataclasses.replace re-runs the frozen __init__, which cost a tenth of a list's
        time when every served item is logged)."""
        new = object.__new__(Event)
        new.__dict__.update(self.__dict__, **fields)
        return new

    @classmethod
    def from_line(cls, line: bytes) -> Event:
        obj = json.loads(line)
        return cls(
            str(obj["user_id"]),
            str(obj["item_id"]),
            str(obj["event_type"]),
            datetime.fromisoformat(obj["ts"]),
            int(obj["seq"]),
            str(obj.get("source", SOURCE)),
            *(obj.get(name) for name in _OPTIONAL),
        )


# ----------------------------------------------------------------------------- validation


def _where(i: int, n: int, name: str) -> str:
    return name if n == 1 else f"events[{i}].{name}"


def _ts_format(value: object) -> str:
    """The importer's unix rule (:func:`~ltrec.store.importing.validate._detect_ts`) for one
    value: seconds below 1e11, milliseconds below 1e14, else microseconds; text is ISO 8601."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "iso"
    size = abs(float(value))
    return "unix_s" if size < 1e11 else "unix_ms" if size < 1e14 else "unix_us"


class Validator:
    """The importer's checks for events sent one batch at a time (thread-safe)."""

    def __init__(self, future_slack_hours: float | None = None) -> None:
        slack = (
            ImportConfig().future_slack_hours
            if future_slack_hours is None
            else (future_slack_hours)
        )
        self.slack = timedelta(hours=slack)
        self._con = duckdb.connect()
        self._con.execute("SET TimeZone = 'UTC'")  # ISO times without an offset are UTC
        self._lock = threading.Lock()
        et, params = event_type_expr("e")
        assert not params  # no --event-map here: the aliases only
        ts = " ".join(
            f"WHEN '{f}' THEN {ts_expr(f, 't', '')}" for f in ("unix_s", "unix_ms", "unix_us")
        )
        self._sql = f"""
            SELECT u, i, {et}, nullif(trim(e), ''),
                   CASE f {ts} ELSE {ts_expr("iso", "t", "")} END
            FROM (SELECT unnest($u) AS u, unnest($i) AS i, unnest($e) AS e,
                         unnest($t) AS t, unnest($f) AS f)
        """

    def validate(self, raw: Sequence[dict[str, Any]]) -> list[Event]:
        """Events from dicts with ``user_id, item_id, event_type`` and optional ``ts`` (ISO
        8601 text or unix time; missing: now). Raises :class:`EventError` for the first bad one.
        """
        n = len(raw)
        if n == 0:
            raise EventError("no events given", "events", hint="send at least one event")
        if n > MAX_BATCH:
            raise EventError(f"{n} events in one request; at most {MAX_BATCH}", "events")
        now = datetime.now(UTC).replace(tzinfo=None)
        cols: dict[str, list[Any]] = {"u": [], "i": [], "e": [], "t": [], "f": []}
        for pos, ev in enumerate(raw):
            for name, col in (("user_id", "u"), ("item_id", "i")):
                try:
                    cols[col].append(clean_id(ev.get(name), name))
                except BadIdError as err:
                    raise EventError(err.message, _where(pos, n, name)) from None
            ts = ev.get("ts")
            cols["e"].append(ev.get("event_type"))
            cols["t"].append(None if ts is None else str(ts))
            cols["f"].append(_ts_format(ts))
        with self._lock:
            rows = self._con.execute(self._sql, cols).fetchall()
        out = []
        for pos, (user, item, etype, given, ts) in enumerate(rows):
            if etype is None:
                if given is None:
                    raise EventError("missing event type", _where(pos, n, "event_type"))
                raise EventError(
                    f"unknown event type {given[:40]!r}",
                    _where(pos, n, "event_type"),
                    hint=f"use one of {', '.join(EVENT_TYPES)} (or an alias such as "
                    "click, add_to_cart, order)",
                )
            if raw[pos].get("ts") is None:
                ts = now
            elif ts is None:
                raise EventError(
                    "unparseable timestamp",
                    _where(pos, n, "ts"),
                    hint="send ISO 8601 (2026-03-01T12:00:00Z) or unix seconds, or leave it out "
                    "for now",
                )
            elif ts < MIN_TS or ts > now + self.slack:
                raise EventError("timestamp out of range", _where(pos, n, "ts"))
            qty, price = _amount(raw[pos], pos, n)
            out.append(Event(user, item, etype, ts, quantity=qty, price=price))
        return out


def _amount(ev: dict[str, Any], pos: int, n: int) -> tuple[int | None, float | None]:
    """``quantity`` and ``price`` of an event by the importer's rules (both optional)."""
    qty, price = ev.get("quantity"), ev.get("price")
    if qty is not None:
        where = _where(pos, n, "quantity")
        if isinstance(qty, bool) or not isinstance(qty, int | float) or not math.isfinite(qty):
            raise EventError("unparseable quantity", where)
        if qty <= 0:
            raise EventError("non-positive quantity", where)
        if qty != math.floor(qty):
            raise EventError("non-integer quantity", where)
        if qty > _MAX_QUANTITY:
            raise EventError("quantity too large", where)
        qty = int(qty)
    if price is not None:
        where = _where(pos, n, "price")
        if isinstance(price, bool) or not isinstance(price, int | float):
            raise EventError("unparseable price", where)
        if math.isnan(price):
            raise EventError("NaN price", where)
        if math.isinf(price):
            raise EventError("infinite price", where)
        if price < 0:
            raise EventError("negative price", where)
        price = float(price)
    return qty, price


# ----------------------------------------------------------------------------- the log


def wal_path(dataset: str, data_dir: Path | str | None = None) -> Path:
    return _data_dir(data_dir) / "api" / f"{dataset}.wal"


class ServerBusyError(LtrecError):
    """Another ``ltrec serve`` already serves this dataset from this data directory."""

    exit_code = 2


def _server_lock(dataset: str, data_dir: Path | str | None, why: str) -> Any:
    """The lock one `ltrec serve` holds on a dataset's event log for its lifetime."""
    path = wal_path(dataset, data_dir)
    return file_lock(
        path.with_name(f".{path.name}.lock"),
        0.0,
        lambda: ServerBusyError(f"dataset '{dataset}' is {why}", hint="stop that server first"),
    )


@contextlib.contextmanager
def dropping_log(dataset: str, data_dir: Path | str | None = None) -> Iterator[None]:
    """Around deleting a dataset: refuse while a server holds its event log, and remove the log
    after the body succeeds, so a dataset made again under the name gets none of its events."""
    path = wal_path(dataset, data_dir)
    if not path.parent.is_dir():  # never served
        yield
        return
    with _server_lock(dataset, data_dir, "served by a running `ltrec serve`"):
        yield
        path.unlink(missing_ok=True)
        # its experiments' records go with the rows they describe
        shutil.rmtree(path.parent / "experiments" / dataset, ignore_errors=True)


class EventLog:
    """The write-ahead file of one served dataset. One server holds it (an exclusive lock for
    its lifetime); appends are fsynced before :meth:`append` returns."""

    def __init__(self, dataset: str, data_dir: Path | str | None = None, *, floor: int = 0):
        self.path = wal_path(dataset, data_dir)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._hold = contextlib.ExitStack()
        self._hold.enter_context(
            _server_lock(dataset, data_dir, "already served by another `ltrec serve`")
        )
        self._lock = threading.Lock()
        # Taken before _lock, never after: one fsync at a time, and the file not swapped
        # under it (drop_through).
        self._sync_lock = threading.Lock()
        self._fd = self._open()
        self.pending: list[Event] = self._read()
        self.last_seq = max([floor, *(e.seq for e in self.pending)])
        self._synced = self.last_seq  # the highest seq known to be on disk
        self.fsyncs = 0

    def _open(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # (released on close; the folder lock is what excludes)
        cut_torn_tail(fd)  # a line torn by a crash was never acknowledged
        return fd

    def _read(self) -> list[Event]:
        size = os.fstat(self._fd).st_size
        raw = os.pread(self._fd, size, 0) if size else b""
        return [Event.from_line(line) for line in raw.split(b"\n") if line.strip()]

    def append(self, events: Sequence[Event]) -> list[Event]:
        """Number the events, write them and fsync; returns them with their ``seq`` once they
        are on disk.

        Group commit: the write is ordered under the log's lock, the fsync is not; one fsync
        covers every append written before it, so concurrent appends (one per served list when
        an experiment runs) share fsyncs instead of queueing one each.
        """
        with self._lock:
            start = self.last_seq
            done = [e.copy(seq=start + i + 1) for i, e in enumerate(events)]
            data = b"".join(e.line() for e in done)
            written = 0
            while written < len(data):  # a short write continues where it stopped
                written += os.write(self._fd, data[written:])
            self.last_seq = start + len(done)
            self.pending.extend(done)
        if done:
            self._sync(done[-1].seq)
        return done

    def _sync(self, seq: int) -> None:
        """Return once every event up to ``seq`` is on disk."""
        with self._sync_lock:
            if self._synced >= seq:  # an fsync that started after our write covered it
                return
            with self._lock:
                fd, through = self._fd, self.last_seq
            os.fsync(fd)
            self.fsyncs += 1
            self._synced = max(self._synced, through)

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.pending)

    def drop_through(self, seq: int) -> None:
        """Forget the events up to ``seq`` (they are in the store): the rest is rewritten to a
        new file that replaces the log atomically."""
        with self._sync_lock, self._lock:
            keep = [e for e in self.pending if e.seq > seq]
            if len(keep) == len(self.pending):
                return
            atomic_write(self.path, b"".join(e.line() for e in keep), mode=0o600)
            os.close(self._fd)
            self._fd = self._open()
            self.pending = keep
            self._synced = self.last_seq  # atomic_write made the kept events durable

    def close(self) -> None:
        with self._sync_lock, self._lock:
            os.close(self._fd)
        self._hold.close()


# ----------------------------------------------------------------------------- the store


def store_seq(dataset: str, data_dir: Path | str | None = None) -> int:
    """The highest ``seq`` the store holds (0: none)."""
    con = connect(dataset, data_dir)
    try:
        if not _has_table(con):
            return 0
        return int(scalar(con.execute(f"SELECT coalesce(max(seq), 0) FROM {_TABLE_SQL}")))
    finally:
        con.close()


def _has_table(con: duckdb.DuckDBPyConnection) -> bool:
    sql = "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND "
    return bool(scalar(con.execute(sql + "table_name = ?", [TABLE])))


def _columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    sql = (
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND table_name = ?"
    )
    return {r[0] for r in con.execute(sql, [TABLE]).fetchall()}


def store_events(
    dataset: str,
    data_dir: Path | str | None = None,
    *,
    through: int | None = None,
    exposures: bool = True,
) -> list[Event]:
    """The events the store holds, in ``seq`` order (up to ``through`` when given; without
    the server's own impressions when ``exposures`` is False)."""
    con = connect(dataset, data_dir)
    try:
        if not _has_table(con):
            return []
        have = _columns(con)  # a table from before the exposure columns lacks them
        extra = ", ".join(c if c in have else f"NULL AS {c}" for c in _OPTIONAL)
        sql = f"SELECT user_id, item_id, event_type, ts, seq, source, {extra} FROM {_TABLE_SQL}"
        where, params = [], []
        if through is not None:
            where.append("seq <= ?")
            params.append(through)
        if not exposures:
            where.append(f"source IS DISTINCT FROM '{EXPOSURE}'")
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = con.execute(sql + " ORDER BY seq", params).fetchall()
    finally:
        con.close()
    return [Event(u, i, e, ts, int(s), src or SOURCE, *rest) for u, i, e, ts, s, src, *rest in rows]


def write_events(
    dataset: str,
    events: Sequence[Event],
    data_dir: Path | str | None = None,
    *,
    wait: float = 0.0,
) -> int:
    """Insert the events the store does not hold yet (``seq`` above its highest) in one atomic
    write; returns how many were inserted. Raises :class:`StoreBusyError` after ``wait`` s."""
    if not events:
        return 0
    with writing(dataset, data_dir, wait=wait, data_changed=False) as con:
        con.execute(_DDL)
        have = _columns(con)
        for col, kind in EXPOSURE_COLUMNS.items():  # a table from before these columns
            if col not in have:
                con.execute(f"ALTER TABLE {_TABLE_SQL} ADD COLUMN IF NOT EXISTS {col} {kind}")
        mark = scalar(con.execute(f"SELECT coalesce(max(seq), 0) FROM {_TABLE_SQL}"))
        new = [e for e in events if e.seq > mark]
        if new:
            cols = ("seq", "user_id", "item_id", "event_type", "ts", "source", *_OPTIONAL)
            con.execute(
                f"INSERT INTO {_TABLE_SQL} ({', '.join(cols)}) SELECT "
                + ", ".join(f"unnest(${c})" for c in cols),
                {c: [getattr(e, c) for e in new] for c in cols},
            )
    return len(new)


class Flusher:
    """The one writer of a server's events into the store: a thread that, every ``interval``
    seconds, moves what the log holds into ``live_events`` and then drops it from the log."""

    def __init__(
        self,
        dataset: str,
        log: EventLog,
        data_dir: Path | str | None = None,
        *,
        interval: float = 1.0,
    ) -> None:
        self.dataset, self.log, self.data_dir, self.interval = dataset, log, data_dir, interval
        self.flushed = 0  # events written to the store by this server
        self.busy = 0  # ticks that found the store locked by another writer
        self.errors = 0
        self.last_error: str | None = None
        self.last_flush_s = 0.0  # seconds the last write to the store took
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ltrec-flusher", daemon=True)
        self._mutex = threading.Lock()  # one flush at a time (the thread, or close)

    def start(self) -> Flusher:
        self._thread.start()
        return self

    def _run(self) -> None:
        pause = self.interval
        while not self._stop.wait(pause):
            try:
                self.flush()
                # A write copies the whole store file (the one way to write): on a big store
                # the flusher waits ten times as long as its last write took, so it never
                # spends more than a tenth of the time copying. The log keeps events durable.
                pause = max(self.interval, DUTY * self.last_flush_s)
            except StoreBusyError:
                self.busy += 1
            except Exception as err:  # noqa: BLE001 - kept in the log; retried next tick
                self.errors += 1
                self.last_error = f"{type(err).__name__}: {err}"[:500]

    def flush(self, wait: float = 0.0) -> int:
        """Move the logged events into the store now; returns how many were inserted."""
        with self._mutex:
            pending = self.log.snapshot()
            if not pending:
                return 0
            t0 = time.perf_counter()
            n = write_events(self.dataset, pending, self.data_dir, wait=wait)
            self.last_flush_s = time.perf_counter() - t0
            self.log.drop_through(pending[-1].seq)
            self.flushed += n
            return n

    def close(self, wait: float = 10.0) -> None:
        """Stop the thread and flush what is left (what cannot be written stays in the log)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with contextlib.suppress(LtrecError):
            self.flush(wait=wait)


def iter_replay(
    dataset: str, log: EventLog, data_dir: Path | str | None = None, *, through: int
) -> Iterator[Event]:
    """Every acknowledged event up to ``through``, once each, in ``seq`` order, without the
    server's own impressions (they are no user's history): the log is read before the store,
    so an event the flusher moves in between is found in the store."""
    logged = [e for e in log.snapshot() if e.seq <= through and not e.exposure]
    stored = store_events(dataset, data_dir, through=through, exposures=False)
    seen = {e.seq for e in stored}
    merged = stored + [e for e in logged if e.seq not in seen]
    merged.sort(key=lambda e: e.seq)
    yield from merged
