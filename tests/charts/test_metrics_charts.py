"""Evaluation charts, tested by reading the figure JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ltrec.charts.metrics import (
    REL_CAP,
    change_words,
    delta_chart,
    metrics_frame,
    metrics_table,
    tradeoff_points,
    tradeoff_scatter,
)
from ltrec.definitions import metric, signed_pct
from ltrec.evaluation import compare_many, evaluate


def _results():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 200, 30, 5
    pop = np.sort(rng.zipf(1.6, n_items).astype(float))[::-1]
    test = [rng.choice(n_items, 2, replace=False) for _ in range(n_users)]
    base = np.tile(np.arange(k), (n_users, 1))  # most popular first for everyone
    oracle = np.array([[*t, *[i for i in range(n_items) if i not in t][: k - 2]] for t in test])
    rand = np.argsort(-rng.random((n_users, n_items)), axis=1)[:, :k]
    kw = {"item_pop": pop, "k": k, "n_boot": 50, "base_recs": base}
    return {
        "popular": evaluate(base, test, **kw),
        "oracle": evaluate(oracle, test, **kw),
        "random": evaluate(rand, test, **kw),
    }


RESULTS = _results()
DELTAS = compare_many(RESULTS, "popular", n_boot=50)


def _json(fig: go.Figure) -> dict:
    return json.loads(fig.to_json())


def test_metrics_frame_and_table():
    frame = metrics_frame(RESULTS, DELTAS, metrics=["ndcg@5", "aplt@5", "gini@5"])
    assert len(frame) == 9
    row = frame.set_index(["metric", "setting"]).loc[("ndcg@5", "oracle")]
    assert row["better"] is True and row["delta"] > 0
    assert row["delta"] == RESULTS["oracle"]["ndcg"].mean - RESULTS["popular"]["ndcg"].mean
    base_row = frame.set_index(["metric", "setting"]).loc[("ndcg@5", "popular")]
    assert pd.isna(base_row["delta"])
    gini = frame.set_index(["metric", "setting"]).loc[("gini@5", "random")]
    assert gini["better"] is True  # random spreads exposure: Gini drops, which is better
    fig = _json(metrics_table(frame))
    table = fig["data"][0]
    assert table["type"] == "table"
    cols = table["cells"]["values"]
    assert cols[0][:3] == ["NDCG@5"] * 3 and cols[1] == frame["setting"].tolist()
    d = DELTAS.set_index(["setting", "metric"]).loc[("oracle", "ndcg@5")]
    rel = [signed_pct(x / d["base"]) for x in (d["delta"], d["low"], d["high"])]
    # the change in words with its relative interval, never a p-value
    assert cols[4][0] == "base"
    assert cols[4][1] == f"clearly better: {rel[0]} NDCG@5 [{rel[1]}, {rel[2]}]"
    assert not any("p=" in c for c in cols[4])
    assert "[" in cols[2][1]  # value with its interval
    fills = table["cells"]["fill"]["color"][4]
    assert fills[1] == "#e5f5e0"  # better and significant: green
    assert "DCG" in cols[5][0]
    assert metrics_table(pd.DataFrame()).layout.title.text == "No results to compare"


def test_change_words():
    assert (
        change_words("ndcg@10", 0.012, 0.008, 0.016, 0.1)
        == "clearly better: +12.0% NDCG@10 [+8.0%, +16.0%]"
    )
    assert (
        change_words("ndcg@10", 0.001, -0.002, 0.004, 0.1)
        == "no detectable difference: +1.0% NDCG@10 [-2.0%, +4.0%]"
    )
    # Gini: lower is better, so a rise is worse
    assert change_words("gini@10", 0.05, 0.02, 0.08, 0.5).startswith("clearly worse: +10.0%")
    # a base of 0: the absolute change
    aplt = metric("aplt").label(10)  # the definitions' name
    assert change_words("aplt@10", 0.3, 0.25, 0.35, 0.0) == (
        f"clearly better: +0.3 {aplt} [+0.25, +0.35]"
    )
    assert change_words("ndcg@10", None, None, None, 0.1) == ""


def test_delta_chart_error_bars_and_colours():
    fig = _json(delta_chart(DELTAS[DELTAS.metric.isin(["ndcg@5", "aplt@5"])], relative=False))
    traces = {t["name"]: t for t in fig["data"]}
    assert set(traces) == {"oracle", "random"}
    o = traces["oracle"]
    d = DELTAS.set_index(["setting", "metric"])
    assert o["y"] == ["NDCG@5", metric("aplt").label(5)]
    x0 = d.loc[("oracle", "ndcg@5"), "delta"]
    assert np.isclose(o["x"][0], x0)
    assert np.isclose(o["error_x"]["array"][0], d.loc[("oracle", "ndcg@5"), "high"] - x0)
    assert np.isclose(o["error_x"]["arrayminus"][0], x0 - d.loc[("oracle", "ndcg@5"), "low"])
    assert o["marker"]["color"][0] == "#2ca02c"
    rel = _json(delta_chart(DELTAS[DELTAS.metric.isin(["ndcg@5", "arp@5"])]))
    base = d.loc[("oracle", "ndcg@5"), "base"]
    o = rel["data"][0]
    # +675%: drawn at the cap with a triangle, its true value written beside it
    assert x0 / base > REL_CAP and o["x"][0] == REL_CAP
    assert o["text"][0] == signed_pct(x0 / base) and o["marker"]["symbol"][0] == "triangle-right"
    arp = d.loc[("oracle", "arp@5")]
    assert np.isclose(o["x"][1], arp["delta"] / arp["base"])
    assert o["marker"]["symbol"][1] == "circle"
    assert rel["layout"]["xaxis"]["range"] == [-1.25 * REL_CAP, 1.25 * REL_CAP]
    assert rel["layout"]["xaxis"]["tickformat"] == "+.0%"
    assert "p =" not in o["hovertemplate"]
    assert delta_chart(DELTAS.iloc[:0]).layout.title.text.startswith("No settings")


def test_tradeoff_scatter_highlights_the_front():
    pts = tradeoff_points(RESULTS, x="aplt", y="ndcg@5")
    assert list(pts["setting"]) == ["popular", "oracle", "random"]
    # oracle has the best NDCG; random the highest tail share; popular is dominated by one
    assert pts.set_index("setting")["front"].to_dict()["oracle"]
    fig = _json(tradeoff_scatter(pts, target_x=0.3))
    names = [t["name"] for t in fig["data"]]
    assert "Pareto front" in names
    front = next(t for t in fig["data"] if t["name"] == "Pareto front")
    assert sorted(front["text"]) == sorted(pts.loc[pts.front, "setting"])
    assert front["marker"]["color"] == "#ff7f0e"
    assert front["error_y"]["type"] == "data"
    assert any(s.get("x0") == 0.3 for s in fig["layout"]["shapes"])
    assert tradeoff_scatter(pts.iloc[:0]).layout.title.text == "No settings to plot"
