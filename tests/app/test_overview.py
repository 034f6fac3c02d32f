"""AppTest of the Overview page."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.analytics.conftest import orders_store, tiny_events, write_store
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
    assert "Tail share of items" in m and m["Exposure Gini"].startswith("0.")
    assert all(x.help for x in at.metric)  # every number's definition one hover away
    assert len(at.get("plotly_chart")) == 2


def test_overview_cuts_control_changes_numbers_and_url(demo) -> None:
    at = _app().run()
    before = _metrics(at)["Tail share of items"]
    at.text_input(key="ov_cuts").set_value("0.5").run()
    assert not at.exception
    assert _metrics(at)["Tail share of items"] != before
    assert at.query_params["cuts"] == "0.5"  # AppTest: one value is a str


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


# ----------------------------------------------------------------------------- purchase-only data

EXPOSURE_SENTENCE = "exposure (how often each item was shown) is not measured"
ABSENT = ("impression", "view", "cart")


def _chart_texts(at: AppTest) -> list[str]:
    """Every series name and axis category of the page's charts."""
    out: list[str] = []
    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        for trace in spec["data"]:
            out.append(str(trace.get("name") or ""))
            for axis in ("x", "y"):
                vals = trace.get(axis)
                if isinstance(vals, list) and vals and isinstance(vals[0], str):
                    out += vals
    return out


def visible_labels(at: AppTest) -> list[str]:
    """Metric labels, table columns and chart series of a rendered page (lower case)."""
    labels = [m.label for m in at.metric]
    labels += [str(c) for df in at.dataframe for c in df.value.columns]
    labels += _chart_texts(at)
    return [x.lower() for x in labels]


@pytest.fixture
def orders(data_dir, monkeypatch) -> str:
    """A purchase-only order-lines dataset imported with the real importer (orders preset)."""
    orders_store("shop", data_dir)
    monkeypatch.setenv("LTREC_DATASET", "shop")
    return "shop"


def test_overview_on_purchase_only_data_invents_no_exposure(orders) -> None:
    at = _app().run()
    assert not at.exception, at.exception
    labels = visible_labels(at)
    assert not [x for x in labels if any(a in x for a in ABSENT)], labels
    assert not [x for x in labels if "exposure" in x], labels
    m = _metrics(at)
    assert [k for k in m if k in ("impressions", "views", "carts", "purchases")] == ["purchases"]
    assert m["purchases"] == "600" and m["Events"] == "600"
    assert float(m["Gini of buyers"]) > 0
    assert "Tail share of buyers" in m
    assert sum(EXPOSURE_SENTENCE in i.value for i in at.info) == 1
    assert any("No hidden gems section for this data" in i.value for i in at.info)
    lorenz = [t for t in _chart_texts(at) if "(Gini" in t and not t.startswith("equality")]
    assert len(lorenz) == 2
    assert lorenz[0].startswith("purchase (Gini 0.")
    assert lorenz[1].startswith("buyers per item (purchase concentration) (Gini 0.")
    assert "exposure not measured" in at.caption[0].value


def test_overview_on_demo_shows_every_stage(demo) -> None:
    at = _app().run()
    assert not at.exception, at.exception
    m = _metrics(at)
    assert [k for k in m if k in ("impressions", "views", "carts", "purchases")] == [
        "impressions",
        "views",
        "carts",
        "purchases",
    ]
    assert "Tail share of exposure" in m  # the record's name; its help says impressions
    assert not any(EXPOSURE_SENTENCE in i.value for i in at.info)
    series = _chart_texts(at)
    assert any(s.startswith("impression (Gini") for s in series)
    assert "share of exposure (impression)" in series
