"""Keras models (two-tower with and without log-Q, hybrid NCF) against popularity and ALS.

Run: ``.venv/bin/python benchmarks/bench_keras_models.py [--quick]``. Prints tables and writes
``benchmarks/results/keras_models.json``. Uses a temporary data directory; MiniLM text vectors
(the TF-IDF fallback when the package is absent; the JSON says which).

Other runs (each writes its own JSON next to it):

* ``--dataset cj`` (or ``--cc0``): the real CC0 Complete Journey purchase sample, imported into
  the temporary directory with the ``completejourney`` preset (a repeat-purchase domain: the
  split keeps seen items as targets). Parts 1 (quality, ALS with its registry defaults, as
  ``ltrec train cj --model als`` runs it) and 5 (log-Q and negatives); ``keras_models_cj.json``.
* ``--events 1000000``: a 1M-event demo shop, part 6 (speed): two-tower and NCF training time
  (``--speed-epochs`` epochs, seconds per epoch) and part 3 (examples/s vs bare Keras);
  ``keras_models_speed_<events>.json``.
* ``--parts quality,logq,cold,throughput,speed``: choose the parts explicitly.

1. Quality on the demo shop (default size, seed 42, the evaluation core's default split):
   model x (Recall@10, NDCG@10, coverage@10, APLT@10, tail recall@10, train s, peak MB).
   Targets (issue 5): two-tower >= 0.9x ALS on Recall@10; log-Q gives a higher APLT@10 than
   without at <= 10% NDCG@10 loss.
2. Items with no training events: 10% of the items that have test targets lose all their
   training events; recall@10 on the test pairs of those items, per model. Content models
   (two-tower, NCF) should be non-zero; collaborative ones (popularity, ALS) score them zero.
3. Two-tower training throughput (examples/s, steady-state epochs) against a bare Keras model
   of the same towers trained with ``model.fit`` at the same batch size (target >= 0.7x).
4. The NCF classification view (accuracy, precision, recall, F1, AUC on held-out positives vs
   sampled negatives), labelled as such.
5. Log-Q and negatives (``logq``): the two-tower with in-batch negatives, in-batch plus 512
   uniform negatives (Yang et al. 2020, mixed negative sampling), each with log-Q on and off,
   and a plain sampled softmax over 512 uniform negatives only (its proposal is uniform, so
   log-Q is a constant shift and has no effect): APLT@10, NDCG@10, Recall@10, coverage@10.
6. Speed (``speed``): wall time of the two-tower and NCF training epochs on the data.

Peak memory: tracemalloc's peak during ``fit`` (numpy/Python allocations; TensorFlow's own
allocator is not traced) and the process's max RSS after the fit (monotonic over the run).
The machine's 2 CPU cores are shared with other jobs while this runs: times are
pessimistic and noisy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _cc0 import CJ, import_cc0, paired_ratio  # noqa: E402 - benchmarks/ is on sys.path as the script dir

from ltrec.evaluation import SplitConfig  # noqa: E402
from ltrec.models.base import make_model  # noqa: E402
from ltrec.models.data import InteractionData, load_catalogue  # noqa: E402
from ltrec.models.train import add_text, evaluate_model, split_targets  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "keras_models.json"
#: No repeat blend: the model alone (on other data the blend's weights are 0 anyway).
PLAIN = {"repeat_weight": 0.0, "popularity_weight": 0.0}
METRICS = ("recall@10", "ndcg@10", "coverage@10", "aplt@10", "tail_recall@10")
ALS = {"factors": 64, "regularization": 0.05, "alpha": 10.0, "iterations": 15}
MODELS = {
    "popularity": ("popularity", {}),
    "als": ("als", ALS),
    "two_tower (log-Q)": ("two_tower", {"logq": True}),
    "two_tower (no log-Q)": ("two_tower", {"logq": False}),
    "ncf": ("ncf", {}),
}


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fit_measured(name: str, params: dict, data: InteractionData):
    model = make_model(name, params)
    tracemalloc.start()
    t0 = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return model, seconds, peak / 1024**2


def _with_text(name: str, split: SplitConfig | None) -> tuple[InteractionData, object]:
    """The dataset on ``split`` (None: its default split, as ``ltrec train``), text added."""
    from ltrec.store import connect

    con = connect(name)
    try:
        data = InteractionData.from_store(con, split)
        items, users = load_catalogue(con)
    finally:
        con.close()
    t0 = time.perf_counter()
    data = add_text(data, name)
    print(f"text vectors ({data.text_encoder}): {time.perf_counter() - t0:.1f}s", flush=True)
    return data, (items, users)


def demo(quick: bool, events: int | None = None) -> tuple[InteractionData, object]:
    from ltrec.synth.demo import DemoConfig, build_demo

    if events:
        cfg = DemoConfig(events=events, seed=42)
    else:
        cfg = DemoConfig(events=80_000, seed=42) if quick else DemoConfig(seed=42)
    build_demo(cfg)
    return _with_text("demo", SplitConfig())


def cc0(root: Path = CJ) -> tuple[InteractionData, object]:
    """Import the CC0 Complete Journey sample as ``cj`` (preset completejourney)."""
    import_cc0("cj", root)
    return _with_text("cj", None)


def quality(data: InteractionData, params_over: dict, models: dict | None = None) -> list[dict]:
    rows, results = [], {}
    for label, (name, params) in (models or MODELS).items():
        model, seconds, peak = fit_measured(name, {**params, **params_over.get(name, {})}, data)
        results[label] = result = evaluate_model(model, data, k=10, n_boot=200)
        res = result.to_dict()
        row = {
            "model": label,
            "train_s": round(seconds, 1),
            "peak_mb": round(peak),
            "max_rss_mb": round(max_rss_mb()),
        }
        for m in METRICS:
            row[m] = res[m]["mean"]
            row[m + "_ci"] = [res[m]["low"], res[m]["high"]]
        row["test_users"] = res["recall@10"]["n"]
        if hasattr(model, "history_"):
            row["epochs"] = len(model.history_)
            val = [h["recall"] for h in model.history_ if h.get("recall") is not None]
            if val:
                row["best_val_recall"] = max(val)
        if hasattr(model, "repeat_on_"):
            row["repeat_term"] = bool(model.repeat_on_)
            row["repeat_rho"] = round(float(model.rho_), 4)
        rows.append(row)
        print(
            f"  {label}: recall@10={row['recall@10']:.4f} ndcg@10={row['ndcg@10']:.4f} "
            f"aplt@10={row['aplt@10']:.4f} train {seconds:.1f}s",
            flush=True,
        )
        if name == "ncf":
            c = model.classification(data)
            rows[-1]["classification_view"] = dataclasses.asdict(c)
    if "popularity" in results:
        for r in rows:
            ratio, low, high = paired_ratio(results[r["model"]], results["popularity"])
            r["x_popularity_recall"] = round(ratio, 3)
            r["x_popularity_paired_ci"] = [round(low, 3), round(high, 3)]
    return rows


def cold_items(data: InteractionData, frames, params_over: dict, seed: int = 0) -> dict:
    """Hide 10% of the test-target items from training; recall@10 on their test pairs."""
    split = data.split
    rng = np.random.default_rng(seed)
    targets = np.array(sorted(set(split.test["item_id"].astype(str))))
    held = set(rng.choice(targets, max(1, len(targets) // 10), replace=False).tolist())
    train = split.train[~split.train["item_id"].astype(str).isin(held)]
    cold_split = split.replace(train=train)
    items, users = frames
    cold = InteractionData.from_split(cold_split, items, users, repeat_domain=data.repeat_domain)
    cold = cold.with_text(data.item_text_emb, data.text_encoder)  # same catalogue order
    assert (cold.item_ids == data.item_ids).all()
    held_idx = cold.items_to_index(sorted(held))
    assert (cold.item_pop[held_idx] == 0).all()
    users_idx, per_user = split_targets(cold)
    is_held = np.zeros(cold.n_items, bool)
    is_held[held_idx] = True
    out = {"held_out_items": len(held), "test_pairs_on_them": 0, "recall@10": {}}
    mask = [is_held[t] for t in per_user]
    out["test_pairs_on_them"] = int(sum(m.sum() for m in mask))
    keep = [j for j, m in enumerate(mask) if m.any()]
    sel_users = users_idx[keep]
    truth = [(per_user[j], mask[j]) for j in keep]
    for label, (name, params) in MODELS.items():
        if label == "two_tower (no log-Q)":
            continue
        model = make_model(name, {**params, **params_over.get(name, {})}).fit(cold)
        recs, _ = model.recommend(sel_users, 10)
        rec = [np.isin(t[m], r).sum() / m.sum() for r, (t, m) in zip(recs, truth, strict=True)]
        out["recall@10"][label] = float(np.mean(rec)) if rec else 0.0
        print(f"  {label}: recall@10 on items without events {out['recall@10'][label]:.4f}")
    return out


#: Part 5: two-tower negatives x log-Q (params on top of the defaults).
LOGQ_VARIANTS = {
    "in-batch, log-Q": {"logq": True},
    "in-batch, no log-Q": {"logq": False},
    "in-batch + 512 uniform, log-Q": {"logq": True, "uniform_negatives": 512},
    "in-batch + 512 uniform, no log-Q": {"logq": False, "uniform_negatives": 512},
    "512 uniform only (sampled softmax)": {"batch_negatives": False, "uniform_negatives": 512},
}


def logq_table(data: InteractionData) -> dict:
    """Part 5: every LOGQ_VARIANTS two-tower, its metrics; log-Q's APLT gain and NDCG change."""
    # The towers alone: on CC0 the repeat blend's popularity term would mask the tail share
    # the correction changes (elsewhere the blend is off: no change).
    models = {label: ("two_tower", {**p, **PLAIN}) for label, p in LOGQ_VARIANTS.items()}
    rows = quality(data, {}, models)
    by = {r["model"]: r for r in rows}
    out: dict = {"rows": rows, "effect": {}}
    for base in ("in-batch", "in-batch + 512 uniform"):
        on, off = by[f"{base}, log-Q"], by[f"{base}, no log-Q"]
        out["effect"][base] = {
            "aplt_gain": round(on["aplt@10"] - off["aplt@10"], 4),
            "ndcg_change": round(on["ndcg@10"] / max(off["ndcg@10"], 1e-12) - 1, 4),
            "target": "APLT@10 up at <= 10% NDCG@10 loss",
        }
    return out


def speed(data: InteractionData, epochs: int) -> dict:
    """Part 6: training wall time of the two-tower and NCF for ``epochs`` epochs.

    Default configs (validation recall after every epoch included) but no early stop: patience
    is set to ``epochs``, so every timed epoch runs.
    """
    out = {}
    for name in ("two_tower", "ncf"):
        params = {"epochs": epochs, "patience": epochs}
        model, seconds, peak = fit_measured(name, params, data)
        per_epoch = seconds / epochs
        default_epochs = type(model.config).model_fields["epochs"].default
        out[name] = {
            "training_pairs": int(data.matrix.nnz),
            "epochs": epochs,
            "train_s": round(seconds, 1),
            "s_per_epoch": round(per_epoch, 1),
            "default_epochs": default_epochs,
            "est_default_train_s": round(per_epoch * default_epochs, 1),
            "peak_mb": round(peak),
            "max_rss_mb": round(max_rss_mb()),
        }
        print(f"  {name}: {epochs} epochs in {seconds:.1f}s ({per_epoch:.1f}s/epoch)", flush=True)
    return out


def throughput(data: InteractionData, batch: int = 512, n_bare: int = 10_240) -> dict:
    """Steady-state examples/s of TwoTower.fit vs a bare Keras model of the same towers."""
    from ltrec.models.keras_util import keras
    from ltrec.models.two_tower import TwoTower

    model = TwoTower(epochs=3, val_users=0, batch_size=batch).fit(data)
    steady = model.history_[1:]
    ours = sum(h["examples"] for h in steady) / sum(h["train_s"] for h in steady)

    # The bare model: the same towers (rebuilt), in-batch logits, model.fit on gathered arrays.
    twin = TwoTower(epochs=1, val_users=0, batch_size=batch)
    twin._build(model.tables_, data.n_users)
    t = model.tables_
    m = data.matrix.tocoo()
    n = min(n_bare, m.nnz) // batch * batch
    u, i = m.row[:n].astype(np.int32), m.col[:n].astype(np.int32)
    text_pad = np.vstack([np.zeros((1, t.d_text), np.float32), t.item_text])
    hist = t.user_history[u]
    x = [
        u + 1,
        hist,
        text_pad[hist],
        t.user_segments[u],
        i + 1,
        t.item_category[i],
        t.item_brand[i],
        t.item_band[i],
        t.item_text[i],
    ]

    class InBatchLogits(keras.layers.Layer):
        def call(self, uv, iv):
            return keras.ops.matmul(uv, keras.ops.transpose(iv)) / 0.05

    uo, io = twin.user_tower_.outputs[0], twin.item_tower_.outputs[0]
    bare = keras.Model(
        [*twin.user_tower_.inputs, *twin.item_tower_.inputs], InBatchLogits()(uo, io)
    )
    bare.compile(
        optimizer=keras.optimizers.AdamW(0.003),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    y = np.arange(n) % batch

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.t0)

    timer = Timer()
    bare.fit(x, y, batch_size=batch, epochs=3, shuffle=False, verbose=0, callbacks=[timer])
    bare_eps = n / float(np.mean(timer.times[1:]))
    return {
        "batch_size": batch,
        "two_tower_examples_per_s": round(ours, 1),
        "bare_keras_examples_per_s": round(bare_eps, 1),
        "ratio": round(ours / bare_eps, 3),
        "target_ratio": 0.7,
        "bare_examples": n,
    }


#: Part 1 on CC0: ALS with its registry defaults (what ``ltrec train cj --model als`` runs).
#: The two-tower's repeat term (on by default there, a repeat-purchase domain) switched off, to
#: show what it contributes, and every model without the repeat blend ("alone").
CJ_MODELS = {
    **MODELS,
    "als": ("als", {}),
    "two_tower (log-Q, no repeat term)": ("two_tower", {"repeat": "off"}),
    # The models alone: without the repeat blend (own frequency + recent popularity) that
    # every personalised model gets on repeat-purchase data (RepeatConfig).
    "als alone": ("als", dict(PLAIN)),
    "two_tower (log-Q) alone": ("two_tower", {"logq": True, **PLAIN}),
    "ncf alone": ("ncf", dict(PLAIN)),
}
PARTS = ("quality", "cold", "throughput", "logq", "speed")


def print_quality(rows: list[dict]) -> None:
    print(
        f"{'model':<36}{'R@10':>8}{'NDCG@10':>9}{'cov@10':>8}{'APLT@10':>9}{'tailR':>8}"
        f"{'train s':>9}{'peak MB':>9}{'RSS MB':>8}"
    )
    for r in rows:
        print(
            f"{r['model']:<36}{r['recall@10']:>8.4f}{r['ndcg@10']:>9.4f}{r['coverage@10']:>8.3f}"
            f"{r['aplt@10']:>9.4f}{r['tail_recall@10']:>8.4f}{r['train_s']:>9.1f}"
            f"{r['peak_mb']:>9}{r['max_rss_mb']:>8}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a smaller demo shop")
    ap.add_argument("--cold-only", action="store_true", help="only part 2 (cold items)")
    ap.add_argument("--dataset", choices=("demo", "cj"), default="demo")
    ap.add_argument("--cc0", action="store_true", help="same as --dataset cj")
    ap.add_argument("--events", type=int, default=None, help="demo size (e.g. 1000000)")
    ap.add_argument("--parts", default=None, help=f"comma-separated, of {', '.join(PARTS)}")
    ap.add_argument("--speed-epochs", type=int, default=2, help="epochs timed by part 6")
    args = ap.parse_args()
    dataset = "cj" if args.cc0 else args.dataset
    if args.parts:
        parts = [p.strip() for p in args.parts.split(",") if p.strip()]
        bad = sorted(set(parts) - set(PARTS))
        if bad:
            ap.error(f"unknown part(s) {bad}; choose from {PARTS}")
    elif args.cold_only:
        parts = ["cold"]
    elif dataset == "cj":
        parts = ["quality", "logq"]
    elif args.events:
        parts = ["speed", "throughput"]
    else:
        parts = ["quality", "cold", "throughput"]
    if dataset == "cj":
        path = RESULTS.with_name("keras_models_cj.json")
    elif args.cold_only:
        path = RESULTS.with_name("keras_models_cold.json")
    elif args.events:
        path = RESULTS.with_name(f"keras_models_speed_{args.events}.json")
    else:
        path = RESULTS
    out: dict = {
        "cpus": os.cpu_count(),
        "note": "2 CPU cores shared with other jobs (load): times are pessimistic",
        "dataset": dataset,
        "parts": parts,
    }
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LTREC_DATA_DIR"] = tmp
        t0 = time.perf_counter()
        data, frames = cc0() if dataset == "cj" else demo(args.quick, args.events)
        out["data"] = data.summary() | {"build_s": round(time.perf_counter() - t0, 1)}
        print(
            f"{dataset}: {data.n_users:,} users, {data.n_items:,} items, "
            f"{data.matrix.nnz:,} training pairs",
            flush=True,
        )
        over: dict = {}
        if "quality" in parts:
            print("1. quality", flush=True)
            rows = quality(data, over, CJ_MODELS if dataset == "cj" else MODELS)
            out["quality"] = rows
            by = {r["model"]: r for r in rows}
            als, pop = by["als"], by["popularity"]
            tt, off = by["two_tower (log-Q)"], by["two_tower (no log-Q)"]
            out["targets"] = {
                "two_tower_vs_als_recall": round(tt["recall@10"] / max(als["recall@10"], 1e-12), 3),
                "two_tower_vs_als_target": 0.9,
                "two_tower_vs_popularity_recall": round(
                    tt["recall@10"] / max(pop["recall@10"], 1e-12), 3
                ),
                "ncf_vs_popularity_recall": round(
                    by["ncf"]["recall@10"] / max(pop["recall@10"], 1e-12), 3
                ),
                "vs_popularity_target": 1.3,
                "logq_aplt_gain": round(tt["aplt@10"] - off["aplt@10"], 4),
                "logq_ndcg_change": round(tt["ndcg@10"] / max(off["ndcg@10"], 1e-12) - 1, 4),
            }
        if "cold" in parts:
            print("2. items without training events", flush=True)
            out["cold_items"] = cold_items(data, frames, over)
        if "throughput" in parts:
            print("3. throughput", flush=True)
            out["throughput"] = throughput(data)
        if "logq" in parts:
            print("5. log-Q and negatives (two-tower)", flush=True)
            out["logq"] = logq_table(data)
        if "speed" in parts:
            print(f"6. speed ({args.speed_epochs} epochs each)", flush=True)
            out["speed"] = speed(data, args.speed_epochs)
    print()
    if "quality" in out:
        print_quality(out["quality"])
        tg = out["targets"]
        print(
            f"two-tower / ALS recall@10: {tg['two_tower_vs_als_recall']} (target >= 0.9); "
            f"/ popularity: {tg['two_tower_vs_popularity_recall']} (target >= 1.3)"
        )
        print(
            f"log-Q: APLT@10 {tg['logq_aplt_gain']:+.4f}, NDCG@10 {tg['logq_ndcg_change']:+.1%} "
            "(target: APLT up, NDCG loss <= 10%)"
        )
        ncf = next(r for r in out["quality"] if r["model"] == "ncf")
        if ncf.get("classification_view"):
            print(
                "NCF classification view (held-out positives vs sampled negatives):",
                ncf["classification_view"],
            )
    if "cold_items" in out:
        print("recall@10 on items without training events:", out["cold_items"]["recall@10"])
    if "throughput" in out:
        tp = out["throughput"]
        print(
            f"two-tower {tp['two_tower_examples_per_s']:.0f} ex/s vs bare Keras "
            f"{tp['bare_keras_examples_per_s']:.0f} ex/s: {tp['ratio']}x (target >= 0.7x)"
        )
    if "logq" in out:
        print("log-Q and negatives (two-tower):")
        print_quality(out["logq"]["rows"])
        print(out["logq"]["effect"])
    if "speed" in out:
        print("training speed:", out["speed"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
