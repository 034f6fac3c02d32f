"""ALS trained on a dataset that lives on Spark (an external ``pyspark`` dataset, README: Spark):
``ltrec train NAME --model als --engine spark`` where ``NAME`` is ``data/NAME.toml``.

Nothing of the events is copied to the machine that runs ltrec (the driver) but what a run
holds anyway and the users it evaluates:

* the split is :func:`ltrec.evaluation.engine_split.engine_split`: the local split's rule
  computed on the engine (same cut-off, test, cold and seen rules as
  :func:`ltrec.evaluation.temporal_split`);
* the vocabularies (every user and item id, sorted: the run's ``vocab.json``), the item
  catalogue and the items' training popularity come to the driver; the training pairs
  ``(user index, item index, summed weight)`` are built on Spark and MLlib's ALS factorises them
  there (:func:`ltrec.models.spark_als.fit_frame`, the same fit as every ``--engine spark``);
* the fingerprint (:func:`spark_fingerprint`) hashes the vocabularies, the weights, the item
  features and, on Spark, every training pair (an order-free sum of 64-bit row hashes);
* evaluation: a seeded sample of at most ``eval_users`` test users (all of them below that);
  only their test pairs and training events are fetched, the model is restricted to them
  (:func:`restrict`) and :func:`ltrec.evaluation.evaluate` scores it like any run.

The run is a plain ``als`` run (factors and id maps in ``model/state.npz`` and ``vocab.json``)
with ``params.engine = "spark"`` and a ``resident`` manifest entry; its saved training matrix
is empty, because the histories stay on Spark. Lists of every user are made on Spark in blocks
of users (:func:`ltrec.app.spark_export.export_spark`): each block's events build a small
:class:`~ltrec.models.data.InteractionData` (:func:`block_data`) and the one pipeline,
``RecSession``, lists them. One-user lists (Studio, ``recommend``, the API) need a user's history
on the driver and are refused with that advice (:func:`refuse_one_user`). Staleness: the run
records the TOML's version (:func:`ltrec.store.external.config_version`); an export re-checks the
fingerprint on Spark, so changed data on the engine is refused too.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltrec.config import EVENT_WEIGHTS
from ltrec.errors import BadInputError
from ltrec.evaluation import evaluate
from ltrec.models.base import make_model, popularity_scores
from ltrec.models.data import InteractionData
from ltrec.models.registry import save_run, training_lock
from ltrec.models.spark_als import check_engine, fit_frame, spark_session
from ltrec.models.train import TrainResult
from ltrec.progress import Progress, report
from ltrec.store.connect import exists

if TYPE_CHECKING:
    from ltrec.evaluation.engine_split import EngineSplit
    from ltrec.models.als import ALS
    from ltrec.models.data import InteractionData
    from ltrec.store.external import ExternalSource

#: The manifest key of a run trained on Spark-resident data.
RESIDENT = "resident"
#: Test users evaluated at most (a seeded sample above it; every test user below it).
EVAL_USERS = 20_000
_BUCKETS = 1_000_000
_EVENT_COLS = ["user_id", "item_id", "event_type", "ts"]


def is_resident(dataset: str, data_dir: Path | str | None = None) -> bool:
    """True for an external dataset (a TOML, no local store of that name)."""
    # lazy: store.external imports ibis (~0.8 s); only an external dataset needs it
    from ltrec.store.external import is_external

    return not exists(dataset, data_dir) and is_external(dataset, data_dir)


def is_resident_run(manifest: Mapping[str, Any]) -> bool:
    return isinstance(manifest.get(RESIDENT), Mapping)


def refuse_one_user(dataset: str, run_id: str) -> BadInputError:
    """What a one-user list (Studio, ``recommend``, ``evaluate``, the API) says about a run of
    Spark-resident data: its histories live on the engine."""
    return BadInputError(
        f"run {run_id} was trained on '{dataset}', whose events live on Spark: one-user lists "
        "and re-evaluation need a user's history on this machine and are not available for it",
        hint=f"its figures are in `ltrec runs {dataset}`; write every user's list with "
        f"`ltrec export {dataset} --run {run_id} --out lists.parquet --engine spark`",
    )


# ---------------------------------------------------------------------------- data


@dataclass(eq=False)
class EngineData:
    """What the driver holds of a Spark-resident dataset's training data; it answers what a run
    reads of an :class:`~ltrec.models.data.InteractionData` (vocabularies, split, fingerprint,
    summary)."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    catalogue: pd.DataFrame  # one row per item id, vocabulary order
    item_pop: np.ndarray
    item_weight: np.ndarray
    weights: dict[str, float]
    split: Any  # EngineSplit (its ``config`` is what a run records)
    interactions: int
    users_with_history: int
    fingerprint: str
    pairs: Any = None  # Spark DataFrame (u int, i int, r float, t long): the training pairs

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.interactions,
            "users_with_history": self.users_with_history,
            "items_with_interactions": int((self.item_pop > 0).sum()),
            "weights": dict(self.weights),
            "fingerprint": self.fingerprint,
            "text_encoder": None,
        }
        if self.split is not None:
            out["split"] = self.split.summary()
        return out


def _ids(expr: Any, column: str) -> set[str]:
    return {str(x) for x in expr.select(column).distinct().to_pyarrow()[column].to_pylist()}


def catalogue_of(source: ExternalSource, item_ids: np.ndarray) -> pd.DataFrame:
    """The engine's items table aligned to ``item_ids`` (an item only the events name: its id
    alone), as :meth:`InteractionData.from_frame` reads a catalogue."""
    items = source.table("items").to_pyarrow().to_pandas()
    items["item_id"] = items["item_id"].astype(str)
    items = items.drop_duplicates("item_id")
    frame = pd.DataFrame({"item_id": np.asarray(item_ids, dtype=object)})
    return frame.merge(items, on="item_id", how="left")


def _weighted(events: Any, weights: Mapping[str, float]) -> Any:
    """Training events with their weight ``w`` (the local rule: unknown types weigh 0), only
    those that weigh (the matrix's non-zeros are the pairs of such events)."""
    w = events.event_type.substitute({k: float(v) for k, v in weights.items()}, else_=0.0)
    out = events.mutate(w=w.cast("float64"))
    return out.filter(out.w > 0)


def pair_frame(
    source: ExternalSource,
    train: Any,
    spark: Any,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    weights: Mapping[str, float],
) -> Any:
    """Spark DataFrame ``(u, i, r, t)`` of the training pairs: user and item index in the
    vocabularies, summed weight (float32) and last event time (epoch microseconds)."""
    # lazy: pyspark is optional (the Spark extra); only Spark work loads it
    from pyspark.sql import functions as F

    # lazy: store.external imports ibis (~0.8 s); only an external dataset needs it
    from ltrec.store.external import spark_frame

    ev = _weighted(train, weights)
    pairs = ev.group_by(["user_id", "item_id"]).aggregate(r=ev.w.sum(), t=ev.ts.max())
    frame = spark_frame(source, pairs)
    users = spark.createDataFrame(
        pd.DataFrame(
            {
                "user_id": np.asarray(user_ids, dtype=object),
                "u": np.arange(len(user_ids), dtype=np.int32),
            }
        )
    )
    items = spark.createDataFrame(
        pd.DataFrame(
            {
                "item_id": np.asarray(item_ids, dtype=object),
                "i": np.arange(len(item_ids), dtype=np.int32),
            }
        )
    )
    return (
        frame.join(users, "user_id")
        .join(F.broadcast(items), "item_id")
        .select(
            F.col("u").cast("int").alias("u"),
            F.col("i").cast("int").alias("i"),
            F.col("r").cast("float").alias("r"),
            F.unix_micros(F.col("t")).alias("t"),
        )
    )


def spark_fingerprint(
    pairs: Any,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    weights: Mapping[str, float],
    catalogue: pd.DataFrame,
) -> tuple[str, int, int]:
    """``(fingerprint, pairs, users with history)`` of Spark-resident training data.

    sha256 (hex, 16 chars) of the vocabularies, the weights, the item feature codes (as the
    local fingerprint) and three aggregates computed on Spark: the pair count and the sum of a
    64-bit hash of every ``(u, i, r, t)`` row (order-free: no sort, no collect)."""
    # lazy: pyspark is optional (the Spark extra); only Spark work loads it
    from pyspark.sql import functions as F

    row = pairs.agg(
        F.count(F.lit(1)).alias("n"),
        F.countDistinct("u").alias("users"),
        F.sum(F.xxhash64("u", "i", "r", "t").cast("decimal(38,0)")).alias("h"),
    ).collect()[0]
    n, users, total = int(row["n"]), int(row["users"] or 0), str(row["h"] or 0)
    features = InteractionData.from_frame(pd.DataFrame(columns=_EVENT_COLS), catalogue)
    h = hashlib.sha256()
    for ids in (user_ids, item_ids):
        h.update("\x1f".join(np.asarray(ids, dtype=str).tolist()).encode())
        h.update(b"\x1e")
    h.update(repr(sorted(weights.items())).encode())
    h.update(f"spark-pairs:{n}:{total}".encode())
    for arr in (features.item_category, features.item_brand, features.item_price_band):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16], n, users


def item_counts(pairs: Any, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """``(item_pop, item_weight)``: distinct training users and summed weight per item."""
    # lazy: pyspark is optional (the Spark extra); only Spark work loads it
    from pyspark.sql import functions as F

    per = pairs.groupBy("i").agg(F.count(F.lit(1)).alias("n"), F.sum("r").alias("w")).toPandas()
    pop = np.zeros(n_items, dtype=np.int64)
    weight = np.zeros(n_items, dtype=np.float64)
    idx = per["i"].to_numpy(np.int64)
    pop[idx] = per["n"].to_numpy(np.int64)
    weight[idx] = per["w"].to_numpy(np.float64)
    return pop, weight


def engine_data(
    source: ExternalSource,
    split: EngineSplit,
    spark: Any,
    weights: Mapping[str, float] | None = None,
) -> EngineData:
    """The vocabularies, catalogue, item counts, fingerprint and training pairs of a
    Spark-resident dataset on ``split`` (vocabularies by the local rule of
    :meth:`InteractionData.from_split`: users of the users table, the training events, the test
    and the cold users; items of the items table and the training events)."""
    # lazy: ibis (~0.8 s) stays off `import ltrec.app.pipeline`, which imports this module
    import ibis

    w = dict(EVENT_WEIGHTS if weights is None else weights)
    train = split.train
    users = _ids(
        ibis.union(
            source.table("users").select("user_id"),
            train.select("user_id"),
            split.test.select("user_id"),
            split.cold.select("user_id"),
        ),
        "user_id",
    )
    items = _ids(
        ibis.union(source.table("items").select("item_id"), train.select("item_id")), "item_id"
    )
    user_ids = np.array(sorted(users), dtype=str)
    item_ids = np.array(sorted(items), dtype=str)
    catalogue = catalogue_of(source, item_ids)
    pairs = pair_frame(source, train, spark, user_ids, item_ids, w).cache()
    fingerprint, n_pairs, with_history = spark_fingerprint(pairs, user_ids, item_ids, w, catalogue)
    pop, weight = item_counts(pairs, len(item_ids))
    return EngineData(
        user_ids,
        item_ids,
        catalogue,
        pop,
        weight,
        w,
        split,
        n_pairs,
        with_history,
        fingerprint,
        pairs,
    )


def block_data(
    events: pd.DataFrame,
    user_ids: np.ndarray,
    catalogue: pd.DataFrame,
    item_pop: np.ndarray,
    item_weight: np.ndarray,
    weights: Mapping[str, float] | None = None,
) -> InteractionData:
    """The :class:`InteractionData` of some users (``user_ids``, sorted) from their training
    events: their matrix rows equal the whole data's rows; the item arrays are the whole
    catalogue's, with the training popularity of every user (``item_pop``, ``item_weight``)."""
    ev = events[_EVENT_COLS] if len(events) else pd.DataFrame(columns=_EVENT_COLS)
    users = pd.DataFrame({"user_id": np.asarray(user_ids, dtype=object)})
    data = InteractionData.from_frame(ev, catalogue, users, weights=weights)
    if data.n_users != len(user_ids) or data.n_items != len(catalogue):
        raise BadInputError("a block's events name users or items outside the run's vocabulary")
    return replace(
        data,
        item_pop=np.asarray(item_pop, dtype=np.int64),
        item_weight=np.asarray(item_weight, dtype=np.float64),
    )


def restrict(model: ALS, rows: np.ndarray, data: InteractionData) -> ALS:
    """A copy of a fitted ALS that knows only the users ``rows`` (their factors), with ``data``
    (:func:`block_data` of those users, same order) as its training matrix: its lists of those
    users are the whole model's."""
    sub = copy.copy(model)
    sub.n_users_ = int(data.n_users)
    sub.seen_ = sp.csr_matrix(data.matrix, dtype=np.float32)
    sub.seen_.sort_indices()
    sub.user_factors_ = np.ascontiguousarray(model.user_factors_[np.asarray(rows, np.int64)])
    return sub


# ---------------------------------------------------------------------------- training


def _check_config(model: ALS, keep_seen: bool) -> None:
    """Refuse a time-decayed repeat blend (in use only on repeat-purchase data): it needs every
    event's time on this machine."""
    cfg = model.config
    model.repeat_ = bool(keep_seen)
    decays = []
    if getattr(cfg, "repeat_half_life_days", None) is not None and model.repeat_weight_ > 0:
        decays.append("repeat_half_life_days")
    if getattr(cfg, "popularity_half_life_days", None) is not None and model.popularity_weight_ > 0:
        decays.append("popularity_half_life_days")
    if decays:
        raise BadInputError(
            f"{', '.join(decays)} cannot be used on Spark-resident data (the decay needs every "
            "event's time on this machine)",
            hint="set it to null (--set NAME=null), or train on a sample (`ltrec sample NAME`)",
        )


def _sample_users(split: EngineSplit, limit: int, seed: int) -> Any:
    """The test pairs of at most ``limit`` test users: all of them, or a seeded hash sample
    (the rule of :func:`ltrec.store.external.fetch_sample`)."""
    test = split.test
    n = int(split.stats["test_users"])
    if n <= limit:
        return test
    keep = int(round(_BUCKETS * limit / n))
    bucket = (test.user_id.concat(f"#{seed}").hash() % _BUCKETS).abs()
    return test.filter(bucket < keep)


def evaluate_resident(
    model: ALS,
    source: ExternalSource,
    data: EngineData,
    *,
    k: int,
    n_boot: int,
    seed: int,
    eval_users: int = EVAL_USERS,
) -> Any:
    """Every metric on a seeded sample of test users (only their events are fetched)."""
    # lazy: ibis (~0.8 s) stays off `import ltrec.app.pipeline`, which imports this module
    import ibis

    test = _sample_users(data.split, eval_users, seed).to_pyarrow().to_pandas()
    test["user_id"] = test["user_id"].astype(str)
    test["item_id"] = test["item_id"].astype(str)
    users = np.array(sorted(set(test["user_id"])), dtype=str)[:eval_users]
    keys = ibis.memtable(pd.DataFrame({"user_id": users.astype(object)}))
    train = data.split.train
    events = train.semi_join(keys, train.user_id == keys.user_id).to_pyarrow().to_pandas()
    for col in ("user_id", "item_id"):
        events[col] = events[col].astype(str)
    block = block_data(events, users, data.catalogue, data.item_pop, data.item_weight, data.weights)
    rows = np.searchsorted(data.user_ids, users)
    if not np.array_equal(data.user_ids[rows], users):
        raise BadInputError("test users outside the vocabulary (the data changed meanwhile)")
    sub = restrict(model, rows, block)
    item_index = pd.Index(data.item_ids)
    test = test[test["user_id"].isin(set(users.tolist()))]
    test = test.sort_values(["user_id", "item_id"], kind="stable")
    test = test.assign(i=item_index.get_indexer(test["item_id"]))
    test = test[test["i"] >= 0]
    users = np.array(sorted(set(test["user_id"])), dtype=str)
    local = block.users_to_index(users.tolist())
    targets = [g["i"].to_numpy(np.int64) for _, g in test.groupby("user_id", sort=True)]
    recs, _ = sub.recommend(local, k)
    return evaluate(
        recs,
        targets,
        item_pop=data.item_pop,
        k=k,
        item_category=block.item_category,
        item_embedding=None,
        user_ids=users.tolist(),
        seen=block.matrix[local],
        n_boot=n_boot,
        seed=seed,
        label=sub.name,
    )


def train_resident(
    dataset: str,
    model_name: str,
    params: Mapping[str, Any] | None = None,
    *,
    split_config: Any = None,
    k: int = 10,
    n_boot: int = 200,
    progress: Progress | None = None,
    data_dir: Path | str | None = None,
    spark: Any = None,
    eval_users: int = EVAL_USERS,
) -> Any:
    """Train ALS on a Spark-resident dataset, evaluate it on a sample of test users and save a
    run (see the module docstring); returns a :class:`~ltrec.models.train.TrainResult`.

    Every check (engine, model, params, the TOML, its columns, the split) runs before the
    training lock is taken: a refusal leaves the registry as it was.

    Raises:
        BadInputError: a model other than ALS, a decay setting, a non-Spark dataset, a bad
            split (e.g. nothing before the cut-off), missing columns (ConfigError).
    """
    # lazy: ibis (~0.8 s) stays off `import ltrec.app.pipeline`, which imports this module
    from ltrec.evaluation.engine_split import engine_split

    # lazy: store.external imports ibis (~0.8 s); only an external dataset needs it
    from ltrec.store.external import config_version, open_external

    check_engine("spark", model_name)
    model: ALS = make_model(model_name, params)  # type: ignore[assignment]  # check_engine: als
    report(progress, 0.0, f"splitting {dataset} on its engine")
    source = open_external(dataset, data_dir)
    if source.config.backend != "pyspark":
        raise BadInputError(
            f"external dataset '{dataset}' runs on {source.config.backend}, not Spark",
            hint=f"fetch a sample (`ltrec sample {dataset}`) and train it locally",
        )
    version = config_version(dataset, data_dir)
    split = engine_split(source, split_config)
    _check_config(model, split.config.keep_seen)
    spark = spark if spark is not None else spark_session(data_dir, dataset=None)
    data = engine_data(source, split, spark)
    report(
        progress,
        0.1,
        f"{data.n_users:,} users, {data.n_items:,} items, "
        f"{data.interactions:,} training pairs on Spark",
    )
    with training_lock(dataset, data_dir):
        t0 = time.perf_counter()
        cfg = model.config
        model.n_users_, model.n_items_ = data.n_users, data.n_items
        # the histories stay on Spark: the run's own training matrix is empty
        model.seen_ = sp.csr_matrix((data.n_users, data.n_items), dtype=np.float32)  # type: ignore[arg-type]  # scipy-stubs type an empty (shape-only) matrix as float64, bool or int
        model.pop_ = popularity_scores(data.item_pop, data.item_weight)
        model.repeat_ = bool(split.config.keep_seen)
        model.freq_, model.blend_pop_ = None, None
        users, items = fit_frame(
            spark,
            data.pairs,
            data.n_users,
            data.n_items,
            cfg,
            progress=None if progress is None else lambda d, m: progress(0.1 + 0.6 * d, m),
        )
        model.user_factors_, model.item_factors_ = users, items
        model._yty = None
        model.build_ann()
        seconds = time.perf_counter() - t0
        data.pairs.unpersist()
        report(progress, 0.75, "evaluating on a sample of test users")
        result = evaluate_resident(
            model, source, data, k=k, n_boot=n_boot, seed=cfg.seed, eval_users=eval_users
        )
        report(progress, 0.95, "saving")
        run = save_run(
            model,
            dataset=dataset,
            data=data,  # type: ignore[arg-type]  # EngineData answers what save_run reads
            metrics=result.to_dict(),
            k=k,
            extra={
                "train_seconds": round(seconds, 3),
                "data_import_id": version,
                "params": {**cfg.model_dump(mode="json"), "engine": "spark"},
                RESIDENT: {
                    "backend": source.config.backend,
                    "cutoff": split.cutoff.isoformat(),
                    "eval_users": len(result.per_user),
                    "test_users": int(split.stats["test_users"]),
                },
            },
            data_dir=data_dir,
        )
        report(progress, 1.0, f"saved run {run.run_id}")
    return TrainResult(run, model, result, data, seconds)  # type: ignore[arg-type]  # EngineData: the events stay on Spark


__all__ = [
    "EVAL_USERS",
    "RESIDENT",
    "EngineData",
    "block_data",
    "engine_data",
    "evaluate_resident",
    "is_resident",
    "is_resident_run",
    "refuse_one_user",
    "restrict",
    "train_resident",
]
