"""Simulator invariants on a hand-made world and on a small demo shop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltrec.definitions import gini
from ltrec.errors import BadInputError, ConfigError
from ltrec.simulation import (
    PolicyConfig,
    SimulationConfig,
    parse_policy,
    run_simulation,
    simulate,
)

POP = {"model": "popularity"}
BOOST = {"model": "popularity", "rerank": {"strategy": "tail_boost", "beta": 2.0}}


def _run(world, policies, **cfg):
    data, um = world
    return run_simulation(data, um, policies, SimulationConfig(**cfg))


def test_exposure_per_round_is_users_times_k(world) -> None:
    res = _run(world, [POP, BOOST], rounds=3, users=40, k=7, seed=1)
    assert len(res.rounds) == 6
    assert (res.rounds["slots"] == 40 * 7).all()
    assert list(res.labels) == ["popularity", "popularity + tail_boost 2"]
    assert res.user_model["kind"] == "truth"
    # Outcomes are nested: purchases <= carts <= clicks <= slots.
    r = res.rounds
    assert (r["purchases"] <= r["carts"]).all() and (r["carts"] <= r["clicks"]).all()
    assert (r["clicks"] <= r["slots"]).all()
    assert (r["tail_purchases"] <= r["purchases"]).all()
    g = r[r["policy"] == "popularity"]
    assert g["cum_clicks"].tolist() == g["clicks"].cumsum().tolist()


def test_same_seed_same_result_other_seed_differs(world) -> None:
    a = _run(world, [POP, BOOST], rounds=3, users=30, seed=3).rounds.drop(columns="seconds")
    b = _run(world, [POP, BOOST], rounds=3, users=30, seed=3).rounds.drop(columns="seconds")
    c = _run(world, [POP, BOOST], rounds=3, users=30, seed=4).rounds.drop(columns="seconds")
    pd.testing.assert_frame_equal(a, b)
    assert not a["clicks"].equals(c["clicks"])


def test_popularity_feeds_on_itself_where_a_tail_boost_does_not(world) -> None:
    """Mansoury et al. 2020: the popularity policy concentrates interactions over rounds."""
    res = _run(world, [POP, BOOST], rounds=8, users=100, k=10, seed=0)
    r = res.rounds.set_index(["policy", "round"])
    pop, boost = "popularity", "popularity + tail_boost 2"
    start = gini(world[0].item_pop)
    # Popularity: interactions pile up on the same head items, round after round.
    assert r.loc[(pop, 8), "popularity_gini"] > start + 0.03
    assert r.loc[(pop, 4), "popularity_gini"] > r.loc[(pop, 1), "popularity_gini"]
    assert r.loc[(pop, 8), "tail_share"] < 0.1
    # The boost keeps the catalogue alive: interactions spread out, more coverage, more tail.
    assert r.loc[(boost, 8), "popularity_gini"] < start - 0.05
    assert r.loc[(boost, 8), "exposure_gini_cum"] < r.loc[(pop, 8), "exposure_gini_cum"] - 0.1
    assert r.loc[(boost, 8), "coverage_cum"] > 1.4 * r.loc[(pop, 8), "coverage_cum"]
    assert r.loc[(boost, 8), "tail_share"] > 0.5
    assert r.loc[(boost, 8), "cum_tail_purchases"] > r.loc[(pop, 8), "cum_tail_purchases"]


def test_retrain_every_and_starting_data_untouched(world) -> None:
    data, _ = world
    nnz = data.matrix.nnz
    res = _run(world, [POP], rounds=4, users=50, retrain_every=2)
    assert res.rounds["retrained"].tolist() == [False, True, False, False]
    assert data.matrix.nnz == nnz  # the simulation works on copies


def test_revenue_from_prices(world) -> None:
    data, um = world
    prices = np.linspace(5, 50, data.n_items)
    res = run_simulation(data, um, [POP], SimulationConfig(rounds=2, users=80), prices=prices)
    assert res.rounds["revenue"].notna().all()
    assert (res.rounds["revenue"] > 0).any()
    no_price = _run(world, [POP], rounds=2, users=80)
    assert no_price.rounds["revenue"].isna().all()


def test_policy_parsing_errors() -> None:
    assert parse_policy('{"model": "ease", "params": {"lambda_": 50}}').model == "ease"
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_policy("{model")
    with pytest.raises(ConfigError, match="unknown model"):
        parse_policy({"model": "nope"})
    with pytest.raises(ConfigError, match="lambda"):
        parse_policy({"model": "ease", "params": {"lambda": 5}})
    with pytest.raises(ConfigError, match="beta"):
        parse_policy({"model": "popularity", "rerank": {"strategy": "tail_boost", "beta": 99}})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_policy({"model": "popularity", "boost": 1})
    assert PolicyConfig(model="als", label="mine").name == "mine"


def test_ground_truth_user_model_on_demo_shop(demo) -> None:
    res = simulate(
        demo,
        [POP, {"model": "ease", "rerank": {"strategy": "tail_boost", "beta": 0.5}}],
        SimulationConfig(rounds=2, users=60, k=5),
        save=False,
    )
    assert res.user_model["kind"] == "truth"
    assert res.user_model["name"] == "ground truth"
    assert (res.rounds["slots"] == 60 * 5).all()
    assert res.data["prices"] and res.rounds["revenue"].notna().all()
    assert res.rounds["clicks"].sum() > 0
    assert res.sim_id is None


def test_truth_required_but_missing(plain_shop) -> None:
    with pytest.raises(BadInputError, match="no ground-truth"):
        simulate(plain_shop, [POP], SimulationConfig(rounds=1, user_model="truth"), save=False)


def test_calibrated_user_model_without_truth(plain_shop) -> None:
    progress = []
    res = simulate(
        plain_shop,
        [POP, {"model": "itemknn"}],
        SimulationConfig(rounds=2, users=40, k=5),
        save=False,
        progress=lambda d, m: progress.append(d),
    )
    um = res.user_model
    assert um["kind"] == "calibrated"
    assert "impressions" in um["labels"]
    assert np.isfinite(um["platt_a"]) and np.isfinite(um["platt_b"])
    assert (res.rounds["slots"] == 40 * 5).all()
    assert progress[-1] == 1.0 and progress == sorted(progress)


def test_calibrated_user_model_from_interactions_only(data_dir) -> None:
    """Without impressions, calibration labels are held-out interactions."""
    from tests.analytics.conftest import synthetic_shop, write_store

    ev, it, us = synthetic_shop(users=120, items=60, sessions=2500, seed=6)
    write_store("views", data_dir, ev[ev["event_type"] != "impression"], it, us)
    res = simulate("views", [POP], SimulationConfig(rounds=1, users=30, k=5), save=False)
    assert res.user_model["kind"] == "calibrated"
    assert "interactions" in res.user_model["labels"]
    assert res.user_model["platt_a"] > 0  # higher scores, more likely to be chosen


def test_starting_data_is_aggregated_in_the_store(demo, data_dir) -> None:
    """load_world builds its data in DuckDB: the same matrix, ids and times as the pandas
    path over every event (which a 10M-event shop cannot afford)."""
    from ltrec.evaluation.split import load_events
    from ltrec.models.data import InteractionData, load_catalogue
    from ltrec.simulation.engine import load_world
    from ltrec.store import connect

    data, um, _, _ = load_world(demo, SimulationConfig(), data_dir)
    con = connect(demo, data_dir)
    try:
        ref = InteractionData.from_frame(load_events(con), *load_catalogue(con))
    finally:
        con.close()
    assert list(data.user_ids) == list(ref.user_ids)
    assert list(data.item_ids) == list(ref.item_ids)
    assert (data.matrix != ref.matrix).nnz == 0
    assert np.array_equal(data.last_ts.toarray(), ref.last_ts.toarray())
    assert type(um).__name__ == "TruthUserModel"
