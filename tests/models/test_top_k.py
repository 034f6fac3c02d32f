"""``ltrec.models.base.top_k``, the top-k of every list (recommend, recommend_history), against a
brute-force sort: best first, ties to the lower index, -inf never returned."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ltrec.models.base import top_k


def brute(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n, m = scores.shape
    kk = min(k, m)
    idx = np.full((n, kk), -1, dtype=np.int64)
    vals = np.full((n, kk), -np.inf, dtype=np.float32)
    for r in range(n):
        order = sorted(range(m), key=lambda j: (-scores[r, j], j))[:kk]
        for c, j in enumerate(order):
            vals[r, c] = scores[r, j]
            idx[r, c] = j if np.isfinite(scores[r, j]) else -1
    return idx, vals


# Few distinct values (many ties) and some -inf (masked items), as masked model scores are.
cells = st.sampled_from([-np.inf, 0.0, 0.5, 1.0, 2.0, 3.5])


@settings(max_examples=300, deadline=None)
@given(
    scores=st.tuples(st.integers(1, 4), st.integers(1, 40)).flatmap(
        lambda shape: arrays(np.float32, shape, elements=cells)
    ),
    k=st.integers(1, 50),
)
def test_top_k_is_the_brute_force_order(scores: np.ndarray, k: int) -> None:
    idx, vals = top_k(scores, k)
    want_idx, want_vals = brute(scores, k)
    assert np.array_equal(idx, want_idx)
    assert np.array_equal(vals, want_vals)


def test_top_k_breaks_a_tie_at_the_boundary_by_the_lower_index() -> None:
    s = np.array([[1.0, 3.0, 2.0, 2.0, 2.0, 0.5]], dtype=np.float32)
    idx, vals = top_k(s, 3)
    assert idx.tolist() == [[1, 2, 3]] and vals.tolist() == [[3.0, 2.0, 2.0]]
