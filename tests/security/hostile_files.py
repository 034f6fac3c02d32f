"""Hostile input files, generated at test time (nothing large is committed): gzip and Parquet
bombs, damaged archives, absurd headers, hostile ids. Each writer returns the file's path. And
the two probes every hostile case ends with: :func:`snapshot` of a data directory and
:func:`health` of a running server.

Shared by the ``tests/security`` import cases and ``benchmarks/bench_security.py``.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import os
import threading
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path


def snapshot(data: Path) -> dict[str, str]:
    """sha256 of every file under a data directory (the audit log aside: it records attempts)."""
    return {
        str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(data.rglob("*"))
        if p.is_file() and p.name != "audit.jsonl"
    }


@contextlib.contextmanager
def health(url: str) -> Iterator[list[bool]]:
    """Poll a server's ``/_stcore/health`` (2 s timeout each, every 0.25 s) while the body runs;
    yields the outcomes (True: answered ``ok`` in time)."""
    polls: list[bool] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    polls.append(resp.read() == b"ok")
            except OSError:
                polls.append(False)
            stop.wait(0.25)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield polls
    finally:
        stop.set()
        thread.join()

HEADER = b"user_id,item_id,event_type,timestamp\n"
ROW = b"u1,i1,view,2025-01-01T10:00:00\n"


def good_csv(path: Path, rows: int = 60) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "event_type", "timestamp"])
        for i in range(rows):
            w.writerow([f"u{i % 7}", f"i{i % 11}", "view", f"2025-01-{1 + i % 28:02d}T10:00:00"])
    return path


def big_csv_gz(path: Path, rows: int) -> Path:
    """A genuine (compressible 5-10x, like real logs) gzip CSV of ``rows`` events."""
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(HEADER)
        chunk = []
        for i in range(rows):
            day, minute = 1 + i % 28, i % 60
            line = b"u%d,i%d,view,2025-01-%02dT10:%02d:00\n" % (i % 9973, i % 7919, day, minute)
            chunk.append(line)
            if len(chunk) == 10_000:
                fh.write(b"".join(chunk))
                chunk = []
        fh.write(b"".join(chunk))
    return path


# ----------------------------------------------------------------------------- gzip


def gzip_bomb(path: Path, mib: int = 1024) -> Path:
    """One member inflating to ``mib`` MiB of a single repeated row (~1000x), streamed."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    block = ROW * ((1 << 20) // len(ROW))
    with path.open("wb") as fh:
        fh.write(comp.compress(HEADER))
        for _ in range(mib):
            fh.write(comp.compress(block))
        fh.write(comp.flush())
    return path


def gzip_members_bomb(path: Path, members: int = 200_000) -> Path:
    """Hundreds of thousands of empty gzip members after a valid one: a stall, not a size."""
    empty = gzip.compress(b"", mtime=0)
    with path.open("wb") as fh:
        fh.write(gzip.compress(HEADER + ROW * 10, mtime=0))
        fh.write(empty * members)
    return path


def gzip_long_line(path: Path, mib: int = 500) -> Path:
    """A CSV whose second line is one ``mib`` MiB field (no line end), gzip-compressed lazily."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    with path.open("wb") as fh:
        fh.write(comp.compress(HEADER + b"u1,"))
        block = b"i" * (1 << 20)
        for _ in range(mib):
            fh.write(comp.compress(block))
        fh.write(comp.compress(b",view,2025-01-01T10:00:00\n"))
        fh.write(comp.flush())
    return path


def gzip_trailing_garbage(path: Path) -> Path:
    path.write_bytes(gzip.compress(HEADER + ROW * 10, mtime=0) + b"this is not gzip")
    return path


def gzip_bad_crc(path: Path) -> Path:
    raw = bytearray(gzip.compress(HEADER + ROW * 10, mtime=0))
    raw[-8] ^= 0xFF  # the CRC32 of the trailer
    path.write_bytes(bytes(raw))
    return path


def gzip_truncated(path: Path) -> Path:
    raw = gzip.compress(HEADER + ROW * 1000, mtime=0)
    path.write_bytes(raw[: len(raw) // 2])
    return path


def gzip_zero_padding(path: Path) -> Path:
    """Ten rows, then trailing zero padding after the last member (tape blocks)."""
    rows = b"".join(b"u%d,i%d,view,2025-01-01T10:00:00\n" % (i, i) for i in range(10))
    path.write_bytes(gzip.compress(HEADER + rows, mtime=0) + b"\0" * 4096)
    return path


def gzip_empty(path: Path) -> Path:
    path.write_bytes(gzip.compress(b"", mtime=0))
    return path


# ----------------------------------------------------------------------------- Parquet


def parquet_dictionary_bomb(
    path: Path, value_mib: int = 10, rows: int = 1000, pad_kib: int = 0
) -> Path:
    """A tiny file whose dictionary holds one ``value_mib`` MiB string that every row repeats
    (``rows`` x ``value_mib`` MiB once decoded). ``pad_kib`` adds an incompressible column, so
    the file's size (and with it its declared ratio) can be tuned."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    big = pa.array(["x" * (value_mib << 20)])
    cols = {
        "user_id": pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), big),
        "item_id": pa.array([f"i{i % 7}" for i in range(rows)]),
        "event_type": pa.array(["view"] * rows),
        "timestamp": pa.array(["2025-01-01T10:00:00"] * rows),
    }
    if pad_kib:
        per = max(1, (pad_kib << 10) // rows)
        cols["pad"] = pa.array([os.urandom(per).hex()[:per] for _ in range(rows)])
    pq.write_table(pa.table(cols), path, compression="zstd", use_dictionary=True)
    return path


def parquet_many_rows(path: Path, rows: int = 50_000_000) -> Path:
    """Tens of millions of rows of one constant, run-length encoded into a few KB."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    block = pa.table(
        {
            "user_id": pa.DictionaryArray.from_arrays(
                pa.repeat(pa.scalar(0, pa.int32()), 1_000_000), pa.array(["u1"])
            )
        }
    )
    with pq.ParquetWriter(path, block.schema, compression="zstd") as w:
        for _ in range(rows // 1_000_000):
            w.write_table(block)
    return path


def parquet_nul_column(path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "user_id": ["u1", "u2"],
                "item\x00_id": ["i1", "i2"],
                "event_type": ["view", "view"],
                "timestamp": ["2025-01-01T10:00:00"] * 2,
            }
        ),
        path,
    )
    return path


def parquet_truncated(path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"user_id": ["u1"] * 100, "item_id": ["i1"] * 100}), path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] + b"PAR1")
    return path


def not_parquet(path: Path) -> Path:
    path.write_bytes(HEADER + ROW)
    return path


# ----------------------------------------------------------------------------- CSV


def many_columns(path: Path, columns: int = 25_000) -> Path:
    names = ["user_id", "item_id", "event_type", "timestamp"] + [f"c{i}" for i in range(columns)]
    row = ["u1", "i1", "view", "2025-01-01"] + ["x"] * columns
    path.write_text(",".join(names) + "\n" + ",".join(row) + "\n")
    return path


def endless_header(path: Path, mib: int = 12) -> Path:
    with path.open("wb") as fh:
        fh.write(b"user_id,item_id,event_type,timestamp")
        for _ in range(mib):
            fh.write(b",c" * (1 << 19))
    return path


def nested_quotes(path: Path, depth: int = 200_000) -> Path:
    """A field of doubled quotes hundreds of thousands deep (``""""...``), then valid rows."""
    with path.open("wb") as fh:
        fh.write(HEADER)
        fh.write(b'u1,"' + b'""' * depth + b'",view,2025-01-01T10:00:00\n')
        fh.write(b"".join(b"u%d,i%d,view,2025-01-01T10:00:00\n" % (i, i) for i in range(50)))
    return path


def unterminated_quote(path: Path) -> Path:
    path.write_bytes(HEADER + b'u1,"i1,view,2025-01-01T10:00:00\n' + ROW * 50)
    return path


def nul_bytes(path: Path) -> Path:
    path.write_bytes(HEADER + b"u1\0\0\0,i1,view,2025\0-01-01\n" * 50)
    return path


def utf16(path: Path) -> Path:
    path.write_bytes((HEADER + ROW * 10).decode().encode("utf-16"))
    return path


def zip_disguised(path: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("events.csv", HEADER + ROW)
    return path


def control_char_ids(path: Path, rows: int = 50) -> Path:
    """Every id holds a control character: every row is rejected."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "event_type", "timestamp"])
        for i in range(rows):
            w.writerow([f"u{i}\x07", f"i{i}\x1b[31m", "view", "2025-01-01T10:00:00"])
    return path


#: Ids exactly as a hostile shop could write them (stored as text, never interpreted).
HOSTILE_IDS = [
    '<a href="https://evil.example/">x</a>',
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "'; DROP TABLE events; --",
    '=HYPERLINK("http://evil.example","x")',
    "../../etc/passwd",
    "0001",
    "1e5",
    "[x](https://evil.example/md)",
    ":red[alert]",
]


def hostile_ids(path: Path) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "event_type", "timestamp"])
        for i, v in enumerate(HOSTILE_IDS):
            w.writerow([v, v, "view", f"2025-01-{1 + i:02d}T10:00:00"])
    return path

