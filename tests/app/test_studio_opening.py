"""The Rerank Studio opens on an answer: the best evaluated run against the recommended setting.

Issue 17 §3: not the newest run against itself; the first two lists differ; the recommended
setting and the solver's answer each have an Apply button; a shared link still wins.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from ltrec.app import studio as logic
from ltrec.charts.text import markdown_text
from tests.app.conftest import APP

PAGE = "app_pages/rerank_studio.py"
BETA = "rs_c2_tail_boost_beta"


@pytest.fixture(scope="module")
def _runs(_demo_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """EASE, then popularity (the newer run, with the lower NDCG), trained once per module."""
    from ltrec.models.train import train

    root = tmp_path_factory.mktemp("opening_runs")
    shutil.copy(_demo_file, root / "demo.duckdb")
    ease = train("demo", "ease", n_boot=0, data_dir=root).run_id
    pop = train("demo", "popularity", n_boot=0, data_dir=root).run_id
    return root / "models", ease, pop


@pytest.fixture
def runs(demo: str, data_dir: Path, _runs: tuple[Path, str, str]) -> tuple[str, str]:
    models, ease, pop = _runs
    shutil.copytree(models, data_dir / "models")
    return ease, pop


@pytest.fixture(scope="module")
def expected(_runs: tuple[Path, str, str]) -> logic.Recommendation:
    """The recommendation computed without Streamlit, as the page computes it on open."""
    from ltrec.app.pipeline import RecSession
    from ltrec.config import get_settings
    from ltrec.rerank import TailBoostConfig

    models, ease, _ = _runs
    session = RecSession.open("demo", ease, data_dir=models.parent)
    smp = logic.sample_users(session, 200, seed=get_settings().seed, m=TailBoostConfig().pool)
    return logic.recommend(smp, session.context, 10, target=0.3)


def _open(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _lists(at: AppTest) -> list[list[str]]:
    frames = [d.value for d in at.dataframe]
    return [f["title"].tolist() for f in frames if "change" in getattr(f, "columns", [])]


def _qp(at: AppTest, key: str) -> str:
    v = at.query_params[key]
    return v[0] if isinstance(v, list) else v


def test_best_run_is_the_best_ndcg_among_evaluated_fresh_runs() -> None:
    def run(rid: str, ndcg: float | None, *, all_data: bool = False, stale: bool = False):
        metrics = {} if ndcg is None else {"ndcg@10": {"mean": ndcg}}
        manifest = {"k": 10, "created_at": rid, "metrics": metrics}
        return SimpleNamespace(
            run_id=rid, manifest=manifest, metrics=metrics, all_data=all_data, stale=stale
        )

    runs = [
        run("1-ease", 0.30),
        run("2-pop", 0.10),
        run("3-prod", 0.90, all_data=True),  # fitted on everything: its figure is not a test
        run("4-stale", 0.50, stale=True),
        run("5-none", None),
    ]
    assert logic.best_run(runs) == "1-ease"
    assert logic.best_run([runs[1], run("6-ease", 0.30), runs[0]]) == "6-ease"  # tie: newer
    assert logic.best_run(runs[2:4]) == "4-stale"  # no fresh evaluated run: a stale one
    assert logic.best_run(runs[2:3]) == "3-prod"  # only a production run: the newest
    assert logic.best_run([]) is None


def test_recommendation_is_the_smallest_boost_within_the_loss(
    expected: logic.Recommendation,
) -> None:
    rec = expected
    assert rec.setting["strategy"] == "tail_boost"
    assert rec.strength > 0
    assert rec.strength == logic.round_up(rec.strength)  # a slider position
    assert rec.loss <= logic.MAX_LOSS + 1e-9
    assert rec.tail_share > rec.base_tail_share
    if rec.reached:
        assert rec.tail_share >= rec.target
        assert "smallest boost that reaches a 30% tail share within 5%" in rec.message
    else:
        assert "most tail within" in rec.message


def test_studio_opens_on_the_best_run_against_the_recommended_setting(
    runs: tuple[str, str], expected: logic.Recommendation
) -> None:
    ease, pop = runs
    at = _open()
    assert at.selectbox(key="rs_run").value == ease  # not the newer popularity run
    assert at.selectbox(key="rs_c1_strategy").value == "none"
    assert at.selectbox(key="rs_c2_strategy").value == "tail_boost"
    assert at.slider(key=BETA).value == pytest.approx(expected.strength)
    shown = markdown_text(expected.message)  # data text is escaped for markdown
    assert any(m.value == f"**Recommended:** {shown}" for m in at.markdown)
    lists = _lists(at)
    assert len(lists) == 3
    assert lists[0] != lists[1]  # the first two lists differ on open
    assert _qp(at, "c2.beta") == str(expected.strength)

    # Apply puts the recommendation back after the slider moved
    at.slider(key=BETA).set_value(0.0).run()
    assert _lists(at)[1] == lists[0]
    at.button(key="rs_rec_apply").click().run()
    assert not at.exception, at.exception
    assert at.slider(key=BETA).value == pytest.approx(expected.strength)
    assert _lists(at)[1] == lists[1]


def test_the_solvers_answer_applies_to_the_swept_column(runs: tuple[str, str]) -> None:
    at = _open()
    at.slider(key="rs_target").set_value(60).run()
    button = at.button(key="rs_solver_apply")
    assert button.label.startswith("Apply tail boost beta=") and button.label.endswith(
        "to column 2"
    )
    strength = float(button.label.split("beta=")[1].split(" ")[0])
    button.click().run()
    assert not at.exception, at.exception
    assert at.slider(key=BETA).value == pytest.approx(strength)
    assert at.success[0].value.startswith("beta=")  # the solver reached 60%


def test_a_shared_link_still_wins_over_the_recommendation(runs: tuple[str, str]) -> None:
    ease, pop = runs
    at = _open(run=pop, **{"c2.strategy": "tail_boost", "c2.beta": "0.25"})
    assert at.selectbox(key="rs_run").value == pop
    assert at.slider(key=BETA).value == pytest.approx(0.25)
    assert _qp(at, "c2.beta") == "0.25"
