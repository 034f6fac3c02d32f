"""Cost of pseudonymising user ids at import: ``import_dataset`` with and without it.

Generates an events-preset CSV (unix ms, ``--users`` distinct visitors, ``--rows`` events) with
DuckDB's COPY, imports it twice into a temporary data dir (plain, then ``pseudonymize=True``
with a random key), and times the HMAC alone over the distinct ids (the DuckDB Arrow UDF of
:mod:`ltrec.store.privacy`) next to a pure-Python loop. Other jobs share the 2 CPU cores:
treat the figures as indicative.

Usage: ``python benchmarks/bench_privacy.py [--rows 1000000] [--users 100000]``. Prints a table
and writes ``benchmarks/results/privacy.json``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import time
from pathlib import Path

import duckdb

from ltrec.store.importing import import_dataset
from ltrec.store.privacy import pseudonym, pseudonymize_columns

RESULTS = Path(__file__).resolve().parent / "results"


def _make(path: Path, rows: int, users: int) -> None:
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT 1433221332117 + i * 1000 AS timestamp, (hash(i) % $u) AS visitorid, "
        "CASE WHEN i % 50 = 0 THEN 'transaction' WHEN i % 10 = 0 THEN 'addtocart' "
        "ELSE 'view' END AS event, (hash(i * 7) % 20000) AS itemid, "
        "CASE WHEN i % 50 = 0 THEN CAST(i AS VARCHAR) END AS transactionid "
        "FROM range($n) t(i)) TO '" + str(path).replace("'", "''") + "' (HEADER)",
        {"u": users, "n": rows},
    )
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=100_000)
    args = ap.parse_args()
    key = secrets.token_hex(32)
    out: dict[str, object] = {"rows": args.rows, "users": args.users}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv = root / "events.csv"
        _make(csv, args.rows, args.users)
        for label, kw in (("plain", {}), ("pseudonymized", {"pseudonymize": True})):
            t = time.perf_counter()
            rep = import_dataset(label, csv, preset="events", data_dir=root, hmac_key=key, **kw)
            out[f"import_{label}_s"] = round(time.perf_counter() - t, 3)
            out[f"events_{label}"] = rep.rows_loaded["events"]
        ids = [str(i) for i in range(args.users)]
        con = duckdb.connect()
        con.execute(
            "CREATE TEMP TABLE u AS SELECT CAST(i AS VARCHAR) AS user_id FROM range($n) t(i)",
            {"n": args.users},
        )
        t = time.perf_counter()
        pseudonymize_columns(con, key.encode(), [("u", "user_id")])
        out["udf_distinct_ids_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        [pseudonym(i, key.encode()) for i in ids]
        out["python_loop_s"] = round(time.perf_counter() - t, 3)
    overhead = out["import_pseudonymized_s"] - out["import_plain_s"]  # type: ignore[operator]
    out["overhead_s"] = round(overhead, 3)
    print(f"{'measure':<28}{'value':>12}")
    for k, v in out.items():
        print(f"{k:<28}{v!s:>12}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "privacy.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
