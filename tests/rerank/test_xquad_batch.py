"""The batched xQuAD (both variants) gives the lists and scores of the per-user greedy."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ltrec.rerank import Candidates, Context, rerank_batch
from ltrec.rerank.base import PAD
from ltrec.rerank.pipeline import Pipeline, parse_config
from tests.rerank.conformance import HYPO


def _shop(seed: int, n_items: int = 120, n_users: int = 30) -> Context:
    rng = np.random.default_rng(seed)
    tail = rng.random(n_items) < 0.6
    history = [rng.choice(n_items, int(rng.integers(0, 8)), replace=False) for _ in range(n_users)]
    return Context.from_data(rng.integers(0, 100, n_items), tail=tail, history=history)


@HYPO
@given(
    seed=st.integers(0, 10_000),
    users=st.integers(1, 30),
    k=st.integers(1, 25),
    lam=st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]),
    variant=st.sampled_from(
        [
            {"strategy": "xquad"},
            {"strategy": "xquad", "personalised": False, "smooth": False},
            {"strategy": "xquad_personal"},
            {"strategy": "xquad_personal", "shrink": 5.0, "smooth": False},
        ]
    ),
    ties=st.booleans(),
)
def test_batched_lists_equal_the_per_user_greedy(seed, users, k, lam, variant, ties) -> None:
    ctx = _shop(seed % 5)
    rng = np.random.default_rng(seed)
    width = int(rng.integers(0, 60))
    items = np.full((users, width), PAD, dtype=np.int64)
    scores = np.full((users, width), -np.inf)
    for u in range(users):
        m = int(rng.integers(0, width + 1))
        items[u, :m] = rng.choice(ctx.n_items, m, replace=False)
        scores[u, :m] = rng.integers(0, 2, m) if ties else rng.normal(size=m)
    who = [None if u % 7 == 6 else u for u in range(users)]  # some users without an index
    pipe = Pipeline(parse_config({**variant, "lambda": lam}))
    batch = rerank_batch(pipe, items, scores, ctx, who, k)
    for u in range(users):
        one = pipe.strategy.rerank(Candidates.from_row(items[u], scores[u]), ctx, who[u], k)
        got = batch.row(u)
        assert got.items.tolist() == one.items.tolist()
        assert got.scores.tolist() == one.scores.tolist()
        assert got.reasons == one.reasons
