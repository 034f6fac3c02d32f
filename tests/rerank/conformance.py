"""The conformance suite every re-ranker passes (a mixin), and the shared fixture shop.

A test class sets ``strategy`` (a name in ``ltrec.rerank.STRATEGIES``), optionally ``params``
(fixed fields) and ``monotone_metric`` (what must not fall as the strength grows: the tail
share for tail-targeting strategies).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrec.rerank import Candidates, Context, Ranked, build, parse_config, rerank_batch
from ltrec.rerank.pipeline import Pipeline
from ltrec.rerank.rules import Pin, RulesConfig, item_mask

N_ITEMS = 300
N_USERS = 24
HYPO = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
    derandomize=True,
)


@lru_cache(maxsize=1)
def shop() -> Context:
    """A small shop: 30% head items (popular), 70% tail; 6 categories; 8-d embeddings.

    Users 0..11 have 30% tail items in their history, users 12..23 60%; user 23 has no history.
    """
    rng = np.random.default_rng(7)
    head = np.zeros(N_ITEMS, dtype=bool)
    head[: int(0.3 * N_ITEMS)] = True
    pop = np.where(head, rng.integers(50, 500, N_ITEMS), rng.integers(0, 20, N_ITEMS))
    cat = rng.integers(0, 6, N_ITEMS)
    centres = rng.normal(size=(6, 8))
    emb = centres[cat] + 0.5 * rng.normal(size=(N_ITEMS, 8))
    history = []
    for u in range(N_USERS):
        share = 0.3 if u < 12 else 0.6
        n_tail = int(round(share * 20))
        h = np.concatenate(
            [
                rng.choice(np.flatnonzero(head), 20 - n_tail, replace=False),
                rng.choice(np.flatnonzero(~head), n_tail, replace=False),
            ]
        )
        history.append(h if u < N_USERS - 1 else np.zeros(0, dtype=int))
    return Context.from_data(
        pop,
        tail=~head,
        category=cat,
        category_names=["Home > Kitchen", "Home > Garden", "Toys", "Books", "Shoes", "Bags"],
        embedding=emb,
        price=np.round(rng.lognormal(3, 0.8, N_ITEMS), 2),
        in_stock=rng.random(N_ITEMS) > 0.15,
        item_ids=[f"SKU{i}" for i in range(N_ITEMS)],
        history=history,
    )


def pool(user: int, m: int = 100) -> Candidates:
    """A user's pool whose base scores favour head items (a popularity-biased model)."""
    ctx = shop()
    rng = np.random.default_rng(100 + user)
    items = rng.choice(N_ITEMS, m, replace=False)
    scores = rng.normal(size=m) + 2.0 * ~ctx.tail[items]
    return Candidates(items, scores)


def tail_share(ctx: Context, r: Ranked) -> float:
    return float(ctx.tail[r.items].mean()) if len(r) else 0.0


pools = st.integers(0, 60).flatmap(
    lambda m: st.tuples(
        st.lists(st.integers(0, N_ITEMS - 1), min_size=m, max_size=m, unique=True),
        st.lists(st.one_of(st.floats(-5, 5), st.sampled_from([0.0, 1.0])), min_size=m, max_size=m),
    )
)

rules_st = st.builds(
    RulesConfig,
    in_stock=st.booleans(),
    price_min=st.one_of(st.none(), st.floats(0, 30)),
    price_max=st.one_of(st.none(), st.floats(30, 200)),
    include_categories=st.lists(
        st.sampled_from(["Home", "Toys", "Books", "Shoes", "Bags", "Home > Garden"]),
        max_size=3,
        unique=True,
    ).map(tuple),
    exclude_categories=st.lists(st.sampled_from(["Toys", "Home > Kitchen"]), max_size=1).map(tuple),
    pins=st.lists(
        st.tuples(st.integers(0, N_ITEMS - 1), st.integers(1, 12)),
        max_size=3,
        unique_by=(lambda t: t[0], lambda t: t[1]),
    ).map(lambda ps: tuple(Pin(item=f"SKU{i}", position=p) for i, p in ps)),
)


class RerankerConformance:
    """Mix into a ``Test...`` class; set ``strategy`` (and ``params``)."""

    strategy: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    strengths: ClassVar[tuple[float, ...]] = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)

    def make(self, strength: float | None = None, **extra: Any) -> Pipeline:
        cfg = parse_config({"strategy": self.strategy, **self.params, **extra})
        if strength is not None:
            cfg = cfg.with_strength(strength)
        return build(cfg)

    def monotone_metric(self, ctx: Context, r: Ranked) -> float:
        return tail_share(ctx, r)

    # ------------------------------------------------------------------ structure

    @HYPO
    @given(data=pools, k=st.integers(1, 25), frac=st.floats(0, 1), user=st.integers(-1, N_USERS))
    def test_subset_unique_and_length(self, data, k, frac, user) -> None:
        items, scores = data
        cand = Candidates(np.array(items, dtype=int), np.array(scores))
        strength = frac * type(self.make().config).STRENGTH_MAX
        r = self.make(strength).rerank(cand, shop(), None if user < 0 else user, k)
        assert len(r) == min(k, len(items))
        assert len(set(r.items.tolist())) == len(r)
        assert set(r.items.tolist()) <= set(items)
        assert len(r.reasons) == len(r.scores) == len(r.base_scores) == len(r)
        # Base ranks and scores point back into the pool.
        assert np.array_equal(cand.items[r.base_ranks - 1], r.items)
        assert np.array_equal(cand.scores[r.base_ranks - 1], r.base_scores)

    @HYPO
    @given(data=pools, k=st.integers(1, 25), user=st.integers(0, N_USERS - 1))
    def test_strength_zero_is_base_order(self, data, k, user) -> None:
        items, scores = data
        cand = Candidates(np.array(items, dtype=int), np.array(scores))
        r = self.make(0.0).rerank(cand, shop(), user, k)
        assert r.items.tolist() == cand.items[:k].tolist()
        assert all(x == "base rank" for x in r.reasons)

    def test_k_larger_than_pool(self) -> None:
        cand = pool(0, m=7)
        r = self.make().rerank(cand, shop(), 0, 10)
        assert sorted(r.items.tolist()) == sorted(cand.items.tolist())

    def test_empty_pool(self) -> None:
        r = self.make().rerank(Candidates(np.zeros(0, int), np.zeros(0)), shop(), 0, 10)
        assert len(r) == 0

    def test_strength_does_not_lower_the_target(self) -> None:
        ctx = shop()
        means = []
        for s in self.strengths:
            pipe = self.make(s * type(self.make().config).STRENGTH_MAX)
            vals = [
                self.monotone_metric(ctx, pipe.rerank(pool(u), ctx, u, 10)) for u in range(N_USERS)
            ]
            means.append(float(np.mean(vals)))
        assert all(b >= a - 1e-9 for a, b in zip(means, means[1:], strict=False)), means
        assert means[-1] > means[0], means

    def test_batch_matches_single(self) -> None:
        ctx = shop()
        pipe = self.make()
        pools_ = [pool(u, m=50) for u in range(5)]
        items = np.stack([p.items for p in pools_])
        scores = np.stack([p.scores for p in pools_])
        batch = rerank_batch(pipe, items, scores, ctx, list(range(5)), 10)
        for u in range(5):
            single = pipe.rerank(pools_[u], ctx, u, 10)
            assert batch.items[u].tolist() == single.items.tolist()
            assert batch.row(u).reasons == single.reasons

    # ------------------------------------------------------------------ rules

    @HYPO
    @given(rules=rules_st, user=st.integers(0, N_USERS - 1), k=st.integers(1, 15))
    def test_rules_never_violated(self, rules, user, k) -> None:
        ctx = shop()
        cand = pool(user, m=80)
        pipe = self.make(rules=rules.model_dump())
        r = pipe.rerank(cand, ctx, user, k)
        mask = item_mask(rules, ctx)
        assert mask[r.items].all()
        assert len(set(r.items.tolist())) == len(r)
        pinned = {ctx.item_index(p.item): p.position for p in rules.pins}
        allowed = set(cand.items.tolist()) | set(pinned)
        assert set(r.items.tolist()) <= allowed
        eligible = int(mask[cand.items].sum()) + sum(
            1 for i, pos in pinned.items() if mask[i] and pos <= k and i not in cand.items
        )
        assert len(r) == min(k, eligible)
        for i, pos in pinned.items():
            if mask[i] and pos <= len(r):
                # A pin holds its position unless fewer items than pos survived before it.
                assert r.items[pos - 1] == i, (i, pos, r.items)
                assert r.reasons[pos - 1].startswith("pinned by rule")
