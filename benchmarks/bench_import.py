"""Import throughput: ``ltrec import`` vs ``pandas.read_csv`` vs a bare DuckDB read, same file.

Generates an events-preset CSV (``timestamp,visitorid,event,itemid,transactionid``, unix ms,
about 1.4M visitors and 235k items, 2% purchases with a transaction id) with DuckDB's COPY, then
times, each in a fresh subprocess so peak RSS is per contender:

* ``ltrec``: ``import_dataset(..., preset="events")`` into a temporary data dir (validation,
  rejects, dedup check, items/users rows, finalize, atomic swap);
* ``duckdb``: ``CREATE TABLE AS SELECT * FROM read_csv(path)`` into a file database (auto-detected
  types: ids become BIGINT, so it stores less than ltrec's VARCHAR ids);
* ``duckdb_varchar``: the same with ``all_varchar=true``, ids stored as text like ltrec's schema;
* ``duckdb_events``: one ``CREATE TABLE AS`` of ltrec's ``events`` columns alone (text ids, the
  unix-ms time as a TIMESTAMP, canonical event types), typed read, no other table and no
  checks: what storing the ids as text costs by itself, before any validation;
* ``duckdb_store``: hand-written DuckDB SQL that writes what ltrec's store holds after the import
  (``events`` with text ids, a parsed timestamp and canonical event types; ``items``; ``users``;
  ``user_derived``) with no validation, rejects, line numbers, dedup check or atomic swap: the
  floor for ltrec's schema, so ``ltrec / duckdb_store`` is the price of the checks themselves;
* ``pandas``: ``pandas.read_csv(path)`` (in memory only; nothing is written).

Usage: ``python benchmarks/bench_import.py [--rows 10000000] [--skip pandas]``. Prints a table and
writes ``benchmarks/results/import.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CONTENDERS = ("duckdb", "duckdb_varchar", "duckdb_events", "duckdb_store", "ltrec", "pandas")

_CHILD = r"""
import json, os, resource, sys, time
which, path, work = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
if which == "ltrec":
    from ltrec.store.importing import import_dataset
    rep = import_dataset("bench", events=path, preset="events", data_dir=work)
    rows, extra = rep.rows_loaded["events"], {"rejected": rep.rejected}
elif which in ("duckdb", "duckdb_varchar"):
    import duckdb
    con = duckdb.connect(os.path.join(work, which + ".duckdb"))
    opt = ", all_varchar=true" if which == "duckdb_varchar" else ""
    con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?" + opt + ")", [path])
    rows, extra = con.execute("SELECT count(*) FROM t").fetchone()[0], {}
    con.close()
elif which == "duckdb_events":
    import duckdb
    con = duckdb.connect(os.path.join(work, "events.duckdb"))
    cols = {"timestamp": "BIGINT", "visitorid": "VARCHAR", "event": "VARCHAR",
            "itemid": "VARCHAR", "transactionid": "VARCHAR"}
    con.execute(
        "CREATE TABLE events AS SELECT visitorid AS user_id, itemid AS item_id, "
        "CASE event WHEN 'view' THEN 'view' WHEN 'addtocart' THEN 'cart' ELSE 'purchase' END "
        "AS event_type, make_timestamp(timestamp * 1000) AS ts, transactionid AS session_id "
        "FROM read_csv(?, columns=?, header=true, auto_detect=false)",
        [path, cols],
    )
    rows, extra = con.execute("SELECT count(*) FROM events").fetchone()[0], {}
    con.close()
elif which == "duckdb_store":
    import duckdb
    from ltrec.store.finalize import build_user_derived
    from ltrec.store.schema import create_schema
    con = duckdb.connect(os.path.join(work, "store.duckdb"))
    create_schema(con)
    cols = {c: "VARCHAR" for c in ("timestamp", "visitorid", "event", "itemid", "transactionid")}
    con.execute(
        "INSERT INTO events (user_id, item_id, event_type, ts, session_id) "
        "SELECT visitorid, itemid, CASE event WHEN 'view' THEN 'view' WHEN 'addtocart' "
        "THEN 'cart' ELSE 'purchase' END, make_timestamp(CAST(timestamp AS BIGINT) * 1000), "
        "transactionid FROM read_csv(?, columns=?, header=true, auto_detect=false)",
        [path, cols],
    )
    con.execute("INSERT INTO items (item_id) SELECT DISTINCT item_id FROM events")
    con.execute("INSERT INTO users (user_id) SELECT DISTINCT user_id FROM events")
    build_user_derived(con)
    rows, extra = con.execute("SELECT count(*) FROM events").fetchone()[0], {}
    con.close()
elif which == "pandas":
    import pandas as pd
    rows, extra = len(pd.read_csv(path)), {}
secs = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rows": rows, "seconds": secs, "peak_rss_bytes": rss, **extra}))
"""


def generate(path: Path, rows: int) -> float:
    """Write the events CSV with DuckDB's COPY (parallel, a few seconds per 10M rows)."""
    import duckdb

    t = time.perf_counter()
    con = duckdb.connect()
    con.execute(
        f"""COPY (
            SELECT 1420070400000 + i * 37 AS timestamp,
                   (hash(i) % 1400000)::BIGINT AS visitorid,
                   CASE WHEN i % 50 = 0 THEN 'transaction' WHEN i % 20 = 0 THEN 'addtocart'
                        ELSE 'view' END AS event,
                   (hash(i * 7) % 235000)::BIGINT AS itemid,
                   CASE WHEN i % 50 = 0 THEN (i // 50)::VARCHAR END AS transactionid
            FROM range({int(rows)}) t(i)
        ) TO '{path}' (HEADER, DELIMITER ',')"""  # noqa: S608 - our own temp path and int
    )
    con.close()
    return time.perf_counter() - t


def run(which: str, path: Path, work: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, which, str(path), str(work)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LTREC_DATA_DIR": str(work)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--skip", action="append", default=[], help="contender to skip")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ltrec-bench-import-") as tmp:
        tmp_path = Path(tmp)
        path = tmp_path / "events.csv"
        gen = generate(path, args.rows)
        size = path.stat().st_size
        print(f"generated {args.rows:,} rows ({size / 1e6:,.0f} MB) in {gen:.1f}s", flush=True)
        results: dict[str, dict] = {}
        for which in CONTENDERS:
            if which in args.skip:
                continue
            work = tmp_path / which
            work.mkdir()
            results[which] = r = run(which, path, work)
            r["rows_per_s"] = r["rows"] / r["seconds"]
            print(f"  {which:15s} {r['seconds']:7.1f}s", flush=True)
    base = results.get("duckdb", {}).get("seconds")
    floor = results.get("duckdb_store", {}).get("seconds")
    print(
        f"\n{'contender':15s} {'seconds':>8s} {'rows/s':>12s} {'x duckdb':>9s} {'x store':>8s} "
        f"{'peak RSS':>10s}"
    )
    for which, r in results.items():
        r["ratio_to_duckdb"] = r["seconds"] / base if base else float("nan")
        r["ratio_to_store"] = r["seconds"] / floor if floor else float("nan")
        print(
            f"{which:15s} {r['seconds']:8.1f} {r['rows_per_s']:12,.0f} "
            f"{r['ratio_to_duckdb']:9.2f} {r['ratio_to_store']:8.2f} "
            f"{r['peak_rss_bytes'] / 2**20:8,.0f} MB"
        )
    RESULTS.mkdir(exist_ok=True)
    out = {
        "rows": args.rows,
        "csv_bytes": size,
        "generate_seconds": gen,
        "cpus": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(),
        "results": results,
    }
    (RESULTS / "import.json").write_text(json.dumps(out, indent=2))
    print(f"\nwrote {RESULTS / 'import.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
