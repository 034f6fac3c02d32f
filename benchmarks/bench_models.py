"""Baseline recommenders: quality, training time, memory, latency and throughput.

Run: ``.venv/bin/python benchmarks/bench_models.py [--dataset demo|cj|all] [--cc0]
[--events 1000000] [--quick] [--skip SECTION]``. Prints tables and writes
``benchmarks/results/models.json``. ``--tune`` instead chooses the repeat blend's half-lives
and weights on the CC0 *validation* split (:func:`tune_repeat`, grid :data:`TUNE_HALF_LIVES`
...; ``benchmarks/results/models_tune.json``; what it chose is recorded on
:class:`ltrec.models.base.RepeatConfig`). Uses a temporary data directory (the CC0 sample is
imported into it with the ``completejourney`` preset; nothing is written to the repository's data).

1. Quality (``--dataset``: demo, cj or all; ``--cc0`` adds cj): model x (Recall@10, NDCG@10,
   coverage@10, APLT@10, tail recall@10, train s, peak MB) on the demo shop (default size) and
   on the real CC0 Complete Journey sample, each on its own default split
   (:func:`ltrec.evaluation.default_split`: the CC0 preset marks it a repeat-purchase domain, so
   items a household bought before stay as targets and in the lists). Targets: every
   personalised model >= 1.3x popularity on Recall@10, EASE >= 0.95x ALS.
   Hyper-parameters: the model defaults on the demo; on CC0 the values in :data:`CJ_PARAMS`,
   chosen on the CC0 *validation* split (training events split again by time, last 20% as
   targets), never on the test split. The repeat-term weight is each model's default
   (``repeat_default``, also tuned on that validation split), active because the data repeats.
2. Training time per model on a demo shop of ``--events`` events (default 1M), section
   ``scale``.
3. One-user recommend latency (p50/p95) over a 100k-item synthetic catalogue with 64-d ALS
   embeddings vs a bare numpy dot + argpartition on the same embeddings (target <= 1.25x), and
   batch scoring throughput (users/s, k=10, whole catalogue ranked), section ``latency``.

Peak memory is tracemalloc's peak of traced allocations during ``fit`` (numpy buffers
included; memory allocated inside the implicit C++ extension and LAPACK workspace is not
traced).
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
from _cc0 import import_cc0, paired_ratio, validation_data  # noqa: E402 - benchmarks/ is the script dir

from ltrec.errors import LtrecError  # noqa: E402
from ltrec.models.base import make_model, popularity_scores  # noqa: E402
from ltrec.models.data import InteractionData  # noqa: E402
from ltrec.models.repeat import repeat_blend  # noqa: E402
from ltrec.models.train import evaluate_model, split_targets  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "models.json"
TUNE_RESULTS = REPO / "benchmarks" / "results" / "models_tune.json"

#: Demo (and scale) runs: the model defaults.
MODELS: dict[str, dict] = {"popularity": {}, "itemknn": {}, "ease": {}, "als": {}}
#: CC0 runs: chosen on the CC0 validation split (see the module docstring). The sample is
#: thin (2.4k households, ~23 items each, 20k products): pruning each item to 100 neighbours
#: cuts the co-occurrence mass of the popular staples, and a strong shrinkage damps the
#: one-buyer similarities; EASE is fitted on the 4,000 most bought products (max_items).
_PLAIN = {"repeat_weight": 0.0, "popularity_weight": 0.0}
_CJ_KNN = {"neighbours": 1000, "shrinkage": 1000.0}
CJ_PARAMS: dict[str, dict] = {
    "popularity": {},
    "itemknn": {"neighbours": 1000, "shrinkage": 1000.0},
    "ease": {"lambda_": 2000.0, "max_items": 4000},
    "als": {},
    # For honesty: the same models without the repeat/popularity blend ("alone"), and EASE
    # with its defaults (lambda 200, the 10,000 most bought items) for the training time.
    "itemknn:alone": {"neighbours": 1000, "shrinkage": 1000.0, **_PLAIN},
    "ease:alone": {"lambda_": 2000.0, "max_items": 4000, **_PLAIN},
    "als:alone": dict(_PLAIN),
    "ease:defaults": {},
    # The ceiling of the count-based blend: own frequency + (recent) popularity, the model's
    # share 0 (item-kNN's scores get weight 1 - w - g = 0, so which model it is is moot).
    "itemknn:no model (w=0.3, g=0.7)": {**_CJ_KNN, "repeat_weight": 0.3, "popularity_weight": 0.7},
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


def quality(
    data_label: str, data: InteractionData, models: dict[str, dict], n_boot: int = 200
) -> list[dict]:
    rows, results = [], {}
    for label, params in models.items():
        name = label.split(":")[0]  # "als:alone" is an ALS with other params
        try:
            model, seconds, peak = fit_measured(name, params, data)
        except LtrecError as err:
            rows.append({"data": data_label, "model": label, "error": err.message})
            print(f"  {label}: {err.message}", flush=True)
            continue
        results[label] = result = evaluate_model(model, data, k=10, n_boot=n_boot)
        res = result.to_dict()
        row = {
            "data": data_label,
            "model": label,
            "params": params,
            "repeat_weight": model.repeat_weight_,
            "popularity_weight": model.popularity_weight_,
            "train_s": round(seconds, 2),
            "peak_mb": round(peak),
        }
        for m in METRICS:
            row[m] = res[m]["mean"]
            row[m + "_ci"] = [res[m]["low"], res[m]["high"]]
        row["test_users"] = res["recall@10"]["n"]
        rows.append(row)
        print(
            f"  {label}: recall@10={row['recall@10']:.4f} "
            f"[{row['recall@10_ci'][0]:.4f}, {row['recall@10_ci'][1]:.4f}] "
            f"ndcg@10={row['ndcg@10']:.4f} train {seconds:.1f}s peak {peak:.0f}MB",
            flush=True,
        )
    recall = {r["model"]: r["recall@10"] for r in rows if "recall@10" in r}
    pop = recall.get("popularity")
    for r in rows:
        if "recall@10" in r and pop:
            r["x_popularity_recall"] = round(r["recall@10"] / pop, 3)
            ratio, low, high = paired_ratio(results[r["model"]], results["popularity"])
            r["x_popularity_paired_ci"] = [round(low, 3), round(high, 3)]
        if r["model"].split(":")[0] == "ease" and "recall@10" in r:
            # against the ALS of the same kind ("ease:alone" vs "als:alone")
            als = recall.get("als" + r["model"][4:], recall.get("als"))
            if als:
                r["x_als_recall"] = round(r["recall@10"] / als, 3)
    return rows


# ---------------------------------------------------------------------------- tuning (--tune)

#: The validation grid of the repeat blend (``--tune``): half-lives in days (None: no decay)
#: of the user's own frequency (with the reference its ages are measured from) and of the
#: popularity term, then the weights w (own frequency) and g (popularity).
TUNE_HALF_LIVES = (None, 7.0, 14.0, 30.0, 60.0, 120.0, 240.0)
TUNE_REFERENCES = ("user", "global")
TUNE_POP_HALF_LIVES = (None, 7.0, 14.0, 30.0, 60.0, 120.0)
TUNE_W = (0.1, 0.2, 0.3, 0.4, 0.5)
TUNE_G = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8)
#: The model keeps at least this share (w + g <= 1 - it): with 0 the blend is the "own
#: frequency + popularity, no model" row, reported on its own, not as the model.
TUNE_MODEL_SHARE = 0.1
#: The models tuned: the baselines with their CC0 params, and the Keras models' defaults.
TUNE_MODELS: dict[str, dict] = {
    "itemknn": CJ_PARAMS["itemknn"],
    "ease": CJ_PARAMS["ease"],
    "als": CJ_PARAMS["als"],
    "ncf": {},
    "two_tower": {},
}


def fast_recall(scores: np.ndarray, truth: np.ndarray) -> float:
    """Mean Recall@10 (denominator |T_u|, as the evaluation core) from dense scores.

    Ties at the 10th score are cut arbitrarily (``argpartition``): only for ranking the
    grid; the reported figures come from :func:`evaluate_model`.
    """
    top = np.argpartition(-scores, 10, axis=1)[:, :10]
    hits = np.take_along_axis(truth, top, axis=1).sum(axis=1)
    return float(np.mean(hits / np.maximum(truth.sum(axis=1), 1)))


def tune_repeat(data: InteractionData, models: dict[str, dict]) -> dict:
    """Choose the blend's half-lives, then its weights, on a validation split (coordinate
    search). Half-lives are chosen once for every model (by the mean recall of the models at
    their current default weights): they describe the data, not the model. The weights are
    then chosen per model at those half-lives. Returns every grid point's recall."""
    import scipy.sparse as sp

    users, items = split_targets(data)
    rows = np.repeat(np.arange(len(users)), [len(i) for i in items])
    truth = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, np.concatenate(items))),
        shape=(len(users), data.n_items),
    )
    truth = truth.toarray() > 0  # [test users, items]: dense is small on CC0
    raw, defaults = {}, {}
    for label, params in models.items():
        t0 = time.perf_counter()
        model = make_model(label, {**params, **_PLAIN}).fit(data)
        print(f"  {label} fitted in {time.perf_counter() - t0:.1f}s", flush=True)
        assert model.has_history(users).all()
        raw[label] = model._blend_input(users)
        defaults[label] = (type(model).repeat_default, type(model).popularity_default)
    freq = {None: data.matrix[users]}
    for h in TUNE_HALF_LIVES[1:]:
        for ref in TUNE_REFERENCES:
            freq[(h, ref)] = data.decayed_matrix(h, ref)[users]
    pops = {None: popularity_scores(data.item_pop, data.item_weight)}
    for hp in TUNE_POP_HALF_LIVES[1:]:
        pops[hp] = data.decayed_popularity(hp)

    def run(label, w, g, fkey, hp) -> float:
        return fast_recall(repeat_blend(raw[label], freq[fkey], w, pops[hp], g), truth)

    fkeys = [None] + [(h, r) for h in TUNE_HALF_LIVES[1:] for r in TUNE_REFERENCES]
    out: dict = {"half_lives": [], "weights": {}}
    best = (-1.0, None, None)
    for fkey in fkeys:
        for hp in TUNE_POP_HALF_LIVES:
            rec = {lab: run(lab, *defaults[lab], fkey, hp) for lab in raw}
            mean = float(np.mean(list(rec.values())))
            out["half_lives"].append({"freq": fkey, "pop": hp, "recall": rec, "mean": mean})
            print(f"  h={fkey} hp={hp}: mean {mean:.4f} {rec}", flush=True)
            if mean > best[0]:
                best = (mean, fkey, hp)
    _, fkey, hp = best
    out["chosen_half_lives"] = {"freq": fkey, "pop": hp, "mean": best[0]}
    print(f"  chosen: freq {fkey}, pop {hp} (mean validation recall {best[0]:.4f})", flush=True)
    for label in raw:
        grid = []
        for w in TUNE_W:
            for g in TUNE_G:
                if w + g <= 1.0 - TUNE_MODEL_SHARE + 1e-9:
                    grid.append({"w": w, "g": g, "recall": run(label, w, g, fkey, hp)})
        top = max(grid, key=lambda r: r["recall"])
        out["weights"][label] = {"grid": grid, "chosen": top}
        print(f"  {label}: best w={top['w']} g={top['g']} recall {top['recall']:.4f}", flush=True)
    return out


def demo_data(events: int | None = None, name: str = "demo") -> InteractionData:
    """The demo shop (default size, or about ``events`` events) on its default split."""
    from ltrec.store import connect
    from ltrec.synth.demo import DemoConfig, build_demo

    cfg = DemoConfig(name=name, events=events, seed=42)
    # The default split targets views, carts and purchases (purchases are ~0.4% of demo
    # events) and excludes seen items: the demo is not a repeat-purchase domain.
    t0 = time.perf_counter()
    report = build_demo(cfg)
    print(f"  demo shop built in {time.perf_counter() - t0:.1f}s", flush=True)
    print("  " + report.summary().replace("\n", "\n  "), flush=True)
    con = connect(name)
    try:
        return InteractionData.from_store(con)
    finally:
        con.close()


def cj_data() -> InteractionData:
    """The CC0 sample, imported with the ``completejourney`` preset, on its default split."""
    from ltrec.store import connect

    t0 = time.perf_counter()
    import_cc0("cj")
    print(f"  imported in {time.perf_counter() - t0:.1f}s", flush=True)
    con = connect("cj")
    try:
        return InteractionData.from_store(con)  # default_split(meta): repeat-purchase split
    finally:
        con.close()


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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", choices=("demo", "cj", "all"), default="all")
    ap.add_argument("--cc0", action="store_true", help="add the CC0 sample (same as cj)")
    ap.add_argument("--events", type=int, default=1_000_000, help="demo size for `scale`")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--skip", action="append", default=[], help="quality, scale, latency")
    ap.add_argument(
        "--tune",
        action="store_true",
        help="only choose the repeat blend's half-lives and weights on the CC0 validation split",
    )
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ltrec-bench-")
    os.environ["LTREC_DATA_DIR"] = tmp
    out: dict = {
        "note": "2 shared CPU cores, loaded by other work while measured",
        "command": " ".join(sys.argv),
    }
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
    if args.tune:
        print("== tuning the repeat blend on the CC0 validation split", flush=True)
        data = validation_data("cj", text=True)
        print(f"  {data.summary()['interactions']:,} interactions, split {data.split.summary()}")
        out["tune"] = tune_repeat(data, TUNE_MODELS)
        TUNE_RESULTS.write_text(json.dumps(out, indent=2, default=str))
        print(f"wrote {TUNE_RESULTS}")
        return
    rows: list[dict] = []
    which = {"demo", "cj"} if args.dataset == "all" else {args.dataset}
    if args.cc0:
        which.add("cj")
    if "quality" not in args.skip and "demo" in which:
        print("== demo shop", flush=True)
        data = demo_data(60_000 if args.quick else None)
        print(f"  {data.summary()['interactions']:,} interactions, split {data.split.summary()}")
        rows += quality("demo", data, MODELS)
    if "quality" not in args.skip and "cj" in which:
        print("== Complete Journey (CC0 sample), repeat-purchase split", flush=True)
        data = cj_data()
        print(f"  {data.summary()['interactions']:,} interactions, split {data.split.summary()}")
        rows += quality("completejourney", data, CJ_PARAMS)
    out["quality"] = rows
    if rows:
        print(table(rows, cols))
    if "scale" not in args.skip:
        n_events = 100_000 if args.quick else args.events
        print(f"== scale: training time on a demo shop of ~{n_events:,} events", flush=True)
        data = demo_data(n_events, name="demo_scale")
        s = data.summary()
        print(f"  {s['users']:,} users, {s['items']:,} items, {s['interactions']:,} interactions")
        scale = []
        for name, params in MODELS.items():
            try:
                model, seconds, peak = fit_measured(name, params, data)
            except LtrecError as err:
                scale.append({"model": name, "error": err.message})
                print(f"  {name}: {err.message}", flush=True)
                continue
            scale.append({"model": name, "train_s": round(seconds, 2), "peak_mb": round(peak)})
            print(f"  {name}: train {seconds:.1f}s, peak {peak:.0f}MB", flush=True)
        out["scale"] = {"events": n_events, **{k: s[k] for k in ("users", "items")}}
        out["scale"]["models"] = scale
        print(table(scale, ["model", "train_s", "peak_mb", "error"]))
    if "latency" not in args.skip:
        n_users, n_items, n_events = (
            (5_000, 20_000, 100_000) if args.quick else (50_000, 100_000, 1_000_000)
        )
        print(f"== latency: ALS over {n_items:,} items ({n_events:,} synthetic events)", flush=True)
        data = synthetic(n_users, n_items, n_events)
        model, seconds, _ = fit_measured("als", MODELS["als"], data)
        out["latency"] = latency(model, data.n_users, np.random.default_rng(0))
        out["latency"]["batch_users_per_s"] = round(throughput(model, data.n_users))
        print(f"  {out['latency']}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2, default=str))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
