"""The experiment analysis on hand-computed fixtures: attribution, every metric, SRM, verdicts,
missing data; Hypothesis for the bounds (intervals contain their estimate, shares in [0, 1])."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrec.app.experiments import (
    SHARES,
    Difference,
    analyse,
    attribute,
    sample_ratio,
    users_needed,
)
from ltrec.app.live_events import _DDL as LIVE_DDL
from ltrec.app.live_experiments import Experiment
from ltrec.charts.experiments import difference_figure

T0 = datetime(2026, 12, 1, 12, 0, 0)
H = timedelta(hours=1)
ITEMS = ["A", "B", "C", "D"]
TAIL = {"C", "D"}


def Exp() -> Experiment:  # noqa: N802 - reads like the record it makes
    return Experiment(
        id="exp-test",
        dataset="demo",
        arms={"control": {}, "boost": {"strategy": "tail_boost", "beta": 0.3}},
        split=(0.5, 0.5),
        salt="s",
        started_at="2026-12-01T12:00:00+00:00",
    )


def live_table(rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    """An in-memory ``live_events`` with the experiment columns; rows are
    ``(user, item, event_type, ts, source, arm, position, request_id, quantity, price)``."""
    con = duckdb.connect()
    con.execute(LIVE_DDL)
    for col, typ in (
        ("experiment", "VARCHAR"),
        ("arm", "VARCHAR"),
        ("position", "INTEGER"),
        ("request_id", "VARCHAR"),
    ):
        con.execute(f"ALTER TABLE live_events ADD COLUMN IF NOT EXISTS {col} {typ}")
    cols = [
        "user_id",
        "item_id",
        "event_type",
        "ts",
        "source",
        "arm",
        "position",
        "request_id",
        "quantity",
        "price",
    ]
    df = pd.DataFrame(rows, columns=cols).astype(
        {"position": "Int64", "quantity": "Int64", "price": "float64"}
    )
    df.insert(0, "seq", np.arange(1, len(df) + 1))
    df["experiment"] = "exp-test"
    con.register("rows_df", df)
    con.execute(f"INSERT INTO live_events ({', '.join(df.columns)}) SELECT * FROM rows_df")  # noqa: S608
    con.unregister("rows_df")
    return con


def served(user: str, arm: str, req: str, items: list[str], ts: datetime = T0) -> list[tuple]:
    return [
        (user, it, "impression", ts, "recommendation", arm, k, req, None, None)
        for k, it in enumerate(items, 1)
    ]


def posted(user, item, etype, ts, arm, quantity=None, price=None) -> tuple:
    return (user, item, etype, ts, "api", arm, None, None, quantity, price)


# control: u1 [A, C], u2 [B, D]; boost: u3 [C, D], u4 [D, A], u5 [C, A]
FIXTURE = [
    *served("u1", "control", "r1", ["A", "C"]),
    *served("u2", "control", "r2", ["B", "D"]),
    *served("u3", "boost", "r3", ["C", "D"]),
    *served("u4", "boost", "r4", ["D", "A"]),
    *served("u5", "boost", "r5", ["C", "A"]),
    posted("u1", "A", "view", T0 + H, "control"),
    posted("u1", "A", "view", T0 + 2 * H, "control"),  # same list, same item: one click
    posted("u1", "A", "purchase", T0 + 2 * H, "control", 2, 10.0),  # revenue 20
    posted("u2", "D", "view", T0 + 25 * H, "control"),  # outside 24 h: not attributed
    posted("u3", "C", "view", T0 + H, "boost"),
    posted("u3", "C", "purchase", T0 + H, "boost", None, 5.0),  # quantity missing -> 1
    posted("u4", "D", "view", T0 + H, "boost"),
    posted("u4", "D", "purchase", T0 + 3 * H, "boost", 1, 7.0),
    posted("u4", "B", "purchase", T0 + H, "boost", 1, 99.0),  # B never shown to u4
    posted("u5", "C", "view", T0 - H, "boost"),  # before the list: not attributed
]


@pytest.fixture(scope="module")
def result():
    con = live_table(FIXTURE)
    return analyse(con, Exp(), tail=TAIL, items=ITEMS, n_boot=400, seed=1)


def test_attribution_window_and_latest_list() -> None:
    rows = [
        *served("u1", "control", "r1", ["A"], T0),
        *served("u1", "control", "r2", ["A"], T0 + 2 * H),
        posted("u1", "A", "view", T0 + H, "control"),  # only r1 is before it
        posted("u1", "A", "view", T0 + 3 * H, "control"),  # r1 and r2 qualify: the latest
        posted("u1", "A", "view", T0 + 26.5 * H, "control"),  # 24.5 h after r2: too late
        posted("u1", "A", "view", T0 + 26 * H, "control"),  # exactly 24 h after r2: counts
    ]
    con = live_table(rows)
    att = attribute(con, "exp-test", 24).sort_values("seq")
    assert att["request_id"].tolist() == ["r1", "r2", "r2"]
    assert att["seq"].tolist() == [3, 4, 6]
    assert att["position"].tolist() == [1, 1, 1]
    # a 1-hour window: 1 h after r1, 1 h after r2 (both bounds inclusive)
    assert attribute(con, "exp-test", 1).sort_values("seq")["request_id"].tolist() == ["r1", "r2"]
    assert attribute(con, "exp-test", 0.5).empty


def test_hand_computed_metrics(result) -> None:
    c, b = result.arm("control"), result.arm("boost")
    assert (c.users, c.impressions, b.users, b.impressions) == (2, 4, 3, 6)
    assert result.shown == (
        "ctr",
        "conversion",
        "revenue_per_user",
        "tail_exposure_share",
        "tail_purchase_share",
        "exposure_gini",
    )
    got = {k: v.mean for k, v in c.metrics.items()}
    assert got == pytest.approx(
        {
            "ctr": 1 / 4,
            "conversion": 1 / 2,
            "revenue_per_user": 10.0,
            "tail_exposure_share": 2 / 4,
            "tail_purchase_share": 0.0,
            "exposure_gini": 0.0,
        }
    )
    got = {k: v.mean for k, v in b.metrics.items()}
    # exposure A2 B0 C2 D2: ascending (0,2,2,2) . (-3,-1,1,3) / (4 * 6) = 6 / 24
    assert got == pytest.approx(
        {
            "ctr": 2 / 6,
            "conversion": 2 / 3,
            "revenue_per_user": 12 / 3,
            "tail_exposure_share": 4 / 6,
            "tail_purchase_share": 1.0,
            "exposure_gini": 0.25,
        }
    )
    d = b.vs_control["tail_exposure_share"]
    assert (d.delta, d.rel) == pytest.approx((4 / 6 - 1 / 2, (4 / 6) / (1 / 2) - 1))
    assert b.vs_control["tail_purchase_share"].rel is None  # control 0: no relative change
    assert b.vs_control["tail_purchase_share"].delta == pytest.approx(1.0)
    # SRM: 2 vs 3 users against 50/50: chi2 = 2 * 0.5^2 / 2.5 = 0.2, df 1
    assert result.srm.chi2 == pytest.approx(0.2)
    assert result.srm.p_value == pytest.approx(math.erfc(math.sqrt(0.2 / 2)))
    assert result.srm.warning is None
    assert result.missing is None
    assert "bootstrap" in result.method and "400" in result.method


def test_json_keys(result) -> None:
    out = result.to_json()
    assert list(out) == [
        "experiment",
        "dataset",
        "control",
        "started_at",
        "stopped_at",
        "running",
        "window_hours",
        "method",
        "n_boot",
        "seed",
        "metrics",
        "arms",
        "srm",
        "missing",
        "difference_level",
    ]
    assert out["difference_level"] == pytest.approx(1 - 0.05 / 6)
    arm = out["arms"][1]
    assert list(arm) == [
        "arm",
        "policy",
        "share",
        "users",
        "impressions",
        "metrics",
        "vs_control",
        "verdict",
        "users_needed",
    ]
    assert list(arm["metrics"]["ctr"]) == ["mean", "low", "high", "n"]
    assert list(arm["vs_control"]["ctr"]) == [
        "delta",
        "low",
        "high",
        "rel",
        "rel_low",
        "rel_high",
        "detected",
    ]
    assert out["arms"][0]["vs_control"] == {}


def test_srm_three_arms_closed_form() -> None:
    # chi2 = (10^2 + 10^2 + 0) / 40 = 5 with 2 degrees of freedom: p = exp(-5 / 2)
    srm = sample_ratio({"a": 30, "b": 50, "c": 40}, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert srm.chi2 == pytest.approx(5.0)
    assert srm.p_value == pytest.approx(math.exp(-2.5))
    assert srm.warning is None
    bad = sample_ratio({"control": 5_000, "boost": 5_400}, {"control": 0.5, "boost": 0.5})
    assert bad.p_value < 0.001
    assert bad.warning.startswith("Sample-ratio mismatch: users split control 48.1%, boost 51.9%")


def test_no_price_no_revenue_and_no_purchase_nothing_about_purchases() -> None:
    rows = [r if r[2] != "purchase" else (*r[:8], r[8], None) for r in FIXTURE]
    res = analyse(live_table(rows), Exp(), tail=TAIL, items=ITEMS, n_boot=50)
    assert "revenue_per_user" not in res.shown
    assert "revenue_per_user" not in res.arm("boost").metrics
    assert res.missing == (
        "In this experiment no posted purchase carries a price, so revenue per user is not "
        "measured."
    )
    rows = [r for r in FIXTURE if r[2] in ("impression",)]
    res = analyse(live_table(rows), Exp(), tail=TAIL, items=ITEMS, n_boot=50)
    assert res.shown == ("tail_exposure_share", "exposure_gini")
    assert res.missing.startswith("In this experiment no view was posted back")
    assert "revenue per user no detectable difference" not in res.arm("boost").verdict


def test_no_traffic_and_no_table() -> None:
    con = duckdb.connect()
    res = analyse(con, Exp(), tail=TAIL, items=ITEMS, n_boot=50)
    assert [a.users for a in res.arms] == [0, 0]
    assert res.missing.startswith("No user has been served in this experiment yet.")
    assert res.arm("boost").verdict == "boost: no user has been served yet."
    assert res.srm.p_value is None


def test_verdict_detected_effect_and_power_sentence() -> None:
    rng = np.random.default_rng(5)
    rows: list[tuple] = []
    for k in range(400):
        arm = "control" if k % 2 else "boost"
        items = ["A", "B"] if arm == "control" else ["C", "D"]
        u = f"u{k}"
        rows += served(u, arm, f"r{k}", items)
        for it in items:
            if rng.random() < 0.5:
                rows.append(posted(u, it, "view", T0 + H, arm))
                if rng.random() < 0.4:
                    rows.append(posted(u, it, "purchase", T0 + H, arm, 1, 3.0))
        if arm == "control" and rng.random() < 0.2:  # a few tail purchases in control too
            rows += served(u, arm, f"s{k}", ["C"])
            rows.append(posted(u, "C", "purchase", T0 + H, arm, 1, 3.0))
    res = analyse(live_table(rows), Exp(), tail=TAIL, items=ITEMS, n_boot=300, seed=2)
    b = res.arm("boost")
    d = b.vs_control["tail_purchase_share"]
    assert d.detected and d.rel_low > 0
    assert b.verdict.startswith("boost: tail purchases +159% [+99%, +237%], revenue per user -")
    assert b.verdict.endswith("conversion and click-through no detectable difference.")
    assert b.users_needed is None

    small = analyse(live_table(FIXTURE), Exp(), tail=TAIL, items=ITEMS, n_boot=300)
    assert small.arm("boost").verdict == (
        "boost: not enough data yet: the smaller arm has 2 users; at least 30 per arm are "
        "needed before the intervals can be trusted."
    )
    assert small.arm("control").verdict == "control: the control (2 users, 4 impressions)."


def test_power_sentence_when_nothing_is_detected() -> None:
    rng = np.random.default_rng(1)
    rows: list[tuple] = []
    for k in range(200):  # both arms the same lists and purchase rates: an A/A
        arm = "control" if k % 2 else "boost"
        rows += served(f"u{k}", arm, f"r{k}", ["A", "C"])
        for it in ("A", "C"):
            if rng.random() < 0.3:
                rows.append(posted(f"u{k}", it, "purchase", T0 + H, arm, 1, 2.0))
    res = analyse(live_table(rows), Exp(), tail=TAIL, items=ITEMS, n_boot=300)
    b = res.arm("boost")
    d = b.vs_control["tail_purchase_share"]
    assert not d.detected
    assert b.users_needed == users_needed(
        100, d, res.arm("control").metrics["tail_purchase_share"].mean, level=res.difference_level
    )
    assert b.verdict == (
        "boost: tail purchases, revenue per user, conversion, tail exposure and exposure Gini "
        f"no detectable difference; not enough data yet: about {b.users_needed:,} more users "
        "per arm for a 10% effect on the tail share of purchases."
    )


def test_users_needed_formula() -> None:
    # se = (0.2 - (-0.2)) / (2 * 1.96) = 0.102; z = 1.96 + 0.8416 = 2.8016;
    # n_total = 100 * (2.8016 * 0.102 / (0.1 * 0.5))^2 = 3267 -> 3167 more
    d = Difference(0.0, -0.2, 0.2, 0.0, -0.4, 0.4, False)
    se = 0.4 / (2 * 1.959964)
    expect = math.ceil(100 * (2.801585 * se / 0.05) ** 2 - 100)
    assert users_needed(100, d, 0.5) == expect
    assert users_needed(100, d, 0.0) is None


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["control", "boost"]),
        st.lists(st.sampled_from(ITEMS), min_size=1, max_size=3, unique=True),
        st.lists(st.sampled_from(["view", "purchase"]), max_size=3),
        st.floats(0.5, 100.0),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows_strategy)
def test_intervals_contain_estimates_and_shares_are_shares(spec) -> None:
    rows: list[tuple] = []
    for k, (arm, items, events, price) in enumerate(spec):
        rows += served(f"u{k}", arm, f"r{k}", items)
        for j, e in enumerate(events):
            rows.append(posted(f"u{k}", items[j % len(items)], e, T0 + H, arm, 1, price))
    res = analyse(live_table(rows), Exp(), tail=TAIL, items=ITEMS, n_boot=60, seed=0)
    for arm in res.arms:
        for key, v in arm.metrics.items():
            if not np.isfinite(v.mean):
                assert v.low is None and v.high is None
                continue
            if v.low is not None:
                assert v.low - 1e-12 <= v.mean <= v.high + 1e-12, (key, v)
            if key in SHARES:
                assert 0.0 <= v.mean <= 1.0
                assert v.low is None or 0.0 <= v.low <= v.high <= 1.0
        for key, d in arm.vs_control.items():
            if d.low is not None and np.isfinite(d.delta):
                assert d.low - 1e-12 <= d.delta <= d.high + 1e-12, (key, d)
            if d.rel_low is not None:
                assert d.rel_low - 1e-12 <= d.rel <= d.rel_high + 1e-12


def test_difference_figure(result) -> None:
    fig = difference_figure(result)
    (trace,) = fig.data
    b = result.arm("boost")
    # tail share of purchases has a control of 0: no relative change, left out of the plot
    shown = [k for k in result.shown if b.vs_control[k].rel is not None]
    assert list(trace.y) == [result.table().set_index(["arm", "metric"]).loc[("boost", k), "name"]
                             for k in shown]  # fmt: skip
    assert list(trace.x) == pytest.approx([b.vs_control[k].rel for k in shown])
    assert trace.name == "boost"
