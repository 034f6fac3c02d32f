"""Benchmark: every analytics call (Ibis on DuckDB) cold and warm, side by side with one
hand-written DuckDB SQL statement computing the same thing; first render of each page (AppTest,
warm cache); peak memory.

    .venv/bin/python benchmarks/bench_analytics.py [--events 10000000] [--data-dir DIR]

Builds the demo shop (``ltrec demo``) of that size in a temporary data dir unless ``--data-dir``
already holds a dataset named ``--name``. Prints a table; writes benchmarks/results/analytics.json.
"Cold" is the first call on a fresh connection (Ibis compile + DuckDB with cold caches), "warm"
the best of the next ``--repeat`` calls. The SQL side runs the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ltrec.analytics import concentration, conversion, longtail, popularity, segments  # noqa: E402
from ltrec.analytics.backend import from_cursor  # noqa: E402
from ltrec.analytics.stats import store_stats  # noqa: E402
from ltrec.store import connect, cursor  # noqa: E402

# Hand-written SQL, one statement per analytics call, computing the same numbers.
_BUCKETS = """
WITH cat AS (SELECT item_id FROM items UNION SELECT item_id FROM events),
pop AS (SELECT item_id, count(DISTINCT user_id) p FROM events
        WHERE event_type IN ('view','cart','purchase') GROUP BY item_id),
r AS (SELECT cat.item_id, coalesce(p, 0) p,
        sum(coalesce(p, 0)) OVER (ORDER BY coalesce(p, 0) DESC, cat.item_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - coalesce(p, 0) prev,
        sum(coalesce(p, 0)) OVER () total
      FROM cat LEFT JOIN pop USING (item_id))
"""
SQL: dict[str, str] = {
    "popularity_buckets": _BUCKETS  # noqa: S608 - constant SQL, no user input
    + "SELECT item_id, p, row_number() OVER (ORDER BY p DESC, item_id) rnk, "
    "CAST(prev >= 0.8 * total - 1e-9 * total AS INT) bucket FROM r",
    "lorenz": "WITH cat AS (SELECT item_id FROM items UNION SELECT item_id FROM events), "
    "c AS (SELECT item_id, count(*) FILTER (event_type='impression') i, "
    "count(*) FILTER (event_type='view') v, count(*) FILTER (event_type='cart') c, "
    "count(*) FILTER (event_type='purchase') p FROM events GROUP BY item_id) "
    "SELECT cat.item_id, coalesce(i,0), coalesce(v,0), coalesce(c,0), coalesce(p,0) "
    "FROM cat LEFT JOIN c USING (item_id)",
    "bucket_table": _BUCKETS  # noqa: S608 - constant SQL, no user input
    + ", b AS (SELECT item_id, CAST(prev >= 0.8 * total - 1e-9 * total AS INT) bucket FROM r), "
    "pairs AS (SELECT user_id, item_id, max(CASE event_type WHEN 'purchase' THEN 3 "
    "WHEN 'cart' THEN 2 ELSE 1 END) s FROM events WHERE event_type IN ('view','cart','purchase')"
    " GROUP BY ALL), pc AS (SELECT item_id, count(*) v, count(*) FILTER (s>=2) c, "
    "count(*) FILTER (s=3) p FROM pairs GROUP BY item_id), "
    "ec AS (SELECT item_id, count(*) FILTER (event_type='impression') e, "
    "count(*) FILTER (event_type='purchase') pe FROM events GROUP BY item_id) "
    "SELECT bucket, count(*), sum(coalesce(e,0)), sum(coalesce(pe,0)), sum(coalesce(v,0)), "
    "sum(coalesce(c,0)), sum(coalesce(p,0)) FROM b LEFT JOIN ec USING (item_id) "
    "LEFT JOIN pc USING (item_id) GROUP BY bucket",
    "tail_by_category": _BUCKETS  # noqa: S608 - constant SQL, no user input
    + ", b AS (SELECT item_id, prev >= 0.8 * total - 1e-9 * total tail FROM r), "
    "ec AS (SELECT item_id, count(*) FILTER (event_type='impression') e, "
    "count(*) FILTER (event_type='purchase') pe FROM events GROUP BY item_id), "
    "ic AS (SELECT item_id, coalesce(nullif(trim(split_part(category, ' > ', 1)), ''), "
    "'(unknown)') cat FROM items) "
    "SELECT coalesce(cat, '(unknown)'), count(*), count(*) FILTER (tail), sum(coalesce(e,0)), "
    "sum(coalesce(e,0)) FILTER (tail), sum(coalesce(pe,0)), sum(coalesce(pe,0)) FILTER (tail) "
    "FROM b LEFT JOIN ec USING (item_id) LEFT JOIN ic USING (item_id) GROUP BY 1",
    "tail_trend": _BUCKETS  # noqa: S608 - constant SQL, no user input
    + ", b AS (SELECT item_id, prev >= 0.8 * total - 1e-9 * total tail FROM r) "
    "SELECT date_trunc('week', ts) w, count(*) FILTER (event_type='impression'), "
    "count(*) FILTER (event_type='impression' AND tail), count(*) FILTER (event_type='purchase'),"
    " count(*) FILTER (event_type='purchase' AND tail) FROM events JOIN b USING (item_id) "
    "WHERE event_type IN ('impression','purchase') GROUP BY w ORDER BY w",
    "item_conversion": _BUCKETS  # noqa: S608 - constant SQL, no user input
    + ", pairs AS (SELECT user_id, item_id, max(CASE event_type WHEN 'purchase' THEN 3 "
    "WHEN 'cart' THEN 2 ELSE 1 END) s FROM events WHERE event_type IN ('view','cart','purchase')"
    " GROUP BY ALL), pc AS (SELECT item_id, count(*) v, count(*) FILTER (s>=2) c, "
    "count(*) FILTER (s=3) p FROM pairs GROUP BY item_id), "
    "ec AS (SELECT item_id, count(*) FILTER (event_type='impression') e, "
    "count(*) FILTER (event_type='view') ve FROM events GROUP BY item_id) "
    "SELECT r.item_id, r.p, CAST(prev >= 0.8 * total - 1e-9 * total AS INT), coalesce(pc.v, 0), "
    "coalesce(pc.c, 0), coalesce(pc.p, 0), coalesce(e, 0), coalesce(ve, 0), i.title FROM r "
    "LEFT JOIN pc USING (item_id) LEFT JOIN ec USING (item_id) LEFT JOIN items i USING (item_id)",
    "segment_funnel": _BUCKETS  # noqa: S608 - constant SQL, no user input
    + ", b AS (SELECT item_id, CAST(prev >= 0.8 * total - 1e-9 * total AS INT) bucket FROM r), "
    "pairs AS (SELECT user_id, item_id, max(CASE event_type WHEN 'purchase' THEN 3 "
    "WHEN 'cart' THEN 2 ELSE 1 END) s FROM events WHERE event_type IN ('view','cart','purchase')"
    " GROUP BY ALL), j AS (SELECT pairs.*, bucket, coalesce(nullif(d.tail_affinity, ''), "
    "'(unknown)') seg FROM pairs JOIN b USING (item_id) LEFT JOIN user_derived d USING (user_id))"
    ", cells AS (SELECT seg, bucket, count(DISTINCT user_id) users, count(*) v, "
    "count(*) FILTER (s>=2) c, count(*) FILTER (s=3) p FROM j GROUP BY ALL), "
    "js AS (SELECT j.* FROM j JOIN cells USING (seg, bucket) WHERE users >= 10) "
    "SELECT seg, bucket, users, v, c, p FROM cells UNION ALL "
    "SELECT seg, -1, count(DISTINCT user_id), count(*), count(*) FILTER (s>=2), "
    "count(*) FILTER (s=3) FROM js GROUP BY seg UNION ALL "
    "SELECT '(all)', bucket, count(DISTINCT user_id), count(*), count(*) FILTER (s>=2), "
    "count(*) FILTER (s=3) FROM js GROUP BY bucket UNION ALL "
    "SELECT '(all)', -1, count(DISTINCT user_id), count(*), count(*) FILTER (s>=2), "
    "count(*) FILTER (s=3) FROM js",
    "stats": _BUCKETS  # noqa: S608 - constant SQL, no user input
    + ", c AS (SELECT item_id, count(*) FILTER (event_type='impression') i, "
    "count(*) FILTER (event_type='view') v, count(*) FILTER (event_type='cart') c, "
    "count(*) FILTER (event_type='purchase') p FROM events GROUP BY item_id) "
    "SELECT r.item_id, prev >= 0.8 * total - 1e-9 * total tail, coalesce(i, 0), "
    "coalesce(v, 0), coalesce(c.c, 0), coalesce(c.p, 0), "
    "(SELECT count(*) FROM (SELECT user_id FROM users UNION SELECT user_id FROM events)) users, "
    "(SELECT min(ts) FROM events) first_ts, (SELECT max(ts) FROM events) last_ts "
    "FROM r LEFT JOIN c USING (item_id)",
}

CALLS: dict[str, Callable] = {
    "popularity_buckets": lambda s: popularity.popularity_buckets(s),
    "lorenz": lambda s: concentration.lorenz(s),
    "bucket_table": lambda s: longtail.bucket_table(s),
    "tail_by_category": lambda s: longtail.tail_by_category(s),
    "tail_trend": lambda s: longtail.tail_trend(s),
    "item_conversion": lambda s: conversion.item_conversion(s),
    "segment_funnel": lambda s: segments.segment_funnel(s, "tail_affinity"),
    "stats": lambda s: store_stats(s, "bench"),
}


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_calls(name: str, root: Path, repeat: int) -> list[dict]:
    rows = []
    for kind, call in CALLS.items():
        con = connect(name, root)  # fresh connection: cold
        store = from_cursor(cursor(con))
        ibis_cold = _time(lambda call=call, store=store: call(store))
        ibis_warm = min(_time(lambda call=call, store=store: call(store)) for _ in range(repeat))
        con.close()
        con = connect(name, root)
        cur = cursor(con)
        sql = SQL[kind]
        sql_cold = _time(lambda cur=cur, sql=sql: cur.execute(sql).df())
        sql_warm = min(_time(lambda cur=cur, sql=sql: cur.execute(sql).df()) for _ in range(repeat))
        con.close()
        rows.append(
            {
                "call": kind,
                "ibis_cold_s": ibis_cold,
                "ibis_warm_s": ibis_warm,
                "sql_cold_s": sql_cold,
                "sql_warm_s": sql_warm,
                "ratio_warm": ibis_warm / sql_warm,
            }
        )
        print(
            f"  {kind:20s} ibis {ibis_cold:7.2f}s cold {ibis_warm:7.2f}s warm | "
            f"sql {sql_cold:7.2f}s cold {sql_warm:7.2f}s warm | x{ibis_warm / sql_warm:5.2f}",
            flush=True,
        )
    return rows


def bench_pages(name: str, root: Path) -> list[dict]:
    from streamlit.testing.v1 import AppTest

    os.environ["LTREC_DATA_DIR"] = str(root)
    os.environ["LTREC_DATASET"] = name
    rows = []
    for page in ("app_pages/overview.py", "app_pages/long_tail.py", "app_pages/segments.py"):
        times = []
        for _ in range(2):  # first: fills the cache; second: the first render with a warm cache
            at = AppTest.from_file(str(REPO / "app.py"), default_timeout=1800)
            t0 = time.perf_counter()
            at.run()
            if page != "app_pages/overview.py":
                at.switch_page(page).run()
            times.append(time.perf_counter() - t0)
            if at.exception:
                raise RuntimeError(f"{page}: {at.exception}")
        rows.append({"page": page, "cold_cache_s": times[0], "warm_cache_s": times[1]})
        print(f"  {page:22s} cold cache {times[0]:7.2f}s  warm cache {times[1]:6.2f}s", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--name", default=None)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-pages", action="store_true")
    args = ap.parse_args()
    name = args.name or f"bench{args.events // 1_000_000}m"
    tmp = None
    root = args.data_dir
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="ltrec-bench-")
        root = Path(tmp.name)
    build_s = None
    if not (root / f"{name}.duckdb").exists():
        from ltrec.synth.demo import DemoConfig, build_demo

        print(f"building demo '{name}' with {args.events:,} events in {root} ...", flush=True)
        t0 = time.perf_counter()
        build_demo(DemoConfig(name=name, events=args.events), data_dir=root)
        build_s = time.perf_counter() - t0
    con = connect(name, root)
    n_events, n_items, n_users = con.execute(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM items), "
        "(SELECT count(*) FROM users)"
    ).fetchone()
    con.close()
    print(
        f"dataset {name}: {n_events:,} events, {n_items:,} items, {n_users:,} users "
        f"(machine: {os.cpu_count()} cores, shared with other jobs)",
        flush=True,
    )
    calls = bench_calls(name, root, args.repeat)
    pages = [] if args.no_pages else bench_pages(name, root)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS of this process, which also ran the pages): {peak_mb:,.0f} MB")
    out = {
        "dataset": name,
        "events": n_events,
        "items": n_items,
        "users": n_users,
        "build_s": build_s,
        "calls": calls,
        "pages": pages,
        "peak_rss_mb": peak_mb,
        "cpus": os.cpu_count(),
        "note": "2 shared cores, loaded by other jobs",
    }
    res = REPO / "benchmarks" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "analytics.json").write_text(json.dumps(out, indent=2, default=str))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
