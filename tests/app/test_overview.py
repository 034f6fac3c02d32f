"""AppTest of the Overview page."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.analytics.conftest import tiny_events, write_store
from tests.app.conftest import APP


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_empty_data_dir_shows_empty_state() -> None:
    at = _app().run()
    assert not at.exception
    assert any("no dataset" in i.value for i in at.info)


def test_dataset_without_events_shows_empty_state(data_dir) -> None:
    write_store("blank", data_dir, tiny_events([]))
    at = _app().run()
    assert not at.exception
    assert any("no dataset" in i.value for i in at.info)


def test_overview_kpis_on_demo(demo) -> None:
    at = _app().run()
    assert not at.exception, at.exception
    m = _metrics(at)
    assert int(m["Users"].replace(",", "")) > 0 and int(m["Items"].replace(",", "")) > 0
    assert "Tail share of items" in m and m["Exposure Gini (impression)"].startswith("0.")
    assert all(x.help for x in at.metric)  # every number's definition one hover away
    assert len(at.get("plotly_chart")) == 2


def test_overview_cuts_control_changes_numbers_and_url(demo) -> None:
    at = _app().run()
    before = _metrics(at)["Tail share of items"]
    at.text_input(key="ov_cuts").set_value("0.5").run()
    assert not at.exception
    assert _metrics(at)["Tail share of items"] != before
    assert at.query_params["cuts"] in ("0.5", ["0.5"])


def test_overview_url_restores_view(demo) -> None:
    at = _app()
    at.query_params["cuts"] = "0.5,0.9"
    at.run()
    assert not at.exception
    assert at.text_input(key="ov_cuts").value == "0.5,0.9"
    bars = [c for c in at.get("plotly_chart")]
    assert "mid" in bars[0].proto.spec
    bad = _app()
    bad.query_params["cuts"] = "=1+1"
    bad.run()
    assert not bad.exception and bad.warning
