"""The app's read connection caps DuckDB's memory (issue 19 §1): past the cap a big
aggregation spills to a per-process temp folder instead of growing the server."""

from __future__ import annotations

import os

import duckdb
import pytest

from ltrec.config import get_settings
from ltrec.ui.state import bound

pytestmark = pytest.mark.slow


def _setting(con: duckdb.DuckDBPyConnection, name: str) -> str:
    return str(con.execute("SELECT current_setting(?)", [name]).fetchone()[0])


def test_the_read_connection_is_capped_and_spills_to_its_own_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.delenv("LTREC_DUCKDB_TEMP_DIR", raising=False)
    monkeypatch.setenv("LTREC_APP_DUCKDB_MEMORY_MB", "100")
    con = duckdb.connect()
    bound(con)
    assert get_settings().app_duckdb_memory_mb == 100
    assert _setting(con, "memory_limit") == "95.3 MiB"  # DuckDB shows 100 MB in MiB
    assert _setting(con, "temp_directory").endswith(f"ltrec-duckdb-{os.getpid()}")
    # a grouping whose hash table is over the cap: with nowhere to spill DuckDB gives up; the
    # app's connection spills and gets the right answer
    n = 4_000_000
    sql = "SELECT count(*), sum(c) FROM (SELECT i, count(*) AS c FROM range(?) t(i) GROUP BY i)"
    nowhere = duckdb.connect()
    nowhere.execute("SET memory_limit = '100MB'")
    nowhere.execute("SET temp_directory = ''")
    with pytest.raises(duckdb.OutOfMemoryException):
        nowhere.execute(sql, [n]).fetchone()
    assert con.execute(sql, [n]).fetchone() == (n, n)
    monkeypatch.setenv("LTREC_DUCKDB_TEMP_DIR", str(tmp_path))
    other = duckdb.connect()
    bound(other)
    assert _setting(other, "temp_directory") == str(tmp_path)
