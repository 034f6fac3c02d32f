"""Shared fixtures. Every test gets a temporary LTREC_DATA_DIR: nothing touches ./data.

Also the two workers' schedule (``make test`` runs ``-n 2 --dist loadgroup``, see
:mod:`tests.schedule`): whole test files are the work units (module fixtures are built once),
``tests/spark/`` is one unit (one Spark session, one JVM, in one worker), and the costliest unit
left goes to the next free worker, costs read from ``tests/durations.json`` (refresh:
``--store-durations``). A test that uses the Spark session anywhere else is refused at
collection: on another worker it would start a second JVM (about 1.3 GB and 80 CPU-seconds).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
COMPLETEJOURNEY = SHARED / "datasets" / "completejourney"
DURATIONS = Path(__file__).with_name("durations.json")
#: Every test that needs the Spark session lives here: one work unit (:mod:`tests.schedule`).
SPARK_TESTS = "tests/spark/"
#: The cost of a test in a file that durations.json does not know yet (seconds): about the mean
#: per test in durations.json (only the order of the costs matters, not their scale).
NEW_TEST_S = 5.0


# ---------------------------------------------------------------------------- schedule


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-durations",
        action="store_true",
        help="write each test file's seconds (setup + call + teardown) to tests/durations.json",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # By directory, not by an ``xdist_group`` marker: pytest 9.2's structured node ids drop the
    # group suffix xdist writes (pytest-xdist#1386), so marked tests were spread over both workers.
    for item in items:
        needs = "spark" in getattr(item, "fixturenames", ()) or item.get_closest_marker("spark")
        if needs and not item.nodeid.startswith(SPARK_TESTS):
            raise pytest.UsageError(
                f"{item.nodeid} uses Spark: move it under {SPARK_TESTS} (those tests share one "
                "worker and one Spark session)"
            )


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.schedule import CostScheduling

    costs = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    return CostScheduling(config, log, costs, NEW_TEST_S, folders=(SPARK_TESTS,))


_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::", 1)[0]
    _seconds[path] = _seconds.get(path, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if not config.getoption("store_durations") or hasattr(config, "workerinput"):
        return
    old = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    old.update({k: round(v, 1) for k, v in _seconds.items()})
    kept = {k: v for k, v in sorted(old.items()) if (REPO / k).exists()}
    DURATIONS.write_text(json.dumps(kept, indent=1) + "\n")


@pytest.fixture(autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty data directory, exported as LTREC_DATA_DIR for the test."""
    path = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("LTREC_DATA_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def completejourney() -> Path:
    """The shared CC0 Complete Journey sample (``../shared/datasets/completejourney``)."""
    # Part of the project's checkout (shared/): a missing folder is a broken setup, not a skip.
    if not COMPLETEJOURNEY.is_dir():
        pytest.fail(f"the shared Complete Journey sample is missing: {COMPLETEJOURNEY}")
    return COMPLETEJOURNEY


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
        # A cold JVM's interpreted frames are large: MLlib ALS's task deserialisation overflowed
        # the default 1 MB thread stack when an ALS fit was the JVM's first work (seen under load).
        # C1 only and one GC thread: the tests' small jobs never repay C2's compile threads, and
        # the JVM's CPU (126 -> 92 s for tests/spark, same wall time) is taken from the other
        # worker on two cores.
        .config(
            "spark.driver.extraJavaOptions",
            f"-Djava.io.tmpdir={tmp} -Xss16m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        )
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
