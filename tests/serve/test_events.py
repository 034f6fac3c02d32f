"""Real-time events: the importer's rules, the write-ahead log, the flush into the store.

The validator is checked against a real ``ltrec import`` of the same rows (same ids kept, same
rows rejected for the same reasons), and by Hypothesis for any id text.
"""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltrec.app.live_events import (
    TABLE,
    Event,
    EventError,
    EventLog,
    ServerBusyError,
    Validator,
    store_events,
    store_seq,
    wal_path,
    write_events,
)
from ltrec.ids import MAX_ID_CHARS
from ltrec.store import connect, read_meta

from .harness import cli

VALIDATOR = Validator()
TS = "2025-06-01T12:00:00"
ROWS = [  # (user_id, item_id, event_type)
    ("u1", "i1", "view"),
    ("  u2\u00a0", "\u3000i2 ", "Add_To_Cart"),
    ("00042", "0007", "ORDER"),
    ("NaN", "i1", "view"),
    ("u3", "null", "view"),
    ("u\x01x", "i1", "view"),
    ("u4", "i\x7f", "purchase"),
    ("u5", "i1", "wishlist"),
    ("u6", "i1", ""),
    ("Ünïcødé ✓", "i-1/2", "click"),
    ("u7", " None ", "pv"),
]


def verdict(row: tuple[str, str, str]) -> tuple[str, ...]:
    try:
        (e,) = VALIDATOR.validate([{"user_id": row[0], "item_id": row[1], "event_type": row[2],
                                    "ts": TS}])  # fmt: skip
    except EventError as err:
        return ("reject", err.message)
    return ("ok", e.user_id, e.item_id, e.event_type)


def test_validator_agrees_with_the_importer(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "event_type", "ts", "row"])
        for n, (u, i, e) in enumerate(ROWS):
            w.writerow([u, i, e, TS, n])
    out = cli(data_dir, "import", "imp", "--events", str(path), "--preset", "canonical",
              "--max-reject-share", "1", "--json")  # fmt: skip
    assert json.loads(out.stdout)["rows_loaded"]["events"] == 4
    con = connect("imp", data_dir)
    try:
        kept = con.execute("SELECT user_id, item_id, event_type FROM events").fetchall()
        rejected = con.execute("SELECT reason, raw FROM rejects").fetchall()
    finally:
        con.close()
    want = {("ok", *r) for r in kept} | {("reject", reason) for reason, _ in rejected}
    got = [verdict(r) for r in ROWS]
    assert set(got) == want
    assert [g[0] for g in got] == [
        "ok", "ok", "ok", "reject", "reject", "reject", "reject", "reject", "reject", "ok",
        "reject",
    ]  # fmt: skip
    assert got[1] == ("ok", "u2", "i2", "cart") and got[2] == ("ok", "00042", "0007", "purchase")


_PRINTABLE = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x2FFF, exclude_categories=("Z", "C")),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(core=_PRINTABLE, pad=st.sampled_from(["", " ", "\t", "\u00a0", " \u3000 "]))
def test_an_id_is_its_text_trimmed(core: str, pad: str) -> None:
    if core.lower() in ("null", "none", "nan"):
        return
    (e,) = VALIDATOR.validate([{"user_id": pad + core + pad, "item_id": core,
                                "event_type": "view"}])  # fmt: skip
    assert (e.user_id, e.item_id) == (core, core)


@settings(max_examples=60, deadline=None)
@given(
    left=_PRINTABLE,
    right=_PRINTABLE,
    ctl=st.sampled_from([chr(c) for c in (*range(0, 9), *range(14, 32), 0x7F)]),
)
def test_a_control_character_inside_an_id_rejects_it(left: str, right: str, ctl: str) -> None:
    with pytest.raises(EventError, match="control character in item_id") as err:
        VALIDATOR.validate([{"user_id": "u", "item_id": left + ctl + right, "event_type": "view"}])
    assert err.value.field == "item_id"


@settings(max_examples=30, deadline=None)
@given(n=st.integers(MAX_ID_CHARS - 2, MAX_ID_CHARS + 2))
def test_id_length_bound(n: int) -> None:
    raw = [{"user_id": "u" * n, "item_id": "i", "event_type": "view"}]
    if n <= MAX_ID_CHARS:
        assert VALIDATOR.validate(raw)[0].user_id == "u" * n
    else:
        with pytest.raises(EventError, match=f"{n:,} characters long"):
            VALIDATOR.validate(raw)


def test_timestamps_follow_the_importer(data_dir: Path) -> None:
    def ts(value: object) -> datetime:
        return VALIDATOR.validate([{"user_id": "u", "item_id": "i", "event_type": "view",
                                    "ts": value}])[0].ts  # fmt: skip

    want = datetime(2025, 6, 1, 10, 0)
    assert ts("2025-06-01T12:00:00+02:00") == want
    assert ts("2025-06-01 10:00:00") == want
    assert ts(1748772000) == want  # unix seconds
    assert ts(1748772000000) == want  # milliseconds, by magnitude
    for bad, why in (("1989-12-31", "out of range"), ("3000-01-01", "out of range"),
                     ("01/02/2025", "unparseable")):  # fmt: skip
        with pytest.raises(EventError, match=why):
            ts(bad)


def test_batch_errors_name_the_position() -> None:
    raw = [{"user_id": "u", "item_id": "i", "event_type": "view"}] * 3
    raw = [*raw[:2], {**raw[2], "event_type": "fav"}]
    with pytest.raises(EventError) as err:
        VALIDATOR.validate(raw)
    assert (err.value.field, err.value.message) == (
        "events[2].event_type",
        "unknown event type 'fav'",
    )
    with pytest.raises(EventError, match="no events"):
        VALIDATOR.validate([])


# ----------------------------------------------------------------------------- the log


def events(n: int) -> list[Event]:
    return [Event(f"u{i}", "SKU-0004", "view", datetime(2025, 6, 1, 0, i)) for i in range(n)]


def test_log_numbers_syncs_and_replays(data_dir: Path) -> None:
    log = EventLog("demo", data_dir, floor=10)
    done = log.append(events(3))
    assert [e.seq for e in done] == [11, 12, 13]
    with pytest.raises(ServerBusyError, match="already served"):
        EventLog("demo", data_dir)
    log.close()
    path = wal_path("demo", data_dir)
    with path.open("ab") as fh:  # a crash in the middle of an (unacknowledged) append
        fh.write(b'{"seq": 14, "user_id": "torn')
    again = EventLog("demo", data_dir)
    assert again.pending == done and again.last_seq == 13
    assert path.read_bytes().count(b"\n") == 3 and path.read_bytes().endswith(b"\n")
    again.drop_through(12)
    assert [e.seq for e in again.pending] == [13]
    assert [e.seq for e in again.append(events(1))] == [14]
    again.close()
    assert [e.seq for e in EventLog("demo", data_dir).pending] == [13, 14]


def test_write_events_is_idempotent_and_keeps_runs_fresh(data_dir: Path) -> None:
    cli(data_dir, "demo", "--users", "50", "--items", "30", "--events", "1000")
    before = read_meta_of(data_dir)
    batch = [
        Event(e.user_id, e.item_id, e.event_type, e.ts, i + 1) for i, e in enumerate(events(4))
    ]
    assert write_events("demo", batch[:3], data_dir) == 3
    assert write_events("demo", batch, data_dir) == 1  # a replay after a crash: only the new one
    assert write_events("demo", batch, data_dir) == 0
    assert store_events("demo", data_dir) == batch
    assert store_seq("demo", data_dir) == 4
    after = read_meta_of(data_dir)
    assert after["data_import_id"] == before["data_import_id"]  # runs stay fresh
    assert after["import_id"] != before["import_id"]  # caches see the write
    con = connect("demo", data_dir)
    try:
        n_events = con.execute("SELECT count(*) FROM events WHERE source = 'api'").fetchone()[0]
        n_live = con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]  # noqa: S608
    finally:
        con.close()
    assert (n_events, n_live) == (0, 4)
    assert not [p for p in os.listdir(data_dir) if ".tmp" in p]


def read_meta_of(data_dir: Path) -> dict[str, str]:
    con = connect("demo", data_dir)
    try:
        return read_meta(con)
    finally:
        con.close()


@settings(max_examples=25, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(1, 5)),
            st.tuples(st.just("drop"), st.integers(0, 30)),
            st.tuples(st.just("reopen"), st.booleans()),
        ),
        max_size=12,
    )
)
def test_log_keeps_exactly_what_was_not_dropped(tmp_path_factory, ops: list) -> None:
    """Any sequence of appends, drops (of what the store holds) and reopens, some after a torn
    append: the log holds exactly the appended events above the last drop, numbered 1, 2, ..."""
    root = tmp_path_factory.mktemp("wal")
    log = EventLog("demo", root)
    want: list[Event] = []
    last = 0
    for op, arg in ops:
        if op == "append":
            done = log.append(events(arg))
            assert [e.seq for e in done] == list(range(last + 1, last + arg + 1))
            want += done
            last += arg
        elif op == "drop":
            log.drop_through(arg)
            want = [e for e in want if e.seq > arg]
        else:
            log.close()
            if arg:  # killed in the middle of an append that was never acknowledged
                with wal_path("demo", root).open("ab") as fh:
                    fh.write(b'{"seq": 999, "user_')
            log = EventLog("demo", root, floor=last)
        assert log.pending == want and log.last_seq == last
    log.close()


def test_deleting_a_dataset_removes_its_log_and_waits_for_no_server(data_dir: Path) -> None:
    """The log goes with the dataset (a dataset made again under the name starts clean); while
    a server holds the log, the delete is refused and the store is left as it was."""
    from ltrec.app.auth import LOCAL
    from ltrec.app.live_events import ServerBusyError as Busy
    from ltrec.app.services import delete_dataset
    from ltrec.synth.demo import DemoConfig, build_demo

    build_demo(DemoConfig(users=60, items=40, events=1000, seed=3), data_dir=data_dir)
    store = data_dir / "demo.duckdb"
    log = EventLog("demo", data_dir)
    log.append(events(2))
    before = store.read_bytes()
    with pytest.raises(Busy, match="served by a running `ltrec serve`"):
        delete_dataset(LOCAL, "demo", data_dir)
    assert store.read_bytes() == before and wal_path("demo", data_dir).stat().st_size > 0
    log.close()
    delete_dataset(LOCAL, "demo", data_dir)
    assert not store.exists() and not wal_path("demo", data_dir).exists()
