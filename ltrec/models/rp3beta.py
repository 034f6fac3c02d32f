"""RP3beta: a three-step random walk on the user-item graph, re-weighted against popularity.

P3 (Cooper et al. 2014) scores item j for user u by the probability that a random walk of three
steps, user -> item -> user -> item, started at u ends at j. P3alpha (Christoffel et al. 2015,
"Blockbusters and Wallflowers: Accurate, Diverse, and Scalable Recommendations with Random
Walks", RecSys) raises every transition probability to the power alpha. RP3beta (Paudel,
Christoffel, Newell & Bernstein 2016, "Updatable, Accurate, Diverse, and Scalable Recommendations
for Interactive Applications", ACM TiiS) divides the item-to-item probability of reaching j by
pop(j)^beta, so a popular item is reached less often only because it is popular: with beta > 0
tail items climb, which is what makes it a strong tail-aware baseline (Dacrema et al. 2019 found
it among the best tuned non-neural models).

With X the 0/1 user-item matrix, d_u and d_i user and item degrees::

    P_ui = (X / d_u)^alpha            (user -> item, row-normalised, element-wise power)
    P_iu = (X^T / d_i)^alpha          (item -> user)
    W[i, j] = (P_iu P_ui)[i, j] / d_j^beta,   W[i, i] = 0,   top ``neighbours`` per row i
    score(u, j) = sum_i x_ui W[i, j]

which is the item-item form of the walk used by the reference implementation of Dacrema et al.
2019 (``RP3betaRecommender``): the user's first step is folded into the history row x_u, so a
score follows a changed history at once (``live_history``) and the history items behind a score
are exact (``x_ui W[i, j]``).

Repeat consumption: W has a zero diagonal, so on repeat-purchase data the user's own frequency
and popularity are blended in as for item-kNN (:func:`ltrec.models.repeat.repeat_blend`); the
weights are item-kNN's (0.3, 0.6), the same family of item-item model, not tuned separately.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from ltrec.models.base import RepeatConfig, SimilarityModel
from ltrec.progress import Progress, report

if TYPE_CHECKING:
    from ltrec.models.data import InteractionData

#: Source items whose walk rows are computed at once: bounds the dense block.
_BLOCK_ITEMS = 2048


class RP3betaConfig(RepeatConfig):
    alpha: float = Field(
        1.0, ge=0.0, le=3.0, description="Exponent alpha on each transition probability."
    )
    beta: float = Field(
        0.5,
        ge=0.0,
        le=2.0,
        description="Popularity penalty: the walk's arrival at item j is divided by "
        "pop(j)^beta (0: P3alpha).",
    )
    neighbours: int = Field(100, ge=1, le=5000, description="Neighbours kept per item.")
    binary: bool = Field(True, description="Use 0/1 interactions instead of event weights.")


def prune_rows(w: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of every row (ties: the lower column index)."""
    w = sp.csr_matrix(w)
    w.sort_indices()
    rows, cols, vals = [], [], []
    for r in range(w.shape[0]):
        lo, hi = w.indptr[r], w.indptr[r + 1]
        c, v = w.indices[lo:hi], w.data[lo:hi]
        if len(v) > k:
            keep = np.lexsort((c, -v))[:k]  # by value desc, then column asc
            c, v = c[keep], v[keep]
        rows.append(np.full(len(c), r, dtype=np.int64))
        cols.append(c.astype(np.int64))
        vals.append(v)
    if not rows:
        return sp.csr_matrix(w.shape, dtype=np.float32)  # type: ignore[arg-type]  # scipy-stubs type an empty (shape-only) matrix as float64, bool or int
    out = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=w.shape
    )
    out.sort_indices()
    return out


def rp3beta_matrix(
    x: sp.csr_matrix,
    alpha: float,
    beta: float,
    neighbours: int,
    progress: Progress | None = None,
) -> sp.csr_matrix:
    """The item-item matrix W of RP3beta (see the module docstring) from a user-item matrix.

    Args:
        x: ``[n_users, n_items]`` non-negative interactions (0/1 or weights).
        alpha: exponent on the transition probabilities.
        beta: popularity exponent; item degree = distinct users (non-zeros in its column).
        neighbours: entries kept per row (source item).

    Returns:
        float32 CSR ``[n_items, n_items]``, zero diagonal, at most ``neighbours`` per row.
    """
    x = sp.csr_matrix(x, dtype=np.float64)
    x.eliminate_zeros()
    n = x.shape[1]
    p_ui = _row_normalised(x)
    p_iu = _row_normalised(sp.csr_matrix(x.T))
    if alpha != 1.0:
        p_ui.data **= alpha
        p_iu.data **= alpha
    degree = np.diff(x.tocsc().indptr).astype(np.float64)
    # 1 / d_j^beta; an item nobody reached stays 0 (its column of W is empty anyway).
    penalty = np.zeros(n)
    penalty[degree > 0] = degree[degree > 0] ** -beta
    blocks = []
    for start in range(0, n, _BLOCK_ITEMS):
        stop = min(n, start + _BLOCK_ITEMS)
        blk = sp.csr_matrix(p_iu[start:stop] @ p_ui)  # [block, n]: two-step walk from i
        blk = sp.csr_matrix(blk @ sp.diags(penalty))
        blk.setdiag(0.0, k=start)  # an item is not its own neighbour
        blk.eliminate_zeros()
        blocks.append(prune_rows(blk, neighbours))
        report(progress, stop / n, f"random-walk rows {stop:,}/{n:,}")
    out = sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((n, n))
    return sp.csr_matrix(out, dtype=np.float32)


def _row_normalised(m: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(m.sum(axis=1)).ravel()
    inv = np.zeros_like(sums)
    inv[sums > 0] = 1.0 / sums[sums > 0]
    return sp.csr_matrix(sp.diags(inv) @ m)


class RP3beta(SimilarityModel):
    """Popularity-penalised three-step random walk (see the module docstring).

    Its repeat-purchase defaults (w = 0.3, g = 0.6) are item-kNN's; see
    :class:`~ltrec.models.base.RepeatConfig`.
    """

    name = "rp3beta"
    config_cls = RP3betaConfig
    config: RP3betaConfig  # the instance of config_cls that __init__ makes
    live_history = True  # score = history @ S: a new event changes the scores at once
    contribution_method = "exact"
    repeat_default = 0.3
    popularity_default = 0.6

    def _fit(self, data: InteractionData, progress: Progress | None) -> None:
        cfg = self.config
        self.sim_ = rp3beta_matrix(
            self._input(self.seen_), cfg.alpha, cfg.beta, cfg.neighbours, progress
        )

    def _input(self, x: sp.csr_matrix) -> sp.csr_matrix:
        x = sp.csr_matrix(x, dtype=np.float32)
        if self.config.binary:
            x = x.copy()
            x.data[:] = np.where(x.data > 0, 1.0, 0.0)
            x.eliminate_zeros()
        return x
