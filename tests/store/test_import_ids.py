"""Ids are text exactly as the shop wrote them (issue 15 section 1): no float round trip, leading
zeros kept, edge whitespace trimmed, control characters (NUL included) a reject with its code.
One fixture per file kind: CSV, gzipped CSV, Parquet with integer, float, decimal and string id
columns."""

# ruff: noqa: S608 - the fixtures build their own SQL from constants

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from ltrec.store import connect
from ltrec.store.importing import import_dataset
from ltrec.store.importing.codes import RejectCode

CSV = (
    "user_id,item_id,event_type,ts\n"
    "00123,17850,view,2024-01-01 10:00:00\n"
    " 00042 , 0007 ,view,2024-01-01 11:00:00\n"
    "17850,\u00a0A-1\u3000,cart,2024-01-01 12:00:00\n"
    "ab\x01cd,5,view,2024-01-01 13:00:00\n"
    "u9,it\x7fem,view,2024-01-01 14:00:00\n"
    ",5,view,2024-01-01 15:00:00\n"
)
#: (user_id, item_id) stored for the CSV above: the first three rows, as written
CSV_IDS = [("00123", "17850"), ("00042", "0007"), ("17850", "A-1")]


def _events(name: str) -> list[tuple[str, str]]:
    con = connect(name)
    try:
        return con.execute("SELECT user_id, item_id FROM events ORDER BY ts").fetchall()
    finally:
        con.close()


def _rejects(name: str) -> list[tuple[int, str, str]]:
    con = connect(name)
    try:
        return con.execute("SELECT line, code, reason FROM rejects ORDER BY line").fetchall()
    finally:
        con.close()


def _check_csv_import(name: str) -> None:
    assert _events(name) == CSV_IDS
    assert _rejects(name) == [
        (5, RejectCode.CONTROL_CHARACTER_IN_ID, "control character in user_id"),
        (6, RejectCode.CONTROL_CHARACTER_IN_ID, "control character in item_id"),
        (7, RejectCode.MISSING_USER_ID, "missing user_id"),
    ]


def test_csv_ids_as_written(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(CSV, encoding="utf-8")
    report = import_dataset("ids", events=path, max_reject_share=1.0)
    assert report.rejects_by_code == {"control_character_in_id": 2, "missing_user_id": 1}
    _check_csv_import("ids")


def test_gzipped_csv_ids_as_written(tmp_path: Path) -> None:
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(CSV.encode("utf-8")))
    report = import_dataset("ids", events=path, max_reject_share=1.0)
    assert report.formats["events"] == "csv.gz"
    _check_csv_import("ids")


def _parquet(path: Path, select: str) -> Path:
    con = duckdb.connect()
    try:
        con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
    finally:
        con.close()
    return path


def _parquet_events(user: str, item: str) -> str:
    """A 4-row events table whose ids are the SQL expressions ``user`` / ``item`` over ``k``."""
    return (
        f"SELECT {user} AS user_id, {item} AS item_id, 'view' AS event_type, "
        "TIMESTAMP '2024-01-01' + INTERVAL (k) HOUR AS ts FROM range(4) t(k)"
    )


@pytest.mark.parametrize(
    ("user", "item", "want_type"),
    [
        ("CAST(17850 + k AS BIGINT)", "CAST(k AS INTEGER)", "BIGINT"),
        ("CAST(17850 + k AS DOUBLE)", "CAST(k AS FLOAT)", "DOUBLE"),
        ("CAST(17850 + k AS DECIMAL(10, 2))", "CAST(k AS DECIMAL(6, 1))", "DECIMAL(10,2)"),
        ("CAST(17850 + k AS VARCHAR)", "CAST(k AS VARCHAR)", "VARCHAR"),
    ],
    ids=["integer", "float", "decimal", "string"],
)
def test_parquet_numeric_ids_render_as_written(
    tmp_path: Path, user: str, item: str, want_type: str
) -> None:
    path = _parquet(tmp_path / "events.parquet", _parquet_events(user, item))
    con = duckdb.connect()
    got_type = con.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()[0][1]
    con.close()
    assert got_type == want_type  # the fixture has the column type the case is about
    report = import_dataset("ids", events=path)
    assert report.formats["events"] == "parquet" and report.rejected == 0
    assert _events("ids") == [("17850", "0"), ("17851", "1"), ("17852", "2"), ("17853", "3")]


def test_parquet_float_ids_with_blanks_and_fractions(tmp_path: Path) -> None:
    """pandas writes an id column with blanks as float: 17850.0 is '17850', a blank is a
    missing id, and a value with a real fraction stays as it is."""
    user = "CASE k WHEN 1 THEN NULL WHEN 2 THEN 17850.5 ELSE 17850.0 + k END::DOUBLE"
    path = _parquet(tmp_path / "events.parquet", _parquet_events(user, "CAST(k AS VARCHAR)"))
    report = import_dataset("ids", events=path, max_reject_share=1.0)
    assert report.rejects_by_code == {"missing_user_id": 1}
    assert _events("ids") == [("17850", "0"), ("17850.5", "2"), ("17853", "3")]


def test_parquet_string_ids_trimmed_zeros_kept_nul_rejected(tmp_path: Path) -> None:
    user = (
        "CASE k WHEN 0 THEN '00123' WHEN 1 THEN ' \t17850\r\n' WHEN 2 THEN 'a' || chr(0) || 'b' "
        "ELSE chr(0) END"
    )
    path = _parquet(tmp_path / "events.parquet", _parquet_events(user, "'0' || k"))
    report = import_dataset("ids", events=path, max_reject_share=1.0)
    assert report.rejects_by_code == {"control_character_in_id": 2}
    assert _events("ids") == [("00123", "00"), ("17850", "01")]
    assert [(line, code) for line, code, _ in _rejects("ids")] == [
        (3, RejectCode.CONTROL_CHARACTER_IN_ID),
        (4, RejectCode.CONTROL_CHARACTER_IN_ID),
    ]


def test_items_and_users_files_follow_the_same_id_rule(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text(CSV, encoding="utf-8")
    items = _parquet(
        tmp_path / "items.parquet",
        "SELECT CAST(17850 AS DOUBLE) AS item_id, 'Heart' AS title "
        "UNION ALL SELECT NULL, 'Nothing' UNION ALL SELECT CAST(7 AS DOUBLE), 'Seven'",
    )
    users = tmp_path / "users.csv"
    users.write_text("user_id,region\n 00123 ,north\nx\x02y,south\n", encoding="utf-8")
    report = import_dataset("ids", events=events, items=items, users=users, max_reject_share=1.0)
    assert report.rejects_by_code == {
        "control_character_in_id": 3,
        "missing_user_id": 1,
        "missing_item_id": 1,
    }
    con = connect("ids")
    try:
        titles = dict(con.execute("SELECT item_id, title FROM items").fetchall())
        regions = dict(con.execute("SELECT user_id, region FROM users").fetchall())
    finally:
        con.close()
    assert titles["17850"] == "Heart" and titles["7"] == "Seven"
    assert regions["00123"] == "north" and "x\x02y" not in regions
