"""AppTest of the Feedback Loop page: run a short simulation, reopen it."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from ltrec.charts.text import markdown_text
from ltrec.simulation import list_results
from tests.app.conftest import APP

PAGE = "app_pages/feedback_loop.py"


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_empty_data_dir() -> None:
    at = _open()
    assert at.title[0].value == "Feedback Loop"
    assert any("no dataset" in i.value for i in at.info)


def test_run_three_rounds_and_reopen(demo) -> None:
    at = _open()
    assert any("ground truth" in i.value for i in at.info)
    assert any("No simulations yet" in c.value for c in at.caption)
    at.number_input(key="fl_rounds").set_value(3)
    at.number_input(key="fl_users").set_value(40)
    at.number_input(key="fl_k").set_value(5)
    at.button(key="fl_run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    saved = list_results("demo")
    assert len(saved) == 1
    final = at.dataframe[0].value
    assert final["policy"].tolist() == ["popularity", "ease", "ease + tail_boost 0.5"]
    assert {"exposure Gini (last round)", "tail share (last round)", "purchases"} <= set(final)
    fig = at.get("plotly_chart")[0].proto.spec
    assert "Cumulative tail purchases" in fig and "Exposure Gini" in fig
    assert any("ground truth" in m.value for m in at.markdown)
    # the page ends with one verdict per policy: the model against popularity, the boost
    # against the same model alone
    from ltrec.simulation import load_result
    from ltrec.simulation.verdict import verdicts

    shown = [m.value for m in at.markdown if m.value.startswith("- ")]
    expected = verdicts(load_result("demo", saved[0].sim_id))
    assert shown == [f"- {markdown_text(v)}" for v in expected]
    assert "the model, against popularity" in expected[1]
    assert "the boost, against ease" in expected[2]

    # A new session reopens the saved simulation from the list.
    again = _open()
    assert again.dataframe[0].value["policy"].tolist() == final["policy"].tolist()
    # by label, not position: the sidebar's dataset picker may or may not be rendered first
    pick = next(s for s in again.selectbox if s.label == "Saved simulation")
    assert saved[0].sim_id in pick.value


def test_four_policies_and_a_bad_setting(demo) -> None:
    at = _open()
    at.slider(key="fl_n").set_value(4).run()
    assert at.selectbox(key="fl_model_3").value == "ease"
    at.number_input(key="fl_rounds").set_value(1)
    at.number_input(key="fl_users").set_value(20)
    at.button(key="fl_run").click().run()
    assert not at.exception, at.exception
    assert len(at.dataframe[0].value) == 4
