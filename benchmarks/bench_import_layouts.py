"""Import layouts (issue 15) and hostile compressed files (issue 16): throughput per preset against
the same-store floor, a 5,000-column file, a large gzipped file's peak memory, hostile gzip and
Parquet files.

Topics (``--only`` picks some; each child runs in a fresh process, so its peak RSS is its own):

* ``presets``: for each preset (canonical, events, orders, ratings, behaviour) a generated CSV
  of ``--rows`` rows, imported by ``import_dataset`` and by the *floor*: hand-written DuckDB SQL
  that reads the same file into the same store schema (``events`` with text ids, parsed times
  and canonical event types, ``items``, ``users``, ``user_derived``) with no validation,
  rejects, line numbers, dedup check or atomic swap. ``x floor`` is ltrec's time over the
  floor's; MiB/s is the file's size over ltrec's time.
* ``wide``: 5,000 columns x 10,000 rows, a 150 KiB header (issue: <= 10 s; it was 331 s), and
  the floor (the four used columns read into ``events``).
* ``gz``: a gzipped events file of about ``--gz-mb`` MiB compressed (the issue: 1 GB, peak
  memory <= 2 GB), imported by ``ltrec import``; peak RSS of the importing process.
* ``hostile``: damaged and hostile gzip and Parquet files, each imported by ``ltrec import`` in a
  child: exit code, message, seconds and peak RSS (the issue: <= 5 s and <= 1 GB each).

Usage: ``python benchmarks/bench_import_layouts.py [--rows 1000000] [--gz-mb 1024]
[--only presets,wide,gz,hostile]``. Prints tables and writes
``benchmarks/results/import_layouts.json``.
"""

# SQL here is this script's own, over generated files in a private temp dir.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PRESETS = ("canonical", "events", "orders", "ratings", "behaviour")
TOPICS = ("presets", "wide", "gz", "hostile")

# ------------------------------------------------------------------------------ generation

_GEN = {
    "canonical": """
        SELECT 'u' || (hash(i) % 200000) AS user_id, 'i' || (hash(i * 7) % 50000) AS item_id,
            CASE WHEN i % 50 = 0 THEN 'purchase' WHEN i % 20 = 0 THEN 'cart' ELSE 'view' END
                AS event_type,
            strftime(TIMESTAMP '2024-01-01' + to_seconds(i), '%Y-%m-%d %H:%M:%S') AS ts,
            round((hash(i * 3) % 10000) / 100.0, 2) AS price
        FROM range({n}) t(i)""",
    "events": """
        SELECT 1420070400000 + i * 37 AS timestamp, (hash(i) % 1400000)::BIGINT AS visitorid,
            CASE WHEN i % 50 = 0 THEN 'transaction' WHEN i % 20 = 0 THEN 'addtocart'
                ELSE 'view' END AS event,
            (hash(i * 7) % 235000)::BIGINT AS itemid,
            CASE WHEN i % 50 = 0 THEN (i // 50)::VARCHAR END AS transactionid
        FROM range({n}) t(i)""",
    "orders": """
        SELECT (536365 + i // 4)::VARCHAR AS InvoiceNo, (10000 + hash(i * 7) % 4000)::VARCHAR
                AS StockCode,
            'ITEM ' || (10000 + hash(i * 7) % 4000) AS Description, 1 + i % 12 AS Quantity,
            strftime(TIMESTAMP '2010-12-01 08:26' + to_seconds(i * 15), '%m/%d/%Y %H:%M')
                AS InvoiceDate,
            round(0.5 + (hash(i * 3) % 2000) / 100.0, 2) AS UnitPrice,
            (12346 + hash(i // 4) % 4000)::VARCHAR AS CustomerID,
            ['United Kingdom', 'France', 'Germany', 'EIRE'][(1 + hash(i // 4) % 4)::BIGINT]
                AS Country
        FROM range({n}) t(i)""",
    "ratings": """
        SELECT (hash(i) % 100000)::VARCHAR AS user, (hash(i * 7) % 20000)::VARCHAR AS item,
            1 + hash(i * 3) % 5 AS rating, 1420070400 + i AS timestamp
        FROM range({n}) t(i)""",
    "behaviour": """
        SELECT (hash(i) % 1000000)::VARCHAR AS user_id, (hash(i * 7) % 4000000)::VARCHAR
                AS item_id,
            (hash(hash(i * 7) % 4000000) % 10000)::VARCHAR AS category_id,
            CASE WHEN i % 100 < 89 THEN 'pv' WHEN i % 100 < 95 THEN 'cart'
                WHEN i % 100 < 98 THEN 'fav' ELSE 'buy' END AS behavior_type,
            1511544070 + i // 10 AS timestamp
        FROM range({n}) t(i)""",
}


def generate(preset: str, path: Path, rows: int) -> None:
    import duckdb

    header = "false" if preset == "behaviour" else "true"  # the behaviour log has none
    con = duckdb.connect()
    con.execute(
        f"COPY ({_GEN[preset].format(n=int(rows))}) TO '{path}' (HEADER {header}, DELIMITER ',')"
    )
    con.close()


def generate_wide(path: Path, ncols: int = 5000, rows: int = 10_000) -> None:
    import duckdb

    extra = ", ".join(
        f"(i * {j}) % 97 AS attribute_column_number_{j:05d}" for j in range(ncols - 4)
    )
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT 'u' || (i % 3000) AS user_id, 'i' || (i % 5000) AS item_id, "
        f"'view' AS event_type, 1600000000 + i AS ts, {extra} FROM range({rows}) t(i)) "
        f"TO '{path}' (HEADER)"
    )
    con.close()


def generate_gz(path: Path, mib: int) -> int:
    """An events CSV, gzipped (level 1) while it is written, until ``mib`` MiB compressed.
    Rows are written by DuckDB in blocks of 2M to a plain file, then compressed in a stream."""
    import duckdb

    con = duckdb.connect()
    block, start, rows = 2_000_000, 0, 0
    plain = path.with_suffix(".part.csv")
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(b"timestamp,visitorid,event,itemid,transactionid\n")
        while out.fileobj.tell() < mib * 2**20:  # type: ignore[union-attr]
            sql = _GEN["events"].format(n=block).replace("range(", f"range({start}, {start}+")
            con.execute(f"COPY ({sql}) TO '{plain}' (HEADER false)")
            with plain.open("rb") as src:
                shutil.copyfileobj(src, out, 4 * 2**20)
            start += block
            rows += block
    plain.unlink()
    con.close()
    return rows


# --------------------------------------------------------------------------------- children

_CHILD = r"""
import json, os, resource, sys, time
which, preset, path, work = sys.argv[1:5]
t = time.perf_counter()
out = {}
if which == "ltrec":
    from ltrec.store.importing import import_dataset
    rep = import_dataset("bench", events=path, preset=preset, data_dir=work)
    out = {"rows": rep.rows_loaded["events"], "rejected": rep.rejected}
elif which == "cli":
    import contextlib, io
    from ltrec.errors import BadInputError
    from ltrec.store.importing import sniff
    t_read = time.perf_counter()
    try:  # the read step alone, in this process: the guards' own cost
        sniff(path, "events")
    except BadInputError:
        pass
    out["read_step_seconds"] = time.perf_counter() - t_read
    out["read_step_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    from ltrec.cli import main
    err = io.StringIO()
    t_main = time.perf_counter()
    with contextlib.redirect_stderr(err):
        rc = main(["import", "bench", "--events", path])
    out["main_seconds"] = time.perf_counter() - t_main
    # the CLI imports in a worker process: its peak is a child's
    out["worker_rss_bytes"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    out.update(rc=rc, message=err.getvalue().strip().splitlines()[0][:160] if rc else "")
elif which == "floor":
    import duckdb
    from ltrec.store.finalize import build_user_derived
    from ltrec.store.schema import create_schema
    con = duckdb.connect(os.path.join(work, "floor.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    create_schema(con)
    FLOORS = json.loads(sys.argv[5])
    for sql in FLOORS[preset]:
        con.execute(sql.replace("{path}", path.replace("'", "''")))
    build_user_derived(con)
    out = {"rows": con.execute("SELECT count(*) FROM events").fetchone()[0]}
    con.close()
out["seconds"] = time.perf_counter() - t
out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(out))
"""


def _csv(cols: list[str], header: bool = True) -> str:
    types = ", ".join(f"'{c}': 'VARCHAR'" for c in cols)
    h = "true" if header else "false"
    return f"read_csv('{{path}}', columns={{{types}}}, header={h}, auto_detect=false)"


_EV = "INSERT INTO events (user_id, item_id, event_type, ts, session_id, quantity, price) "
_ENTITIES = [
    "INSERT INTO items (item_id) SELECT DISTINCT item_id FROM events",
    "INSERT INTO users (user_id) SELECT DISTINCT user_id FROM events",
]
FLOORS: dict[str, list[str]] = {
    "canonical": [
        _EV + "SELECT user_id, item_id, event_type, CAST(ts AS TIMESTAMP), NULL, NULL, "
        "CAST(price AS DOUBLE) FROM " + _csv(["user_id", "item_id", "event_type", "ts", "price"]),
        *_ENTITIES,
    ],
    "events": [
        _EV + "SELECT visitorid, itemid, CASE event WHEN 'view' THEN 'view' WHEN 'addtocart' "
        "THEN 'cart' ELSE 'purchase' END, make_timestamp(CAST(timestamp AS BIGINT) * 1000), "
        "transactionid, NULL, NULL FROM "
        + _csv(["timestamp", "visitorid", "event", "itemid", "transactionid"]),
        *_ENTITIES,
    ],
    "orders": [
        "CREATE TEMP TABLE o AS SELECT * FROM "
        + _csv(
            [
                "InvoiceNo",
                "StockCode",
                "Description",
                "Quantity",
                "InvoiceDate",
                "UnitPrice",
                "CustomerID",
                "Country",
            ]
        ),
        _EV + "SELECT CustomerID, StockCode, 'purchase', strptime(InvoiceDate, '%m/%d/%Y %H:%M'), "
        "InvoiceNo, CAST(Quantity AS INTEGER), CAST(UnitPrice AS DOUBLE) FROM o",
        "INSERT INTO items (item_id, title) SELECT StockCode, min(Description) FROM o GROUP BY 1",
        "ALTER TABLE users ADD COLUMN country VARCHAR",
        "INSERT INTO users (user_id, country) SELECT CustomerID, "
        "arg_max(Country, strptime(InvoiceDate, '%m/%d/%Y %H:%M')) FROM o GROUP BY 1",
    ],
    "ratings": [
        "CREATE TEMP TABLE r AS SELECT * FROM " + _csv(["user", "item", "rating", "timestamp"]),
        _EV + "SELECT user, item, 'view', make_timestamp(CAST(timestamp AS BIGINT) * 1000000), "
        "NULL, NULL, NULL FROM r",
        _EV + "SELECT user, item, 'purchase', "
        "make_timestamp(CAST(timestamp AS BIGINT) * 1000000), NULL, NULL, NULL FROM r "
        "WHERE CAST(rating AS DOUBLE) >= 4",
        *_ENTITIES,
    ],
    "behaviour": [
        "CREATE TEMP TABLE b AS SELECT * FROM "
        + _csv(["user_id", "item_id", "category_id", "behavior_type", "timestamp"], header=False),
        _EV + "SELECT user_id, item_id, CASE behavior_type WHEN 'pv' THEN 'view' WHEN 'buy' "
        "THEN 'purchase' ELSE 'cart' END, make_timestamp(CAST(timestamp AS BIGINT) * 1000000), "
        "NULL, NULL, NULL FROM b WHERE behavior_type <> 'fav'",
        "INSERT INTO items (item_id, category) SELECT item_id, min(category_id) FROM b "
        "WHERE behavior_type <> 'fav' GROUP BY 1",
        "INSERT INTO users (user_id) SELECT DISTINCT user_id FROM events",
    ],
    "wide": [
        _EV + "SELECT c0, c1, c2, make_timestamp(CAST(c3 AS BIGINT) * 1000000), NULL, NULL, "
        "NULL FROM " + _csv([f"c{i}" for i in range(5000)]),
        *_ENTITIES,
    ],
}


def child(which: str, preset: str, path: Path, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, which, preset, str(path), str(work), json.dumps(FLOORS)],
        capture_output=True,
        text=True,
        env={**os.environ, "LTREC_DATA_DIR": str(work)},
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{which} {preset} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ topics


def bench_presets(tmp: Path, rows: int) -> dict:
    res: dict[str, dict] = {}
    print(f"\n{'preset':10s} {'MiB':>6s} {'ltrec s':>8s} {'floor s':>8s} {'x floor':>8s} "
          f"{'MiB/s':>7s} {'rows':>10s} {'RSS MB':>7s}")  # fmt: skip
    for preset in PRESETS:
        path = tmp / f"{preset}.csv"
        generate(preset, path, rows)
        mib = path.stat().st_size / 2**20
        lt = child("ltrec", preset, path, tmp / f"w_{preset}_ltrec")
        fl = child("floor", preset, path, tmp / f"w_{preset}_floor")
        r = {
            "file_mib": mib,
            "ltrec": lt,
            "floor": fl,
            "ratio_to_floor": lt["seconds"] / fl["seconds"],
            "mib_per_s": mib / lt["seconds"],
        }
        res[preset] = r
        print(
            f"{preset:10s} {mib:6.0f} {lt['seconds']:8.1f} {fl['seconds']:8.1f} "
            f"{r['ratio_to_floor']:8.2f} {r['mib_per_s']:7.1f} {lt['rows']:10,} "
            f"{lt['peak_rss_bytes'] / 2**20:7.0f}",
            flush=True,
        )
        path.unlink()
    return res


def bench_wide(tmp: Path) -> dict:
    path = tmp / "wide.csv"
    generate_wide(path)
    header = path.open("rb").readline()
    lt = child("ltrec", "canonical", path, tmp / "w_wide_ltrec")
    fl = child("floor", "wide", path, tmp / "w_wide_floor")
    r = {
        "columns": 5000,
        "rows": 10_000,
        "header_bytes": len(header),
        "file_mib": path.stat().st_size / 2**20,
        "ltrec": lt,
        "floor": fl,
        "ratio_to_floor": lt["seconds"] / fl["seconds"],
        "limit_s": 10.0,
        "ok": lt["seconds"] <= 10.0 and lt["rows"] == 10_000,
    }
    print(
        f"\nwide 5,000 cols x 10,000 rows ({len(header) / 1024:.0f} KiB header, "
        f"{r['file_mib']:.0f} MiB): ltrec {lt['seconds']:.1f}s, floor {fl['seconds']:.1f}s "
        f"(x{r['ratio_to_floor']:.2f}), limit 10 s: {'ok' if r['ok'] else 'OVER'}",
        flush=True,
    )
    path.unlink()
    return r


def bench_gz(tmp: Path, mib: int) -> dict:
    path = tmp / "big.csv.gz"
    t = time.perf_counter()
    rows = generate_gz(path, mib)
    gen = time.perf_counter() - t
    size = path.stat().st_size
    lt = child("cli", "events", path, tmp / "w_gz")
    r = {
        "gz_bytes": size,
        "rows": rows,
        "generate_seconds": gen,
        "import": lt,
        "limit_rss_mb": 2048,
        "ok": lt["rc"] == 0 and max(lt["peak_rss_bytes"], lt["worker_rss_bytes"]) <= 2 * 2**30,
    }
    print(
        f"\ngzipped events {size / 2**20:,.0f} MiB ({rows:,} rows, generated in {gen:.0f}s): "
        f"import rc {lt['rc']} in {lt['main_seconds']:.0f}s (read step alone: "
        f"{lt['read_step_seconds']:.1f}s, {lt['read_step_rss_bytes'] / 2**20:,.0f} MB), peak RSS "
        f"CLI {lt['peak_rss_bytes'] / 2**20:,.0f} MB, import worker "
        f"{lt['worker_rss_bytes'] / 2**20:,.0f} MB (limit 2,048): {'ok' if r['ok'] else 'OVER'}",
        flush=True,
    )
    path.unlink()
    return r


def _hostile_files(tmp: Path) -> dict[str, tuple[Path, int]]:
    """name -> (file, expected exit code)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    head = b"user_id,item_id,event_type,ts\n"
    body = b"".join(b"u%d,i%d,view,2024-01-%02d\n" % (i, i % 50, 1 + i % 28) for i in range(400))
    good = gzip.compress(head + body)
    files: dict[str, tuple[Path, int]] = {}

    def put(name: str, data: bytes, rc: int = 2) -> None:
        files[name] = (tmp / name, rc)
        (tmp / name).write_bytes(data)

    put("padded.csv.gz", good + b"\0" * 65536, rc=0)
    put("garbage.csv.gz", good + b"not gzip at all" * 100)
    crc = bytearray(good)
    crc[-8] ^= 0xFF
    put("crc.csv.gz", bytes(crc))
    put("cut.csv.gz", good[: len(good) // 2])
    put("members.csv.gz", good + gzip.compress(b"", mtime=0) * 200_000)
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    zeros = b"0" * 2**20
    put("bomb.csv.gz", bomb.compress(head) + b"".join(bomb.compress(zeros) for _ in range(256))
        + bomb.flush())  # fmt: skip  # 256 MiB of zeros in ~250 KB
    big = "x" * (10 * 2**20)
    n = 1000
    dict_table = pa.table(
        {
            "user_id": pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int32()), [big]),
            "item_id": ["i"] * n,
            "event_type": ["view"] * n,
            "ts": ["2024-01-02"] * n,
        }
    )
    pq.write_table(dict_table, tmp / "dict.parquet", compression="zstd", compression_level=19)
    files["dict.parquet"] = (tmp / "dict.parquet", 2)
    zeros_idx = pa.array(np.zeros(20_000_000, dtype=np.int32))
    flood = pa.table({c: pa.DictionaryArray.from_arrays(zeros_idx, ["v"]) for c in
                      ("user_id", "item_id", "event_type", "ts")})  # fmt: skip
    pq.write_table(flood, tmp / "rows.parquet", compression="zstd")
    files["rows.parquet"] = (tmp / "rows.parquet", 2)
    nul = pa.table({"user_id": ["u1"], "item\x00id": ["i1"], "event_type": ["view"],
                    "ts": ["2024-01-02"]})  # fmt: skip
    pq.write_table(nul, tmp / "nul.parquet")
    files["nul.parquet"] = (tmp / "nul.parquet", 2)
    return files


def bench_hostile(tmp: Path) -> dict:
    res: dict[str, dict] = {}
    print(
        f"\n{'file':16s} {'bytes':>10s} {'rc':>3s} {'cli s':>6s} {'read s':>7s} "
        f"{'read MB':>7s} {'cli MB':>7s} {'worker MB':>9s}  message"
    )
    for name, (path, want) in _hostile_files(tmp).items():
        r = child("cli", "", path, tmp / f"w_h_{name}")
        r["file_bytes"] = path.stat().st_size
        r["expected_rc"] = want
        r["ok"] = (
            r["rc"] == want
            and r["main_seconds"] <= 5.0
            and max(r["peak_rss_bytes"], r["worker_rss_bytes"]) <= 2**30
        )
        res[name] = r
        print(
            f"{name:16s} {r['file_bytes']:10,} {r['rc']:3d} {r['main_seconds']:6.2f} "
            f"{r['read_step_seconds']:7.2f} {r['read_step_rss_bytes'] / 2**20:7.0f} "
            f"{r['peak_rss_bytes'] / 2**20:7.0f} {r['worker_rss_bytes'] / 2**20:9.0f}  "
            f"{r['message'][:70]}",
            flush=True,
        )
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows per preset file")
    ap.add_argument("--gz-mb", type=int, default=1024, help="compressed size of the gz case")
    ap.add_argument("--only", default=",".join(TOPICS), help="comma-separated topics")
    args = ap.parse_args(argv)
    topics = [t for t in args.only.split(",") if t]
    unknown = set(topics) - set(TOPICS)
    if unknown:
        ap.error(f"unknown topics {sorted(unknown)}; choose from {TOPICS}")
    out_path = RESULTS / "import_layouts.json"
    out = json.loads(out_path.read_text()) if out_path.exists() else {}
    out.update({"cpus": os.cpu_count(), "rows_per_preset": args.rows})
    with tempfile.TemporaryDirectory(prefix="ltrec-bench-layouts-") as tmp:
        tmp_path = Path(tmp)
        if "presets" in topics:
            out["presets"] = bench_presets(tmp_path, args.rows)
        if "wide" in topics:
            out["wide"] = bench_wide(tmp_path)
        if "gz" in topics:
            out["gz"] = bench_gz(tmp_path, args.gz_mb)
        if "hostile" in topics:
            out["hostile"] = bench_hostile(tmp_path)
    out["loadavg_at_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    out_path.write_text(json.dumps(out, indent=2))
    print(f"\nwrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
