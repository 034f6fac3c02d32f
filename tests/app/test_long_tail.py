"""AppTest of the Long Tail page."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from tests.analytics.conftest import orders_store
from tests.app.conftest import APP
from tests.app.test_overview import ABSENT, EXPOSURE_SENTENCE, visible_labels

PAGE = "app_pages/long_tail.py"


def _open(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    # opened at the page itself: one script run, not the default page's first
    at.switch_page(PAGE).run()
    return at


def _figs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_empty_data_dir() -> None:
    at = _open()
    assert not at.exception
    assert at.title[0].value == "Long Tail"
    assert any("no dataset" in i.value for i in at.info)


def test_long_tail_page_runs_and_controls_change_figures(demo) -> None:
    at = _open()
    assert not at.exception, at.exception
    figs = _figs(at)
    assert len(figs) == 4  # rank-frequency, Lorenz, categories, trend
    assert any("Gini" in (t.get("name") or "") for t in figs[1]["data"])
    assert len(at.dataframe) >= 2
    before = _figs(at)[0]
    at.text_input(key="lt_cuts").set_value("0.5,0.8").run()
    assert not at.exception
    after = _figs(at)[0]
    assert after != before  # a mid bucket appears in the rank-frequency shading
    assert "mid" in json.dumps(after["layout"])
    cats = at.selectbox(key="lt_cat").options
    at.selectbox(key="lt_cat").set_value(cats[1]).run()
    assert not at.exception
    assert at.query_params["cat"] == cats[1]  # AppTest: one value is a str
    at.selectbox(key="lt_pop").set_value("purchase").run()
    assert not at.exception


def test_url_restores_view(demo) -> None:
    at = _open(cuts="0.6,0.9", pop="view")
    assert not at.exception
    assert at.text_input(key="lt_cuts").value == "0.6,0.9"
    assert at.selectbox(key="lt_pop").value == "view"
    assert "mid" in json.dumps(_figs(at)[0]["layout"])


def test_long_tail_on_purchase_only_data(data_dir, monkeypatch) -> None:
    orders_store("shop", data_dir)
    monkeypatch.setenv("LTREC_DATASET", "shop")
    at = _open()
    assert not at.exception, at.exception
    labels = visible_labels(at)
    assert not [x for x in labels if any(a in x for a in ABSENT)], labels
    assert not [x for x in labels if "exposure" in x], labels
    assert sum(EXPOSURE_SENTENCE in i.value for i in at.info) == 1
    # no categories in an order-lines file: no category control and no category chart
    assert not [s for s in at.selectbox if s.key == "lt_cat"]
    assert len(_figs(at)) == 3  # rank-frequency, Lorenz, trend
    trend = _figs(at)[2]
    assert [t["name"] for t in trend["data"]] == ["tail share of purchases"]
    # popularity offers only what the data has
    assert at.selectbox(key="lt_pop").options == ["interaction", "purchase"]
    # instead of item conversion: tail items by repeat buyers, labelled as such
    assert any(h.value.startswith("Tail items whose buyers come back") for h in at.subheader)
    buckets = at.dataframe[0].value
    assert list(buckets.columns) == [
        "bucket",
        "items",
        "cold_items",
        "item_share",
        "purchase_events",
        "purchase_share",
        "purchases",
        "buyer_share",
    ]


def test_long_tail_on_demo_keeps_exposure_and_conversion(demo) -> None:
    at = _open()
    assert not at.exception, at.exception
    assert not any(EXPOSURE_SENTENCE in i.value for i in at.info)
    names = [t["name"] for t in _figs(at)[3]["data"]]
    assert names == ["tail share of exposure (impression)", "tail share of purchases"]
    assert "exposure_events" in at.dataframe[0].value.columns
    assert any(h.value == "Item conversion" for h in at.subheader)
