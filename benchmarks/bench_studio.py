"""The Rerank Studio's response to a slider change on the default demo shop (AppTest, warm).

Builds the default demo shop (``ltrec demo``: 5,000 users, 2,000 items, ~500k events) and an
EASE run in a temporary data dir, opens the Studio in ``streamlit.testing.v1.AppTest``, warms it
(the first run loads the run, samples users, sweeps), then moves the tail-boost slider of column
2 to a new value ``--moves`` times and times each script run: p50 / p95 / max.

Each timed run is a full script run (AppTest does not run fragments alone; in a browser only the
fragment reruns, which skips the page's header and user blocks, so the browser is faster). Every
move is a value not seen before, so the list and the column's aggregate metrics are recomputed
(the sweep is cached by strategy, not by strength).

    .venv/bin/python benchmarks/bench_studio.py [--moves 20]

Prints a table and writes ``benchmarks/results/studio.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=20, help="slider changes timed")
    ap.add_argument("--sample", type=int, default=200, help="users in the aggregate")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ltrec-bench-studio-"))
    os.environ["LTREC_DATA_DIR"] = str(tmp)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from streamlit.testing.v1 import AppTest

    from ltrec.models.train import train
    from ltrec.synth.demo import DemoConfig, build_demo

    t0 = time.perf_counter()
    build_demo(DemoConfig(), data_dir=tmp)
    t_demo = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = train("demo", "ease", n_boot=0, data_dir=tmp)
    t_train = time.perf_counter() - t0

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
    at.query_params["run"] = run.run_id
    at.query_params["sample"] = str(args.sample)
    t0 = time.perf_counter()
    at.run()
    at.switch_page("app_pages/rerank_studio.py").run()
    t_first = time.perf_counter() - t0
    if at.exception:
        raise SystemExit(f"the page failed: {at.exception[0].message}")
    slider = "rs_c2_tail_boost_beta"
    at.slider(key=slider).set_value(0.31).run()  # warm: code paths and caches of a change
    values = np.round(np.linspace(0.05, 2.0, args.moves), 3)
    times = []
    for v in values:
        t0 = time.perf_counter()
        at.slider(key=slider).set_value(float(v)).run()
        times.append(time.perf_counter() - t0)
        if at.exception:
            raise SystemExit(f"the page failed at beta={v}: {at.exception[0].message}")
    ms = np.array(times) * 1000
    result = {
        "dataset": "demo (default: 5,000 users, 2,000 items, ~500k events)",
        "model": "ease",
        "sample_users": args.sample,
        "moves": int(args.moves),
        "slider_change_ms": {
            "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)),
            "max": float(ms.max()),
            "min": float(ms.min()),
        },
        "first_load_s": t_first,
        "demo_build_s": t_demo,
        "train_s": t_train,
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
        "note": "AppTest full script runs; the machine's 2 cores are shared with other work",
    }
    print(f"{'measure':<34}{'value':>12}")
    for name, value in (
        ("slider change p50 (ms)", result["slider_change_ms"]["p50"]),
        ("slider change p95 (ms)", result["slider_change_ms"]["p95"]),
        ("slider change max (ms)", result["slider_change_ms"]["max"]),
        ("first page load, cold (s)", t_first),
        ("demo build (s)", t_demo),
        ("EASE training (s)", t_train),
    ):
        print(f"{name:<34}{value:>12.1f}")
    print(f"load average: {result['load_avg']}")
    out = REPO / "benchmarks" / "results" / "studio.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
