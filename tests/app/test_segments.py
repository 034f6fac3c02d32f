"""AppTest of the Segments page."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from tests.analytics.conftest import orders_store, synthetic_shop, write_store
from tests.app.conftest import APP
from tests.app.test_overview import ABSENT, EXPOSURE_SENTENCE, visible_labels

PAGE = "app_pages/segments.py"


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
    assert any("no dataset" in i.value for i in at.info)


def test_segments_page_runs_and_dimension_changes_figures(demo) -> None:
    at = _open()
    assert not at.exception, at.exception
    dims = at.selectbox(key="sg_seg").options
    assert "activity_level" in dims and "tail_affinity" in dims
    before = _figs(at)
    assert len(before) == 3
    other = next(d for d in dims if d != at.selectbox(key="sg_seg").value)
    at.selectbox(key="sg_seg").set_value(other).run()
    assert not at.exception
    assert _figs(at) != before
    assert at.query_params["seg"] == other  # AppTest: one value is a str
    at.radio(key="sg_rate").set_value("cart_purchase").run()
    assert not at.exception


def test_url_restores_segment(demo) -> None:
    at = _open(seg="tenure", cuts="0.5,0.8")
    assert not at.exception
    assert at.selectbox(key="sg_seg").value == "tenure"
    heat = _figs(at)[1]
    assert heat["data"][0]["x"] == ["head", "mid", "tail"]


def test_segments_on_purchase_only_data(data_dir, monkeypatch) -> None:
    orders_store("shop", data_dir)
    monkeypatch.setenv("LTREC_DATASET", "shop")
    at = _open(seg="country")
    assert not at.exception, at.exception
    labels = visible_labels(at)
    assert not [x for x in labels if any(a in x for a in ABSENT)], labels
    assert sum(EXPOSURE_SENTENCE in i.value for i in at.info) == 1
    assert any("no funnel rate can be measured" in i.value for i in at.info)
    assert not at.radio  # no rate to choose: no funnel, no heatmap
    figs = _figs(at)
    assert len(figs) == 1 and figs[0]["layout"]["yaxis"]["title"]["text"] == (
        "tail share of purchases"
    )
    assert "country" in at.selectbox(key="sg_seg").options
    assert list(at.dataframe[0].value.columns) == [
        "segment",
        "bucket",
        "users",
        "purchases",
        "tail_purchase_share",
        "suppressed",
    ]


def test_segments_on_demo_offers_every_rate(demo) -> None:
    at = _open()
    assert not at.exception, at.exception
    assert at.radio(key="sg_rate").options == ["view → cart", "cart → purchase", "view → purchase"]
    assert "funnel stages in this data: impression → view → cart → purchase" in at.caption[0].value
    assert not any(EXPOSURE_SENTENCE in i.value for i in at.info)


def test_segments_with_views_and_purchases_only(data_dir, monkeypatch) -> None:
    ev, it, us = synthetic_shop(users=150, items=60, sessions=3000, seed=4)
    write_store("vp", data_dir, ev[ev["event_type"].isin(["view", "purchase"])], it, us)
    monkeypatch.setenv("LTREC_DATASET", "vp")
    at = _open(seg="region")
    assert not at.exception, at.exception
    assert at.radio(key="sg_rate").options == ["view → purchase"]  # no cart: no cart rates
    assert "funnel stages in this data: view → purchase" in at.caption[0].value
    assert not any(EXPOSURE_SENTENCE in i.value for i in at.info)  # exposure = views
    cols = list(at.dataframe[0].value.columns)
    assert "carts" not in cols and "view_cart" not in cols and "cart_purchase" not in cols
    assert {"views", "purchases", "view_purchase"} <= set(cols)
    labels = visible_labels(at)
    assert not [x for x in labels if "cart" in x or "impression" in x], labels
