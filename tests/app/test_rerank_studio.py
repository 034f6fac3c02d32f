"""AppTest of the Rerank Studio page: empty states, one-click training, slider, URL, CLI match."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import APP

PAGE = "app_pages/rerank_studio.py"


@pytest.fixture(scope="module")
def _run_dir(_demo_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An EASE run on the test demo shop, trained once per module."""
    from ltrec.models.train import train

    root = tmp_path_factory.mktemp("studio_runs")
    shutil.copy(_demo_file, root / "demo.duckdb")
    res = train("demo", "ease", n_boot=0, data_dir=root)
    return root / "models", res.run_id


@pytest.fixture
def trained(demo: str, data_dir: Path, _run_dir: tuple[Path, str]) -> str:
    """The demo shop with one trained run in this test's data dir; returns the run id."""
    models, run_id = _run_dir
    shutil.copytree(models, data_dir / "models")
    return run_id


def _open(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(PAGE).run()
    return at


def _lists(at: AppTest) -> list:
    """The shown lists (the dataframes after the history table), as item-id lists."""
    frames = [d.value for d in at.dataframe]
    return [f["title"].tolist() for f in frames if "change" in getattr(f, "columns", [])]


def _qp(at: AppTest, key: str) -> str:
    v = at.query_params[key]
    return v[0] if isinstance(v, list) else v


def test_empty_data_dir() -> None:
    at = _open()
    assert not at.exception
    assert any("no dataset" in i.value for i in at.info)


def test_no_run_offers_one_click_training_then_shows_the_studio(demo: str) -> None:
    at = _open()
    assert not at.exception, at.exception
    assert any("no trained model" in i.value for i in at.info)
    button = at.button(key="rs_train")
    assert button.label.startswith("Train EASE (about ")
    button.click().run()
    assert not at.exception, at.exception
    assert len(_lists(at)) == 3  # the default columns: base, tail boost, xQuAD
    assert _qp(at, "run").endswith(tuple("0123456789abcdef"))


def test_lists_change_when_a_slider_changes(trained: str) -> None:
    at = _open(run=trained)
    assert not at.exception, at.exception
    before = _lists(at)
    assert len(before) == 3 and before[1] != before[0]  # beta=0.3 moves tail items up
    at.slider(key="rs_c2_tail_boost_beta").set_value(0.0).run()
    assert not at.exception, at.exception
    after = _lists(at)
    assert after[1] == before[0]  # strength 0: the boosted column is the base order
    assert after[0] == before[0]  # the base did not move
    assert _qp(at, "c2.beta") == "0.0"
    # the aggregate table and the sweep chart are there, the solver answered
    assert len(at.get("plotly_chart")) == 2
    # the solver reaches the 30% target on the demo (a success, no warning)
    assert len(at.success) == 1 and "tail share (target 30.0%)" in at.success[0].value
    assert not at.warning


def test_url_restores_the_view(trained: str) -> None:
    from ltrec.models.registry import load_run

    run = load_run("demo", trained)
    user = str(run.user_ids[5])
    at = _open(
        run=trained,
        user=user,
        cols="2",
        k="5",
        **{"c1.strategy": "tail_boost", "c1.beta": "0.0", "c2.strategy": "fair", "c2.p": "0.6"},
    )
    assert not at.exception, at.exception
    assert at.text_input(key="rs_query").value == user
    assert at.number_input(key="rs_k").value == 5
    assert at.selectbox(key="rs_c1_strategy").value == "tail_boost"
    assert at.selectbox(key="rs_c2_strategy").value == "fair"
    assert at.slider(key="rs_c2_fair_p").value == pytest.approx(0.6)
    lists = _lists(at)
    assert len(lists) == 2 and all(len(x) == 5 for x in lists)
    # a bad setting in the URL: a warning and the default, never a traceback
    at = _open(run=trained, **{"c2.strategy": "tail_boost", "c2.beta": "99"})
    assert not at.exception, at.exception
    assert any("column 2" in w.value for w in at.warning)


def test_shown_lists_match_cli_recommend_rerank(trained: str) -> None:
    """For a sample of users, the Studio's lists are `ltrec recommend --rerank`'s."""
    from ltrec.app.pipeline import RecSession
    from ltrec.models.registry import load_run

    run = load_run("demo", trained)
    setting = {"strategy": "xquad", "lambda": 0.7}
    at = _open(run=trained, cols="2", **{"c2.strategy": "xquad", "c2.lambda": "0.7"})
    rng = np.random.default_rng(0)
    for user in rng.choice(run.user_ids, 3, replace=False):
        at.text_input(key="rs_query").set_value(str(user)).run()
        assert not at.exception, at.exception
        shown = [d.value for d in at.dataframe if "change" in d.value.columns][1]
        cli = RecSession.open("demo", trained, setting).recommend(str(user), 10)
        assert shown["title"].tolist() == [x["title"] for x in cli["items"]]
        assert shown["reason"].tolist() == [x["reason"] for x in cli["items"]]


def test_a_production_run_shows_its_lists_and_says_why_nothing_is_measured(
    trained: str, data_dir: Path
) -> None:
    """After a promotion the newest run is fitted on all data: the Studio opens on the evaluation
    run; chosen by hand, the production run shows its lists and one sentence, not an error."""
    from ltrec.models.train import train_all_data

    production = train_all_data("demo", from_run=trained, data_dir=data_dir).run_id
    at = _open()
    assert not at.exception and not at.error
    assert at.selectbox(key="rs_run").value == trained
    at = _open(run=production)
    assert not at.exception and not at.error
    assert at.selectbox(key="rs_run").value == production
    assert len(_lists(at)) == 3  # the base order and the two default settings
    (why,) = [i.value for i in at.info if "production run" in i.value]
    assert why.startswith(f"Run {production} was fitted on every event")
    assert f"pick its source run {trained} to measure" in why
