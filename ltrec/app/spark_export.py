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
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ltrec.errors import BadInputError

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
        from ltrec.app.pipeline import RecSession

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


def _lists(key: tuple[str, str, str, str, bool], k: int, batch: int):  # noqa: ANN202
    """The ``mapInPandas`` function: user index frames in, export rows out."""
    import numpy as np
    import pandas as pd

    from ltrec.app.pipeline import EXPORT_COLUMNS

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        session = _session(key)
        for frame in frames:
            users = frame["id"].to_numpy(np.int64)
            for lo in range(0, users.size, batch):
                rows = session.frame(users[lo : lo + batch], k)
                yield rows.astype(
                    {"rank": "int64", "base_rank": "int64", "rank_change": "int64",
                     "base_score": "float64", "final_score": "float64"}  # fmt: skip
                )[EXPORT_COLUMNS]

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
    from ltrec.app.pipeline import RecSession
    from ltrec.config import get_settings
    from ltrec.models.spark_als import spark_session
    from ltrec.rerank.pipeline import to_dict

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
    root = Path(data_dir) if data_dir is not None else get_settings().data_dir
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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        rows.write.parquet(str(tmp))
        for marker in tmp.glob("_SUCCESS"):  # Spark's marker, not data
            marker.unlink()
        for crc in tmp.glob(".*.crc"):
            crc.unlink()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    import pyarrow.parquet as pq

    n_rows = pq.ParquetDataset(str(out)).read(columns=["rank"]).num_rows
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


__all__ = ["EXPORT_SCHEMA", "export_spark"]
