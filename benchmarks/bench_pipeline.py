"""The one-user path of the pipeline (no re-ranking) against the bare numpy floor.

Run: ``.venv/bin/python benchmarks/bench_pipeline.py [--items 100000] [--users 50000]
[--events 400000] [--reps 400]``; writes ``benchmarks/results/pipeline.json``; about a minute.

ALS (64 factors) fitted on a synthetic catalogue (``bench_models.synthetic``: Zipf-like
popularity, 16 taste clusters). For each of ``--reps`` users with history, interleaved:

* floor: ``s = item_factors @ user_factors[u]``, ``argpartition(-s, k)[:k]``, the k sorted;
* pipeline: ``RecSession.lists(np.array([u]), k)`` with the base order (the path of
  ``ltrec recommend`` and the API: candidate pool, seen items excluded, ties to the lower item
  index, the ranked list with its base ranks);
* model: ``model.recommend(u, k)`` (for reference).

Reported: p50 / p95 in ms and the ratios to the floor, in process CPU time (``cpu``: what the
call computes; on a shared machine a call also waits for a core) and wall time (``wall``).
Target: pipeline p50 <= 1.25x the floor. BLAS runs on one thread (set before numpy loads;
override with OPENBLAS_NUM_THREADS).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# One BLAS thread for floor and pipeline alike: a server answers one request per core, and on a
# shared 2-core machine a second BLAS thread only queues behind the other processes.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

from ltrec.app.pipeline import RecSession  # noqa: E402
from ltrec.models.base import make_model  # noqa: E402

RESULTS = HERE / "results" / "pipeline.json"
K = 10


def ms(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def main() -> None:
    from bench_models import synthetic  # the synthetic catalogue of bench_models' latency

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--events", type=int, default=400_000)
    ap.add_argument("--reps", type=int, default=400)
    args = ap.parse_args()

    t0 = time.perf_counter()
    data = synthetic(args.users, args.items, args.events)
    model = make_model("als", {"iterations": 5}).fit(data)
    setup_s = time.perf_counter() - t0
    session = RecSession.from_parts(model, data, None, None)
    uf, itf = model.user_factors_, model.item_factors_

    def floor(u: int) -> np.ndarray:
        s = itf @ uf[u]
        idx = np.argpartition(-s, K)[:K]
        return idx[np.argsort(-s[idx])]

    def pipeline(u: int) -> np.ndarray:
        return session.lists(np.array([u]), K).items[0]

    def own(u: int) -> np.ndarray:
        return model.recommend(u, K)[0]

    rng = np.random.default_rng(0)
    users = rng.integers(0, data.n_users, args.reps * 2)
    users = users[model.has_history(users)][: args.reps]
    for u in users[:30]:  # warm-up
        floor(int(u)), pipeline(int(u)), own(int(u))
    fns = (("floor", floor), ("pipeline", pipeline), ("model", own))
    cpu: dict[str, list[float]] = {name: [] for name, _ in fns}
    wall: dict[str, list[float]] = {name: [] for name, _ in fns}
    same = 0
    for j, u in enumerate(users):
        u = int(u)
        for name, fn in fns[j % 3 :] + fns[: j % 3]:  # rotated: no call always runs first
            w, c = time.perf_counter(), time.process_time()
            fn(u)
            cpu[name].append(time.process_time() - c)
            wall[name].append(time.perf_counter() - w)
        same += int(np.array_equal(pipeline(u), own(u)))
    out: dict[str, object] = {
        "catalogue": int(itf.shape[0]),
        "factors": int(itf.shape[1]),
        "users_timed": int(users.size),
        "k": K,
        "setup_seconds": round(setup_s, 1),
        "pipeline_equals_model_recommend": same == users.size,
    }
    for clock, times in (("cpu", cpu), ("wall", wall)):
        p50, p95 = {}, {}
        for name, xs in times.items():
            p50[name], p95[name] = ms(xs)
            out[f"{name}_{clock}_p50_ms"] = round(p50[name], 4)
            out[f"{name}_{clock}_p95_ms"] = round(p95[name], 4)
        for name in ("pipeline", "model"):
            out[f"{name}_{clock}_ratio_p50"] = round(p50[name] / p50["floor"], 3)
            out[f"{name}_{clock}_ratio_p95"] = round(p95[name] / p95["floor"], 3)
    out["target_pipeline_ratio_p50"] = 1.25
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
