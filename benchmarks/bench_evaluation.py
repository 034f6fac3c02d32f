"""Evaluating a full-ranking run: 100,000 users over 10,000 items, K = 10 (issue 3).

A random 64-d embedding model scores every user against the whole catalogue in user batches
(``batch x items`` score matrix, ``argpartition`` for the top K, then a sort of those K), with
the user's training items masked out. Then :func:`ltrec.evaluation.evaluate` computes every
metric (accuracy, long tail, exposure, embedding and category ILD, overlap/RBO against a
popularity base list) with 1,000 seeded bootstrap resamples. Scoring and evaluation are timed
and their peak traced memory (tracemalloc, which numpy reports to) measured separately; the
process's peak RSS is reported too. Writes benchmarks/results/evaluation.json.

    .venv/bin/python benchmarks/bench_evaluation.py [--users 100000] [--items 10000]
        [--k 10] [--dim 64] [--n-boot 1000] [--batch 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ltrec.evaluation import evaluate  # noqa: E402


def synthetic(n_users: int, n_items: int, dim: int, seed: int = 0):
    """Zipf popularity, 10 training items and 1-5 test items per user, random embeddings."""
    rng = np.random.default_rng(seed)
    pop_weight = 1.0 / np.arange(1, n_items + 1) ** 1.1
    p = pop_weight / pop_weight.sum()
    n_train, max_test = 10, 5
    train_items = rng.choice(n_items, size=(n_users, n_train), p=p)
    seen = sp.csr_matrix(
        (
            np.ones(train_items.size, bool),
            (np.repeat(np.arange(n_users), n_train), train_items.ravel()),
        ),
        shape=(n_users, n_items),
    )
    seen.sum_duplicates()
    item_pop = np.asarray((seen > 0).sum(axis=0)).ravel().astype(float)  # distinct users
    n_test = rng.integers(1, max_test + 1, n_users)
    test_items = rng.choice(n_items, size=n_test.sum(), p=p)
    test = sp.csr_matrix(
        (np.ones(test_items.size, bool), (np.repeat(np.arange(n_users), n_test), test_items)),
        shape=(n_users, n_items),
    )
    test = test - test.multiply(seen)  # unseen test items only, as the split does
    test = sp.csr_matrix(test > 0)
    users = rng.standard_normal((n_users, dim)).astype(np.float32)
    items = rng.standard_normal((n_items, dim)).astype(np.float32)
    category = rng.integers(0, 50, n_items)
    return seen, test, item_pop, users, items, category


def score_topk(users, items, seen: sp.csr_matrix, k: int, batch: int) -> np.ndarray:
    """Top-K item indices per user over the full catalogue, seen items excluded."""
    n = users.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, batch):
        scores = users[s : s + batch] @ items.T  # [b, n_items] float32
        block = seen[s : s + batch]
        rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        scores[rows, block.indices] = -np.inf
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        out[s : s + batch] = np.take_along_axis(part, order, axis=1)
    return out


def measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    value = fn()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return value, wall, cpu, peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=2048)
    args = ap.parse_args()
    os.environ["LTREC_DATA_DIR"] = tempfile.mkdtemp(prefix="ltrec-bench-")

    seen, test, pop, users, items, category = synthetic(args.users, args.items, args.dim)
    base = np.tile(np.argsort(-pop)[: args.k], (args.users, 1))  # popularity base list
    recs, t_score, cpu_score, mem_score = measure(
        lambda: score_topk(users, items, seen, args.k, args.batch)
    )

    def run_eval():
        return evaluate(
            recs,
            test,
            item_pop=pop,
            k=args.k,
            item_category=category,
            item_embedding=items,
            base_recs=base,
            seen=seen,
            n_boot=args.n_boot,
            seed=0,
        )

    res, t_eval, cpu_eval, mem_eval = measure(run_eval)
    # Evaluation without intervals, to show what the bootstrap costs.
    _, t_point, cpu_point, mem_point = measure(
        lambda: evaluate(
            recs,
            test,
            item_pop=pop,
            k=args.k,
            item_category=category,
            item_embedding=items,
            base_recs=base,
            seen=seen,
            n_boot=0,
        )
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    rows = [
        ("scoring (batched, top-K)", t_score, cpu_score, mem_score),
        (f"evaluate, n_boot={args.n_boot}", t_eval, cpu_eval, mem_eval),
        ("evaluate, n_boot=0", t_point, cpu_point, mem_point),
    ]
    print(
        f"{args.users:,} users x {args.items:,} items, K={args.k}, dim={args.dim}, "
        f"batch={args.batch}, {len(res.metrics)} metrics, cores={os.cpu_count()}"
    )
    print(f"{'phase':<28}{'wall s':>9}{'cpu s':>9}{'peak MiB':>10}")
    for name, wall, cpu, mem in rows:
        print(f"{name:<28}{wall:>9.2f}{cpu:>9.2f}{mem:>10.1f}")
    print(f"process peak RSS: {rss:,.0f} MiB")
    for m in ("ndcg", "recall", "aplt", "coverage", "gini", "pop_reo"):
        mv = res[m]
        ci = "" if mv.low is None else f" [{mv.low:.4f}, {mv.high:.4f}]"
        print(f"  {m}@{args.k} = {mv.mean:.4f}{ci}")

    out = Path(__file__).resolve().parent / "results" / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "params": vars(args),
                "phases": [
                    {"phase": n, "wall_s": w, "cpu_s": c, "peak_traced_mib": m}
                    for n, w, c, m in rows
                ],
                "peak_rss_mib": rss,
                "metrics": res.to_dict(),
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "note": "2 CPU cores shared with other jobs while measured",
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
