"""ALS fitted by Spark MLlib: the same model and run as :mod:`ltrec.models.als`, factorised on a
Spark cluster (``ltrec train NAME --model als --engine spark``; README: Spark).

What runs where. The training data is the one :class:`~ltrec.models.data.InteractionData` of the
dataset (same split, same event weights, same fingerprint as a local run); its summed event
weights ``r_ui`` go to Spark as ``(user index, item index, r)`` rows, so MLlib sees integer ids
and the run's vocabulary maps them back to the shop's text ids unchanged. MLlib's ALS (Hu, Koren &
Volinsky 2008, implicit preferences) factorises them; the factors come back to the driver and are
saved as a plain :class:`~ltrec.models.als.ALS` state (``user_factors``, ``item_factors``), so the
app, the Studio, export and the API load the run like any ALS run. The run's manifest records
``params.engine = "spark"``.

Hyper-parameters map one to one: ``factors`` -> ``rank``, ``regularization`` -> ``regParam``,
``alpha`` -> ``alpha``, ``iterations`` -> ``maxIter``, ``seed`` -> ``seed``. Two documented
differences of the solvers (not of the model): MLlib's confidence is ``1 + alpha r`` where
``implicit``'s is ``alpha r`` (the same for alpha r >> 1), and MLlib scales ``regParam`` by the
number of interactions of each user and item (ALS-WR, Zhou et al. 2008); it solves each
least-squares problem exactly (Cholesky) where ``implicit`` takes conjugate-gradient steps. The
test suite checks the outcome: NDCG@10 of the Spark run lies within the seed-to-seed spread of the
local ALS on the same split (``tests/spark/test_spark_als.py``).

Users or items without a training interaction get zero factors (MLlib has none for them); such
users are scored by the popularity fallback, as every model does.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ltrec.config import get_settings
from ltrec.errors import BadInputError, ConfigError
from ltrec.models.als import ALS, ALSConfig
from ltrec.models.base import Recommender
from ltrec.progress import Progress, report
from ltrec.store.connect import connect, exists, read_meta

if TYPE_CHECKING:
    from ltrec.models.data import InteractionData

#: Engines a training or an export can run on.
ENGINES = ("local", "spark")
#: The models ``--engine spark`` can train.
SPARK_MODELS = ("als",)
#: What to install for ``--engine spark`` (the extra pins pyspark; Spark needs Java 17).
INSTALL_HINT = (
    "pip install -e '.[spark]' in the ltrec checkout (pyspark 4.3) and a Java 17 runtime "
    "(e.g. apt-get install openjdk-17-jre-headless), with java on PATH or JAVA_HOME set"
)


class SparkUnavailableError(ConfigError):
    """pyspark or Java is missing: ``--engine spark`` cannot start (exit 2, nothing changed)."""


def java_path() -> str | None:
    """The Java launcher Spark will use: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        return str(java) if java.is_file() else None
    return shutil.which("java")


def check_spark() -> None:
    """Raise :class:`SparkUnavailableError` naming what to install when pyspark or Java is
    missing (checked before any work, so a training or export changes nothing)."""
    try:
        # lazy: pyspark is optional (the Spark extra); only Spark work loads it
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailableError(
            "--engine spark needs pyspark, which is not installed", hint=INSTALL_HINT
        ) from None
    if java_path() is None:
        where = "$JAVA_HOME/bin/java" if os.environ.get("JAVA_HOME") else "java on PATH"
        raise SparkUnavailableError(
            f"--engine spark needs a Java runtime (Spark runs on the JVM); no {where}",
            hint=INSTALL_HINT,
        )


def check_engine(engine: str, model: str | None = None) -> str:
    """``engine`` if it is known (and can train ``model``), else :class:`BadInputError`."""
    if engine not in ENGINES:
        raise BadInputError(f"unknown engine {engine!r}", hint=f"use one of {', '.join(ENGINES)}")
    if engine == "spark" and model is not None and model not in SPARK_MODELS:
        raise BadInputError(
            f"the {model} model cannot be trained on Spark",
            hint=f"--engine spark trains {', '.join(SPARK_MODELS)}; train {model} locally",
        )
    return engine


def check_local(dataset: str, data_dir: Path | str | None = None) -> None:
    """Refuse (exit 2) what a dataset defined by a TOML (its events live on the engine) cannot
    do on Spark: a fit on every event (``--all-data``, ``promote``). Its evaluation runs train on
    Spark (:func:`ltrec.models.spark_resident.train_resident`); a sample trains like any local
    dataset, on the external dataset's cluster."""
    # lazy: store.external imports ibis (~0.8 s); only an external dataset needs it
    from ltrec.store.external import is_external, sample_name

    if exists(dataset, data_dir) or not is_external(dataset, data_dir):
        return
    raise BadInputError(
        f"'{dataset}' lives on an external engine: a fit on all of its data (--all-data, "
        "promote) is not available on Spark yet",
        hint=f"train an evaluation run (`ltrec train {dataset} --model als --engine spark`) and "
        f"export its lists with `ltrec export {dataset} --run RUN --engine spark`; or fetch a "
        f"sample (`ltrec sample {dataset} --events N`) and use "
        f"`ltrec train {sample_name(dataset)} --all-data --model als --engine spark`",
    )


def _source_spark(dataset: str | None, data_dir: Path | str | None) -> Any:
    """The ``[spark]`` section of the external dataset that ``dataset`` was sampled from (its
    cluster), or None for a dataset of its own."""
    if dataset is None:
        return None
    # lazy: store.external imports ibis (~0.8 s); only an external dataset needs it
    from ltrec.store.external import is_external, load_config

    if not exists(dataset, data_dir):
        return None
    con = connect(dataset, Path(data_dir) if data_dir is not None else None)
    try:
        source = str(read_meta(con).get("source", ""))
    finally:
        con.close()
    name = source.removeprefix("external:")
    if not source.startswith("external:") or not is_external(name, data_dir):
        return None
    cfg = load_config(name, data_dir)
    return cfg.spark if cfg.backend == "pyspark" else None


def spark_session(
    data_dir: Path | str | None = None, master: str | None = None, dataset: str | None = None
) -> Any:
    """The Spark session ``--engine spark`` uses: the running one when there is one (a
    notebook's, the tests'); for the sample of an external Spark dataset, its TOML's ``[spark]``
    master and settings; else one built from the settings (``LTREC_SPARK_MASTER``,
    ``LTREC_SPARK_DRIVER_MEMORY``, ``LTREC_SPARK_CONFIG``; README: Spark), its warehouse and
    scratch space in the data directory."""
    check_spark()
    # lazy: pyspark is optional (the Spark extra); only Spark work loads it
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    settings = get_settings()
    root = (Path(data_dir) if data_dir is not None else settings.data_dir).resolve()
    toml = _source_spark(dataset, data_dir)
    # the executors' Python is this one (ltrec importable there: export runs ltrec on them)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf: dict[str, str] = {
        "spark.sql.warehouse.dir": str(root / ".spark-warehouse"),
        "spark.local.dir": str(root / ".spark-tmp"),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        # a driver started here: ALS's task deserialisation overflowed the default 1 MB thread
        # stack in a cold (interpreted) JVM; LTREC_SPARK_CONFIG may set its own options
        "spark.driver.extraJavaOptions": "-Xss16m",
    }
    if settings.spark_driver_memory:
        conf["spark.driver.memory"] = settings.spark_driver_memory
    conf.update(settings.spark_config)
    if toml is not None:  # the cluster the data came from (paths confined by load_config)
        conf.update({k: str(v).lower() if isinstance(v, bool) else str(v)
                     for k, v in toml.config.items()})  # fmt: skip
        master = master or toml.master
    builder = SparkSession.builder.master(master or settings.spark_master).appName("ltrec")
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - the JVM gateway raises several types
        raise ConfigError(
            f"Spark did not start ({exc.__class__.__name__}: {str(exc).splitlines()[0][:300]})",
            hint="check LTREC_SPARK_MASTER and LTREC_SPARK_CONFIG (README: Spark)",
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    # MLlib's ALS checkpoints every 10 sweeps when a folder is set: long fits keep a short
    # lineage instead of overflowing the JVM stack
    session.sparkContext.setCheckpointDir(str(root / ".spark-checkpoints"))
    return session


def fit_factors(
    spark: Any, data: InteractionData, config: ALSConfig, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(user_factors [n_users, f], item_factors [n_items, f])`` float32 from MLlib's ALS on
    ``data.matrix`` (rows = user index, columns = item index, values = summed weights)."""
    coo = data.matrix.tocoo()
    pairs = pd.DataFrame(
        {
            "u": coo.row.astype(np.int32),
            "i": coo.col.astype(np.int32),
            "r": coo.data.astype(np.float32),
        }
    )
    return fit_frame(spark, spark.createDataFrame(pairs), data.n_users, data.n_items, config,
                     progress)  # fmt: skip


def fit_frame(
    spark: Any,
    pairs: Any,
    n_users: int,
    n_items: int,
    config: ALSConfig,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MLlib's ALS on a Spark DataFrame of training pairs ``(u, i, r)`` (user index, item index,
    summed weight): the one Spark fit of a local dataset's matrix and of Spark-resident data
    (:mod:`ltrec.models.spark_resident`). Returns the float32 factors, absent indices zero."""
    # lazy: pyspark is optional (the Spark extra); only Spark work loads it
    from pyspark.ml.recommendation import ALS as MLlibALS

    # one block of users and items per core: MLlib's default of 10 each only adds tasks on a
    # small cluster (each block is one task of every sweep)
    blocks = max(1, int(spark.sparkContext.defaultParallelism))
    frame = pairs.select("u", "i", "r").repartition(blocks)
    report(progress, 0.1, f"Spark ALS: training pairs on {spark.sparkContext.master}")
    als = MLlibALS(
        rank=config.factors,
        maxIter=config.iterations,
        regParam=config.regularization,
        alpha=config.alpha,
        implicitPrefs=True,
        nonnegative=False,
        seed=config.seed,
        userCol="u",
        itemCol="i",
        ratingCol="r",
        numUserBlocks=blocks,
        numItemBlocks=blocks,
    )
    fitted = als.fit(frame)
    report(progress, 0.9, "Spark ALS: collecting the factors")
    users = _dense(fitted.userFactors.toPandas(), n_users, config.factors)
    items = _dense(fitted.itemFactors.toPandas(), n_items, config.factors)
    return users, items


def _dense(factors: Any, n: int, rank: int) -> np.ndarray:
    """MLlib's ``(id, features)`` rows as a float32 ``[n, rank]`` array (absent ids: zeros)."""
    out = np.zeros((n, rank), dtype=np.float32)
    if len(factors):
        ids = factors["id"].to_numpy(np.int64)
        out[ids] = np.stack(factors["features"].to_numpy()).astype(np.float32)
    return out


class SparkALS(ALS):
    """:class:`~ltrec.models.als.ALS` whose factors are fitted by Spark MLlib.

    It is an ALS in every other respect (scoring, history solve, contributions, state) and saves
    as ``als``: a loaded run is a plain ALS.
    """

    def __init__(
        self,
        config: ALSConfig | Mapping[str, Any] | None = None,
        *,
        spark: Any = None,
        data_dir: Path | str | None = None,
        dataset: str | None = None,
        **params: Any,
    ) -> None:
        super().__init__(config, **params)
        self._spark = spark
        self._data_dir = data_dir
        self._dataset = dataset

    def _fit(self, data: InteractionData, progress: Progress | None) -> None:
        spark = self._spark
        if spark is None:
            spark = spark_session(self._data_dir, dataset=self._dataset)
        cfg = self.config
        self.user_factors_, self.item_factors_ = fit_factors(spark, data, cfg, progress)
        self._yty = None


def engine_model(
    model: Recommender,
    engine: str,
    *,
    dataset: str | None = None,
    spark: Any = None,
    data_dir: Path | str | None = None,
) -> Recommender:
    """``model`` as trained on ``engine``: itself for ``local``; for ``spark`` the
    :class:`SparkALS` of the same config (the dataset, pyspark and Java checked first)."""
    check_engine(engine, model.name)
    if engine == "local":
        return model
    if dataset is not None:
        check_local(dataset, data_dir)
    if spark is None:
        check_spark()
    return SparkALS(
        model.config,  # type: ignore[arg-type]  # check_engine passed: an ALS, so an ALSConfig
        spark=spark,
        data_dir=data_dir,
        dataset=dataset,
    )


__all__ = [
    "ENGINES",
    "INSTALL_HINT",
    "SPARK_MODELS",
    "SparkALS",
    "SparkUnavailableError",
    "check_engine",
    "check_local",
    "check_spark",
    "engine_model",
    "fit_factors",
    "fit_frame",
    "spark_session",
]
