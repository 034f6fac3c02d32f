"""Benchmark: what the dataset profile adds to every write, as a ratio to the rest of finalize.

    .venv/bin/python benchmarks/bench_profile.py [--events 10000000] [--repeat 3]

Builds a synthetic store in memory by SQL (``--events`` events over 1/20 as many users and 1/200
as many items, every event type, sessions and prices, a users table with two segment columns),
then times, best of ``--repeat``: :func:`ltrec.store.finalize.build_user_derived` (the part of
finalize that was there before, the floor) and :func:`ltrec.store.profile.write_profile` as
finalize calls it (users already counted) and standalone (an older file read without one).
Prints a table and writes benchmarks/results/profile.json. The profile is aggregates only, so its
peak memory does not grow with the events (no table is read into pandas).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from ltrec.store.finalize import build_user_derived  # noqa: E402
from ltrec.store.profile import write_profile  # noqa: E402
from ltrec.store.schema import create_schema  # noqa: E402

_FILL = """
INSERT INTO events
SELECT 'u' || (i % $users) AS user_id,
       'i' || CAST(floor(pow(random(), 3) * $items) AS BIGINT) AS item_id,
       CASE WHEN i % 10 < 6 THEN 'impression' WHEN i % 10 < 9 THEN 'view'
            WHEN i % 40 < 39 THEN 'cart' ELSE 'purchase' END AS event_type,
       TIMESTAMP '2024-01-01' + to_seconds(i % 7776000) AS ts,
       's' || (i // 7) AS session_id, 1 AS quantity, 9.99 AS price, NULL AS source
FROM range($n) t(i);
--
INSERT INTO items (item_id, title, category, price)
SELECT 'i' || i, 'Item ' || i, 'Cat ' || (i % 12), 5.0 FROM range($items) t(i);
"""


def _best(fn, con: duckdb.DuckDBPyConnection, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(con)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    con = duckdb.connect()
    create_schema(con)
    con.execute("ALTER TABLE users ADD COLUMN region VARCHAR")
    con.execute("ALTER TABLE users ADD COLUMN tier VARCHAR")
    users, items = max(args.events // 20, 1), max(args.events // 200, 1)
    t = time.perf_counter()
    ev_sql, it_sql = _FILL.split("--")
    con.execute(ev_sql, {"n": args.events, "users": users, "items": items})
    con.execute(it_sql, {"items": items})
    con.execute(
        "INSERT INTO users SELECT 'u' || i, 'r' || (i % 4), 't' || (i % 3) FROM range(?) t(i)",
        [users],
    )
    build_s = time.perf_counter() - t
    floor = _best(build_user_derived, con, args.repeat)
    n_users = con.execute("SELECT count(*) FROM user_derived").fetchall()[0][0]
    # as finalize runs it (users counted by user_derived), and standalone (read_profile on an
    # older file)
    profile_s = _best(lambda c: write_profile(c, users=n_users), con, args.repeat)
    standalone_s = _best(write_profile, con, args.repeat)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "events": args.events,
        "users": users,
        "items": items,
        "build_s": round(build_s, 3),
        "user_derived_s": round(floor, 3),
        "profile_s": round(profile_s, 3),
        "profile_over_user_derived": round(profile_s / floor, 3),
        "profile_standalone_s": round(standalone_s, 3),
        "events_per_s_profile": round(args.events / profile_s),
        "peak_rss_mb": round(rss_mb),
    }
    print(
        f"{'events':>12} {'user_derived s':>15} {'profile s':>10} {'ratio':>6} "
        f"{'standalone s':>13} {'peak MB':>8}"
    )
    print(
        f"{args.events:>12,} {floor:>15.2f} {profile_s:>10.2f} "
        f"{out['profile_over_user_derived']:>6.2f} {standalone_s:>13.2f} {out['peak_rss_mb']:>8}"
    )
    res = REPO / "benchmarks" / "results"
    res.mkdir(exist_ok=True)
    (res / "profile.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
