"""The Rerank Studio offers the personalised strategies: a shared link restores them and the
shown lists are those of ``ltrec recommend --rerank``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import APP

PAGE = "app_pages/rerank_studio.py"


@pytest.fixture(scope="module")
def _run_dir(_demo_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from ltrec.models.train import train

    root = tmp_path_factory.mktemp("studio_strategy_runs")
    shutil.copy(_demo_file, root / "demo.duckdb")
    res = train("demo", "ease", n_boot=0, data_dir=root)
    return root / "models", res.run_id


@pytest.fixture
def trained(demo: str, data_dir: Path, _run_dir: tuple[Path, str]) -> str:
    models, run_id = _run_dir
    shutil.copytree(models, data_dir / "models")
    return run_id


def test_link_restores_personalised_strategies_and_lists_match_the_cli(trained: str) -> None:
    from ltrec.app.pipeline import RecSession
    from ltrec.models.registry import load_run

    user = str(load_run("demo", trained).user_ids[3])
    at = AppTest.from_file(APP, default_timeout=120)
    query = {
        "run": trained,
        "user": user,
        "cols": "2",
        "c1.strategy": "calibrated_popularity",
        "c1.lambda": "0.7",
        "c2.strategy": "xquad_personal",
        "c2.lambda": "0.6",
        "c2.shrink": "10.0",
    }
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="rs_c1_strategy").value == "calibrated_popularity"
    assert at.slider(key="rs_c1_calibrated_popularity_lam").value == pytest.approx(0.7)
    assert at.selectbox(key="rs_c2_strategy").value == "xquad_personal"
    assert at.slider(key="rs_c2_xquad_personal_shrink").value == pytest.approx(10.0)
    shown = [d.value for d in at.dataframe if "change" in d.value.columns]
    settings = [
        {"strategy": "calibrated_popularity", "lambda": 0.7},
        {"strategy": "xquad_personal", "lambda": 0.6, "shrink": 10.0},
    ]
    assert len(shown) == 2
    for frame, setting in zip(shown, settings, strict=True):
        cli = RecSession.open("demo", trained, setting).recommend(user, 10)
        assert frame["title"].tolist() == [x["title"] for x in cli["items"]]
        assert frame["reason"].tolist() == [x["reason"] for x in cli["items"]]
