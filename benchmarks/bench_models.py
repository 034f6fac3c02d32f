"""Baseline recommenders: quality, training time, memory, latency and throughput.

Run: ``.venv/bin/python benchmarks/bench_models.py [--quick]``. Prints tables and writes
``benchmarks/results/models.json``. Uses a temporary data directory.

1. Quality on the demo shop (default size) and on the real CC0 Complete Journey sample:
   model x (Recall@10, NDCG@10, coverage@10, APLT@10, tail recall@10, train s, peak MB), with
   the targets: every personalised model >= 1.3x popularity on Recall@10, EASE >= 0.95x ALS.
2. Training time per model on 1M synthetic events (50k users, 100k items, Zipf popularity).
3. One-user recommend latency (p50/p95) over the 100k-item catalogue with 64-d ALS embeddings
   vs a bare numpy dot + argpartition on the same embeddings (target <= 1.25x).
4. Batch scoring throughput (users/s, k=10, whole catalogue ranked, seen items excluded).

Peak memory is tracemalloc's peak of traced allocations during ``fit`` (numpy buffers
included; memory allocated inside the implicit C++ extension is not traced).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ltrec.errors import LtrecError  # noqa: E402
from ltrec.evaluation import SplitConfig, temporal_split  # noqa: E402
from ltrec.models.base import make_model  # noqa: E402
from ltrec.models.data import InteractionData  # noqa: E402
from ltrec.models.train import evaluate_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CJ = REPO.parent / "shared" / "datasets" / "completejourney"
RESULTS = REPO / "benchmarks" / "results" / "models.json"

MODELS = {
    "popularity": {},
    "itemknn": {"neighbours": 100, "shrinkage": 100.0, "binary": True},
    "ease": {"lambda_": 200.0, "precision": "float32", "max_memory_gb": 4.0},
    "als": {"factors": 64, "regularization": 0.05, "alpha": 10.0, "iterations": 15},
}
METRICS = ("recall@10", "ndcg@10", "coverage@10", "aplt@10", "tail_recall@10")


def fit_measured(name: str, params: dict, data: InteractionData):
    model = make_model(name, params)
    tracemalloc.start()
    t0 = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return model, seconds, peak / 1024**2


def quality(label: str, data: InteractionData, n_boot: int = 200) -> list[dict]:
    rows = []
    for name, params in MODELS.items():
        try:
            model, seconds, peak = fit_measured(name, params, data)
        except LtrecError as err:
            rows.append({"data": label, "model": name, "error": err.message})
            print(f"  {name}: {err.message}", flush=True)
            continue
        res = evaluate_model(model, data, k=10, n_boot=n_boot).to_dict()
        row = {"data": label, "model": name, "train_s": round(seconds, 2), "peak_mb": round(peak)}
        for m in METRICS:
            row[m] = res[m]["mean"]
            row[m + "_ci"] = [res[m]["low"], res[m]["high"]]
        row["test_users"] = res["recall@10"]["n"]
        rows.append(row)
        print(
            f"  {name}: recall@10={row['recall@10']:.4f} ndcg@10={row['ndcg@10']:.4f} "
            f"train {seconds:.1f}s peak {peak:.0f}MB",
            flush=True,
        )
    pop = next((r["recall@10"] for r in rows if r["model"] == "popularity"), None)
    als = next((r.get("recall@10") for r in rows if r["model"] == "als"), None)
    for r in rows:
        if "recall@10" in r and pop:
            r["x_popularity_recall"] = round(r["recall@10"] / pop, 3)
        if r["model"] == "ease" and als and "recall@10" in r:
            r["x_als_recall"] = round(r["recall@10"] / als, 3)
    return rows


def demo_data(quick: bool) -> InteractionData:
    from ltrec.store import connect
    from ltrec.store.demo import DemoConfig, build_demo

    cfg = DemoConfig(events=60_000, seed=42) if quick else DemoConfig(seed=42)
    # Purchases are ~0.4% of demo events: views, carts and purchases as targets give a test
    # set large enough for tight intervals.
    t0 = time.perf_counter()
    report = build_demo(cfg)
    print(f"demo shop built in {time.perf_counter() - t0:.1f}s", flush=True)
    print(report.summary(), flush=True)
    con = connect("demo")
    try:
        return InteractionData.from_store(
            con, SplitConfig(target_events=("view", "cart", "purchase"))
        )
    finally:
        con.close()


def cj_data() -> tuple[InteractionData, str]:
    """The CC0 sample: through the importer when it is there, else read directly."""
    events = CJ / "transactions_sample.parquet"
    items = CJ / "products_in_transactions_sample.csv"
    users = CJ / "demographics.csv"
    split = SplitConfig()  # last 20% by time, purchases, repeat purchases excluded
    try:
        from ltrec.store import connect
        from ltrec.store.importer import import_dataset

        import_dataset("cj", events, items, users, preset="completejourney", replace=True)
        con = connect("cj")
        try:
            return InteractionData.from_store(con, split), "importer (preset completejourney)"
        finally:
            con.close()
    except Exception as exc:  # noqa: BLE001 - fall back to a direct read, and say so
        print(f"  importer unavailable ({exc.__class__.__name__}: {exc}); reading directly")
    t = pd.read_parquet(events)
    ev = pd.DataFrame(
        {
            "user_id": t["household_id"].astype(str),
            "item_id": t["product_id"].astype(str),
            "event_type": "purchase",
            "ts": pd.to_datetime(t["transaction_timestamp"]),
        }
    )
    p = pd.read_csv(items)
    it = pd.DataFrame(
        {
            "item_id": p["product_id"].astype(str),
            "title": p["product_type"].astype(str),
            "category": p["department"].astype(str) + " > " + p["product_category"].astype(str),
            "brand": p["brand"].astype(str),
        }
    )
    d = pd.read_csv(users).rename(columns={"household_id": "user_id"})
    d["user_id"] = d["user_id"].astype(str)
    s = temporal_split(ev, split)
    return InteractionData.from_split(s, it, d), "direct read"


def synthetic(n_users: int, n_items: int, n_events: int, seed: int = 0) -> InteractionData:
    """Zipf-like item popularity and 16 taste clusters: a stand-in with the right shape."""
    rng = np.random.default_rng(seed)
    clusters = 16
    item_cluster = rng.integers(0, clusters, n_items)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    users = rng.integers(0, n_users, n_events)
    user_cluster = users % clusters
    own = rng.random(n_events) < 0.7
    items = np.empty(n_events, dtype=np.int64)
    for c in range(clusters):
        members = np.flatnonzero(item_cluster == c)
        p = pop[members] / pop[members].sum()
        sel = own & (user_cluster == c)
        items[sel] = members[rng.choice(len(members), sel.sum(), p=p)]
    rest = ~own
    items[rest] = rng.choice(n_items, rest.sum(), p=pop / pop.sum())
    ev = pd.DataFrame(
        {
            "user_id": pd.Series(users).map("u{:06d}".format),
            "item_id": pd.Series(items).map("i{:06d}".format),
            "event_type": rng.choice(["view", "cart", "purchase"], n_events, p=[0.8, 0.15, 0.05]),
            "ts": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 86400 * 90, n_events), "s"),
        }
    )
    catalogue = pd.DataFrame({"item_id": [f"i{i:06d}" for i in range(n_items)]})
    return InteractionData.from_frame(ev, catalogue)


def percentiles(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def latency(model, n_users: int, rng: np.random.Generator, reps: int = 300) -> dict:
    users = rng.integers(0, n_users, reps)
    users = users[model.has_history(users)]
    uf, itf = model.user_factors_, model.item_factors_
    k = 10

    def bare(u: int) -> np.ndarray:
        s = itf @ uf[u]
        idx = np.argpartition(-s, k)[:k]
        return idx[np.argsort(-s[idx])]

    ours_t, bare_t = [], []
    for u in users[:20]:  # warm-up
        model.recommend(int(u), k), bare(int(u))
    for u in users:
        t0 = time.perf_counter()
        model.recommend(int(u), k)
        t1 = time.perf_counter()
        bare(int(u))
        t2 = time.perf_counter()
        ours_t.append(t1 - t0)
        bare_t.append(t2 - t1)
    o50, o95 = percentiles(ours_t)
    b50, b95 = percentiles(bare_t)
    return {
        "catalogue": int(itf.shape[0]),
        "factors": int(itf.shape[1]),
        "ours_p50_ms": round(o50, 3),
        "ours_p95_ms": round(o95, 3),
        "bare_p50_ms": round(b50, 3),
        "bare_p95_ms": round(b95, 3),
        "ratio_p50": round(o50 / b50, 3),
        "ratio_p95": round(o95 / b95, 3),
    }


def throughput(model, n_users: int, batch: int = 2000) -> float:
    users = np.arange(min(batch, n_users))
    t0 = time.perf_counter()
    model.recommend(users, 10)
    return len(users) / (time.perf_counter() - t0)


def table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    widths = [max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in cols]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    for r in rows:
        lines.append(
            "  ".join(fmt(r.get(c, "")).ljust(w) for c, w in zip(cols, widths, strict=True))
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--skip", action="append", default=[], help="demo, cj, scale")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ltrec-bench-")
    os.environ["LTREC_DATA_DIR"] = tmp
    out: dict = {"note": "2 shared CPU cores, loaded by other engineers' work while measured"}
    cols = [
        "data",
        "model",
        "recall@10",
        "ndcg@10",
        "coverage@10",
        "aplt@10",
        "tail_recall@10",
        "train_s",
        "peak_mb",
        "x_popularity_recall",
        "x_als_recall",
    ]
    rows: list[dict] = []
    if "demo" not in args.skip:
        print("== demo shop", flush=True)
        data = demo_data(args.quick)
        print(f"  {data.summary()['interactions']:,} interactions, split {data.split.summary()}")
        rows += quality("demo", data)
    if "cj" not in args.skip:
        print("== Complete Journey (CC0 sample)", flush=True)
        data, how = cj_data()
        out["cj_source"] = how
        print(f"  {data.summary()['interactions']:,} interactions, split {data.split.summary()}")
        rows += quality("completejourney", data)
    out["quality"] = rows
    if rows:
        print(table(rows, cols))
    if "scale" not in args.skip:
        n_users, n_items, n_events = (
            (5_000, 20_000, 100_000) if args.quick else (50_000, 100_000, 1_000_000)
        )
        print(f"== scale: {n_events:,} events, {n_users:,} users, {n_items:,} items", flush=True)
        t0 = time.perf_counter()
        data = synthetic(n_users, n_items, n_events)
        print(f"  InteractionData built in {time.perf_counter() - t0:.1f}s")
        scale = []
        rng = np.random.default_rng(0)
        for name, params in MODELS.items():
            try:
                model, seconds, peak = fit_measured(name, params, data)
            except LtrecError as err:
                scale.append({"model": name, "error": err.message})
                print(f"  {name}: {err.message}", flush=True)
                continue
            row = {
                "model": name,
                "train_s": round(seconds, 2),
                "peak_mb": round(peak),
                "batch_users_per_s": round(throughput(model, data.n_users)),
            }
            print(
                f"  {name}: train {seconds:.1f}s, {row['batch_users_per_s']:,} users/s", flush=True
            )
            if name == "als":
                out["latency"] = latency(model, data.n_users, rng)
                print(f"  latency {out['latency']}", flush=True)
            scale.append(row)
        out["scale"] = {"events": n_events, "users": n_users, "items": n_items, "models": scale}
        print(table(scale, ["model", "train_s", "peak_mb", "batch_users_per_s", "error"]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2, default=str))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
