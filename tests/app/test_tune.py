"""``ltrec tune``: chosen on a validation split of the training period, reported on the test.

One seeded demo shop and one EASE run per module; the tuner runs on it once (the fixture) and
again through the CLI with the same arguments (reproducibility).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltrec.app.tune import (
    TuneResult,
    choose,
    parse_objective,
    tune,
    tuning_run,
    validation_split,
)
from ltrec.cli import main
from ltrec.errors import BadInputError
from ltrec.models.registry import NoTestSplitError

MAX_LOSS = 0.05


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, _demo_file: Path) -> tuple[Path, str]:
    """(data dir, run id): the session's demo shop with an EASE run trained on it."""
    from ltrec.models.train import train

    root = tmp_path_factory.mktemp("tune")
    shutil.copyfile(_demo_file, root / "demo.duckdb")
    run = train("demo", "ease", {"lambda_": 100.0}, n_boot=0, data_dir=root)
    return root, run.run_id


@pytest.fixture(scope="module")
def tuned(shop: tuple[Path, str]) -> TuneResult:
    root, run_id = shop
    return tune("demo", run_id, max_loss=MAX_LOSS, data_dir=root)


def _run_split(root: Path):
    from ltrec.models.train import load_data

    return load_data("demo", None, data_dir=root).split


def test_validation_split_holds_training_events_only(shop, tuned: TuneResult) -> None:
    root, _ = shop
    split = _run_split(root)
    val = validation_split(split)
    # Every event the tuner fits or validates on happened before the run's test cut-off.
    assert val.cutoff < split.cutoff
    assert val.train["ts"].max() < val.cutoff
    assert len(val.train) < len(split.train)
    # Each validation target is a training event at or after the validation cut-off.
    late = split.train[split.train["ts"] >= val.cutoff]
    pairs = set(zip(late["user_id"], late["item_id"], strict=True))
    assert set(zip(val.test["user_id"], val.test["item_id"], strict=True)) <= pairs
    # The test period has target pairs that the validation never sees.
    test_pairs = set(zip(split.test["user_id"], split.test["item_id"], strict=True))
    assert test_pairs - pairs
    assert tuned.validation["cutoff"] == val.cutoff.isoformat()
    assert tuned.validation["fit_events"] == len(val.train)
    assert tuned.validation["target_pairs"] == len(val.test)


def test_chosen_setting_is_the_best_within_the_bound(tuned: TuneResult) -> None:
    t = tuned.table
    obj, acc = tuned.objective, tuned.accuracy
    base = t.iloc[0]
    assert base["strategy"] == "none" and base["loss"] == 0.0
    assert t["within_bound"].equals(t["loss"] <= MAX_LOSS + 1e-12)
    chosen = t[t["setting"] == tuned.setting.model_dump_json(by_alias=True)].iloc[0]
    assert chosen["loss"] <= MAX_LOSS
    assert chosen[obj] == t.loc[t["within_bound"], obj].max()
    assert tuned.validation["loss"]["chosen"] == pytest.approx(chosen["loss"])
    assert tuned.validation["chosen"][obj] == pytest.approx(chosen[obj])
    assert 1 - chosen[acc] / base[acc] == pytest.approx(chosen["loss"])
    # The best linear boost: a plain tail boost on the model's own candidates, within the
    # bound, and never better than the chosen setting on validation.
    lin = tuned.best_linear
    assert lin.strategy == "tail_boost" and lin.tail_pool == 0
    assert tuned.validation["loss"]["best_linear"] <= MAX_LOSS
    assert tuned.validation["best_linear"][obj] <= tuned.validation["chosen"][obj]
    assert tuned.validation["chosen"][obj] > tuned.validation["base"][obj]


def test_json_object(tuned: TuneResult) -> None:
    d = json.loads(json.dumps(tuned.to_dict(), allow_nan=False))
    assert set(d) == {
        "dataset",
        "run_id",
        "model",
        "k",
        "objective",
        "accuracy",
        "max_loss",
        "setting",
        "label",
        "best_linear_setting",
        "searched",
        "validation",
        "test",
        "pareto",
        "seconds",
    }
    assert (d["model"], d["k"], d["objective"], d["accuracy"]) == ("ease", 10, "aplt@10", "ndcg@10")
    # the demo's chosen setting (seeded data and split: one answer)
    assert (d["setting"]["strategy"], d["setting"]["signal"]) == ("tail_boost", "log_popularity")
    assert d["best_linear_setting"]["strategy"] == "tail_boost"
    assert set(d["validation"]) == {
        "cutoff",
        "fit_events",
        "users",
        "target_pairs",
        "evaluated",
        "within_bound",
        "base",
        "best_linear",
        "chosen",
        "loss",
    }
    assert set(d["test"]) == {
        "users",
        "pool_tail_recall",
        "base",
        "best_linear",
        "chosen",
        "loss",
        "paired",
        "ratio",
    }
    for key in ("base", "best_linear", "chosen"):
        block = d["test"][key]
        assert {"ndcg@10", "aplt@10", "tail_recall@10", "coverage@10"} <= set(block)
        for name in ("ndcg@10", "aplt@10"):
            v = block[name]
            assert set(v) == {"mean", "low", "high", "n"}
            assert v["low"] <= v["mean"] <= v["high"]
            assert v["n"] == d["test"]["users"]
    assert set(d["test"]["paired"]) == {
        "chosen_vs_base",
        "best_linear_vs_base",
        "chosen_vs_best_linear",
    }
    delta = d["test"]["paired"]["chosen_vs_base"]["aplt@10"]
    assert delta["delta"] == pytest.approx(
        d["test"]["chosen"]["aplt@10"]["mean"] - d["test"]["base"]["aplt@10"]["mean"]
    )
    ratio = d["test"]["ratio"]["aplt@10"]
    assert ratio["mean"] == pytest.approx(
        d["test"]["chosen"]["aplt@10"]["mean"] / d["test"]["best_linear"]["aplt@10"]["mean"]
    )
    assert ratio["low"] <= ratio["mean"] <= ratio["high"]
    assert d["pareto"] and all(
        set(p)
        == {
            "label",
            "setting",
            "ndcg@10",
            "aplt@10",
            "tail_recall@10",
            "coverage@10",
            "loss",
            "within_bound",
        }
        for p in d["pareto"]
    )
    ndcgs = [p["ndcg@10"] for p in d["pareto"]]
    assert ndcgs == sorted(ndcgs, reverse=True)
    assert d["validation"]["evaluated"] == len(tuned.table) == d["searched"]["settings"]


def test_cli_reproduces_the_tuned_setting(shop, tuned: TuneResult, capsys) -> None:
    root, run_id = shop
    code = main(["--data-dir", str(root), "tune", "demo", "--run", run_id, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    again = json.loads(out.out)
    first = tuned.to_dict()
    for key in ("setting", "best_linear_setting", "validation", "test", "pareto", "searched"):
        assert again[key] == json.loads(json.dumps(first[key])), key


def test_cli_strategies_limit_the_search(shop, capsys) -> None:
    root, run_id = shop
    argv = ["--data-dir", str(root), "tune", "demo", "--run", run_id, "--strategies", "fair"]
    code = main([*argv, "--max-loss", "0.1", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    d = json.loads(out.out)
    assert d["searched"]["strategies"] == ["fair"]
    assert d["setting"]["strategy"] == "fair"  # FA*IR within the 10% loss beats the base
    assert d["max_loss"] == 0.1 and d["validation"]["loss"]["chosen"] <= 0.1
    # No tail boost searched: the floor is the base order (a tail boost of strength 0).
    assert d["best_linear_setting"]["beta"] == 0.0


def test_loss_is_measured_against_the_plain_base_order(shop, tuned: TuneResult) -> None:
    """Searching only mixes with tail candidates still measures the loss (and reports the test
    base) against the model's own top K, the base every other run of the tuner uses."""
    root, run_id = shop
    mix = {"tail_pool": 50, "tail_source": "cooccurrence"}
    res = tune("demo", run_id, strategies=["tail_boost"], mixes=[mix], data_dir=root)
    first = json.loads(res.table.iloc[0]["setting"])
    assert (first["strategy"], first["tail_pool"]) == ("none", 0)
    assert res.table.iloc[0]["loss"] == 0.0
    assert res.validation["base"] == tuned.validation["base"]
    assert res.test["base"] == tuned.test["base"]
    others = [json.loads(x) for x in res.table["setting"].iloc[1:]]
    assert all(o["tail_pool"] == 50 for o in others)
    assert res.setting.tail_pool == 50  # the mix with tail candidates wins


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--max-loss", "1.5"], "--max-loss"),
        (["--max-loss", "-0.01"], "--max-loss"),
        (["--objective", "ndcg@10"], "unknown objective"),
        (["--objective", "aplt@0"], "list length"),
        (["--strategies", "tail_boost,bogus"], "bogus"),
        (["--strategies", ","], "no strategy"),
    ],
)
def test_bad_arguments_exit_2(shop, capsys, args: list[str], words: str) -> None:
    root, run_id = shop
    runs_before = sorted(p.name for p in (root / "models" / "demo").iterdir())
    code = main(["--data-dir", str(root), "tune", "demo", "--run", run_id, *args, "--json"])
    out = capsys.readouterr()
    assert code == 2
    err = json.loads(out.out)["error"]
    assert set(err) == {"type", "message", "hint", "exit_code"}
    assert err["exit_code"] == 2 and words in err["message"]
    assert sorted(p.name for p in (root / "models" / "demo").iterdir()) == runs_before


def test_unknown_run_exits_2(shop, capsys) -> None:
    root, _ = shop
    code = main(
        ["--data-dir", str(root), "tune", "demo", "--run", "20200101-000000-ease-000000", "--json"]
    )
    out = capsys.readouterr()
    assert code == 2
    assert json.loads(out.out)["error"]["type"] == "RegistryError"


def test_all_data_run_is_refused(shop, data_dir, capsys) -> None:
    """A production (all-data) run held nothing out: no test split to report the setting on."""
    from ltrec.models.train import train_all_data

    root, run_id = shop
    shutil.copyfile(root / "demo.duckdb", data_dir / "demo.duckdb")
    shutil.copytree(root / "models", data_dir / "models")
    prod = train_all_data("demo", from_run=run_id, data_dir=data_dir).run_id
    code = main(["--data-dir", str(data_dir), "tune", "demo", "--run", prod, "--json"])
    out = capsys.readouterr()
    assert code == 2
    err = json.loads(out.out)["error"]
    assert err["type"] == "NoTestSplitError" and "no test split" in err["message"]
    # Without --run the production run's source run is tuned (it has a test split).
    from ltrec.models.registry import promote

    promote("demo", prod, data_dir=data_dir)
    assert tuning_run("demo", None, data_dir) == run_id
    with pytest.raises(NoTestSplitError):
        tuning_run("demo", prod, data_dir)


def test_parse_objective() -> None:
    assert parse_objective("aplt@10") == ("aplt", 10)
    assert parse_objective("tail_recall@5") == ("tail_recall", 5)
    assert parse_objective("coverage") == ("coverage", 10)
    with pytest.raises(BadInputError, match="list length"):
        parse_objective("aplt@ten")


rows_strategy = st.lists(
    st.tuples(st.floats(0.0, 1.0, allow_nan=False), st.floats(0.0, 1.0, allow_nan=False)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy, base=st.floats(0.01, 1.0), max_loss=st.floats(0.0, 0.99))
def test_choose_is_the_best_objective_within_the_bound(rows, base, max_loss) -> None:
    table = [{"ndcg@10": a, "aplt@10": o} for a, o in rows]
    i = choose(table, "aplt@10", "ndcg@10", base, max_loss)
    ok = [r for r in table if 1 - r["ndcg@10"] / base <= max_loss + 1e-12]
    if not ok:
        assert i is None
        return
    assert i is not None
    best = table[i]
    assert 1 - best["ndcg@10"] / base <= max_loss + 1e-12
    assert best["aplt@10"] == max(r["aplt@10"] for r in ok)
    ties = [r for r in ok if r["aplt@10"] == best["aplt@10"]]
    assert best["ndcg@10"] == max(r["ndcg@10"] for r in ties)
    # The first of exact ties wins.
    assert i == next(j for j, r in enumerate(table) if r == best)


def test_choose_minimises_gini() -> None:
    table = [
        {"ndcg@10": 0.30, "gini@10": 0.9},
        {"ndcg@10": 0.29, "gini@10": 0.7},
        {"ndcg@10": 0.20, "gini@10": 0.1},
    ]
    assert choose(table, "gini@10", "ndcg@10", 0.30, 0.05) == 1
    assert choose(table, "gini@10", "ndcg@10", 0.30, 0.0) == 0
    assert choose(table, "gini@10", "ndcg@10", 0.30, 0.5) == 2


def test_studio_finds_and_applies_the_best_setting(shop, tuned: TuneResult, data_dir) -> None:
    """The Rerank Studio's "Find the best setting" runs the tuner; Apply sets column 2."""
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP

    root, run_id = shop
    shutil.copyfile(root / "demo.duckdb", data_dir / "demo.duckdb")  # text vectors cached
    shutil.copytree(root / "models", data_dir / "models")
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("app_pages/rerank_studio.py").run()
    assert not at.exception, at.exception
    at.button(key="rs_tune_go").click().run()
    assert not at.exception, at.exception
    shown = at.session_state[f"rs_tuned::demo::{run_id}"]
    assert shown["setting"] == json.loads(json.dumps(tuned.to_dict()["setting"]))
    table = next(d.value for d in at.dataframe if "setting" in d.value.columns)
    assert table["setting"].tolist() == [
        "base",
        tuned.best_linear.label(),
        tuned.to_dict()["label"],
    ]
    at.button(key="rs_tune_apply").click().run()
    assert not at.exception, at.exception
    strategy = tuned.setting.strategy
    assert at.selectbox(key="rs_c2_strategy").value == strategy
    if tuned.setting.STRENGTH:
        field = tuned.setting.STRENGTH
        widget = at.slider(key=f"rs_c2_{strategy}_{field}")
        assert widget.value == pytest.approx(tuned.setting.strength)
