"""The write protocol: atomic swap, one writer, nothing changes on failure."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import duckdb
import pytest

from ltrec.errors import BadInputError, DatasetNotFoundError, StoreBusyError
from ltrec.store import check_name, connect, file_version, list_datasets, read_meta, writing


def _events(name: str) -> list[tuple]:
    con = connect(name)
    try:
        return con.execute("SELECT user_id, item_id FROM events ORDER BY ALL").fetchall()
    finally:
        con.close()


def test_write_then_read(data_dir):
    with writing("shop") as con:
        con.execute("INSERT INTO events (user_id, item_id, event_type) VALUES ('u1', 'i1', 'view')")
    assert list_datasets() == ["shop"]
    assert _events("shop") == [("u1", "i1")]
    meta = read_meta(connect("shop"))
    assert meta["name"] == "shop" and len(meta["import_id"]) == 32


def test_failure_leaves_store_unchanged(data_dir):
    with writing("shop") as con:
        con.execute("INSERT INTO events (user_id, item_id) VALUES ('u1', 'i1')")
    before = file_version("shop")
    with pytest.raises(RuntimeError), writing("shop") as con:
        con.execute("INSERT INTO events (user_id, item_id) VALUES ('u2', 'i2')")
        raise RuntimeError("boom")
    assert _events("shop") == [("u1", "i1")]
    assert file_version("shop") == before
    assert sorted(p.name for p in data_dir.iterdir() if "tmp" in p.name) == []


def test_reader_keeps_snapshot_while_writer_swaps(data_dir):
    with writing("shop") as con:
        con.execute("INSERT INTO events (user_id, item_id) VALUES ('u1', 'i1')")
    reader = connect("shop")
    with writing("shop") as con:
        con.execute("INSERT INTO events (user_id, item_id) VALUES ('u2', 'i2')")
    assert reader.execute("SELECT count(*) FROM events").fetchone() == (1,)
    assert len(_events("shop")) == 2


def test_replace_starts_empty(data_dir):
    with writing("shop") as con:
        con.execute("INSERT INTO events (user_id, item_id) VALUES ('u1', 'i1')")
    with writing("shop", replace=True) as con:
        con.execute("INSERT INTO events (user_id, item_id) VALUES ('u9', 'i9')")
    assert _events("shop") == [("u9", "i9")]


def _hold_lock(root: str, ready) -> None:
    os.environ["LTREC_DATA_DIR"] = root
    with writing("shop"):
        ready.set()
        time.sleep(30)


def test_second_writer_is_refused_and_crash_leaves_no_trace(data_dir):
    with writing("shop") as con:
        con.execute("INSERT INTO events (user_id, item_id) VALUES ('u1', 'i1')")
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(data_dir), ready))
    proc.start()
    try:
        assert ready.wait(60)
        with pytest.raises(StoreBusyError, match="busy: it is being written") as info:
            with writing("shop", wait=0.3):
                pass
        assert info.value.exit_code == 2 and "busy, try again" in str(info.value)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # a writer dying mid-write
        proc.join()
    assert _events("shop") == [("u1", "i1")]
    with writing("shop") as con:  # the lock died with the process; stale temp files are swept
        con.execute("INSERT INTO events (user_id, item_id) VALUES ('u2', 'i2')")
    assert len(_events("shop")) == 2
    assert [p.name for p in data_dir.iterdir() if "tmp" in p.name] == []


@pytest.mark.parametrize("bad", ["", "a/b", "../x", "x;DROP", "a b", ".hidden", "x" * 65, "é"])
def test_bad_names_refused(bad):
    with pytest.raises(BadInputError, match="invalid dataset name"):
        check_name(bad)


def test_missing_dataset_is_clear(data_dir):
    with pytest.raises(DatasetNotFoundError, match="ltrec demo"):
        connect("nope")


def test_not_a_duckdb_file(data_dir):
    (data_dir / "junk.duckdb").write_bytes(b"not a database")
    with pytest.raises(Exception) as info:
        connect("junk")
    assert "cannot be opened" in str(info.value)
    assert not isinstance(info.value, duckdb.Error)
