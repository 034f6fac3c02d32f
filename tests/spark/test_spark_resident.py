"""ALS on a dataset that lives on Spark (an external ``pyspark`` dataset): training with the split,
the fingerprint and the evaluation computed on Spark, and every user's list exported from the
histories on Spark. One local[2] session (tests/conftest.py's ``spark``).

The module copies the demo shop of tests/spark/conftest.py (a local DuckDB dataset, ``demo``,
with three local ALS fits) and puts the same tables as Spark views behind ``data/xdemo.toml``:
the local runs and the Spark-resident run see the same events, so their splits, vocabularies
and lists can be compared exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltrec.cli import main
from ltrec.models.train import train
from tests.spark.conftest import PARAMS, als_shop_copy

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SETTING = {"strategy": "tail_boost", "beta": 0.3}
TABLES = ("events", "items", "users")


def _view(spark, frame: pd.DataFrame, name: str) -> None:  # noqa: ANN001
    """``frame`` as a Spark temporary view (columns that hold only nulls left out: Spark cannot
    type them)."""
    keep = [c for c in frame.columns if frame[c].notna().any()]
    spark.createDataFrame(frame[keep]).createOrReplaceTempView(name)


def _toml(root: Path, name: str, prefix: str, extra: str = "") -> None:
    tables = "\n".join(f'{t} = "{prefix}_{t}"' for t in TABLES)
    (root / f"{name}.toml").write_text(f'backend = "pyspark"\n[tables]\n{tables}\n{extra}')


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, spark, _als_shop: dict) -> dict:  # noqa: ANN001
    from ltrec.store import connect

    made = als_shop_copy(_als_shop, tmp_path_factory.mktemp("resident-shop"))
    root = made["root"]
    con = connect("demo", root)
    try:
        frames = {t: con.execute(f"SELECT * FROM {t}").df() for t in TABLES}  # noqa: S608
    finally:
        con.close()
    for t, frame in frames.items():
        _view(spark, frame, f"xdemo_{t}")
    _toml(root, "xdemo", "xdemo")
    resident = train("xdemo", "als", PARAMS, n_boot=20, data_dir=root, engine="spark")
    return {**made, "frames": frames, "resident": resident}


def _ndcg(result) -> float:  # noqa: ANN001
    return float(result.to_dict()["metrics"]["ndcg@10"]["mean"])


def test_the_split_on_spark_is_the_local_split(shop: dict) -> None:
    from ltrec.models.registry import load_run

    local = shop["local"][0].data
    run = load_run("xdemo", shop["resident"].run_id, shop["root"])
    # the same rule on the same events: the same cut-off, counts and test users
    assert run.manifest["data"]["split"] == local.split.summary()
    # and the same vocabularies (users of the table, training, test and cold; items)
    np.testing.assert_array_equal(run.user_ids, local.user_ids)
    np.testing.assert_array_equal(run.item_ids, local.item_ids)
    data = run.manifest["data"]
    assert data["interactions"] == local.matrix.nnz
    assert data["users_with_history"] == int((np.diff(local.matrix.indptr) > 0).sum())
    assert data["items_with_interactions"] == int((local.item_pop > 0).sum())
    assert len(data["fingerprint"]) == 16


def test_spark_resident_ndcg_lies_within_the_local_seed_spread(shop: dict) -> None:
    local = [_ndcg(r) for r in shop["local"]]
    got = _ndcg(shop["resident"])
    assert min(local) < max(local)  # the seeds do spread
    assert min(local) <= got <= max(local), (local, got)
    # below EVAL_USERS every test user is evaluated, as locally
    run = shop["resident"].run.manifest
    assert run["resident"]["eval_users"] == run["resident"]["test_users"] == 393
    n = shop["resident"].to_dict()["metrics"]["ndcg@10"]
    assert n["low"] < n["mean"] < n["high"]


def test_the_run_is_an_als_run_listed_like_any_run(
    shop: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ltrec.models.als import ALS
    from ltrec.models.registry import load_run

    run_id = shop["resident"].run_id
    run = load_run("xdemo", run_id, shop["root"])
    assert type(run.model) is ALS
    assert run.manifest["params"]["engine"] == "spark"
    assert run.model.user_factors_.shape == (1000, 16)
    assert run.model.seen_.nnz == 0  # the histories stay on Spark
    monkeypatch.setenv("LTREC_DATA_DIR", str(shop["root"]))
    assert main(["runs", "xdemo", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["runs"]
    assert (listed["run_id"], listed["stale"], listed["model"]) == (run_id, False, "als")
    assert listed["metrics"]["ndcg@10"]["mean"] == pytest.approx(_ndcg(shop["resident"]))


def test_one_user_lists_say_plainly_they_need_the_history_here(
    shop: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LTREC_DATA_DIR", str(shop["root"]))
    run_id = shop["resident"].run_id
    for argv in (
        ["recommend", "xdemo", "--run", run_id, "--user", "U0001"],
        ["evaluate", "xdemo", "--run", run_id],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "whose events live on Spark" in err
        assert f"ltrec export xdemo --run {run_id} --out lists.parquet --engine spark" in err


def test_the_spark_export_equals_the_local_export_for_the_same_factors(
    shop: dict, spark, tmp_path: Path  # noqa: ANN001
) -> None:
    from ltrec.app.pipeline import RecSession
    from ltrec.app.spark_export import export_spark
    from ltrec.models.registry import load_run
    from ltrec.models.spark_resident import restrict
    from ltrec.rerank.adapters import context_from_data

    root, run_id = shop["root"], shop["resident"].run_id
    out = tmp_path / "lists.parquet"
    # blocks of 300 users: four blocks, each scored from its own users' histories
    summary = export_spark(
        "xdemo", run_id, out, SETTING, k=10, data_dir=root, spark=spark, batch_size=300
    )
    assert (summary["engine"], summary["users"], summary["partitions"]) == ("spark", 1000, 4)
    # the local pipeline over the local data with the run's factors
    data = shop["local"][0].data
    model = restrict(load_run("xdemo", run_id, root).model, np.arange(data.n_users), data)
    context = context_from_data(data, items=shop["frames"]["items"])
    expected = RecSession.from_parts(model, data, context, SETTING).table(10)
    got = pd.read_parquet(out).sort_values(["user_id", "rank"], ignore_index=True)
    expected = expected.sort_values(["user_id", "rank"], ignore_index=True)
    assert summary["rows"] == len(expected) == 10_000
    pd.testing.assert_frame_equal(got, expected)
    assert got["reasons"].str.startswith("because you").any()  # the histories were read
    assert got["user_id"].str.fullmatch(r"U\d{4}").all()


def test_an_export_setting_that_needs_the_whole_matrix_is_refused(
    shop: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LTREC_DATA_DIR", str(shop["root"]))
    out = tmp_path / "lists.parquet"
    setting = json.dumps({"strategy": "tail_boost", "beta": 0.3, "tail_pool": 20})
    argv = ["export", "xdemo", "--run", shop["resident"].run_id, "--out", str(out)]
    assert main([*argv, "--rerank", setting, "--engine", "spark"]) == 2
    assert "tail candidates and text vectors are not available" in capsys.readouterr().err
    assert not out.exists()


def _runs(root: Path, name: str) -> list[str]:
    folder = root / "models" / name
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_bad_input_is_a_clear_exit_2_and_the_registry_is_unchanged(
    shop: dict, spark, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: ANN001
) -> None:
    root = shop["root"]
    monkeypatch.setenv("LTREC_DATA_DIR", str(root))
    before = {n: _runs(root, n) for n in ("xdemo", "xbad", "xflat")}
    # a mapped column the events table does not have
    _toml(root, "xbad", "xdemo", '[columns.events]\nts = "event_time"\n')
    assert main(["train", "xbad", "--model", "als", "--engine", "spark"]) == 2
    err = capsys.readouterr().err
    assert "events has no column(s) event_time" in err and "[columns.events]" in err
    # every event at one time: the training part (before the cut-off) is empty
    flat = shop["frames"]["events"].assign(ts=pd.Timestamp("2025-01-01"))
    _view(spark, flat, "xflat_events")
    for t in ("items", "users"):
        _view(spark, shop["frames"][t], f"xflat_{t}")
    _toml(root, "xflat", "xflat")
    assert main(["train", "xflat", "--model", "als", "--engine", "spark"]) == 2
    assert "no events before the cut-off 2025-01-01" in capsys.readouterr().err
    # only ALS trains on Spark; a fit on all the data is not available there
    assert main(["train", "xdemo", "--model", "ease", "--engine", "spark"]) == 2
    assert "cannot be trained on Spark" in capsys.readouterr().err
    assert main(["promote", "xdemo", "--run", shop["resident"].run_id]) == 2
    assert "a fit on all of its data" in capsys.readouterr().err
    assert {n: _runs(root, n) for n in before} == before
