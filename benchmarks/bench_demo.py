"""Demo shop build: wall time and peak memory at the default size and at 10M events.

Each build runs in its own subprocess (``python -c`` calling :func:`build_demo`) in a temporary
data directory; peak memory is the child's ``ru_maxrss`` read with
``resource.getrusage(RUSAGE_CHILDREN)`` after it exits (each run gets a fresh parent process,
so the maximum is that run's own). Prints a table and writes ``benchmarks/results/demo.json``.

Usage: ``.venv/bin/python benchmarks/bench_demo.py [--events N ...]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "demo.json"

_CHILD = """
import json, sys
from ltrec.synth.demo import DemoConfig, build_demo
kw = json.loads(sys.argv[1])
report = build_demo(DemoConfig(**kw), data_dir=sys.argv[2])
print(json.dumps(report.to_dict()))
"""

_MEASURE = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
out = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t0
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": out.returncode, "wall": wall, "peak_kb": peak_kb,
                  "stdout": out.stdout, "stderr": out.stderr[-2000:]}))
"""


def run_one(kwargs: dict, label: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="ltrec-bench-demo-") as tmp:
        cmd = [sys.executable, "-c", _CHILD, json.dumps(kwargs), tmp]
        # A fresh measuring process per build, so RUSAGE_CHILDREN holds this build alone.
        res = subprocess.run(
            [sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, check=True
        )
        m = json.loads(res.stdout)
        if m["rc"] != 0:
            raise RuntimeError(f"{label} failed:\n{m['stderr']}")
        report = json.loads(m["stdout"].strip().splitlines()[-1])
        size = (Path(tmp) / "demo.duckdb").stat().st_size
    return {
        "label": label,
        "config": kwargs,
        "users": report["users"],
        "items": report["items"],
        "events": report["events_total"],
        "events_by_type": report["events"],
        "build_s": report["seconds"],
        "process_s": round(m["wall"], 2),
        "peak_rss_mb": round(m["peak_kb"] / 1024, 1),
        "file_mb": round(size / 2**20, 1),
        "events_per_s": round(report["events_total"] / report["seconds"]),
        "gini_views": report["gini_views"],
        "funnel": report["funnel"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--events", type=int, nargs="*", default=None, help="extra sizes (default: 10M)"
    )
    args = ap.parse_args(argv)
    runs = [({}, "default")]
    for n in args.events if args.events is not None else [10_000_000]:
        runs.append(({"events": n}, f"{n / 1e6:g}M events"))
    rows = []
    for kwargs, label in runs:
        print(f"building {label} ...", file=sys.stderr, flush=True)
        rows.append(run_one(kwargs, label))
    head = (
        f"{'run':<14}{'users':>9}{'items':>8}{'events':>12}{'build s':>9}{'proc s':>8}"
        f"{'peak MB':>9}{'file MB':>9}{'ev/s':>10}{'gini':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['label']:<14}{r['users']:>9,}{r['items']:>8,}{r['events']:>12,}"
            f"{r['build_s']:>9.1f}{r['process_s']:>8.1f}{r['peak_rss_mb']:>9.0f}"
            f"{r['file_mb']:>9.1f}{r['events_per_s']:>10,}{r['gini_views']:>7.3f}"
        )
    print(
        f"({os.cpu_count()} CPUs; shared with other work while measuring, so times are upper "
        "bounds; process s includes Python and import start-up)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "demo",
                "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "runs": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
