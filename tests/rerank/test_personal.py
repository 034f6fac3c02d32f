"""The personalised strategies pass the conformance suite; their own properties below."""

from __future__ import annotations

import numpy as np
import pytest

from ltrec.errors import ConfigError
from ltrec.rerank import Candidates, Context, build, from_query, parse_config, to_query_string
from ltrec.rerank.strategies import (
    js_divergence,
    popularity_groups,
    user_group_distribution,
)
from tests.rerank.conformance import N_USERS, RerankerConformance, pool, shop, tail_share


class TestPersonalXQuAD(RerankerConformance):
    strategy = "xquad_personal"

    def test_tail_slots_go_to_users_who_like_the_tail(self) -> None:
        ctx = shop()
        pipe = self.make(0.6)
        # The same pools for both groups: only the history differs (30% vs 60% tail).
        low = np.mean([tail_share(ctx, pipe.rerank(pool(u), ctx, u, 10)) for u in range(11)])
        high = np.mean(
            [tail_share(ctx, pipe.rerank(pool(u - 12), ctx, u, 10)) for u in range(12, 23)]
        )
        assert high > low


class TestPersonalXQuADShrunk(RerankerConformance):
    strategy = "xquad_personal"
    params = {"shrink": 20.0, "smooth": False}


class TestCalibratedPopularity(RerankerConformance):
    strategy = "calibrated_popularity"

    def test_lowers_js_to_history(self) -> None:
        ctx = shop()
        codes, names = popularity_groups(ctx, "paper")
        for lam in (0.5, 0.9, 1.0):
            pipe, base = self.make(lam), self.make(0.0)
            for u in range(N_USERS - 1):
                p = user_group_distribution(ctx, u, "paper")

                def js(items: np.ndarray, p: np.ndarray = p) -> float:
                    q = np.bincount(codes[items], minlength=len(names)) / len(items)
                    return js_divergence(p.tolist(), q.tolist())

                got = js(pipe.rerank(pool(u), ctx, u, 10).items)
                ref = js(base.rerank(pool(u), ctx, u, 10).items)
                assert got <= ref + 1e-12, (lam, u, got, ref)

    def test_no_history_gives_base_order(self) -> None:
        r = self.make(0.9).rerank(pool(0), shop(), N_USERS - 1, 10)
        assert r.items.tolist() == pool(0).items[:10].tolist()
        assert r.notes == ("no history to calibrate to: base order",)


class TestCalibratedPopularityBuckets(RerankerConformance):
    strategy = "calibrated_popularity"
    params = {"groups": "buckets"}


def test_paper_groups_cut_interactions_at_20_and_80_percent() -> None:
    # Popularity 50, 30, 10, 5, 5 (100 in all): the head is the smallest prefix reaching 20%
    # (item 0 alone, 50%), the mid runs until 80% is reached (item 1: 50% + 30%), the rest
    # (items 2..4, the last 20%) is the tail.
    ctx = Context.from_data([50, 30, 10, 5, 5], tail=[False, False, True, True, True])
    codes, names = popularity_groups(ctx, "paper")
    assert names == ("head", "mid", "tail")
    assert codes.tolist() == [0, 1, 2, 2, 2]


def test_js_divergence_known_values() -> None:
    assert js_divergence([1.0, 0.0], [0.0, 1.0]) == 1.0  # disjoint supports: 1 bit
    assert js_divergence([0.5, 0.5], [0.5, 0.5]) == 0.0
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4);
    # JS = 1/2 log2(4/3) + 1/2 (1/2 log2(2/3) + 1/2 log2(2)) = 0.311278...
    want = 0.5 * np.log2(4 / 3) + 0.25 * np.log2(2 / 3) + 0.25
    assert js_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(want, rel=1e-12)


def test_settings_round_trip_through_links() -> None:
    for text in (
        '{"strategy": "calibrated_popularity", "lambda": 0.7, "groups": "buckets"}',
        '{"strategy": "xquad_personal", "lambda": 0.4, "shrink": 5, "smooth": false}',
    ):
        cfg = parse_config(text)
        assert from_query(to_query_string(cfg)) == cfg


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"strategy": "xquad_personal", "shrink": 101}, "shrink: must be less than or equal"),
        ({"strategy": "xquad_personal", "personalised": False}, "unknown key 'personalised'"),
        ({"strategy": "calibrated_popularity", "groups": "deciles"}, "groups: must be 'paper'"),
        ({"strategy": "calibrated_popularity", "lambda": -0.1}, "lambda: must be greater than"),
    ],
)
def test_bad_settings_are_refused(setting: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(setting)
    assert message in err.value.message


def test_personal_xquad_without_history_uses_the_shop_share() -> None:
    # Histories: user 0 = 3 items, 1 tail; user 1 = 1 item, tail; user 2 = none.
    # p0 = 2 tail / 4 items = 0.5.
    ctx = Context.from_data(
        [9, 8, 7, 1, 1], tail=[False, False, False, True, True], history=[[0, 1, 3], [4], []]
    )
    cand = Candidates(np.arange(5), np.array([1.0, 0.8, 0.6, 0.4, 0.0]))
    plain = build({"strategy": "xquad_personal", "lambda": 0.5})
    shrunk = build({"strategy": "xquad_personal", "lambda": 0.5, "shrink": 2})
    assert plain.strategy.p_tail(ctx, 0) == pytest.approx(1 / 3)
    assert plain.strategy.p_tail(ctx, 1) == 1.0
    assert plain.strategy.p_tail(ctx, 2) == 0.5
    # (t + m p0) / (n + m): user 0 (1 + 1) / 5 = 0.4; user 1 (1 + 1) / 3.
    assert shrunk.strategy.p_tail(ctx, 0) == pytest.approx(0.4)
    assert shrunk.strategy.p_tail(ctx, 1) == pytest.approx(2 / 3)
    assert len(plain.rerank(cand, ctx, 2, 5)) == 5
