"""The Keras models on sparse data (issue 18, part 6): NCF and two-tower against popularity.

Run: ``.venv/bin/python benchmarks/bench_keras.py [--datasets demo,cj] [--n-boot 1000]``.
Writes ``benchmarks/results/keras.json``. Uses a private temporary data directory.

Per dataset (the demo shop, 500k events, seed 42; the CC0 Complete Journey sample imported with
its ``completejourney`` preset), on the split ``ltrec train`` evaluates on (the dataset's
default split) and with the registry defaults of each model (what ``ltrec train NAME --model
M`` runs; on CC0 also each model alone, without its default repeat blend): NDCG@10 of
popularity, NCF and the two-tower, each model's NDCG@10 ratio to
popularity with a 95% *paired* bootstrap interval (the same resampled users for both), the
mean top-10 overlap of its lists with popularity's (1.0 = a popularity copy), the epochs run,
the data note (``train --json`` key ``data_note``: why the model cannot beat popularity, None
when it does) and the data's support per item (median training users per item, share seen
once).

NCF training seconds: the NCF fit on the demo's training split (404,612 events of the 500k;
issue 18 asks for <= 60 s on 400k events on 2 cores): wall seconds with the 1-minute load
average before and after the fit, and the process's CPU seconds (all threads). The machine's 2
cores are shared with other jobs, so the wall time depends on the load; the
CPU seconds do much less, and bound the wall time of the same fit on 2 idle cores (a
CPU-bound fit's wall time is at most its CPU time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _cc0 import import_cc0, paired_ratio  # noqa: E402 - benchmarks/ is the script dir

from ltrec.models.base import make_model  # noqa: E402
from ltrec.models.data import InteractionData  # noqa: E402
from ltrec.models.train import add_text, evaluate_model, split_targets  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "keras.json"
MODELS = {"popularity": ("popularity", {}), "ncf": ("ncf", {}), "two_tower": ("two_tower", {})}
#: On repeat-purchase data (CC0) the models also alone, without the repeat blend of the user's
#: own purchases and popularity that they get by default there (RepeatConfig).
ALONE = {
    "ncf alone": ("ncf", {"repeat_weight": 0.0, "popularity_weight": 0.0}),
    "two_tower alone": ("two_tower", {"repeat_weight": 0.0, "popularity_weight": 0.0}),
}


def load(name: str) -> InteractionData:
    """The dataset on its default split (as ``ltrec train``), text vectors added."""
    from ltrec.store import connect

    con = connect(name)
    try:
        data = InteractionData.from_store(con)
    finally:
        con.close()
    return add_text(data, name)


def build(dataset: str) -> InteractionData:
    if dataset == "cj":
        import_cc0("cj")
    else:
        from ltrec.synth.demo import DemoConfig, build_demo

        build_demo(DemoConfig(seed=42))
    return load(dataset)


def bench(data: InteractionData, n_boot: int) -> dict:
    from ltrec.models.keras_util import item_support

    users, _ = split_targets(data)
    median, once = item_support(data.matrix)
    out: dict = {
        "data": {
            "users": data.n_users,
            "items": data.n_items,
            "training_events": int(len(data.split.train)),
            "training_pairs": int(data.matrix.nnz),
            "test_users": len(users),
            "repeat_domain": bool(data.repeat_domain),
            "median_users_per_item": median,
            "share_items_seen_once": round(once, 4),
        },
        "models": {},
    }
    results, lists = {}, {}
    models = {**MODELS, **(ALONE if data.repeat_domain else {})}
    for name, (kind, params) in models.items():
        load_before = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        model = make_model(kind, params).fit(data)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        load_after = os.getloadavg()[0]
        results[name] = res = evaluate_model(model, data, k=10, n_boot=n_boot)
        lists[name], _ = model.recommend(users, 10)
        d = res.to_dict()["ndcg@10"]
        row = {
            "ndcg@10": d["mean"],
            "ndcg@10_ci": [d["low"], d["high"]],
            "train_s": round(seconds, 1),
            "train_cpu_s": round(cpu, 1),
            "load_1min_before_after": [round(load_before, 2), round(load_after, 2)],
        }
        if hasattr(model, "history_"):
            row["epochs"] = len(model.history_)
            row["data_note"] = model.data_note_
        out["models"][name] = row
        print(
            f"  {name}: ndcg@10 {d['mean']:.4f} [{d['low']:.4f}, {d['high']:.4f}] "
            f"fit {seconds:.1f}s (load {load_before:.1f} -> {load_after:.1f})",
            flush=True,
        )
    pop = lists["popularity"]
    for name in list(models)[1:]:
        ratio, low, high = paired_ratio(results[name], results["popularity"], "ndcg@10")
        overlap = np.mean(
            [len(np.intersect1d(a, b)) / 10 for a, b in zip(lists[name], pop, strict=True)]
        )
        out["models"][name].update(
            {
                "x_popularity_ndcg@10": round(ratio, 3),
                "x_popularity_paired_ci": [round(low, 3), round(high, 3)],
                "beats_popularity": bool(low > 1.0),
                "top10_overlap_with_popularity": round(float(overlap), 3),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="demo,cj", help="comma-separated, of demo, cj")
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    out: dict = {
        "cpus": os.cpu_count(),
        "note": "2 CPU cores shared with other jobs: seconds depend on the "
        "load average recorded beside them",
        "datasets": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LTREC_DATA_DIR"] = tmp
        for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
            print(f"{dataset}:", flush=True)
            out["datasets"][dataset] = bench(build(dataset), args.n_boot)
    demo = out["datasets"].get("demo")
    if demo:
        ncf = demo["models"]["ncf"]
        out["ncf_speed"] = {
            "training_events": demo["data"]["training_events"],
            "train_s": ncf["train_s"],
            "train_cpu_s": ncf["train_cpu_s"],
            "epochs": ncf["epochs"],
            "load_1min_before_after": ncf["load_1min_before_after"],
            "target_s": 60,
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
