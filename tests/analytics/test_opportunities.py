"""Opportunities: hand-computed shares, intervals, ranking and verdicts; purchase-only data; the
whole-catalogue rule under a category filter; the CLI's JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from ltrec.analytics.backend import Scope
from ltrec.analytics.conversion import wilson
from ltrec.analytics.opportunities import (
    boost_candidates,
    cluster_share_interval,
    opportunities,
)
from ltrec.analytics.popularity import popularity_buckets
from ltrec.analytics.view import ViewParams
from ltrec.cli import main
from ltrec.errors import BadInputError
from tests.analytics.conftest import memory_store, synthetic_shop, tiny_events, write_store

COPIES = 5
ITEMS = pd.DataFrame(
    {
        "item_id": ["a", "b", "c", "d"],
        "title": ["Chef knife", "Paring knife", "Rake", "Kite"],
        "category": ["Home > Kitchen", "Home > Kitchen", "Home > Garden", "Toys"],
        "brand": ["X", "X", "Y", "Y"],
    }
)


def _rows() -> list[tuple[str, str, str]]:
    """Three user patterns, each repeated by COPIES users:
    u1: impressions a a a c, views a c, buys a
    u2: impressions a a b,   views a b, buys b
    u3: impressions c c a,   view c,    buys c      (d: never shown)"""
    out = []
    for k in range(COPIES):
        u1, u2, u3 = f"p{k}", f"q{k}", f"r{k}"
        out += [(u1, i, "impression") for i in "aaac"]
        out += [(u1, "a", "view"), (u1, "c", "view"), (u1, "a", "purchase")]
        out += [(u2, i, "impression") for i in "aab"]
        out += [(u2, "a", "view"), (u2, "b", "view"), (u2, "b", "purchase")]
        out += [(u3, i, "impression") for i in "cca"]
        out += [(u3, "c", "view"), (u3, "c", "purchase")]
    return out


@pytest.fixture(scope="module")
def tiny():
    return memory_store(tiny_events(_rows()), ITEMS)


@pytest.fixture(scope="module")
def tiny_opp(tiny):
    return opportunities(tiny)


def _share_bounds(y_per_pattern, x_per_pattern, n_events):
    """Hand formula of the module docstring, written out: ratio variance with users as
    clusters, Kish's effective n, Wilson at that n."""
    y = np.repeat(np.array(y_per_pattern, dtype=float), COPIES)
    x = np.repeat(np.array(x_per_pattern, dtype=float), COPIES)
    p = y.sum() / n_events
    n = len(y)
    v = n / (n - 1) * ((y - p * x) ** 2).sum() / n_events**2
    srs = p * (1 - p) / n_events
    deff = max(1.0, v / srs) if srs > 0 else 1.0
    n_eff = n_events / deff
    lo, hi = wilson(p * n_eff, n_eff)
    return p, float(lo), float(hi)


def test_hand_computed_shares_intervals_ranking_verdicts(tiny_opp) -> None:
    o = tiny_opp
    c = o.categories.set_index("name")
    assert o.exposure_event == "impression" and o.demand_event == "purchase" and o.note is None
    assert list(o.categories["name"]) == ["Toys", "Home > Garden", "Home > Kitchen"]
    assert list(o.categories["rank"]) == [1, 2, 3]
    assert list(o.categories["status"]) == ["under", "in line", "over"]
    assert c["items"].to_dict() == {"Toys": 1, "Home > Garden": 1, "Home > Kitchen": 2}
    assert c["catalogue_share"].to_dict() == {
        "Toys": 0.25,
        "Home > Garden": 0.25,
        "Home > Kitchen": 0.5,
    }
    # impressions per pattern: u1 a3 c1 (4), u2 a2 b1 (3), u3 c2 a1 (3): 50 in all
    xs = [4, 3, 3]
    for name, ys in (
        ("Home > Kitchen", [3, 3, 1]),
        ("Home > Garden", [1, 0, 2]),
        ("Toys", [0, 0, 0]),
    ):
        p, lo, hi = _share_bounds(ys, xs, 50)
        assert c.loc[name, "exposure"] == sum(ys) * COPIES
        assert c.loc[name, "exposure_share"] == pytest.approx(p)
        assert c.loc[name, "exposure_share_low"] == pytest.approx(lo)
        assert c.loc[name, "exposure_share_high"] == pytest.approx(hi)
    # Toys: no impressions: Wilson(0, 50) (design effect 1), not a degenerate [0, 0]
    assert c.loc["Toys", "exposure_share_high"] == pytest.approx(float(wilson(0, 50)[1]))
    # purchases: one per user, one item each: Kitchen 10 of 15, Garden 5 of 15
    for name, ys in (("Home > Kitchen", [1, 1, 0]), ("Home > Garden", [0, 0, 1])):
        p, lo, hi = _share_bounds(ys, [1, 1, 1], 15)
        assert c.loc[name, "demand_share"] == pytest.approx(p)
        assert c.loc[name, "demand_share_low"] == pytest.approx(lo)
        assert c.loc[name, "demand_share_high"] == pytest.approx(hi)
    # conversion: view pairs Kitchen 15 (a: p, q; b: q) with 10 bought, Garden 10 with 5;
    # the shop: 25 pairs, 15 bought = 0.6
    assert o.shop_conversion == pytest.approx(0.6)
    lo, hi = wilson(10, 15)
    assert c.loc["Home > Kitchen", "conversion"] == pytest.approx(10 / 15)
    assert c.loc["Home > Kitchen", "lift"] == pytest.approx((10 / 15) / 0.6)
    assert c.loc["Home > Kitchen", "lift_low"] == pytest.approx(lo / 0.6)
    assert c.loc["Home > Kitchen", "lift_high"] == pytest.approx(hi / 0.6)
    assert np.isnan(c.loc["Toys", "conversion"]) and np.isnan(c.loc["Toys", "lift"])
    assert list(o.categories["verdict"]) == [
        "Toys: 25.0% of the catalogue, 0.0% of impressions, 0.0% of purchases, "
        "no views to measure conversion: under-exposed",
        "Home > Garden: 25.0% of the catalogue, 30.0% of impressions, 33.3% of purchases, "
        "converts 0.8x the shop average [0.4, 1.3]: exposure in line with its size",
        "Home > Kitchen: 50.0% of the catalogue, 70.0% of impressions, 66.7% of purchases, "
        "converts 1.1x the shop average [0.7, 1.4]: over-exposed",
    ]
    # tail: b (1 user) and d (cold); a and c are the head
    assert c["tail_items"].to_dict() == {"Toys": 1, "Home > Garden": 0, "Home > Kitchen": 1}


def test_hand_computed_items_to_boost(tiny, tiny_opp) -> None:
    o = tiny_opp
    # prior by moments over a (5/10), b (5/5), c (5/10) (Kleinman 1973)
    p = np.array([0.5, 1.0, 0.5])
    m, s2, inv_n = p.mean(), p.var(ddof=1), np.mean([1 / 10, 1 / 5, 1 / 10])
    tau2 = (s2 - m * (1 - m) * inv_n) / (1 - inv_n)
    strength = m * (1 - m) / tau2 - 1
    a, b = m * strength, (1 - m) * strength
    it = o.items
    assert list(it["item_id"]) == ["b"] and list(it["rank"]) == [1]
    row = it.iloc[0]
    assert row["bucket"] == "tail" and row["category"] == "Home > Kitchen" and row["brand"] == "X"
    assert (row["exposure"], row["views"], row["purchases"]) == (5, 5, 5)
    assert row["shrunk"] == pytest.approx((5 + a) / (5 + strength))
    assert row["shrunk_low"] == pytest.approx(sps.beta.ppf(0.025, a + 5, b))
    assert row["shrunk_high"] == pytest.approx(sps.beta.ppf(0.975, a + 5, b))
    assert row["lift"] == pytest.approx(row["shrunk"] / m)
    # its users (q*) also viewed a, a head item; nobody else
    assert row["similar_head_ids"] == ["a"] and row["similar_head_items"] == "Chef knife (a)"
    assert boost_candidates(tiny).count == len(it) == 1
    j = o.to_json()
    assert j["candidates"] == 1 and j["items"][0]["similar_head_items"] == ["a"]
    assert set(j["items"][0]["shrunk"]) == {"value", "low", "high"}


def test_by_brand_and_bad_groupings(tiny) -> None:
    o = opportunities(tiny, "brand")
    c = o.categories.set_index("name")
    assert c["items"].to_dict() == {"X": 2, "Y": 2}
    assert c.loc["X", "exposure_share"] == pytest.approx(35 / 50)  # a 30 + b 5
    with pytest.raises(BadInputError, match="unknown grouping 'price'"):
        opportunities(tiny, "price")
    with pytest.raises(BadInputError, match="no top-level category 'Garden'"):
        opportunities(tiny, params=ViewParams(category="Garden"))
    bare = memory_store(tiny_events(_rows()))
    with pytest.raises(BadInputError, match="no category values"):
        opportunities(bare)


# ------------------------------------------------------------------------ purchase-only data


def _buys() -> pd.DataFrame:
    rows = [(f"u{k}", "h", "purchase") for k in range(1, 31)]
    rows += [(u, "t1", "purchase") for u in ("u1", "u1", "u2", "u2", "u3")]
    rows += [(u, "t2", "purchase") for u in ("u4", "u5", "u6")]
    rows += [("u7", "t3", "purchase")]
    return tiny_events(rows)


BUY_ITEMS = pd.DataFrame(
    {
        "item_id": ["h", "t1", "t2", "t3", "z"],
        "category": ["Food", "Food > Tea", "Drinks", "Drinks", "Drinks"],
    }
)


def test_purchase_only_invents_no_exposure() -> None:
    store = memory_store(_buys(), BUY_ITEMS)
    o = opportunities(store)
    assert o.exposure_event is None and o.demand_event == "purchase"
    assert o.shop_conversion is None
    assert o.note == (
        "Exposure is not measured (no impressions or views): categories are compared on their "
        "share of purchases; conversion is not measured (it needs views and purchases)."
    )
    c = o.categories.set_index("name")
    for col in ("exposure", "exposure_share", "views", "conversion", "lift"):
        assert c[col].isna().all(), col
    assert c["purchases"].to_dict() == {"Food": 30, "Food > Tea": 3, "Drinks": 4}  # buyers
    # 39 purchases: h 30, t1 5, t2 3, t3 1; Drinks = t2 + t3 + z (never bought)
    assert c["demand"].to_dict() == {"Food": 30, "Food > Tea": 5, "Drinks": 4}
    assert c.loc["Drinks", "catalogue_share"] == pytest.approx(3 / 5)
    assert list(o.categories["name"]) == ["Drinks", "Food > Tea", "Food"]
    assert list(o.categories["status"]) == ["under", "in line", "over"]
    p, lo, hi = 4 / 39, c.loc["Drinks", "demand_share_low"], c.loc["Drinks", "demand_share_high"]
    assert o.categories["verdict"].iloc[0] == (
        f"Drinks: 60.0% of the catalogue, {p:.1%} of purchases [{lo:.1%}, {hi:.1%}]: "
        "bought less than its size"
    )
    it = o.items
    assert o.candidates is not None and o.candidates.basis == "repeat_buyers"
    assert list(it["item_id"]) == ["t1", "t2"]  # t3 has one buyer (under 3)
    assert "exposure" not in it and "shrunk" not in it
    assert list(it["buyers"]) == [3, 3] and list(it["repeat_buyers"]) == [2, 0]
    assert it["similar_head_ids"].tolist() == [["h"], ["h"]]  # every buyer also bought h
    j = o.to_json()
    assert j["categories"][0]["exposure_share"] is None and j["categories"][0]["lift"] is None
    assert j["items"][0]["repeat_rate"]["low"] == pytest.approx(float(wilson(2, 3)[0]))
    assert "exposure" not in j["items"][0]
    json.dumps(j, allow_nan=False)


# ------------------------------------------------------------------- the whole-catalogue rule


@pytest.fixture(scope="module")
def shop():
    ev, it, us = synthetic_shop()
    it["brand"] = [f"B{j % 5}" for j in range(len(it))]
    return memory_store(ev, it, us)


def test_category_filter_keeps_whole_catalogue_buckets_and_shares(shop) -> None:
    full = opportunities(shop)
    home = opportunities(shop, params=ViewParams(category="Home"))
    # the filter keeps rows; every number is the whole catalogue's
    want = full.categories[full.categories["name"].str.startswith("Home")]
    cols = [c for c in want.columns if c != "rank"]
    pd.testing.assert_frame_equal(
        home.categories[cols].reset_index(drop=True), want[cols].reset_index(drop=True)
    )
    assert home.categories["catalogue_share"].sum() == pytest.approx(30 / 60)
    want_items = full.items[full.items["category"].str.startswith("Home")]
    assert list(home.items["item_id"]) == list(want_items["item_id"])
    toys = opportunities(shop, params=ViewParams(category="Toys"))
    assert list(toys.categories["name"]) == ["Toys"]
    want_items = full.items[full.items["category"] == "Toys"]
    assert list(toys.items["item_id"]) == list(want_items["item_id"])
    # buckets computed inside the category would differ: the filter must not use them
    inside = popularity_buckets(shop, Scope(category="Home")).frame.set_index("item_id")
    whole = popularity_buckets(shop).frame.set_index("item_id")
    home_ids = inside.index
    moved = [i for i in home_ids if inside.loc[i, "bucket"] != whole.loc[i, "bucket"]]
    assert moved  # the fixture shows the difference
    row = home.categories.set_index("name").loc["Home > Kitchen"]
    kitchen = [i for i in home_ids if i in set(items_of(shop, "Home > Kitchen"))]
    assert row["tail_items"] == int((whole.loc[kitchen, "bucket"] == "tail").sum())
    assert (home.items["bucket"] == "tail").all()
    assert set(home.items["item_id"]) <= set(whole.index[whole["bucket"] == "tail"])


def items_of(store, path: str) -> list[str]:
    it = store.table("items").to_pandas()
    return list(it.loc[it["category"] == path, "item_id"])


# ------------------------------------------------------------------------------------ CLI


def test_cli_json_keys_and_errors(data_dir, capsys) -> None:
    write_store("tiny", data_dir, tiny_events(_rows()), ITEMS)
    assert main(["opportunities", "tiny", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "tiny" and out["by"] == "category" and out["candidates"] == 1
    row = out["categories"][0]
    assert row["name"] == "Toys" and row["status"] == "under"
    for key in ("exposure_share", "demand_share"):
        assert set(row[key]) == {"value", "low", "high"}
    assert out["categories"][1]["lift"]["low"] == pytest.approx(float(wilson(5, 10)[0]) / 0.6)
    item = out["items"][0]
    assert item["item_id"] == "b" and item["rank"] == 1 and item["bucket"] == "tail"
    assert set(item["shrunk"]) == {"value", "low", "high"}
    assert main(["opportunities", "tiny", "--by", "brand", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)["categories"]] == ["Y", "X"]
    assert main(["opportunities", "tiny"]) == 0
    text = capsys.readouterr().out
    assert "1. Toys: 25.0% of the catalogue" in text and "1 candidates to boost" in text
    assert main(["opportunities", "tiny", "--by", "colour"]) == 2
    assert "invalid choice: 'colour'" in capsys.readouterr().err
    write_store("bare", data_dir, tiny_events(_rows()))
    assert main(["opportunities", "bare", "--by", "brand", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["message"] == (
        "this dataset's items table has no brand values, so there is nothing to group by"
    )


# ------------------------------------------------------------------------------- invariants


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 30)).map(lambda t: (min(t), max(t))),
        min_size=2,
        max_size=40,
    )
)
def test_cluster_share_interval_holds_the_share_and_is_no_narrower_than_wilson(users) -> None:
    """Any users' (group events y <= all events x): 0 <= low <= p <= high <= 1, and the
    interval is at least the plain Wilson interval over the events (design effect >= 1)."""
    y = np.array([u[0] for u in users], dtype=float)
    x = np.array([u[1] for u in users], dtype=float)
    n_events = x.sum()
    assume(n_events > 0)
    p = y.sum() / n_events
    sq = ((y - p * x) ** 2).sum()
    n_users = int((x > 0).sum())
    lo, hi = cluster_share_interval(np.array([p]), n_events, np.array([sq]), n_users)
    lo, hi = float(lo[0]), float(hi[0])
    if n_users < 2:
        assert (lo, hi) == pytest.approx(tuple(float(v) for v in wilson(p * n_events, n_events)))
        return
    assert 0.0 <= lo <= p + 1e-12 and p - 1e-12 <= hi <= 1.0
    wlo, whi = (float(v) for v in wilson(p * n_events, n_events))
    assert lo <= wlo + 1e-12 and hi >= whi - 1e-12


def test_shares_add_up_over_the_whole_catalogue(shop) -> None:
    c = opportunities(shop).categories
    for col in ("catalogue_share", "exposure_share", "demand_share"):
        assert c[col].sum() == pytest.approx(1.0), col
    assert (
        (c["exposure_share_low"] <= c["exposure_share"])
        & (c["exposure_share"] <= c["exposure_share_high"])
    ).all()


def test_views_without_impressions_say_exposure_is_views() -> None:
    rows = [(u, i, e) for u, i, e in _rows() if e != "impression"]
    o = opportunities(memory_store(tiny_events(rows), ITEMS))
    assert o.exposure_event == "view" and o.demand_event == "purchase"
    assert o.note == "Exposure is counted in views (the data has no impressions)."
    c = o.categories.set_index("name")
    # view events: Kitchen a 10 + b 5 of 25
    assert c.loc["Home > Kitchen", "exposure_share"] == pytest.approx(15 / 25)
    assert c.loc["Home > Kitchen", "verdict"].startswith(
        "Home > Kitchen: 50.0% of the catalogue, 60.0% of views, 66.7% of purchases, converts 1.1x"
    )
