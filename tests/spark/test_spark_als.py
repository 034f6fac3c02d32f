"""ALS on Spark MLlib (`train --engine spark`) and every user's lists on Spark (`export --engine
spark`), on a local[2] session (the session fixture of tests/conftest.py).

One demo shop and its runs: three local ALS fits (seeds 0-2: the seed-to-seed spread; built once
per worker, tests/spark/conftest.py) and one Spark fit of the module, all on the same split.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltrec.cli import main
from ltrec.models.train import train
from tests.spark.conftest import PARAMS, als_shop_copy

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SETTING = {"strategy": "tail_boost", "beta": 0.3}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, spark, _als_shop: dict) -> dict:  # noqa: ANN001
    """The demo shop (1,000 users) with its local and Spark ALS runs, in a module data dir."""
    made = als_shop_copy(_als_shop, tmp_path_factory.mktemp("spark-shop"))
    on_spark = train("demo", "als", PARAMS, n_boot=20, data_dir=made["root"], engine="spark")
    return {**made, "spark": on_spark}


def _ndcg(result) -> float:  # noqa: ANN001
    return float(result.to_dict()["metrics"]["ndcg@10"]["mean"])


def test_spark_als_ndcg_lies_within_the_local_seed_spread(shop: dict) -> None:
    local = [_ndcg(r) for r in shop["local"]]
    # the same split: the same training data and test users for every fit
    assert {r.data.fingerprint for r in shop["local"]} == {shop["spark"].data.fingerprint}
    assert min(local) < max(local)  # the seeds do spread
    assert min(local) <= _ndcg(shop["spark"]) <= max(local), (local, _ndcg(shop["spark"]))


def test_the_spark_run_is_an_als_run_with_engine_spark(shop: dict) -> None:
    from ltrec.app.pipeline import RecSession
    from ltrec.models.als import ALS
    from ltrec.models.registry import load_run

    run_id = shop["spark"].run_id
    loaded = load_run("demo", run_id, shop["root"])
    assert type(loaded.model) is ALS
    assert loaded.manifest["model"] == "als"
    assert loaded.manifest["params"]["engine"] == "spark"
    assert loaded.manifest["params"]["factors"] == 16
    assert loaded.model.user_factors_.shape == (loaded.user_ids.size, 16)
    # the factors were saved as trained (the in-memory model scores the same)
    np.testing.assert_array_equal(loaded.model.item_factors_, shop["spark"].model.item_factors_)
    # through the one pipeline, like any run: a known user's base list is the model's top 10
    session = RecSession.open("demo", run_id, data_dir=shop["root"])
    user = str(loaded.user_ids[np.flatnonzero(np.diff(loaded.model.seen_.indptr))[0]])
    got = [x["item_id"] for x in session.recommend(user, k=10)["items"]]
    items, _ = loaded.model.recommend(loaded.user_index(user), 10)
    assert got == loaded.item_ids[items].tolist()


def test_the_spark_export_equals_the_local_export(shop: dict, spark, tmp_path: Path) -> None:  # noqa: ANN001
    from ltrec.app.pipeline import RecSession
    from ltrec.app.spark_export import export_spark

    root, run_id = shop["root"], shop["spark"].run_id
    local_out = tmp_path / "local.parquet"
    RecSession.open("demo", run_id, SETTING, data_dir=root).export(local_out, k=10)
    spark_out = tmp_path / "spark.parquet"
    summary = export_spark(
        "demo", run_id, spark_out, SETTING, k=10, data_dir=root, spark=spark, partitions=3
    )
    assert spark_out.is_dir() and len(list(spark_out.glob("part-*.parquet"))) == 3
    expected = pd.read_parquet(local_out)
    got = pd.read_parquet(spark_out).sort_values(["user_id", "rank"], ignore_index=True)
    assert summary["rows"] == len(expected) and summary["users"] == 1000
    assert summary["engine"] == "spark" and summary["format"] == "parquet"
    pd.testing.assert_frame_equal(got, expected.sort_values(["user_id", "rank"], ignore_index=True))
    # ids stay text as the shop wrote them
    assert got["user_id"].str.fullmatch(r"U\d{4}").all()


def test_cli_train_and_export_on_spark(
    shop: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LTREC_DATA_DIR", str(shop["root"]))
    out = tmp_path / "lists.parquet"
    argv = ["export", "demo", "--run", shop["spark"].run_id, "--out", str(out)]
    assert main([*argv, "--engine", "spark", "--k", "5", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["engine"], got["users"], got["k"]) == ("spark", 1000, 5)
    assert got["rows"] == len(pd.read_parquet(out))
    # an existing output is refused (exit 2); so is a CSV (Spark writes Parquet)
    assert main([*argv, "--engine", "spark"]) == 2
    assert "exists already" in capsys.readouterr().err
    csv = ["--out", str(tmp_path / "lists.csv")]
    assert main([*argv[:-2], *csv, "--engine", "spark"]) == 2
    assert "writes Parquet" in capsys.readouterr().err
    # only ALS trains on Spark
    assert main(["train", "demo", "--model", "ease", "--engine", "spark"]) == 2
    assert "cannot be trained on Spark" in capsys.readouterr().err


def _runs(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "models" / "demo").iterdir() if p.is_dir())


def test_missing_java_or_pyspark_is_a_clear_exit_2(
    shop: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LTREC_DATA_DIR", str(shop["root"]))
    before = _runs(shop["root"])
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    assert main(["train", "demo", "--model", "als", "--engine", "spark"]) == 2
    err = capsys.readouterr().err
    assert "needs a Java runtime" in err and "openjdk-17" in err
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setitem(sys.modules, "pyspark", None)  # what an install without pyspark has
    assert main(["train", "demo", "--model", "als", "--engine", "spark"]) == 2
    err = capsys.readouterr().err
    assert "needs pyspark" in err and "pip install -e '.[spark]'" in err
    assert _runs(shop["root"]) == before  # nothing was written


def test_an_all_data_fit_of_an_external_dataset_is_refused_with_the_way_to_train_it(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (data_dir / "shop.toml").write_text('backend = "pyspark"\n[tables]\nevents = "shop.events"\n')
    argv = ["train", "shop", "--all-data", "--model", "als", "--engine", "spark"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'shop' lives on an external engine: a fit on all of its data" in err
    assert "ltrec train shop --model als --engine spark" in err
    assert "ltrec train shop-sample --all-data --model als --engine spark" in err
    assert not (data_dir / "models").exists()


def test_promote_refits_a_spark_run_on_spark(
    shop: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ltrec.models.registry import load_run, production_run

    monkeypatch.setenv("LTREC_DATA_DIR", str(shop["root"]))
    source = shop["spark"].run_id
    assert main(["promote", "demo", "--run", source, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["from_run"] == source and out["trained"] is True
    assert production_run("demo", shop["root"]) == out["production"]
    run = load_run("demo", out["production"], shop["root"])
    assert run.manifest["params"]["engine"] == "spark"
    assert run.manifest["split"]["kind"] == "none"  # fitted on every event
    assert "engine" not in run.manifest["overrides"]
