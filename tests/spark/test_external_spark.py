"""An external dataset defined on a local Spark session (``backend = "pyspark"``): analytics
equal the native store's, the sample is fetched, and the Long Tail page renders on it.

The DuckDB-backed cases of the same TOML format are in ``tests/store/test_external.py``.
"""

from __future__ import annotations

import pytest

from ltrec.analytics import longtail
from ltrec.analytics.backend import Store, open_store
from ltrec.store import list_datasets
from ltrec.store.external import fetch_sample, open_external
from tests.analytics.conftest import write_store
from tests.store.test_external import COLUMNS_TOML, _same, _source_frames

SPARK_TOML = (
    """
backend = "pyspark"
description = "clicks on a local Spark"

[spark]
master = "local[2]"
app_name = "ltrec-external-test"

[tables]
events = "ltrec_ext.clicks"
items = "ltrec_ext.products"
users = "ltrec_ext.customers"
"""
    + COLUMNS_TOML
    + """
[sample]
max_events = 400
seed = 3
"""
)


@pytest.fixture(scope="session")
def spark_ext(spark):
    """The shared Spark session holding the foreign tables in database ``ltrec_ext``."""
    _, foreign = _source_frames(seed=9)
    spark.sql("CREATE DATABASE IF NOT EXISTS ltrec_ext")
    for name, df in zip(("clicks", "products", "customers"), foreign, strict=True):
        spark.createDataFrame(df).write.mode("overwrite").saveAsTable(f"ltrec_ext.{name}")
    return spark


@pytest.mark.spark
@pytest.mark.slow
def test_spark_dataset_analytics_and_sample(spark_ext, data_dir) -> None:
    (data_dir / "sparkshop.toml").write_text(SPARK_TOML)
    src = open_external("sparkshop")
    assert type(src.backend).__module__.startswith("ibis.backends.pyspark")
    store = Store(src)
    native, _ = _source_frames(seed=9)
    write_store("native", data_dir, *native)
    _same(
        longtail.bucket_table(store).frame,
        longtail.bucket_table(open_store("native")).frame,
        ["bucket"],
    )
    rep = fetch_sample("sparkshop", source=src)
    assert 0 < rep.events <= 400 and rep.dataset in list_datasets()


@pytest.mark.spark
@pytest.mark.slow
def test_long_tail_page_renders_on_spark_dataset(spark_ext, data_dir) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP

    (data_dir / "sparkshop.toml").write_text(SPARK_TOML)
    at = AppTest.from_file(APP, default_timeout=240)
    at.query_params["ds"] = "sparkshop"
    at.run()
    assert not at.exception, at.exception
    at.switch_page("app_pages/long_tail.py").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Long Tail"
    assert len(at.get("plotly_chart")) == 4
    assert any("sparkshop" in c.value for c in at.caption)
