"""tail_select (the linear boost's set, in the base order): conformance, a hand-computed list,
and its relation to the linear boost (same items, base order)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ltrec.rerank import Candidates, Context, build, parse_config
from tests.rerank.conformance import HYPO, N_USERS, RerankerConformance, pool, shop


class TestTailSelect(RerankerConformance):
    strategy = "tail_select"


class TestTailSelectPopularity(RerankerConformance):
    strategy = "tail_select"
    params = {"signal": "log_popularity"}


def _tiny() -> tuple[Context, Candidates]:
    # Items 0..5; items 3, 4 and 5 are the tail (popularity 1-2, the others 50-90).
    ctx = Context.from_data([90, 70, 50, 2, 1, 2], tail=[False, False, False, True, True, True])
    # Base order 0, 1, 2, 3, 4, 5 with scores 10, 8, 6, 5, 2, 0: min-max rel = 1, .8, .6, .5, .2, 0.
    return ctx, Candidates(np.arange(6), np.array([10.0, 8.0, 6.0, 5.0, 2.0, 0.0]))


def test_known_answer() -> None:
    """beta = 0.35, K = 3. Boosted: 1, .8, .6, .85, .55, .35 -> the top 3 are items 0, 3, 1
    (the linear boost's list, in that order); tail_select shows the same three items in the
    base order: 0, 1, 3, with their min-max base scores 1, .8, .5 as final scores."""
    ctx, cand = _tiny()
    linear = build({"strategy": "tail_boost", "beta": 0.35}).rerank(cand, ctx, None, 3)
    assert linear.items.tolist() == [0, 3, 1]
    r = build({"strategy": "tail_select", "beta": 0.35}).rerank(cand, ctx, None, 3)
    assert r.items.tolist() == [0, 1, 3]
    assert np.allclose(r.scores, [1.0, 0.8, 0.5])
    assert r.base_ranks.tolist() == [1, 2, 4]
    assert list(r.reasons) == ["base rank", "base rank", "selected: tail item (+0.35)"]


def test_known_answer_strong_boost() -> None:
    """beta = 0.9, K = 4: boosted 1, .8, .6, 1.4, 1.1, .9 -> items 3, 4, 0, 5 (ties: none);
    in base order 0, 3, 4, 5: every tail item enters, the head's best keeps the top."""
    ctx, cand = _tiny()
    r = build({"strategy": "tail_select", "beta": 0.9}).rerank(cand, ctx, None, 4)
    assert r.items.tolist() == [0, 3, 4, 5]
    assert r.reasons[0] == "base rank"
    assert list(r.reasons[1:]) == ["selected: tail item (+0.90)"] * 3


@HYPO
@given(
    beta=st.floats(0, 5),
    k=st.integers(1, 25),
    user=st.integers(0, N_USERS - 1),
    signal=st.sampled_from(["tail", "log_popularity"]),
)
def test_same_items_as_the_linear_boost_in_base_order(beta, k, user, signal) -> None:
    ctx = shop()
    cand = pool(user)
    linear = build({"strategy": "tail_boost", "beta": beta, "signal": signal})
    select = build({"strategy": "tail_select", "beta": beta, "signal": signal})
    a = linear.rerank(cand, ctx, user, k)
    b = select.rerank(cand, ctx, user, k)
    assert sorted(b.items.tolist()) == sorted(a.items.tolist())
    assert b.base_ranks.tolist() == sorted(b.base_ranks.tolist())  # base order
    assert np.all(np.diff(b.scores) <= 1e-12)  # final scores descend


def test_config_is_bounded_and_closed() -> None:
    import pytest

    from ltrec.errors import ConfigError

    assert parse_config({"strategy": "tail_select", "beta": 0.5}).label() == "tail_select beta=0.5"
    with pytest.raises(ConfigError, match="beta"):
        parse_config({"strategy": "tail_select", "beta": 6})
    with pytest.raises(ConfigError, match="unknown key 'gamma'"):
        parse_config({"strategy": "tail_select", "gamma": 1})
