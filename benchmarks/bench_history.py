"""Scoring from a history (interface contract A): agreement with the fitted path and cost.

For each baseline model fitted on the demo shop's training split:

* agreement: ``recommend_history(training rows)`` against ``recommend(users)`` for 500 users
  with history (top-10 overlap and identical lists); item-kNN, EASE, RP3beta and popularity
  must be identical, ALS re-solves the user factor (implicit's ``recalculate_user``) and is
  only close to the fitted factor (see :mod:`ltrec.models.als`);
* one-user latency (median / p99 ms over 300 users) of ``score``, ``score_history`` and
  ``contributions`` of the top 10, and their ratio to ``score`` (the floor of this run).

Run: ``LTREC_DATA_DIR=/tmp/$USER/data .venv/bin/python benchmarks/bench_history.py
[--models itemknn,ease,als,rp3beta,popularity] [--events N]``. BLAS is held to one thread
(threadpoolctl): on a shared 2-core machine a threaded GEMV waits for busy cores (ALS's
one-user score measured 0.1 ms single-threaded, ~20 ms with threads under load).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from bench_models import demo_data  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from ltrec.models.base import make_model  # noqa: E402


def _ms(fn, users: np.ndarray) -> tuple[float, float]:  # noqa: ANN001
    fn(int(users[0]))
    t = []
    for u in users.tolist():
        t0 = time.perf_counter()
        fn(u)
        t.append(time.perf_counter() - t0)
    return 1000 * float(np.median(t)), 1000 * float(np.percentile(t, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="itemknn,ease,als,rp3beta,popularity")
    ap.add_argument("--events", type=int, default=None, help="demo size (default: demo default)")
    args = ap.parse_args()
    data = demo_data(args.events, name="bench_history")
    rng = np.random.default_rng(0)
    warm = np.flatnonzero(np.diff(data.matrix.indptr) > 0)
    agree_users = np.sort(rng.choice(warm, min(500, len(warm)), replace=False))
    lat_users = rng.choice(warm, min(300, len(warm)), replace=False)
    print(f"demo: {data.n_users:,} users, {data.n_items:,} items, {data.matrix.nnz:,} pairs")
    print(
        f"{'model':<11} {'live':>5} {'same lists':>10} {'top10 overlap':>13} "
        f"{'score ms':>14} {'score_history ms':>17} {'ratio':>6} {'contrib ms':>14}"
    )
    with threadpool_limits(limits=1, user_api="blas"):
        for name in args.models.split(","):
            model = make_model(name).fit(data)
            a, _ = model.recommend(agree_users, 10)
            b, _ = model.recommend_history(data.matrix[agree_users], 10)
            same = float((a == b).all(axis=1).mean())
            overlap = float(
                np.mean(
                    [len(set(x) & set(y)) / 10 for x, y in zip(a.tolist(), b.tolist(), strict=True)]
                )
            )
            rows = {int(u): data.matrix[int(u)] for u in lat_users}
            s_med, s_p99 = _ms(lambda u: model.score(u), lat_users)  # noqa: B023
            h_med, h_p99 = _ms(lambda u: model.score_history(rows[u]), lat_users)  # noqa: B023
            top = {int(u): model.recommend(int(u), 10)[0] for u in lat_users}
            c_med, c_p99 = _ms(lambda u: model.contributions(rows[u], top[u]), lat_users)  # noqa: B023
            print(
                f"{name:<11} {str(type(model).live_history):>5} {same:>10.3f} {overlap:>13.3f} "
                f"{s_med:>6.2f} / {s_p99:>5.2f} {h_med:>8.2f} / {h_p99:>6.2f} "
                f"{h_med / max(s_med, 1e-9):>6.2f} {c_med:>6.2f} / {c_p99:>5.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
