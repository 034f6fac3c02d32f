"""Contributions (interface contract A) on a toy matrix worked out by hand.

Four users, four items p q r s (every event a purchase; item-kNN and EASE read it as 0/1)::

         p  q  r  s
    u0   1  1  .  .
    u1   1  1  1  .
    u2   .  1  1  .
    u3   .  .  1  1

Co-occurrence X^T X = [[2,2,1,0],[2,3,2,0],[1,2,3,1],[0,0,1,1]].

Item-kNN (shrinkage 0): cos(p,q) = 2/sqrt(6), cos(p,r) = 1/sqrt(6), cos(q,r) = 2/3,
cos(r,s) = 1/sqrt(3), the rest 0.

EASE (lambda 1): G = X^T X + I, and 24 G^-1 = [[12,-6,0,0],[-6,11.4,-4.8,2.4],[0,-4.8,9.6,-4.8],
[0,2.4,-4.8,14.4]] (check: G @ that = 24 I), so B_ij = -P_ij / P_jj gives B[p,q] = 6/11.4 =
10/19, B[r,q] = 4.8/11.4 = 8/19, B[p,r] = 0, B[q,r] = 1/2, B[p,s] = 0, B[q,s] = -1/6,
B[r,s] = 1/3, B[q,p] = 6/12 = 1/2, B[r,p] = 0.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltrec.errors import ModelError
from ltrec.models.als import ALS
from ltrec.models.base import Contributions
from ltrec.models.data import InteractionData
from ltrec.models.ease import EASE
from ltrec.models.itemknn import ItemKNN
from ltrec.models.popularity import Popularity
from tests.models.conformance import conformance_data

PAIRS = [
    ("u0", "p"),
    ("u0", "q"),
    ("u1", "p"),
    ("u1", "q"),
    ("u1", "r"),
    ("u2", "q"),
    ("u2", "r"),
    ("u3", "r"),
    ("u3", "s"),
]
P, Q, R, S = range(4)


@pytest.fixture(scope="module")
def toy() -> InteractionData:
    t0 = pd.Timestamp("2024-01-01")
    events = pd.DataFrame(
        [(u, i, "purchase", t0 + pd.Timedelta(minutes=n)) for n, (u, i) in enumerate(PAIRS)],
        columns=["user_id", "item_id", "event_type", "ts"],
    )
    data = InteractionData.from_frame(events)
    assert data.item_ids.tolist() == ["p", "q", "r", "s"]
    return data


def history(*items: int, weight: float = 5.0) -> np.ndarray:
    h = np.zeros(4, np.float32)
    h[list(items)] = weight
    return h


def close(got: Contributions, method: str, rows: list[list[tuple[int, float]]]) -> None:
    assert got.method == method
    assert [[j for j, _ in r] for r in got.rows] == [[j for j, _ in r] for r in rows]
    for g, w in zip(got.rows, rows, strict=True):
        np.testing.assert_allclose([v for _, v in g], [v for _, v in w], rtol=1e-5)


def test_itemknn_shares(toy: InteractionData) -> None:
    model = ItemKNN(shrinkage=0.0).fit(toy)
    # History {p, q}: score(r) = 1/sqrt(6) + 2/3; s has no neighbour in it; p is explained
    # by q alone (an item never explains itself).
    total = 1 / math.sqrt(6) + 2 / 3
    got = model.contributions(history(P, Q), [R, S, P])
    close(got, "exact", [[(Q, (2 / 3) / total), (P, (1 / math.sqrt(6)) / total)], [], [(Q, 1.0)]])
    # top=1 keeps the larger share only; a cart (weight 3) reads the same (binary input).
    close(model.contributions(history(P, Q, weight=3.0), [R], top=1), "exact", [[(Q, 0.6202041)]])


def test_ease_shares(toy: InteractionData) -> None:
    model = EASE(lambda_=1.0, precision="float64").fit(toy)
    # History {p, r}: score(q) = 10/19 + 8/19, so p 5/9 and r 4/9; score(s) = 0 + 1/3: r all.
    got = model.contributions(history(P, R), [Q, S])
    close(got, "exact", [[(P, 5 / 9), (R, 4 / 9)], [(R, 1.0)]])
    # History {q, r}: score(s) = -1/6 + 1/3 = 1/6; r's share is 2 (q pulls the score down
    # and, being negative, is not listed); score(p) = B[q,p] + B[r,p] = 6/12 + 0: q all.
    got = model.contributions(history(Q, R), [S, P])
    close(got, "exact", [[(R, 2.0)], [(Q, 1.0)]])
    # History {q}: score(s) = -1/6 < 0: nothing explains it.
    assert model.contributions(history(Q), [S]).rows == ((),)


def test_popularity_has_no_history_reasons(toy: InteractionData) -> None:
    got = Popularity().fit(toy).contributions(history(P, Q), [R, S])
    assert got == Contributions("none", ((), ()))


def test_als_shares_are_implicits_explain() -> None:
    """ALS: each history item's part is implicit's ``explain`` contribution, as a share of the
    re-solved score (their sum)."""
    from implicit.cpu.als import AlternatingLeastSquares

    data = conformance_data()
    model = ALS(factors=4, iterations=10, regularization=0.01, alpha=5.0, seed=3).fit(data)
    ref = AlternatingLeastSquares(factors=4, regularization=0.01, alpha=5.0)
    ref.user_factors = model.user_factors_.copy()
    ref.item_factors = model.item_factors_.copy()
    u = data.user_index["uT"]
    row = data.matrix[u]
    a3 = data.item_index["a3"]
    total, top, _ = ref.explain(0, row.astype(np.float32), a3, N=2)
    np.testing.assert_allclose(model.score_history(row)[0, a3], total, rtol=1e-4)
    got = model.contributions(row, [a3], top=2)
    assert got.method == "exact"
    assert [j for j, _ in got.rows[0]] == [j for j, _ in top]
    np.testing.assert_allclose([v for _, v in got.rows[0]], [s / total for _, s in top], rtol=1e-3)


def test_bad_contribution_inputs(toy: InteractionData) -> None:
    model = ItemKNN(shrinkage=0.0).fit(toy)
    with pytest.raises(ModelError, match="one history"):
        model.contributions(np.ones((2, 4)), [R])
    with pytest.raises(ModelError, match="positive integer"):
        model.contributions(history(P), [R], top=0)
    with pytest.raises(ModelError, match="out of range"):
        model.contributions(history(P), [4])
    assert model.contributions(history(P), []).rows == ()


@settings(max_examples=50, deadline=None)
@given(
    weights=st.lists(st.sampled_from([0.0, 1.0, 3.0, 5.0]), min_size=10, max_size=10),
    top=st.integers(1, 10),
)
def test_itemknn_shares_rebuild_the_score(weights, top) -> None:  # noqa: ANN001
    """Any history: with every history item listed the shares sum to 1 for each item that has
    a positive score, and share x score is that item's term x_j S[j, i] (here weighted)."""
    h = np.asarray(weights, np.float32)
    got = _WEIGHTED.contributions(h, np.arange(10), top=top)
    s = _WEIGHTED.score_history(h) if h.any() else np.zeros(10, np.float32)
    sim = _WEIGHTED.sim_.toarray()
    for i, pairs in enumerate(got.rows):
        assert len(pairs) <= top
        for j, share in pairs:
            assert h[j] > 0 and j != i
            np.testing.assert_allclose(share * s[i], h[j] * sim[j, i], rtol=1e-4, atol=1e-6)
        n_terms = int(((h > 0) & (sim[:, i] > 0) & (np.arange(10) != i)).sum())
        if top >= n_terms and s[i] > 0:
            np.testing.assert_allclose(sum(v for _, v in pairs), 1.0, rtol=1e-5)


_WEIGHTED = ItemKNN(neighbours=5, shrinkage=1.0, binary=False).fit(conformance_data())
