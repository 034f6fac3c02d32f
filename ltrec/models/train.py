"""Train, evaluate and save a model in one call: what the CLI and the Model Lab page run.

Every model is scored the same way: :class:`InteractionData` is built on the evaluation core's
temporal split, the model ranks the whole catalogue for every test user (seen items excluded,
except on repeat-purchase data, where they are targets too and the baselines blend in the
user's own purchase frequency: :func:`ltrec.models.repeat.repeat_blend`), and
:func:`ltrec.evaluation.evaluate` computes every metric with bootstrap intervals.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltrec.errors import BadInputError, RegistryError
from ltrec.evaluation import EvalResult, SplitConfig, evaluate
from ltrec.evaluation.split import Split, default_split, train_loader
from ltrec.features.text import item_embeddings
from ltrec.models.base import Recommender, make_model
from ltrec.models.data import InteractionData
from ltrec.models.registry import (
    NO_SPLIT,
    LoadedRun,
    RunInfo,
    is_all_data,
    run_manifest,
    run_staleness,
    save_run,
    split_config_of,
    training_lock,
)
from ltrec.models.spark_als import engine_model
from ltrec.progress import Progress, report
from ltrec.store import connect, read_meta
from ltrec.store.connect import data_import_id, ensure_data_import_id, one_row
from ltrec.store.profile import is_repeat_domain
from ltrec.store.vectors import with_item_vectors

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

    The text vectors come from the text encoder of :mod:`ltrec.features.text` (MiniLM, or the
    TF-IDF fallback), cached in the store.
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
    con = connect(dataset, _store_data_dir(data_dir))
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'data_import_id'").fetchone()
        data = InteractionData.from_store(con, split_config)
    finally:
        con.close()
    if text:
        data = add_text(data, dataset, data_dir=data_dir)
    return data, None if row is None else str(row[0])


def _no_holdout(
    events: Any, keep_seen: bool, *, last: Any = None, n_train: int | None = None
) -> Any:
    """The split of an all-data fit: every event trains, nothing is held out (an empty test).

    A real :class:`~ltrec.evaluation.Split` with the seen-item rule (``keep_seen``) recorded as
    on an evaluation split (the repeat flag itself is the dataset's meta, set on the data by
    :func:`_load_all`); :func:`temporal_split` never returns an
    empty test, so an empty one means "no hold-out" (:func:`split_targets` refuses it).
    ``events`` is a frame, or a loader of it with ``last`` (the last event time) and
    ``n_train`` given (the store-built data: the events stay in the store).
    """
    if last is None:
        ts = pd.to_datetime(events["ts"]) if len(events) else pd.Series([], dtype="datetime64[ns]")
        last = ts.max() if len(ts) else None
    last = pd.Timestamp(last) if last is not None and not pd.isna(last) else pd.Timestamp(0)
    test = pd.DataFrame({"user_id": pd.Series([], dtype=str), "item_id": pd.Series([], dtype=str)})
    return Split(
        events,
        test,
        last,
        [],
        SplitConfig(keep_seen=keep_seen),
        {"held_out": 0},
        n_train=n_train,
    )


def load_all_data(
    dataset: str,
    keep_seen: bool | None = None,
    *,
    text: bool = False,
    data_dir: Path | str | None = None,
) -> InteractionData:
    """:class:`InteractionData` on every event of a dataset (no hold-out): what an all-data
    (production) run trains on. ``keep_seen`` None: the dataset's default (repeat domains)."""
    return _load_all(dataset, keep_seen, text=text, data_dir=data_dir)[0]


def _load_all(
    dataset: str,
    keep_seen: bool | None,
    *,
    text: bool,
    data_dir: Path | str | None,
) -> tuple[InteractionData, str | None]:
    """:func:`load_all_data` and the ``meta.data_import_id`` read on the same connection."""
    con = connect(dataset, _store_data_dir(data_dir))
    try:
        meta = read_meta(con)
        if keep_seen is None:
            keep_seen = default_split(meta).keep_seen
        # every event, aggregated in the store (never the events table in pandas)
        data = InteractionData.from_query(con, "TRUE")
        n_events, last = one_row(con.execute("SELECT count(*), max(ts) FROM events"))
        events = train_loader(con, "TRUE", [])
    finally:
        con.close()
    data.split = _no_holdout(events, keep_seen, last=last, n_train=int(n_events))
    data.repeat_domain = is_repeat_domain(meta)
    if text:
        data = add_text(data, dataset, data_dir=data_dir)
    import_id = meta.get("data_import_id")
    return data, None if import_id is None else str(import_id)


def load_run_data(
    dataset: str,
    run: LoadedRun,
    *,
    text: bool | None = None,
    data_dir: Path | str | None = None,
) -> InteractionData:
    """The data a run was trained on, rebuilt from the store: every event for an all-data run,
    the split's training events otherwise. ``text`` None: when the model reads text vectors.

    Raises:
        RegistryError: the data differs from the run's training data (its fingerprint): the
            dataset changed since, so the run's data cannot be rebuilt.
    """
    manifest = run.manifest
    want_text = run.model.content_model if text is None else text
    if is_all_data(manifest):
        keep_seen = bool((manifest.get("split") or {}).get("keep_seen", False))
        data = load_all_data(dataset, keep_seen, text=want_text, data_dir=data_dir)
    else:
        split_config = split_config_of(manifest, run.run_id)
        data = load_data(dataset, split_config, text=want_text, data_dir=data_dir)
    want = (manifest.get("data") or {}).get("fingerprint")
    if want != data.fingerprint:
        raise RegistryError(
            f"dataset '{dataset}' changed since run {run.run_id} was trained "
            f"(data fingerprint {data.fingerprint}, the run's {want})",
            hint=f"train a new run: `ltrec train {dataset} --model {run.model.name}`",
        )
    return data


def _track_imports(dataset: str, data_dir: Path | str | None) -> None:
    """A store written before ``data_import_id`` existed gets one (data unchanged), so the run
    about to be trained on it records an id and is not stale from birth."""
    if data_import_id(dataset, _store_data_dir(data_dir)) is None:
        ensure_data_import_id(dataset, _store_data_dir(data_dir))


def add_text(
    data: InteractionData, dataset: str, data_dir: Path | str | None = None
) -> InteractionData:
    """Fill the item text-embedding matrix from the dataset's catalogue (id-aligned)."""
    ids, vecs, info = item_embeddings(dataset, data_dir=data_dir)
    emb = np.zeros((data.n_items, vecs.shape[1]), dtype=np.float32)
    idx = data.items_to_index(ids)
    ok = idx >= 0
    emb[idx[ok]] = vecs[ok]

    return with_item_vectors(data.with_text(emb, info.name), dataset, data_dir)


def split_targets(data: InteractionData) -> tuple[np.ndarray, list[np.ndarray]]:
    """Test users (indices) and their test items, from ``data.split``."""
    if data.split is None:
        raise RegistryError("the data has no evaluation split", hint="build it with from_store")
    if data.split.test.empty:  # temporal_split never makes an empty test: an all-data fit
        raise RegistryError(
            "the data holds every event (an all-data fit): there is no test split to evaluate on",
            hint="evaluate the evaluation run it came from",
        )
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


def _load_and_fit(
    dataset: str,
    model: Recommender,
    load: Any,
    progress: Progress | None,
    fitted_at: float,
    data_dir: Path | str | None,
) -> tuple[InteractionData, str | None, float]:
    """Inside the training lock: ``load(text)`` the data (with its import id), fit ``model``
    (progress 0.1 -> ``fitted_at``); returns the data, the import id and the fit's seconds."""
    report(progress, 0.0, f"loading {dataset}")
    _track_imports(dataset, data_dir)
    data, import_id = load(model.content_model)
    held = "" if data.split is None or not data.split.test.empty else ", nothing held out"
    report(progress, 0.1, f"{data.n_users:,} users, {data.n_items:,} items{held}")
    t0 = time.perf_counter()
    model.fit(data, progress=_scaled(progress, 0.1, fitted_at))
    return data, import_id, time.perf_counter() - t0


def source_headline(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """An all-data run's source figures (``source.metrics``, on the source's test split) as
    :func:`headline` objects; ``{}`` for a run without a source."""
    source = manifest.get("source") or {}
    return headline(source.get("metrics") or {}, int(source.get("k") or 10))


@dataclass
class TrainResult:
    run: RunInfo
    model: Recommender
    result: EvalResult | None  # None for an all-data fit: nothing was held out to test on
    data: InteractionData
    train_seconds: float

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def to_dict(self) -> dict[str, Any]:
        m = self.run.manifest
        return {
            "run_id": self.run_id,
            "model": self.model.name,
            "metrics": {}
            if self.result is None
            else headline(self.result.to_dict(), self.result.k),
            "train_seconds": round(self.train_seconds, 3),
            "fingerprint": self.data.fingerprint,
            "data_import_id": m.get("data_import_id"),
            "stale": False,  # just trained on the current data
            "all_data": is_all_data(m),
            "from_run": m.get("from_run"),
            # The source run's figures on its own test split (an all-data run has none).
            "source_metrics": source_headline(m),
            # Why the model cannot beat popularity on this data, a sentence (None: no such
            # finding; the Keras models measure it on their validation hold-out).
            "data_note": m.get("data_note"),
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
    engine: str = "local",
) -> TrainResult:
    """Validate the config, build the data, fit, evaluate on the split and save a run.

    Holds the dataset's training lock throughout: a second concurrent training on the same
    dataset fails at once with :class:`TrainingBusyError`. ``engine="spark"`` fits ALS on
    Spark MLlib (:mod:`ltrec.models.spark_als`); the run is the same, with ``params.engine``.
    """
    if engine == "spark":  # a dataset that lives on Spark trains there (no local store)
        # lazy: cycle models.train <-> models.spark_resident (which imports TrainResult)
        from ltrec.models.spark_resident import is_resident, train_resident

        if is_resident(dataset, data_dir):
            return train_resident(
                dataset, model_name, params, split_config=split_config, k=k, n_boot=n_boot,
                progress=progress, data_dir=data_dir,
            )  # fmt: skip
    # bad params, engine or dataset fail before any work
    model = _on_engine(make_model(model_name, params), engine, dataset, data_dir)
    with training_lock(dataset, data_dir):
        data, import_id, seconds = _load_and_fit(
            dataset,
            model,
            lambda text: _load_data(dataset, split_config, text=text, data_dir=data_dir),
            progress,
            0.8,
            data_dir,
        )
        report(progress, 0.8, "evaluating")
        result = evaluate_model(model, data, k=k, n_boot=n_boot, seed=model.config.seed)
        report(progress, 0.95, "saving")
        run = save_run(
            model,
            dataset=dataset,
            data=data,
            metrics=result.to_dict(),
            k=k,
            extra={
                "train_seconds": round(seconds, 3),
                "data_import_id": import_id,
                # Keras models: why they cannot beat popularity on this data (None: they do).
                "data_note": getattr(model, "data_note_", None),
                **_engine_params(model, engine),
            },
            data_dir=data_dir,
        )
        report(progress, 1.0, f"saved run {run.run_id}")
    return TrainResult(run, model, result, data, seconds)


def _on_engine(
    model: Recommender, engine: str, dataset: str, data_dir: Path | str | None
) -> Recommender:
    """``model`` as fitted on ``engine`` (``local``: itself; ``spark``: Spark MLlib's ALS)."""
    if engine == "local":
        return model

    return engine_model(model, engine, dataset=dataset, data_dir=data_dir)


def _engine_params(model: Recommender, engine: str) -> dict[str, Any]:
    """The manifest's ``params`` with ``engine`` recorded (empty: a local fit, nothing added)."""
    if engine == "local":
        return {}
    return {"params": {**model.config.model_dump(mode="json"), "engine": engine}}


def _source(dataset: str, from_run: str, data_dir: Path | str | None) -> dict[str, Any]:
    """What an all-data fit inherits from its evaluation run: settings and figures."""
    manifest = run_manifest(dataset, from_run, data_dir)
    if is_all_data(manifest):
        origin = manifest.get("from_run")
        raise RegistryError(
            f"run {from_run} is itself fitted on all data; give the evaluation run it came from"
            + (f" ({origin})" if isinstance(origin, str) else ""),
            hint=f"list the runs with `ltrec runs {dataset}`",
        )
    return {
        "run_id": from_run,
        "model": manifest["model"],
        "params": dict(manifest.get("params") or {}),
        "k": manifest.get("k"),
        "split_config": manifest.get("split_config"),
        "metrics": dict(manifest.get("metrics") or {}),
        "data_import_id": manifest.get("data_import_id"),
        "fingerprint": (manifest.get("data") or {}).get("fingerprint"),
        "stale": run_staleness(dataset, manifest, data_dir).stale,
        "note": f"figures of run {from_run} on its test split, not of this run",
    }


def train_all_data(
    dataset: str,
    model_name: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    from_run: str | None = None,
    progress: Progress | None = None,
    data_dir: Path | str | None = None,
    engine: str | None = None,
) -> TrainResult:
    """Fit on every event of the dataset (no hold-out) and save it as an all-data run.

    ``engine`` None: the source run's (``params.engine``), else local.

    With ``from_run`` (an evaluation run of the same dataset) the model and its params come
    from that run, ``params`` override single params, and the run's figures are recorded as
    the source's (``source.metrics``: measured on its test split). Without it, ``model_name``
    and ``params`` are used as given and the run has no figures.

    Raises:
        BadInputError: no model named, or a model other than the source run's.
        RegistryError: an unknown or all-data ``from_run``.
    """
    source = _source(dataset, from_run, data_dir) if from_run is not None else None
    if source is not None:
        if model_name is not None and model_name != source["model"]:
            raise BadInputError(
                f"run {from_run} is a {source['model']} run, not {model_name}",
                hint=f"leave --model out to fit {source['model']} with its settings, or fit "
                f"{model_name} without --from-run",
            )
        model_name = source["model"]
        merged = {**source["params"], **dict(params or {})}
        # the engine is where the source was fitted, not a model param
        source_engine = merged.pop("engine", "local")
        engine = engine or str(source_engine)
    elif model_name is None:
        raise BadInputError(
            "name the model (--model) or the evaluation run to take it from (--from-run)",
            hint=f"e.g. `ltrec train {dataset} --all-data --from-run RUN`",
        )
    else:
        merged = dict(params or {})
    engine = engine or "local"
    # bad params, engine or dataset fail before any work
    model = _on_engine(make_model(model_name, merged), engine, dataset, data_dir)
    keep_seen = None
    if source is not None and source.get("split_config"):
        keep_seen = bool(source["split_config"].get("keep_seen", False))
    with training_lock(dataset, data_dir):
        data, import_id, seconds = _load_and_fit(
            dataset,
            model,
            lambda text: _load_all(dataset, keep_seen, text=text, data_dir=data_dir),
            progress,
            0.9,
            data_dir,
        )
        report(progress, 0.95, "saving")
        summary = data.summary()
        summary.pop("split", None)  # nothing was held out
        run = save_run(
            model,
            dataset=dataset,
            data=data,
            metrics={},
            k=None,
            extra={
                "train_seconds": round(seconds, 3),
                "data_import_id": import_id,
                "data": summary,
                "split": {**NO_SPLIT, "keep_seen": data.repeat_domain},
                "split_config": None,
                "from_run": from_run,
                "overrides": dict(params or {}),
                "source": source,
                **_engine_params(model, engine),
            },
            data_dir=data_dir,
        )
        report(progress, 1.0, f"saved run {run.run_id}")
    return TrainResult(run, model, None, data, seconds)
