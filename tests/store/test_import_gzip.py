"""Damaged and hostile compressed inputs (issue 16 section 8): gzip padding accepted as ``gzip -d``
does; trailing garbage, a bad CRC, a truncated member and a flood of empty members refused with a
clear message (CLI exit 2, store unchanged); Parquet refused from its metadata and text lengths
before anything is cast (a dictionary repeating a 10 MB string, a declared row flood, a NUL byte
in a column name)."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ltrec.cli import main
from ltrec.errors import BadInputError
from ltrec.store import connect
from ltrec.store.importing import import_dataset, sniff
from ltrec.store.importing.read import ReadConfig
from tests.store.test_import_bad import table_checksums

HEADER = b"user_id,item_id,event_type,ts\n"
BODY = b"".join(b"u%d,i%d,view,2024-01-%02d\n" % (i, i % 50, 1 + i % 28) for i in range(400))
GOOD = gzip.compress(HEADER + BODY)


def _count(name: str) -> int:
    con = connect(name)
    try:
        return con.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def shop(tmp_path: Path) -> dict:
    """A dataset to refuse imports into; its checksums before."""
    path = tmp_path / "base.csv"
    path.write_text("user_id,item_id,event_type,ts\nu1,i1,view,2024-01-02\n")
    import_dataset("shop", events=path)
    return table_checksums("shop")


def _refused(path: Path, capsys, before: dict, message: str) -> None:
    """CLI exit 2 with ``message`` on stderr (never "internal error"); the store as before."""
    assert main(["import", "shop", "--events", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "internal error" not in err.lower()
    assert table_checksums("shop") == before


def test_trailing_zero_padding_is_accepted(tmp_path):
    path = tmp_path / "padded.csv.gz"
    path.write_bytes(GOOD + b"\0" * 4096)
    src = sniff(path, "events")
    trimmed = src.read_path
    assert trimmed is not None and trimmed.stat().st_size == len(GOOD)
    assert "zero padding after the last gzip member ignored" in src.notes
    del src
    assert not trimmed.exists()  # the trimmed copy goes with the SourceFile
    report = import_dataset("pad", events=path)
    assert report.rows_loaded["events"] == 400 and report.rejected == 0


def test_multi_member_gzip_is_read_whole(tmp_path):
    path = tmp_path / "members.csv.gz"
    path.write_bytes(gzip.compress(HEADER + BODY[:5000]) + gzip.compress(BODY[5000:]))
    assert import_dataset("multi", events=path).rows_loaded["events"] == 400


def test_trailing_garbage_is_refused(tmp_path, capsys, shop):
    path = tmp_path / "garbage.csv.gz"
    path.write_bytes(GOOD + b"this is not gzip")
    _refused(
        path,
        capsys,
        shop,
        f"garbage.csv.gz: is a damaged gzip file (trailing garbage at byte {len(GOOD):,} after "
        "1 complete member)",
    )


def test_bad_crc_is_refused(tmp_path, capsys, shop):
    path = tmp_path / "crc.csv.gz"
    data = bytearray(GOOD)
    data[-8] ^= 0xFF  # the CRC32 of the first (only) member
    path.write_bytes(bytes(data))
    _refused(
        path, capsys, shop, "crc.csv.gz: is a damaged gzip file (bad CRC: the data is damaged)"
    )


def test_wrong_length_is_refused(tmp_path, capsys, shop):
    path = tmp_path / "isize.csv.gz"
    data = bytearray(GOOD)
    data[-1] ^= 0x01  # ISIZE
    path.write_bytes(bytes(data))
    _refused(path, capsys, shop, "isize.csv.gz: is a damaged gzip file (wrong length check")


def test_truncated_member_is_refused(tmp_path, capsys, shop):
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(GOOD[: len(GOOD) // 2])
    _refused(path, capsys, shop, "cut.csv.gz: is a truncated gzip file (member 1 ends early")


def test_corrupt_deflate_data_is_refused(tmp_path, capsys, shop):
    path = tmp_path / "corrupt.csv.gz"
    data = bytearray(GOOD)
    data[20:40] = b"\xff" * 20
    path.write_bytes(bytes(data))
    _refused(path, capsys, shop, "corrupt.csv.gz: is a damaged gzip file (")


def test_flood_of_empty_members_is_a_bomb(tmp_path, capsys, shop):
    empty = gzip.compress(b"", mtime=0)
    path = tmp_path / "members.csv.gz"
    path.write_bytes(GOOD + empty * 200_000)  # 4 MB: 200k members, nothing in them
    _refused(path, capsys, shop, "gzip members from")
    with pytest.raises(BadInputError, match="refused as a likely decompression bomb"):
        sniff(path, "events")


def test_member_cost_is_what_counts(tmp_path):
    """The same flood passes when members cost nothing: the guard is the member count times
    gzip_member_cost plus the bytes."""
    empty = gzip.compress(b"", mtime=0)
    path = tmp_path / "members.csv.gz"
    path.write_bytes(GOOD + empty * 20_000)
    size = path.stat().st_size
    free = ReadConfig(gzip_member_cost=0)
    assert sniff(path, "events", free).uncompressed_size == len(HEADER + BODY)
    with pytest.raises(BadInputError) as exc:
        sniff(path, "events")
    # refused at the first member whose 4 KiB pass the 16 MiB floor (the ratio to the bytes
    # read so far is then ~200x): after a fixed amount of work, whatever the file's length
    data = len(HEADER + BODY)
    m = (16 * 2**20 - data) // 4096 + 1
    done = len(GOOD) + (m - 1) * len(empty)
    assert str(exc.value).startswith(
        f"members.csv.gz: inflates to more than {4096 * m + data:,} bytes in {m:,} gzip members "
        f"from the first {done:,} of {size:,} bytes compressed (over "
    )


def test_deflate_stream_without_gzip_header_is_refused(tmp_path):
    path = tmp_path / "raw.csv.gz"
    path.write_bytes(b"\x1f\x8b" + zlib.compress(HEADER + BODY)[2:])
    with pytest.raises(BadInputError, match=r"raw\.csv\.gz: is a damaged gzip file \("):
        sniff(path, "events")


# ---------------------------------------------------------------------------------- Parquet


def _dictionary_bomb(path: Path, rows: int, value_mb: int = 10) -> None:
    big = "x" * (value_mb * 2**20)
    users = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array([big]))
    table = pa.table(
        {
            "user_id": users,
            "item_id": pa.array(["i1"] * rows),
            "event_type": pa.array(["view"] * rows),
            "ts": pa.array(["2024-01-02"] * rows),
        }
    )
    pq.write_table(table, path, compression="zstd", compression_level=19)


def test_parquet_dictionary_bomb_is_refused_before_reading(tmp_path, capsys, shop):
    path = tmp_path / "dict.parquet"
    _dictionary_bomb(path, 1000)
    assert os.path.getsize(path) < 4096
    _refused(
        path,
        capsys,
        shop,
        "dict.parquet: column 'user_id' holds a value of 10.0 MiB; values are limited to 1.0 MiB",
    )


def test_parquet_declared_row_flood_is_refused(tmp_path, capsys, shop):
    path = tmp_path / "rows.parquet"
    n = 5_000_000
    table = pa.table(
        {
            "user_id": pa.array(["u"] * n).dictionary_encode(),
            "item_id": pa.array(["i"] * n).dictionary_encode(),
            "event_type": pa.array(["view"] * n).dictionary_encode(),
            "ts": pa.array(["2024-01-02"] * n).dictionary_encode(),
        }
    )
    pq.write_table(table, path, compression="zstd")
    size = os.path.getsize(path)
    assert n > 64 * size
    _refused(path, capsys, shop, f"rows.parquet: declares 5,000,000 rows in {size:,} bytes")


def test_parquet_nul_in_column_name_is_refused(tmp_path, capsys, shop):
    path = tmp_path / "nul.parquet"
    table = pa.table({"user_id": ["u1"], "item\x00id": ["i1"], "event_type": ["view"],
                      "ts": ["2024-01-02"]})  # fmt: skip
    pq.write_table(table, path)
    _refused(
        path,
        capsys,
        shop,
        "nul.parquet: column 2 has a control character in its name ('item\\x00id': a NUL "
        "byte or similar)",
    )


def test_parquet_long_values_within_limits_import(tmp_path):
    """A real file with a dictionary and a long-ish title imports: the guards are not in the
    way of ordinary data."""
    path = tmp_path / "ok.parquet"
    n = 2000
    table = pa.table(
        {
            "user_id": [f"u{i % 97}" for i in range(n)],
            "item_id": [f"{i % 31:05d}" for i in range(n)],
            "event_type": ["view"] * n,
            "ts": ["2024-01-02"] * n,
            "note": ["y" * 50_000 if i == 0 else "n" for i in range(n)],
        }
    )
    pq.write_table(table, path)
    report = import_dataset("ok", events=path)
    assert report.rows_loaded["events"] == n and report.rejected == 0
    assert _count("ok") == n
