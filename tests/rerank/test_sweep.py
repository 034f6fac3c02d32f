"""Sweeps through the evaluation core, the Pareto front, and the two solvers."""

from __future__ import annotations

import numpy as np
import pytest

from ltrec.errors import ConfigError
from ltrec.rerank import build
from ltrec.rerank.sweep import (
    Pools,
    best_above_floor,
    evaluation_scorer,
    grid,
    min_strength_for_tail_share,
    sweep,
)
from tests.rerank.conformance import N_USERS, pool, shop


def _pools_and_test() -> tuple[Pools, list[np.ndarray]]:
    """The fixture users' pools; each user's test items: 2 head + 2 tail items of their pool,
    so both accuracy and tail recall move with the strength."""
    ctx = shop()
    cands = [pool(u) for u in range(N_USERS)]
    items = np.stack([c.items for c in cands])
    scores = np.stack([c.scores for c in cands])
    rng = np.random.default_rng(3)
    test = []
    for c in cands:
        head = c.items[~ctx.tail[c.items]][:6]
        tail = c.items[ctx.tail[c.items]][:20]
        test.append(np.concatenate([rng.choice(head, 2, False), rng.choice(tail, 2, False)]))
    return Pools(np.arange(N_USERS), items, scores), test


@pytest.fixture(scope="module")
def setup():
    ctx = shop()
    pools, test = _pools_and_test()
    scorer = evaluation_scorer(test, item_pop=ctx.popularity, k=10, tail_mask=ctx.tail)
    return ctx, pools, scorer


def test_sweep_table_and_front(setup) -> None:
    ctx, pools, scorer = setup
    res = sweep({"strategy": "tail_boost"}, [0, 0.1, 0.3, 0.6, 1.0, 2.0], pools, ctx, 10, scorer)
    t = res.table
    assert res.parameter == "beta" and res.accuracy == "ndcg@10" and res.tail == "aplt@10"
    for col in ("ndcg@10", "recall@10", "aplt@10", "coverage@10", "gini@10", "tail_recall@10"):
        assert col in t.columns, col
    assert t.loc[0, "overlap@10"] == 1.0  # strength 0 is the base
    assert np.all(np.diff(t["aplt@10"]) >= -1e-12)
    assert t["aplt@10"].iloc[-1] > t["aplt@10"].iloc[0]
    assert np.allclose(t["tail_share"], t["aplt@10"])  # the solver's and the core's APLT agree
    # Front: no row on it is dominated by another row.
    on = t[t["pareto"]]
    assert len(on) >= 1
    for _, r in on.iterrows():
        better = (t["ndcg@10"] >= r["ndcg@10"]) & (t["aplt@10"] >= r["aplt@10"])
        strictly = (t["ndcg@10"] > r["ndcg@10"]) | (t["aplt@10"] > r["aplt@10"])
        assert not (better & strictly).any()
    assert res.to_dict()["rows"][0]["setting"].startswith('{"pool"')


def test_sweep_reuses_pools_and_rules(setup) -> None:
    ctx, pools, scorer = setup
    res = sweep(
        {"strategy": "xquad", "rules": {"in_stock": True}}, [0, 0.5], pools, ctx, 10, scorer
    )
    stock = [
        ctx.in_stock[build(s).rerank(pool(u), ctx, u, 10).items].all()
        for s in res.table["setting"]
        for u in range(3)
    ]
    assert all(stock)


def test_min_strength_reaches_target_smallest(setup) -> None:
    ctx, pools, _ = setup
    base_share = pools.rerank(build(None).config, ctx, 10).tail_share(ctx)
    target = min(0.9, base_share + 0.25)
    ans = min_strength_for_tail_share({"strategy": "tail_boost"}, target, pools, ctx, 10)
    assert ans.reachable and ans.strength is not None and ans.tail_share >= target
    below = build({"strategy": "tail_boost", "beta": max(ans.strength - 0.02, 0)})
    assert pools.rerank(below, ctx, 10).tail_share(ctx) < target
    assert "beta=" in ans.message and ans.setting is not None


def test_min_strength_answers_clearly(setup) -> None:
    ctx, pools, _ = setup
    done = min_strength_for_tail_share({"strategy": "fair"}, 0.0, pools, ctx, 10)
    assert done.reachable and done.strength == 0.0 and "already" in done.message
    # Pools of head items only: no strength can show tail items.
    head = np.flatnonzero(~ctx.tail)[:50]
    heads = Pools(np.arange(3), np.tile(head, (3, 1)), np.tile(np.linspace(1, 0, 50), (3, 1)))
    ans = min_strength_for_tail_share({"strategy": "tail_boost"}, 0.3, heads, ctx, 10)
    assert not ans.reachable and ans.strength is None
    assert "reaches at most a 0.0% tail share" in ans.message
    with pytest.raises(ConfigError, match="no strength"):
        min_strength_for_tail_share({"strategy": "none"}, 0.3, heads, ctx, 10)


def test_best_above_floor(setup) -> None:
    ctx, pools, scorer = setup
    res = sweep({"strategy": "fair"}, [0, 0.2, 0.4, 0.6, 0.8], pools, ctx, 10, scorer)
    t = res.table
    floor = float(t["aplt@10"].median())
    ans = best_above_floor(res, floor)
    assert ans.found and ans.row["aplt@10"] >= floor
    assert ans.row["ndcg@10"] == t[t["aplt@10"] >= floor]["ndcg@10"].max()
    none = best_above_floor(res, 1.01)
    assert not none.found and "lower the floor" in none.message


def test_pools_from_a_real_model(data_dir) -> None:
    from ltrec.models import make_model
    from ltrec.models.train import load_data
    from ltrec.rerank.adapters import context_from_data
    from tests.models.shop import build_shop

    build_shop("shop")
    data = load_data("shop")
    model = make_model("ease").fit(data)
    ctx = context_from_data(data)
    pools = Pools.from_model(model, np.arange(data.n_users), m=30).sample(20, seed=1)
    assert len(pools) == 20 and pools.items.shape == (20, 30)
    again = Pools.from_model(model, np.arange(data.n_users), m=30).sample(20, seed=1)
    assert np.array_equal(pools.users, again.users)
    batch = pools.rerank(build({"strategy": "tail_boost", "beta": 1.0}).config, ctx, 10)
    assert batch.tail_share(ctx) >= pools.rerank(build(None).config, ctx, 10).tail_share(ctx)
    assert ctx.category_names == tuple(data.category_names[1:])


def test_grid_of_mixed_settings(setup) -> None:
    ctx, pools, scorer = setup
    res = grid(
        [None, {"strategy": "xquad", "lambda": 0.5}, {"strategy": "fair", "p": 0.5}],
        pools,
        ctx,
        10,
        scorer,
    )
    t = res.table
    assert res.strategy == "mixed" and list(t["strategy"]) == ["none", "xquad", "fair"]
    assert t.loc[0, "overlap@10"] == 1.0 and t.loc[0, "value"] == 0.0
    assert t["pareto"].any()
