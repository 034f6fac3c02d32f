"""Every user's list of a run, scored and re-ranked on Spark in partitions, written as Parquet
(``ltrec export NAME --run R --engine spark``; README: Spark).

One definition of a list. The users (training indices ``0..n_users-1``) are a Spark range split
into partitions; ``mapInPandas`` hands each partition to a Python worker, which opens the run as
a :class:`~ltrec.app.pipeline.RecSession` (once per worker process, cached: Spark reuses its Python
workers) and calls :meth:`RecSession.frame`, the same candidate pool, re-ranker and reasons as
``ltrec export``, the Studio and the API. Nothing about a list is re-implemented here, so the
Spark export equals the local export row for row (``tests/spark/test_spark_export.py``).

The workers read the run folder and the dataset's store, so they must see the data directory
(local[N], or a cluster whose executors mount it at the same path). The output is a Parquet
dataset (a folder of part files, one per partition, users in index order within each part)
written beside ``out`` and renamed into place when every part is written: a reader never sees
half an export.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ltrec.app.pipeline import EXPORT_COLUMNS, RecSession, needs_text
from ltrec.config import get_settings
from ltrec.errors import BadInputError, StaleRunError
from ltrec.files import atomic_path
from ltrec.models.registry import load_run
from ltrec.models.spark_als import spark_session
from ltrec.models.spark_resident import (
    RESIDENT,
    block_data,
    catalogue_of,
    is_resident,
    is_resident_run,
    item_counts,
    pair_frame,
    restrict,
    spark_fingerprint,
)
from ltrec.rerank.adapters import context_from_data
from ltrec.rerank.pipeline import parse_config, to_dict

#: The Spark schema of :data:`ltrec.app.pipeline.EXPORT_COLUMNS` (same names, same order).
EXPORT_SCHEMA = (
    "user_id string, rank long, item_id string, base_score double, final_score double, "
    "base_rank long, reason string, title string, category string, bucket string, "
    "rank_change long, reasons string"
)
#: Users per :meth:`RecSession.frame` call inside a partition (bounds a worker's memory).
BATCH_USERS = 2048

#: RecSessions of this worker process: (dataset, run, setting JSON, data dir, stale ok) -> session.
_SESSIONS: dict[tuple[str, str, str, str, bool], Any] = {}


def _session(key: tuple[str, str, str, str, bool]) -> Any:
    session = _SESSIONS.get(key)
    if session is None:
        dataset, run_id, setting, data_dir, allow_stale = key
        session = RecSession.open(
            dataset,
            run_id,
            json.loads(setting) if setting else None,
            data_dir=data_dir,
            allow_stale=allow_stale,
        )
        _SESSIONS.clear()  # one run per worker at a time: a new export frees the last one
        _SESSIONS[key] = session
    return session


def _typed(rows: Any) -> Any:
    """Export rows in :data:`EXPORT_SCHEMA`'s column order and types (Spark checks both)."""
    return rows.astype(
        {"rank": "int64", "base_rank": "int64", "rank_change": "int64",
         "base_score": "float64", "final_score": "float64"}  # fmt: skip
    )[EXPORT_COLUMNS]


def _lists(key: tuple[str, str, str, str, bool], k: int, batch: int):  # noqa: ANN202
    """The ``mapInPandas`` function: user index frames in, export rows out."""

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        session = _session(key)
        for frame in frames:
            users = frame["id"].to_numpy(np.int64)
            for lo in range(0, users.size, batch):
                rows = session.frame(users[lo : lo + batch], k)
                yield _typed(rows)

    return run


def export_spark(
    dataset: str,
    run_id: str,
    out: Path | str,
    rerank: Any = None,
    *,
    k: int = 10,
    data_dir: Path | str | None = None,
    allow_stale: bool = False,
    spark: Any = None,
    partitions: int | None = None,
    batch_size: int = BATCH_USERS,
) -> dict[str, Any]:
    """Write every user's list of ``run_id`` to the Parquet dataset ``out`` on Spark.

    The run and the setting are checked on the driver first (a bad setting, a stale or missing
    run fail before Spark does any work). ``partitions`` None: Spark's default parallelism.
    Returns the ``ltrec export --json`` object (plus ``engine`` and ``partitions``).

    Raises:
        BadInputError: ``out`` does not end in ``.parquet`` or exists already.
    """
    out = _check_out(out)
    root = Path(data_dir) if data_dir is not None else get_settings().data_dir

    if is_resident(dataset, root):  # its events live on Spark: read them there
        return export_resident(
            dataset, run_id, out, rerank, k=k, data_dir=root, allow_stale=allow_stale,
            spark=spark, batch_size=batch_size,
        )  # fmt: skip
    # the driver's session: checks the run and the setting, counts the users
    driver = RecSession.open(dataset, run_id, rerank, data_dir=root, allow_stale=allow_stale)
    setting = json.dumps(to_dict(driver.config)) if rerank is not None else ""
    key = (dataset, str(driver.run_id), setting, str(root.resolve()), bool(allow_stale))
    spark = spark if spark is not None else spark_session(root)
    n_users = int(driver.data.n_users)
    parts = int(partitions or spark.sparkContext.defaultParallelism)
    parts = max(1, min(parts, max(1, n_users)))
    users = spark.range(0, n_users, 1, parts)
    rows = users.mapInPandas(_lists(key, int(k), int(batch_size)), EXPORT_SCHEMA)
    n_rows = _write(rows, out)
    return {
        "run_id": driver.run_id,
        "stale": driver.stale,
        "rerank": to_dict(driver.config),
        "out": str(out),
        "format": "parquet",
        "users": n_users,
        "rows": int(n_rows),
        "k": k,
        "engine": "spark",
        "partitions": parts,
    }


def _check_out(out: Path | str) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise BadInputError(
            f"cannot write {out.name!r}: an export on Spark writes Parquet",
            hint="end --out with .parquet (Spark writes a folder of part files)",
        )
    if out.exists():
        raise BadInputError(
            f"{out} exists already", hint="choose a new --out, or delete the old export first"
        )
    return out


def _write(rows: Any, out: Path) -> int:
    """Write the Spark DataFrame ``rows`` as the Parquet folder ``out`` (aside, then renamed
    into place when every part is written); returns its row count."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        rows.write.parquet(str(tmp))
        for marker in tmp.glob("_SUCCESS"):  # Spark's marker, not data
            marker.unlink()
        for crc in tmp.glob(".*.crc"):
            crc.unlink()
    return int(pq.ParquetDataset(str(out)).read(columns=["rank"]).num_rows)


# ---------------------------------------------------------------------------- Spark-resident data

#: Models of this worker process: (dataset, run, data dir) -> the run's ALS.
_MODELS: dict[tuple[str, str, str], Any] = {}


def _run_model(key: tuple[str, str, str]) -> Any:
    model = _MODELS.get(key)
    if model is None:
        dataset, run_id, data_dir = key
        # the driver checked freshness; a worker verifies the files and loads the factors
        model = load_run(dataset, run_id, data_dir, allow_stale=True).model
        _MODELS.clear()  # one run per worker at a time
        _MODELS[key] = model
    return model


def _block_lists(key: tuple[str, str, str], setting: str, k: int, shared: Any, weights: dict):  # noqa: ANN202
    """The ``applyInPandas`` function: one block of users (index ``u``, id, their training
    events, one row per event; a user without events has one row without an item) in, their
    export rows out, through :class:`~ltrec.app.pipeline.RecSession` like every list."""

    def run(frame: pd.DataFrame) -> pd.DataFrame:
        catalogue, item_pop, item_weight = shared.value
        users = frame[["u", "user_id"]].drop_duplicates("u").sort_values("u")
        events = frame[frame["item_id"].notna()].astype({"user_id": str, "item_id": str})
        ids = users["user_id"].astype(str).to_numpy()
        data = block_data(events, ids, catalogue, item_pop, item_weight, weights)
        model = restrict(_run_model(key), users["u"].to_numpy(np.int64), data)
        context = context_from_data(data, items=catalogue)
        session = RecSession.from_parts(
            model, data, context, json.loads(setting) if setting else None
        )
        return _typed(session.frame(np.arange(data.n_users), k))

    return run


def export_resident(
    dataset: str,
    run_id: str,
    out: Path | str,
    rerank: Any = None,
    *,
    k: int = 10,
    data_dir: Path | str | None = None,
    allow_stale: bool = False,
    spark: Any = None,
    batch_size: int = BATCH_USERS,
) -> dict[str, Any]:
    """Every user's list of a run of a Spark-resident dataset (an external ``pyspark`` dataset,
    :mod:`ltrec.models.spark_resident`), written as Parquet: the histories are read on Spark.

    The driver loads the run, checks the setting, re-computes the training data's fingerprint on
    Spark (changed data on the engine: stale, refused unless ``allow_stale``) and the items'
    training popularity; the training events of every user then go, in blocks of
    ``batch_size`` users, to :func:`_block_lists` (``groupBy(block).applyInPandas``).

    Raises:
        BadInputError: a setting that needs the whole training matrix (tail candidates) or text
            vectors; a run not trained on Spark-resident data.
        StaleRunError: the TOML or the data on the engine changed since training.
    """
    # lazy: pyspark (optional, a JVM) loads only for an export on Spark-resident data
    from pyspark.sql import functions as F

    # lazy: ibis (ltrec.store.external) serves only Spark-resident data
    from ltrec.store.external import open_external, spark_frame

    out = _check_out(out)
    root = Path(data_dir) if data_dir is not None else get_settings().data_dir
    config = parse_config(rerank)
    if config.tail_pool or needs_text(config):
        raise BadInputError(
            "tail candidates and text vectors are not available for data that lives on Spark "
            "(they need the whole training matrix or the item texts on this machine)",
            hint="leave tail_pool at 0 and use a setting without text vectors",
        )
    run = load_run(dataset, run_id, root, allow_stale=allow_stale)
    manifest = run.manifest
    if not is_resident_run(manifest):
        raise BadInputError(
            f"run {run_id} of '{dataset}' was not trained on its Spark data",
            hint=f"train one with `ltrec train {dataset} --model als --engine spark`",
        )
    spark = spark if spark is not None else spark_session(root)
    source = open_external(dataset, root)
    cutoff = pd.Timestamp(manifest[RESIDENT]["cutoff"])
    weights = {str(a): float(b) for a, b in manifest["data"]["weights"].items()}
    ev = source.table("events")
    ev = ev.filter(ev.ts.notnull() & ev.user_id.notnull() & ev.item_id.notnull())
    train = ev.filter(ev.ts < cutoff.to_pydatetime())
    catalogue = catalogue_of(source, run.item_ids)
    pairs = pair_frame(source, train, spark, run.user_ids, run.item_ids, weights).cache()
    try:
        found, _, _ = spark_fingerprint(pairs, run.user_ids, run.item_ids, weights, catalogue)
        want = manifest["data"].get("fingerprint")
        if found != want and not allow_stale:
            raise StaleRunError(
                f"run {run_id} is stale: the data of '{dataset}' on Spark changed since it was "
                f"trained (data fingerprint {found}, the run's {want})",
                hint=f"train it again (`ltrec train {dataset} --model als --engine spark`), or "
                "export it anyway with --allow-stale",
            )
        item_pop, item_weight = item_counts(pairs, len(run.item_ids))
    finally:
        pairs.unpersist()
    shared = spark.sparkContext.broadcast((catalogue, item_pop, item_weight))
    users = spark.createDataFrame(
        pd.DataFrame({"user_id": run.user_ids.astype(object),
                      "u": np.arange(len(run.user_ids), dtype=np.int64)})  # fmt: skip
    )
    events = spark_frame(source, train.select("user_id", "item_id", "event_type", "ts"))
    blocks = users.join(events, "user_id", "left").withColumn(
        "block", F.floor(F.col("u") / int(batch_size))
    )
    setting = json.dumps(to_dict(config)) if rerank is not None else ""
    key = (dataset, str(run_id), str(root.resolve()))
    rows = blocks.groupBy("block").applyInPandas(
        _block_lists(key, setting, int(k), shared, weights), EXPORT_SCHEMA
    )
    try:
        n_rows = _write(rows, out)
    finally:
        shared.unpersist()
    n_users = len(run.user_ids)
    return {
        "run_id": run_id,
        "stale": run.stale,
        "rerank": to_dict(config),
        "out": str(out),
        "format": "parquet",
        "users": n_users,
        "rows": n_rows,
        "k": k,
        "engine": "spark",
        "partitions": -(-n_users // int(batch_size)),
    }


__all__ = ["EXPORT_SCHEMA", "export_resident", "export_spark"]
