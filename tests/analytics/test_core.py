"""Hand-computed fixtures for the analytics definitions (DESIGN §3)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ltrec.analytics.backend import Scope, open_store
from ltrec.analytics.concentration import lorenz, lorenz_points
from ltrec.analytics.conversion import fit_beta_prior, hidden_gems, item_conversion, wilson
from ltrec.analytics.longtail import bucket_table, tail_by_category, tail_trend
from ltrec.analytics.popularity import BucketConfig, PopularityConfig, popularity_buckets
from ltrec.analytics.stats import dataset_stats
from ltrec.cli import main
from ltrec.definitions import gini
from tests.analytics.conftest import tiny_events, write_store

# Ten items; distinct interacting users: i0 5, i1 3, i2 2, i3 1, i4 1, i5 1, i6..i9 0 (cold).
POP = {"i0": 5, "i1": 3, "i2": 2, "i3": 1, "i4": 1, "i5": 1}
ITEMS = pd.DataFrame(
    {
        "item_id": [f"i{j}" for j in range(10)],
        "title": [f"Item {j}" for j in range(10)],
        "category": ["A > x", "A > y", "B", "B", "A", "C", "C", None, "A", "B"],
    }
)


def _ten_item_rows() -> list[tuple[str, str, str]]:
    rows = []
    for item, n in POP.items():
        for u in range(n):
            rows.append((f"u{u}", item, "view"))
    rows += [("u0", "i0", "view")] * 2  # repeats do not change distinct-user popularity
    rows += [("u0", "i0", "cart"), ("u0", "i0", "purchase"), ("u0", "i4", "purchase")]
    rows += [("u9", "i9", "impression")] * 3  # impressions are not interactions
    return rows


@pytest.fixture
def ten(data_dir):
    write_store("ten", data_dir, tiny_events(_ten_item_rows()), ITEMS)
    return open_store("ten", data_dir)


def test_lorenz_endpoints() -> None:
    pop, share = lorenz_points([3, 0, 1, 0])
    assert (pop[0], share[0]) == (0.0, 0.0)
    assert (pop[-1], share[-1]) == (1.0, 1.0)
    np.testing.assert_allclose(share, [0, 0, 0, 0.25, 1.0])


def test_ten_item_buckets_exact(ten) -> None:
    b = popularity_buckets(ten, cfg=BucketConfig(cuts=(0.8,)))
    pop = dict(zip(b.frame["item_id"], b.frame["popularity"], strict=True))
    assert pop == {**POP, **{f"i{j}": 0 for j in range(6, 10)}}
    # total 13, head = smallest top set reaching 10.4: i0+i1+i2 = 10 < 10.4, + i3 = 11.
    assert b.members("head") == {"i0", "i1", "i2", "i3"}
    assert b.members("tail") == {"i4", "i5", "i6", "i7", "i8", "i9"}
    assert set(b.frame.loc[b.frame["cold"], "item_id"]) == {"i6", "i7", "i8", "i9"}
    assert list(b.frame["rank"]) == list(range(1, 11))
    b3 = popularity_buckets(ten, cfg=BucketConfig(cuts=(0.5, 0.8)))
    assert b3.members("head") == {"i0", "i1"}  # 5 < 6.5 <= 8
    assert b3.members("mid") == {"i2", "i3"}
    assert b3.members("tail") == {"i4", "i5", "i6", "i7", "i8", "i9"}


def test_weighted_and_by_type_popularity(ten) -> None:
    cfg = BucketConfig(cuts=(0.8,), popularity=PopularityConfig(event="purchase"))
    b = popularity_buckets(ten, cfg=cfg)
    pop = dict(zip(b.frame["item_id"], b.frame["popularity"], strict=True))
    assert pop["i0"] == 1 and pop["i4"] == 1 and pop["i1"] == 0
    w = PopularityConfig(event="weighted", weights={"view": 1.0, "purchase": 5.0})
    b = popularity_buckets(ten, cfg=BucketConfig(cuts=(0.8,), popularity=w))
    pop = dict(zip(b.frame["item_id"], b.frame["popularity"], strict=True))
    assert pop["i0"] == pytest.approx(5 * 1 + 1 * 5) and pop["i4"] == pytest.approx(1 + 5)


def test_lorenz_over_whole_catalogue(ten) -> None:
    lz = lorenz(ten)
    assert lz.items == 10
    views = np.array([5 + 2, 3, 2, 1, 1, 1, 0, 0, 0, 0])
    assert lz.gini["view"] == pytest.approx(gini(views))
    assert lz.gini["impression"] == pytest.approx(0.9)  # one item of ten has all of it
    assert set(lz.curves) == {"impression", "view", "cart", "purchase"}


def test_wilson_known_values() -> None:
    lo, hi = wilson(np.array([0, 5, 10]), np.array([10, 10, 10]))
    np.testing.assert_allclose(lo, [0.0, 0.236593, 0.722467], atol=1e-5)
    np.testing.assert_allclose(hi, [0.277533, 0.763407, 1.0], atol=1e-5)
    lo, hi = wilson(1, 0)
    assert math.isnan(float(lo)) and math.isnan(float(hi))


def test_beta_prior_method_of_moments() -> None:
    s = np.array([0, 2, 5, 9])
    n = np.array([10, 10, 10, 10])
    prior = fit_beta_prior(s, n, min_items=1)
    # m = 0.4, S^2 = 0.46 / 3, tau^2 = (S^2 - 0.24 * 0.1) / 0.9, a + b = 0.24 / tau^2 - 1
    tau2 = (0.46 / 3 - 0.024) / 0.9
    assert prior.strength == pytest.approx(0.24 / tau2 - 1)
    assert prior.mean == pytest.approx(0.4)
    # no spread beyond binomial noise: everything shrinks to the mean
    flat = fit_beta_prior(np.array([1, 2, 3, 4]), np.array([10, 10, 10, 10]), min_items=1)
    assert flat.strength > 1e5


def test_shrinkage_pulls_small_items_to_the_mean(shop) -> None:
    conv = item_conversion(shop)
    df = conv.frame.dropna(subset=["shrunk"])
    m = conv.prior.mean
    # each shrunk rate lies between the raw rate and the prior mean
    lo = np.minimum(df["view_purchase"], m) - 1e-12
    hi = np.maximum(df["view_purchase"], m) + 1e-12
    assert ((df["shrunk"] >= lo) & (df["shrunk"] <= hi)).all()
    expected = (df["purchases"] + conv.prior.a) / (df["views"] + conv.prior.strength)
    np.testing.assert_allclose(df["shrunk"], expected)
    gems = hidden_gems(shop, conv=conv)
    assert (gems.frame["bucket"] == "tail").all()
    assert (gems.frame["shrunk"] >= 1.2 * m - 1e-12).all()
    assert (gems.frame["exposure"] <= gems.threshold_exposure).all()


def test_bucket_table_adds_up(ten) -> None:
    t = bucket_table(ten, cfg=BucketConfig(cuts=(0.8,))).frame.set_index("bucket")
    assert t.loc["head", "items"] == 4 and t.loc["tail", "items"] == 6
    assert t.loc["tail", "cold_items"] == 4
    assert t["item_share"].sum() == pytest.approx(1.0)
    # exposure = impressions (the data has some): all 3 on i9, a tail item
    assert t.loc["tail", "exposure_events"] == 3 and t.loc["tail", "exposure_share"] == 1.0
    # purchases: i0 (head) and i4 (tail)
    assert t.loc["head", "purchase_events"] == 1 and t.loc["tail", "purchase_share"] == 0.5
    # pairs: head has view pairs 5+3+2+1 = 11, of which (u0, i0) bought
    assert t.loc["head", "views"] == 11 and t.loc["head", "purchases"] == 1
    assert t.loc["head", "view_purchase"] == pytest.approx(1 / 11)


def test_scope_filters(ten) -> None:
    cat = tail_by_category(ten).frame.set_index("category")
    assert cat.loc["A", "items"] == 4 and cat.loc["(unknown)", "items"] == 1
    b = popularity_buckets(ten, Scope(category="B"))
    assert set(b.frame["item_id"]) == {"i2", "i3", "i9"}
    late = popularity_buckets(ten, Scope(start=pd.Timestamp("2024-01-02").date()))
    assert late.frame["popularity"].sum() == 0  # every event is on 2024-01-01
    tr = tail_trend(ten).frame
    assert len(tr) == 1 and tr["exposure"].iloc[0] == 3


def test_stats_json_keys(ten, data_dir, capsys) -> None:
    st = dataset_stats("ten", data_dir)
    assert st.users == 6 and st.items == 10
    assert st.events == {"impression": 3, "view": 15, "cart": 1, "purchase": 2}
    assert st.exposure_event == "impression" and st.gini_exposure == pytest.approx(0.9)
    assert st.tail_item_share == pytest.approx(0.6)
    assert main(["stats", "ten", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "users",
        "items",
        "events",
        "first_ts",
        "last_ts",
        "gini_exposure",
        "exposure_event",
        "tail_item_share",
        "tail_exposure_share",
        "tail_purchase_share",
    ):
        assert key in out
    assert out["events"]["view"] == 15
    assert set(out["definitions"]) == {
        "gini_exposure",
        "tail_item_share",
        "tail_exposure_share",
        "tail_purchase_share",
        "gini_buyers",
        "tail_buyer_share",
    }
    assert out["definitions"]["tail_item_share"]["name"] == "Tail share of items"
    assert main(["stats", "ten"]) == 0 and "Gini" in capsys.readouterr().out


def test_stats_purchase_only_and_empty(data_dir, capsys) -> None:
    ev = tiny_events([("u1", "a", "purchase"), ("u2", "a", "purchase"), ("u1", "b", "purchase")])
    write_store("buys", data_dir, ev, pd.DataFrame({"item_id": ["a", "b", "c"]}))
    st = dataset_stats("buys", data_dir)
    # exposure is not measured on purchase-only data: null, never a made-up number
    assert st.exposure_event is None and st.gini_exposure is None
    assert st.tail_exposure_share is None
    assert st.gini_buyers == pytest.approx(gini([2, 1, 0]))  # a: 2 buyers, b: 1, c: 0
    d = st.to_dict()
    assert d["gini_exposure"] is None and d["profile"]["exposure_event"] is None
    assert d["profile"]["event_counts"] == {"purchase": 3}
    bt = bucket_table(open_store("buys", data_dir)).frame
    assert math.isnan(bt["view_purchase"].iloc[0]) and bt["exposure_share"].isna().all()
    assert main(["stats", "buys", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gini_exposure"] is None and out["tail_exposure_share"] is None
    assert out["exposure_event"] is None and out["gini_buyers"] == pytest.approx(gini([2, 1, 0]))
    assert out["profile"]["funnel_stages"] == ["purchase"] and out["profile"]["rates"] == []
    lines = st.summary().splitlines()
    assert lines[1] == "events: purchase 3"  # only the types the data has, no zeros
    assert lines[3].startswith("exposure: not measured")
    write_store("empty", data_dir, tiny_events([]))
    st = dataset_stats("empty", data_dir)
    assert st.users == 0 and st.items == 0 and st.first_ts is None
    assert json.dumps(st.to_dict(), allow_nan=False)


def test_stats_missing_dataset_exit_2(capsys) -> None:
    assert main(["stats", "nope"]) == 2
    assert "not found" in capsys.readouterr().err


def test_user_derived_agrees_with_analytics_buckets(shop) -> None:
    """finalize's SQL tail rule == popularity_buckets; bands and tenure follow their edges."""
    derived = shop.table("user_derived").to_pandas().set_index("user_id")
    tail = popularity_buckets(shop).members("tail")
    ev = shop.table("events").to_pandas()
    inter = ev[ev["event_type"].isin(["view", "cart", "purchase"])]
    share = inter.assign(t=inter["item_id"].isin(tail)).groupby("user_id")["t"].mean()
    np.testing.assert_allclose(derived.loc[share.index, "tail_share"], share.to_numpy())
    counts = inter.groupby("user_id").size()
    assert (derived.loc[counts.index, "interactions"] == counts).all()
    bands = pd.cut(
        share, [-1, 0, 0.1 - 1e-12, 0.3 - 1e-12, 2], labels=["none", "low", "medium", "high"]
    ).astype(str)
    assert (derived.loc[share.index, "tail_affinity"] == bands).all()
    assert set(derived["activity_level"]) <= {"none", "light", "medium", "heavy"}
    heavy = derived.loc[derived["activity_level"] == "heavy", "interactions"].min()
    light = derived.loc[derived["activity_level"] == "light", "interactions"].max()
    assert heavy > light
    last = ev["ts"].max()
    first = ev.groupby("user_id")["ts"].min()
    new = first >= last - pd.Timedelta(days=30)
    assert (derived.loc[first.index, "tenure"] == np.where(new, "new", "returning")).all()


def _buys_rows() -> list[tuple[str, str, str]]:
    """Purchases only, each an hour apart: h bought once by 30 users (head); t1 by u1 and u2
    twice each and u3 once; t2 by u4, u5, u6 once; t3 by u7 once (all tail)."""
    rows = [(f"u{k}", "h", "purchase") for k in range(1, 31)]
    rows += [(u, "t1", "purchase") for u in ("u1", "u1", "u2", "u2", "u3")]
    rows += [(u, "t2", "purchase") for u in ("u4", "u5", "u6")]
    rows += [("u7", "t3", "purchase")]
    return rows


def test_purchase_only_gems_explain_and_offer_tail_buyers(data_dir) -> None:
    from ltrec.analytics.insights import next_steps

    write_store("buys", data_dir, tiny_events(_buys_rows()))
    store = open_store("buys", data_dir)
    assert popularity_buckets(store).members("tail") == {"t1", "t2", "t3"}
    gems = hidden_gems(store)
    assert not gems.measurable and len(gems.frame) == 0
    assert gems.reason == (
        "hidden gems need exposure (impressions or views) and view → purchase conversion, "
        "and this data has no views"
    )
    alt = gems.alternative
    assert alt is not None and alt.order == "repeat_rate_lo"  # 2 of 37 pairs repeat
    assert alt.label.startswith("Tail items whose buyers come back")
    f = alt.frame
    assert f["item_id"].tolist() == ["t1", "t2"]  # t3 has 1 buyer, under min_buyers = 3
    assert f["buyers"].tolist() == [3, 3] and f["repeat_buyers"].tolist() == [2, 0]
    np.testing.assert_allclose(f["repeat_rate"], [2 / 3, 0.0])
    lo, hi = wilson(np.array([2, 0]), np.array([3, 3]))
    np.testing.assert_allclose(f["repeat_rate_lo"], lo)
    np.testing.assert_allclose(f["repeat_rate_hi"], hi)
    conv = item_conversion(store)
    assert conv.exposure_event is None and conv.frame["exposure"].isna().all()
    assert conv.frame["view_purchase"].isna().all() and conv.frame["shrunk"].isna().all()
    steps = next_steps(dataset_stats("buys", data_dir), gems)
    assert not [p.text for p in steps if "expos" in p.text]  # no exposure claims at all
    assert any(p.text.startswith("Tail items whose buyers come back") for p in steps)


def test_views_and_purchases_without_carts(data_dir) -> None:
    """Exposure = views; view->purchase is measured, the cart rates are not (NaN)."""
    rows = [("u1", "a", "view"), ("u1", "a", "purchase"), ("u2", "a", "view"), ("u2", "b", "view")]
    write_store("vp", data_dir, tiny_events(rows))
    store = open_store("vp", data_dir)
    bt = bucket_table(store)
    assert bt.exposure_event == "view" and bt.frame["exposure_events"].sum() == 3
    assert bt.frame["view_cart"].isna().all() and bt.frame["cart_purchase"].isna().all()
    total = bt.frame["purchases"].sum() / bt.frame["views"].sum()
    assert total == pytest.approx(1 / 3)  # 1 buying pair of 3 viewing pairs
    lz = lorenz(store)
    assert list(lz.gini) == ["view", "purchase"]  # only the types present, no buyers series
