"""The batched MMR gives the lists of the per-user greedy it replaced, user by user."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ltrec.rerank import Candidates, Context, rerank_batch
from ltrec.rerank.base import PAD, minmax
from ltrec.rerank.pipeline import Pipeline, parse_config
from ltrec.rerank.strategies import MMR
from tests.rerank.conformance import HYPO


def _reference(cand: Candidates, context: Context, k: int, lam: float, by: str):
    """The per-user MMR as it was before batching (one matrix-vector product per step)."""
    n = min(k, len(cand))
    if lam == 0 or n == 0:
        return cand.items[:n].tolist(), cand.scores[:n].tolist()
    rel = minmax(cand.scores)
    if by == "embedding" and context.embedding is None:
        by = "category"
    if by == "embedding":
        emb = context.embedding[cand.items]
    else:
        cat = context.category[cand.items]
    max_sim = np.zeros(len(cand))
    free = np.ones(len(cand), dtype=bool)
    picked, final = [], []
    for step in range(n):
        obj = np.where(free, (1 - lam) * rel - lam * max_sim, -np.inf)
        pos = int(np.argmax(obj))
        picked.append(pos)
        final.append(float(obj[pos]))
        free[pos] = False
        if step + 1 < n:
            if by == "embedding":
                sim = emb @ emb[pos]
            else:
                sim = ((cat == cat[pos]) & (cat >= 0)).astype(float)
            np.maximum(max_sim, sim, out=max_sim)
    return cand.items[picked].tolist(), final


def _shop(seed: int, n_items: int = 150) -> Context:
    rng = np.random.default_rng(seed)
    cat = rng.integers(-1, 5, n_items)  # -1: unknown category (never similar)
    centres = rng.normal(size=(5, 12))
    emb = centres[np.maximum(cat, 0)] + 0.7 * rng.normal(size=(n_items, 12))
    return Context.from_data(
        rng.integers(0, 100, n_items),
        tail=rng.random(n_items) < 0.6,
        category=cat,
        embedding=emb,
        n_users=1,
    )


class _NoTable(MMR):
    MAX_TABLE = 0  # every step from the pool embeddings (the path of a large catalogue)


@HYPO
@given(
    seed=st.integers(0, 10_000),
    users=st.integers(1, 40),
    k=st.integers(1, 25),
    lam=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.9, 1.0]),
    by=st.sampled_from(["embedding", "category"]),
    ties=st.booleans(),
)
def test_batched_lists_equal_the_per_user_greedy(seed, users, k, lam, by, ties) -> None:
    ctx = _shop(seed % 7)
    rng = np.random.default_rng(seed)
    width = int(rng.integers(0, 80))
    items = np.full((users, width), PAD, dtype=np.int64)
    scores = np.full((users, width), -np.inf)
    for u in range(users):
        m = int(rng.integers(0, width + 1))  # pools of different lengths, padded
        items[u, :m] = rng.choice(ctx.n_items, m, replace=False)
        # tied scores (0/1) make the similarity and the base order decide
        scores[u, :m] = rng.integers(0, 2, m) if ties else rng.normal(size=m)
    cfg = parse_config({"strategy": "mmr", "lambda": lam, "by": by})
    for strategy in (MMR(cfg), _NoTable(cfg)):
        pipe = Pipeline(cfg)
        pipe.strategy = strategy
        batch = rerank_batch(pipe, items, scores, ctx, [None] * users, k)
        for u in range(users):
            want, final = _reference(Candidates.from_row(items[u], scores[u]), ctx, k, lam, by)
            got = batch.row(u)
            assert got.items.tolist() == want
            assert np.allclose(got.scores, final, rtol=0, atol=1e-6)


def test_table_path_is_taken_for_many_users_of_a_small_catalogue() -> None:
    """The one-product similarity table is what an evaluation uses (demo-sized catalogue)."""
    ctx = _shop(1)
    rng = np.random.default_rng(3)
    pools = [Candidates(rng.choice(150, 60, replace=False), rng.normal(size=60)) for _ in range(50)]
    cfg = parse_config({"strategy": "mmr", "lambda": 0.4})
    calls: list[object] = []

    class Spy(MMR):
        def _greedy(self, pools, context, by, k, table):
            calls.append(table)
            return super()._greedy(pools, context, by, k, table)

    Spy(cfg).rerank_many(pools, ctx, [None] * 50, 10)
    assert len(calls) == 1 and calls[0] is not None
    calls.clear()
    Spy(cfg).rerank(pools[0], ctx, None, 10)  # one user: per-step products, no table
    assert calls == [None]


def test_with_rules_each_user_is_ranked_on_the_filtered_pool() -> None:
    """Rules change each pool, so the batch goes user by user: the same lists as one by one."""
    from tests.rerank.conformance import pool, shop

    ctx = shop()
    pipe = Pipeline(parse_config({"strategy": "mmr", "lambda": 0.5, "rules": {"in_stock": True}}))
    pools = [pool(u, m=60) for u in range(6)]
    batch = rerank_batch(
        pipe,
        np.stack([p.items for p in pools]),
        np.stack([p.scores for p in pools]),
        ctx,
        list(range(6)),
        10,
    )
    for u in range(6):
        single = pipe.rerank(pools[u], ctx, u, 10)
        assert batch.row(u).items.tolist() == single.items.tolist()
        assert ctx.in_stock[batch.row(u).items].all()
