"""Feedback-loop simulation cost: 20 rounds x 2 policies on the DEFAULT demo shop.

Policies: popularity vs EASE + tail boost (beta 0.5), K = 10, 500 active users per round,
retrained every round (and, for comparison, every 5 rounds). The default demo shop (5,000 users,
2,000 items, ~500k events) is built once in a temporary data dir (not timed). Each measurement
runs in a fresh child process, so its peak RSS is the simulation's own (plus the interpreter and
imports, reported separately as ``rss_before_mb``); ``tracemalloc_peak_mb`` is the peak of
Python/numpy allocations during the simulation itself. Writes benchmarks/results/simulation.json.

    .venv/bin/python benchmarks/bench_simulation.py [--rounds 20] [--users 500]

Other jobs share the machine's CPUs while this runs: times are indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POLICIES = [
    {"model": "popularity"},
    {"model": "ease", "rerank": {"strategy": "tail_boost", "beta": 0.5}},
]


def child(data_dir: str, rounds: int, users: int, every: int) -> dict:
    import tracemalloc

    from ltrec.simulation import SimulationConfig, simulate

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cfg = SimulationConfig(rounds=rounds, users=users, k=10, retrain_every=every, seed=42)
    tracemalloc.start()
    t0 = time.perf_counter()
    res = simulate("demo", POLICIES, cfg, save=False, data_dir=data_dir)
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_policy = res.rounds.groupby("policy", sort=False)["seconds"].sum().round(2).to_dict()
    final = res.final().set_index("policy")
    return {
        "rounds": rounds,
        "users_per_round": users,
        "retrain_every": every,
        "wall_s": round(wall, 2),
        "setup_s": round(wall - res.seconds, 2),
        "loop_s": round(res.seconds, 2),
        "policy_s": per_policy,
        "rss_before_mb": round(rss0, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "tracemalloc_peak_mb": round(peak / 1024**2, 1),
        "user_model": res.user_model["name"],
        "final": {
            p: {m: round(float(v), 4) for m, v in row.items() if v == v}
            for p, row in final.to_dict("index").items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--child", nargs=4, metavar=("DIR", "ROUNDS", "USERS", "EVERY"))
    args = ap.parse_args()
    if args.child:
        d, r, u, e = args.child
        print(json.dumps(child(d, int(r), int(u), int(e))))
        return

    from ltrec.synth.demo import DemoConfig, build_demo

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        build_demo(DemoConfig(), data_dir=tmp)
        build_s = time.perf_counter() - t0
        runs = []
        for every in (1, 5):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    tmp,
                    str(args.rounds),
                    str(args.users),
                    str(every),
                ],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "LTREC_DATA_DIR": tmp},
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"default demo shop built in {build_s:.1f} s (not part of the figures)")
    print(
        f"{'retrain':>8} {'wall s':>7} {'setup s':>8} {'loop s':>7} {'peak RSS MB':>12} "
        f"{'(before)':>9} {'tracemalloc MB':>15}  per policy s"
    )
    for r in runs:
        print(
            f"{'every ' + str(r['retrain_every']):>8} {r['wall_s']:>7.1f} {r['setup_s']:>8.1f} "
            f"{r['loop_s']:>7.1f} {r['peak_rss_mb']:>12.0f} {r['rss_before_mb']:>9.0f} "
            f"{r['tracemalloc_peak_mb']:>15.0f}  {r['policy_s']}"
        )
    for p, f in runs[0]["final"].items():
        print(
            f"  {p:<24} exposure gini {f['exposure_gini']:.3f}  tail share {f['tail_share']:.3f}"
            f"  coverage {f['coverage_cum']:.3f}  purchases {f['cum_purchases']:.0f} "
            f"(tail {f['cum_tail_purchases']:.0f})"
        )
    result = {
        "benchmark": "simulation",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "note": "2 shared CPUs, loaded by other work while measured",
        "dataset": "default demo shop (5000 users, 2000 items, ~500k events)",
        "policies": POLICIES,
        "demo_build_s": round(build_s, 1),
        "runs": runs,
    }
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "simulation.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
