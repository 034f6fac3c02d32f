"""Re-ranking speed: p50/p95 per strategy for one user's 200-candidate pool, K = 10.

Target (issue 6): <= 1 ms for tail boost, calibration and xQuAD; MMR and FA*IR are stated.
The shop is synthetic but shaped like the demo: 20,000 items, Zipf popularity, 40 categories,
384-d text embeddings (MiniLM's width), 2,000 users with 30 history items each. Each strategy
is timed over many users after a warm-up (the FA*IR table and the rule masks are cached per
setting, as in a sweep or a Studio session). Writes benchmarks/results/rerank.json.

    .venv/bin/python benchmarks/bench_rerank.py [--users 2000] [--quality]

``--quality`` adds the quality table (APLT@10, tail recall, NDCG@10 per strategy and strength
against the base run) on the demo shop and, when present, the CC0 Complete Journey data; it
trains an EASE base model in a temporary data dir and takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _cc0 import CJ, import_cc0  # noqa: E402 - benchmarks/ is on sys.path as the script dir

from ltrec.rerank import Candidates, Context, build  # noqa: E402

SETTINGS = {
    "base (top-K only)": {"strategy": "none"},
    "tail_boost": {"strategy": "tail_boost", "beta": 0.3},
    "pop_penalty": {"strategy": "tail_boost", "beta": 0.3, "signal": "log_popularity"},
    "xquad": {"strategy": "xquad", "lambda": 0.5},
    "calibration (buckets)": {"strategy": "calibration", "lambda": 0.5},
    "calibration (categories)": {"strategy": "calibration", "lambda": 0.5, "by": "category"},
    "mmr (embedding)": {"strategy": "mmr", "lambda": 0.3},
    "mmr (category)": {"strategy": "mmr", "lambda": 0.3, "by": "category"},
    "fair": {"strategy": "fair", "p": 0.3},
    "fair (adjusted alpha)": {"strategy": "fair", "p": 0.3, "adjust_alpha": True},
    "tail_boost + rules": {
        "strategy": "tail_boost",
        "beta": 0.3,
        "rules": {"in_stock": True, "price_max": 200, "exclude_categories": ["c3"]},
    },
}
REPEATS = 3
TARGET_MS = {"tail_boost", "xquad", "calibration (buckets)", "calibration (categories)"}


def synthetic_shop(n_items: int, n_users: int, seed: int = 0) -> Context:
    rng = np.random.default_rng(seed)
    pop = rng.zipf(1.3, n_items).astype(float)
    order = np.argsort(-pop)
    cum = np.cumsum(pop[order]) / pop.sum()
    tail = np.ones(n_items, dtype=bool)
    tail[order[: int(np.searchsorted(cum, 0.8)) + 1]] = False
    p = pop / pop.sum()
    history = [rng.choice(n_items, 30, replace=False, p=p) for _ in range(n_users)]
    return Context.from_data(
        pop,
        tail=tail,
        category=rng.integers(0, 40, n_items),
        category_names=[f"c{i}" for i in range(40)],
        embedding=rng.normal(size=(n_items, 384)).astype(np.float32),
        price=rng.lognormal(3, 1, n_items),
        in_stock=rng.random(n_items) > 0.05,
        history=history,
    )


def speed(n_users: int, m: int = 200, k: int = 10) -> list[dict]:
    ctx = synthetic_shop(20_000, n_users)
    rng = np.random.default_rng(1)
    pools = [
        Candidates(rng.choice(ctx.n_items, m, replace=False), rng.normal(size=m))
        for _ in range(n_users)
    ]
    rows = []
    for name, cfg in SETTINGS.items():
        pipe = build(cfg)
        for u in range(min(50, n_users)):  # warm-up: caches, branch predictors
            pipe.rerank(pools[u], ctx, u, k)
        # Each user's pool is re-ranked REPEATS times: the first pass gives the raw
        # distribution, the per-user minimum the cost without the other jobs' preemption
        # (the 2 cores are shared; timeit's min convention).
        times = np.empty((REPEATS, n_users))
        for rep in range(REPEATS):
            for u in range(n_users):
                t0 = time.perf_counter()
                pipe.rerank(pools[u], ctx, u, k)
                times[rep, u] = time.perf_counter() - t0
        raw = times[0] * 1000
        best = times.min(axis=0) * 1000
        row = {
            "strategy": name,
            "setting": cfg,
            "p50_ms": round(float(np.percentile(best, 50)), 4),
            "p95_ms": round(float(np.percentile(best, 95)), 4),
            "mean_ms": round(float(best.mean()), 4),
            "raw_p50_ms": round(float(np.percentile(raw, 50)), 4),
            "raw_p95_ms": round(float(np.percentile(raw, 95)), 4),
            "target_ms": 1.0 if name in TARGET_MS else None,
        }
        row["meets_target"] = None if row["target_ms"] is None else row["p95_ms"] <= 1.0
        rows.append(row)
    return rows


QUALITY_GRID = {
    "tail_boost": ({"strategy": "tail_boost"}, [0.05, 0.1, 0.2, 0.3, 0.5, 1.0]),
    "pop_penalty": (
        {"strategy": "tail_boost", "signal": "log_popularity"},
        [0.1, 0.3, 0.5, 1.0, 2.0],
    ),
    "xquad": ({"strategy": "xquad"}, [0.1, 0.3, 0.5, 0.7, 0.9]),
    "calibration": ({"strategy": "calibration"}, [0.3, 0.5, 0.7, 0.9, 0.99]),
    "mmr (category)": ({"strategy": "mmr", "by": "category"}, [0.1, 0.3, 0.5]),
    "fair": ({"strategy": "fair"}, [0.1, 0.2, 0.3, 0.5, 0.7]),
}


def _load(name: str):
    from ltrec.evaluation import SplitConfig
    from ltrec.models.data import InteractionData, load_catalogue
    from ltrec.store import connect

    con = connect(name)
    try:
        data = InteractionData.from_store(con, SplitConfig())
        items, _ = load_catalogue(con)
    finally:
        con.close()
    return data, items


def quality_on(label: str, data, items, max_users: int = 3000) -> list[dict]:
    from ltrec.errors import LtrecError
    from ltrec.models import make_model
    from ltrec.models.train import split_targets
    from ltrec.rerank.adapters import context_from_data
    from ltrec.rerank.sweep import Pools, evaluation_scorer, sweep

    # EASE inverts an items x items matrix: cubic time. Above a few thousand items (the CC0
    # sample has ~21k) item-kNN is the base model, so the benchmark fits the 2 shared cores.
    model = None
    base_name = "ease" if data.n_items <= 5000 else "itemknn"
    if base_name == "ease":
        try:
            model = make_model("ease", {"lambda_": 200.0, "precision": "float32"}).fit(data)
        except LtrecError:
            base_name = "itemknn"
    if model is None:
        model = make_model("itemknn", {}).fit(data)
    users, test = split_targets(data)
    rng = np.random.default_rng(0)
    if users.size > max_users:
        keep = np.sort(rng.choice(users.size, max_users, replace=False))
        users, test = users[keep], [test[i] for i in keep]
    t0 = time.perf_counter()
    pools = Pools.from_model(model, users, 200)
    ctx = context_from_data(data, items=items)
    scorer = evaluation_scorer(
        test, item_pop=data.item_pop, k=10, tail_mask=ctx.tail, seen=data.matrix[users]
    )
    rows = []
    for name, (cfg, values) in QUALITY_GRID.items():
        res = sweep(cfg, [0.0, *values], pools, ctx, 10, scorer)
        t = res.table
        base = t.iloc[0]
        for _, r in t.iterrows():
            aplt_x = r["aplt@10"] / base["aplt@10"] if base["aplt@10"] > 0 else float("inf")
            ndcg_loss = 1 - r["ndcg@10"] / base["ndcg@10"] if base["ndcg@10"] > 0 else 0.0
            rows.append(
                {
                    "data": label,
                    "base_model": base_name,
                    "strategy": name,
                    "parameter": res.parameter,
                    "value": r["value"],
                    "ndcg@10": r["ndcg@10"],
                    "recall@10": r["recall@10"],
                    "aplt@10": r["aplt@10"],
                    "tail_recall@10": r["tail_recall@10"],
                    "coverage@10": r["coverage@10"],
                    "aplt_x_base": round(float(aplt_x), 3),
                    "ndcg_loss": round(float(ndcg_loss), 4),
                    "meets_target": bool(aplt_x >= 2 and ndcg_loss <= 0.05),
                    "pareto": bool(r["pareto"]),
                    "users": int(users.size),
                }
            )
    print(f"{label}: {users.size} users, sweeps in {time.perf_counter() - t0:.1f}s", flush=True)
    return rows


def quality() -> list[dict]:
    import tempfile

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LTREC_DATA_DIR"] = tmp
        from ltrec.synth.demo import DemoConfig, build_demo

        build_demo(DemoConfig(seed=42))
        rows += quality_on("demo", *_load("demo"))
        if CJ.is_dir():
            import_cc0("cj")
            rows += quality_on("completejourney", *_load("cj"))
    return rows


def print_quality(rows: list[dict]) -> None:
    print("\nquality against the base run (K=10); * = APLT x2 with <= 5% NDCG loss")
    head = f"{'data':16s} {'strategy':15s} {'strength':>12s} {'NDCG':>7s} {'APLT':>6s}"
    print(head + f" {'tailR':>6s} {'APLTx':>6s} {'NDCG-':>6s}")
    for r in rows:
        mark = "*" if r["meets_target"] else " "
        print(
            f"{r['data']:16s} {r['strategy']:15s} {r['parameter']:>6s}={r['value']:<5g} "
            f"{r['ndcg@10']:7.4f} {r['aplt@10']:6.3f} {r['tail_recall@10']:6.3f} "
            f"{r['aplt_x_base']:6.2f} {r['ndcg_loss']:6.1%} {mark}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--quality", action="store_true", help="also the quality table (slow)")
    args = ap.parse_args(argv)
    rows = speed(args.users)
    print(f"re-ranking one user's pool, M=200, K=10, {args.users} users (ms)")
    print("per-user best of 3 repeats (p50 p95 mean), then the raw first pass (p50 p95)")
    print(f"{'strategy':28s} {'p50':>8s} {'p95':>8s} {'mean':>8s} {'raw50':>8s} {'raw95':>8s}")
    for r in rows:
        tgt = "" if r["target_ms"] is None else ("<=1 ms ok" if r["meets_target"] else "MISSED")
        times = f"{r['p50_ms']:8.3f} {r['p95_ms']:8.3f} {r['mean_ms']:8.3f}"
        times += f" {r['raw_p50_ms']:8.3f} {r['raw_p95_ms']:8.3f}"
        print(f"{r['strategy']:28s} {times}  {tgt}")
    out = {
        "speed": rows,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "2 shared cores; other jobs were running during the measurement",
        },
    }
    if args.quality:
        out["quality"] = quality()
        print_quality(out["quality"])
    dest = Path(__file__).resolve().parent / "results" / "rerank.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2))
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
