"""Shared fixtures. Every test gets a temporary LTREC_DATA_DIR: nothing touches ./data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
COMPLETEJOURNEY = SHARED / "datasets" / "completejourney"


@pytest.fixture(autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty data directory, exported as LTREC_DATA_DIR for the test."""
    path = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("LTREC_DATA_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """One local Spark session (`local[2]`) for the whole run, its dirs under a temp dir."""
    # ./test.sh installs pyspark and a Java runtime: a missing one is a broken setup, not a skip.
    if shutil.which("java") is None:
        pytest.fail("no Java runtime for Spark: run ./test.sh, which installs one")
    from pyspark.sql import SparkSession

    tmp = tmp_path_factory.mktemp("spark")
    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("ltrec-tests")
        .config("spark.sql.warehouse.dir", str(tmp / "warehouse"))
        .config("spark.local.dir", str(tmp / "local"))
        .config("spark.driver.extraJavaOptions", f"-Djava.io.tmpdir={tmp}")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
