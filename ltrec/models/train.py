"""Train, evaluate and save a model in one call: what the CLI and the Model Lab page run.

Every model is scored the same way: :class:`InteractionData` is built on the evaluation core's
temporal split, the model ranks the whole catalogue for every test user (seen items excluded,
except on repeat-purchase data, where they are targets too and the baselines blend in the
user's own purchase frequency: :func:`ltrec.models.base.repeat_blend`), and
:func:`ltrec.evaluation.evaluate` computes every metric with bootstrap intervals.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ltrec.errors import RegistryError
from ltrec.evaluation import EvalResult, SplitConfig, evaluate
from ltrec.models.base import Progress, Recommender, make_model, report
from ltrec.models.data import InteractionData
from ltrec.models.registry import (
    RunInfo,
    load_run,
    save_run,
    split_config_of,
    training_lock,
)

#: The metrics ``ltrec train`` prints (every metric is stored in the manifest).
HEADLINE = ("ndcg", "recall", "aplt", "coverage")


def _scaled(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    if progress is None:
        return None
    return lambda done, msg: progress(lo + (hi - lo) * done, msg)


def _store_data_dir(data_dir: Path | str | None) -> Path | None:
    return Path(data_dir) if data_dir is not None else None


def load_data(
    dataset: str,
    split_config: SplitConfig | None = None,
    *,
    text: bool = False,
    data_dir: Path | str | None = None,
) -> InteractionData:
    """:class:`InteractionData` of a dataset on its evaluation split (with text vectors if asked).

    The text vectors come from the features engineer's encoder (MiniLM, or the TF-IDF fallback),
    cached in the store.
    """
    return _load_data(dataset, split_config, text=text, data_dir=data_dir)[0]


def _load_data(
    dataset: str,
    split_config: SplitConfig | None,
    *,
    text: bool,
    data_dir: Path | str | None,
) -> tuple[InteractionData, str | None]:
    """:func:`load_data` and the ``meta.data_import_id`` read on the same connection, so a
    run records the import its data really came from even if an import lands meanwhile."""
    from ltrec.store import connect

    con = connect(dataset, _store_data_dir(data_dir))
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'data_import_id'").fetchone()
        data = InteractionData.from_store(con, split_config)
    finally:
        con.close()
    if text:
        data = add_text(data, dataset, data_dir=data_dir)
    return data, None if row is None else str(row[0])


def _track_imports(dataset: str, data_dir: Path | str | None) -> None:
    """A store written before ``data_import_id`` existed gets one (data unchanged), so the run
    about to be trained on it records an id and is not stale from birth."""
    from ltrec.store.connect import data_import_id, ensure_data_import_id

    if data_import_id(dataset, _store_data_dir(data_dir)) is None:
        ensure_data_import_id(dataset, _store_data_dir(data_dir))


def add_text(
    data: InteractionData, dataset: str, data_dir: Path | str | None = None
) -> InteractionData:
    """Fill the item text-embedding matrix from the dataset's catalogue (id-aligned)."""
    from ltrec.features.text import item_embeddings

    ids, vecs, info = item_embeddings(dataset, data_dir=data_dir)
    emb = np.zeros((data.n_items, vecs.shape[1]), dtype=np.float32)
    idx = data.items_to_index(ids)
    ok = idx >= 0
    emb[idx[ok]] = vecs[ok]
    from ltrec.store.vectors import with_item_vectors  # precomputed vectors, if imported

    return with_item_vectors(data.with_text(emb, info.name), dataset, data_dir)


def split_targets(data: InteractionData) -> tuple[np.ndarray, list[np.ndarray]]:
    """Test users (indices) and their test items, from ``data.split``."""
    if data.split is None:
        raise RegistryError("the data has no evaluation split", hint="build it with from_store")
    test = data.split.test
    u = data.users_to_index(test["user_id"].tolist())
    i = data.items_to_index(test["item_id"].tolist())
    keep = (u >= 0) & (i >= 0)
    u, i = u[keep], i[keep]
    order = np.argsort(u, kind="stable")
    u, i = u[order], i[order]
    users, starts = np.unique(u, return_index=True)
    return users, np.split(i, starts[1:])


def evaluate_model(
    model: Recommender,
    data: InteractionData,
    *,
    k: int = 10,
    n_boot: int = 200,
    seed: int = 0,
    label: str = "",
) -> EvalResult:
    """Every metric of the evaluation core for ``model`` on ``data``'s test split at ``k``."""
    users, items = split_targets(data)
    recs, _ = model.recommend(users, k)  # seen items dropped unless the domain repeats
    return evaluate(
        recs,
        items,
        item_pop=data.item_pop,
        k=k,
        item_category=data.item_category,
        item_embedding=data.item_text_emb,
        user_ids=data.user_ids[users].tolist(),
        seen=data.matrix[users],
        n_boot=n_boot,
        seed=seed,
        label=label or model.name,
    )


def headline(metrics: Mapping[str, Any], k: int) -> dict[str, Any]:
    """The four headline metrics as ``{mean, low, high}`` objects."""
    out = {}
    for name in HEADLINE:
        v = metrics.get(f"{name}@{k}")
        if v is not None:
            out[f"{name}@{k}"] = {key: v.get(key) for key in ("mean", "low", "high")}
    return out


@dataclass
class TrainResult:
    run: RunInfo
    model: Recommender
    result: EvalResult
    data: InteractionData
    train_seconds: float

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model": self.model.name,
            "metrics": headline(self.result.to_dict(), self.result.k),
            "train_seconds": round(self.train_seconds, 3),
            "fingerprint": self.data.fingerprint,
            "data_import_id": self.run.manifest.get("data_import_id"),
            "stale": False,  # just trained on the current data
        }


def train(
    dataset: str,
    model_name: str,
    params: Mapping[str, Any] | None = None,
    *,
    split_config: SplitConfig | None = None,
    k: int = 10,
    n_boot: int = 200,
    progress: Progress | None = None,
    data_dir: Path | str | None = None,
) -> TrainResult:
    """Validate the config, build the data, fit, evaluate on the split and save a run.

    Holds the dataset's training lock throughout: a second concurrent training on the same
    dataset fails at once with :class:`TrainingBusyError`.
    """
    model = make_model(model_name, params)  # bad params fail before any work
    with training_lock(dataset, data_dir):
        report(progress, 0.0, f"loading {dataset}")
        _track_imports(dataset, data_dir)
        data, import_id = _load_data(
            dataset, split_config, text=model.content_model, data_dir=data_dir
        )
        report(progress, 0.1, f"{data.n_users:,} users, {data.n_items:,} items")
        t0 = time.perf_counter()
        model.fit(data, progress=_scaled(progress, 0.1, 0.8))
        seconds = time.perf_counter() - t0
        report(progress, 0.8, "evaluating")
        result = evaluate_model(model, data, k=k, n_boot=n_boot, seed=model.config.seed)
        report(progress, 0.95, "saving")
        run = save_run(
            model,
            dataset=dataset,
            data=data,
            metrics=result.to_dict(),
            k=k,
            extra={"train_seconds": round(seconds, 3), "data_import_id": import_id},
            data_dir=data_dir,
        )
        report(progress, 1.0, f"saved run {run.run_id}")
    return TrainResult(run, model, result, data, seconds)


def evaluate_run(
    dataset: str,
    run_id: str,
    *,
    k: int = 10,
    n_boot: int = 200,
    data_dir: Path | str | None = None,
    allow_stale: bool = False,
) -> tuple[EvalResult, dict[str, Any]]:
    """Re-evaluate a saved run at ``k`` on the split it was trained with.

    Raises:
        StaleRunError: the dataset was re-imported since training (unless ``allow_stale``).
        RegistryError: the data differs from the run's training data (its fingerprint), so
            the run's own split cannot be rebuilt; ``allow_stale`` cannot help then.
    """
    run = load_run(dataset, run_id, data_dir, allow_stale=allow_stale)
    split_config = split_config_of(run.manifest, run_id)
    data = load_data(dataset, split_config, text=run.model.content_model, data_dir=data_dir)
    want = (run.manifest.get("data") or {}).get("fingerprint")
    if want != data.fingerprint:
        raise RegistryError(
            f"dataset '{dataset}' changed since run {run_id} was trained "
            f"(data fingerprint {data.fingerprint}, the run's {want})",
            hint=f"train a new run: `ltrec train {dataset} --model {run.model.name}`",
        )
    result = evaluate_model(run.model, data, k=k, n_boot=n_boot, seed=run.model.config.seed)
    return result, run.manifest


def recommend_for(
    dataset: str,
    run_id: str,
    user_id: str,
    *,
    k: int = 10,
    data_dir: Path | str | None = None,
    allow_stale: bool = False,
) -> dict[str, Any]:
    """Top-k for one user id from a saved run, with item titles from the store.

    Raises:
        StaleRunError: the dataset was re-imported since training (unless ``allow_stale``;
            the lists then come from the run's own training data, titles from today's store).
    """
    from ltrec.store import connect, cursor

    run = load_run(dataset, run_id, data_dir, allow_stale=allow_stale)
    u = run.user_index(user_id)
    model = run.model
    history = int(model.seen_[u].nnz) if u >= 0 else 0
    items, scores = model.recommend(u, k)
    valid = items >= 0
    ids = run.item_ids[items[valid]].tolist()
    titles: dict[str, str | None] = {}
    con = connect(dataset, _store_data_dir(data_dir))
    try:
        cur = cursor(con)
        if ids:
            marks = ", ".join("?" for _ in ids)
            rows = cur.execute(
                f"SELECT item_id, title FROM items WHERE item_id IN ({marks})",  # noqa: S608
                ids,
            ).fetchall()
            titles = {str(a): b for a, b in rows}
    finally:
        con.close()
    return {
        "run_id": run_id,
        "model": model.name,
        "user": str(user_id),
        "known_user": u >= 0,
        "history_items": history,
        # No training history: the model's fallback (popularity for the baselines) ranks.
        "fallback": history == 0,
        "stale": run.stale,
        "items": [
            {"rank": r + 1, "item_id": i, "title": titles.get(i), "score": float(s)}
            for r, (i, s) in enumerate(zip(ids, scores[valid].tolist(), strict=True))
        ],
    }
