"""Long-tail and funnel figures, read back from their JSON (no Streamlit)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from ltrec.analytics.concentration import Lorenz, lorenz_points
from ltrec.analytics.longtail import bucket_table, tail_by_category, tail_trend
from ltrec.analytics.popularity import BucketConfig, rank_frequency
from ltrec.analytics.segments import segment_funnel
from ltrec.charts.funnel import funnel_figure, heatmap_figure, tail_purchase_figure
from ltrec.charts.longtail import (
    bucket_share_figure,
    category_tail_figure,
    downsample,
    lorenz_figure,
    rank_frequency_figure,
    trend_figure,
)
from tests.analytics.conftest import memory_store, synthetic_shop


@pytest.fixture(scope="module")
def shop():
    ev, it, us = synthetic_shop(users=80, items=40, sessions=700, seed=5)
    return memory_store(ev, it, us)


def _json(fig) -> dict:
    return json.loads(fig.to_json())


def _arr(v) -> list:
    """A figure-JSON array: plain list, or plotly 6's base64 typed array."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


def test_lorenz_figure_equality_line_gini_legend_and_webgl() -> None:
    rng = np.random.default_rng(0)
    big = rng.zipf(1.5, 5000).astype(float)
    small = np.array([0, 1, 1, 4.0])
    lz = Lorenz(
        {"view": lorenz_points(big), "purchase": lorenz_points(small)},
        {"view": 0.81234, "purchase": 0.5},
        {"view": 1, "purchase": 1},
        5000,
    )
    fig = _json(lorenz_figure(lz, points=1000))
    eq, view, purchase = fig["data"]
    assert eq["x"] == [0, 1] and eq["y"] == [0, 1] and "equality" in eq["name"]
    assert view["name"] == "view (Gini 0.812)" and purchase["name"] == "purchase (Gini 0.500)"
    vx = _arr(view["x"])
    assert len(vx) <= 1000 and vx[0] == 0 and vx[-1] == 1
    assert purchase["type"] == "scatter" and view["type"] == "scatter"  # 1000 points: SVG
    fig = _json(lorenz_figure(lz, points=2000))
    assert fig["data"][1]["type"] == "scattergl" and len(_arr(fig["data"][1]["x"])) <= 2000


def test_downsample_keeps_endpoints() -> None:
    x = np.arange(10_001)
    xs, ys = downsample(x, x * 2, 1000)
    assert len(xs) <= 1000 and xs[0] == 0 and xs[-1] == 10_000 and (ys == xs * 2).all()


def test_rank_frequency_log_axes_and_bucket_shading(shop) -> None:
    rf = rank_frequency(shop, cfg=BucketConfig(cuts=(0.5, 0.8)))
    fig = _json(rank_frequency_figure(rf))
    assert fig["layout"]["xaxis"]["type"] == "log" and fig["layout"]["yaxis"]["type"] == "log"
    shapes = fig["layout"]["shapes"]
    assert len(shapes) == 3
    labels = [a["text"] for a in fig["layout"]["annotations"]]
    assert labels == ["head", "mid", "tail"]
    assert _arr(fig["data"][0]["x"])[0] == 1 and min(_arr(fig["data"][0]["y"])) > 0


def test_bucket_category_trend_figures(shop) -> None:
    bt = bucket_table(shop)
    fig = _json(bucket_share_figure(bt))
    assert [t["name"] for t in fig["data"]] == ["head", "tail"]
    assert sum(_arr(t["x"])[0] for t in fig["data"]) == pytest.approx(1.0)  # item shares stack to 1
    ct = tail_by_category(shop)
    fig = _json(category_tail_figure(ct))
    assert len(fig["data"]) == 3 and fig["data"][0]["x"] == ct.frame["category"].tolist()
    tr = tail_trend(shop)
    fig = _json(trend_figure(tr))
    assert len(_arr(fig["data"][0]["x"])) == len(tr.frame)
    assert fig["layout"]["yaxis"]["tickformat"] == ".0%"


def test_funnel_and_heatmap(shop) -> None:
    sf = segment_funnel(shop, "region", k=5)
    fig = _json(funnel_figure(sf, "view_cart"))
    assert [t["name"] for t in fig["data"]] == ["head", "tail", "all"]
    bar = fig["data"][0]
    err = _arr(bar["error_y"]["array"])
    assert bar["error_y"]["type"] == "data" and len(err) == len(_arr(bar["x"]))
    assert all(np.isnan(v) or v >= 0 for v in err)
    heat = _json(heatmap_figure(sf))["data"][0]
    assert heat["type"] == "heatmap" and heat["x"] == ["head", "tail"]
    assert len(heat["y"]) == len(sf.cells()["segment"].unique())
    big_k = segment_funnel(shop, "region", k=10_000)
    heat = _json(heatmap_figure(big_k))["data"][0]
    assert all(cell == "suppressed" for row in heat["text"] for cell in row)
    assert _json(tail_purchase_figure(sf))["data"][0]["type"] == "bar"


@pytest.fixture(scope="module")
def buys():
    """Purchase lines only: exposure is not measured."""
    ev, it, us = synthetic_shop(users=80, items=40, sessions=700, seed=5)
    return memory_store(ev[ev["event_type"] == "purchase"], it, us)


def test_figures_without_exposure_draw_no_exposure_series(buys) -> None:
    bt = bucket_table(buys)
    assert bt.exposure_event is None
    bars = _json(bucket_share_figure(bt))["data"]
    assert {tuple(t["y"]) for t in bars} == {
        ("share of items", "share of purchases", "share of buyers")
    }
    cat = _json(category_tail_figure(tail_by_category(buys)))["data"]
    assert [t["name"] for t in cat] == ["tail share of items", "tail share of purchases"]
    trend = _json(trend_figure(tail_trend(buys)))["data"]
    assert [t["name"] for t in trend] == ["tail share of purchases"]
    from ltrec.analytics.concentration import lorenz

    names = [t["name"] for t in _json(lorenz_figure(lorenz(buys)))["data"]]
    assert names[0].startswith("equality") and names[1].startswith("purchase (Gini")
    assert names[2].startswith("buyers per item (purchase concentration) (Gini")
    assert len(names) == 3
