"""EASE: Embarrassingly Shallow Autoencoder (Steck 2019, "Embarrassingly Shallow Autoencoders
for Sparse Data", WWW).

Closed form: G = X^T X + lambda I, P = G^-1, B = I - P diag(1 / diag(P)) (so B_ij = -P_ij / P_jj
off the diagonal and diag(B) = 0); scores = X B. It needs the dense item-item Gram matrix, so it
is fitted on the items that have training interactions (the others have zero columns and would
only add zero rows) and refuses, with a clear :class:`ModelError`, when that matrix does not fit
in ``max_memory_gb``.

Speed. G is symmetric positive definite (lambda > 0), so P comes from a Cholesky factorisation
and its inverse (LAPACK ``potrf`` + ``potri``, in place: about n^3 / 3 + 2 n^3 / 3 flops, a third
of the LU route's 2 n^3), in float32 by default (half the memory, twice the BLAS throughput; B
agrees with float64 to ~1e-4). ``max_items`` caps the fitted items at the N most popular ones
(distinct training users, ties by total weight): the cost grows as N^3, and the items left out
each have only a handful of buyers, so they carry little co-occurrence signal anyway.

Unfitted items (no interactions, or beyond ``max_items``) are scored by the popularity fallback,
placed below the user's lowest fitted score: ``floor - 1 + pop_i / (max pop + 1)`` with ``floor``
the user's minimum fitted score, so they rank last, in popularity order, and stay finite.

Repeat consumption. diag(B) = 0 by construction, so EASE can never say "you will buy this again
because you bought it before"; on repeat-purchase data the user's own frequency and global
popularity are blended in (:func:`ltrec.models.repeat.repeat_blend`; weights in :class:`EASE`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import scipy.linalg
from pydantic import Field

from ltrec.errors import MemoryLimitError, ModelError
from ltrec.models.base import Recommender, RepeatConfig, score_shares
from ltrec.progress import Progress, report

if TYPE_CHECKING:
    from ltrec.models.data import InteractionData

#: Dense n x n matrices alive at the peak of the fit: G is factorised and inverted in place
#: (LAPACK potrf + potri) and B is formed in place, so one dense matrix plus a transposed block
#: and the sparse Gram; 2 leaves room for BLAS workspace and the scoring copy.
_PEAK_MATRICES = 2
#: Rows per block when the upper triangle of P is mirrored into the lower one.
_SYM_BLOCK = 1024
#: Up to this many users are scored by gathering rows of B (see EASE._score_history).
_GATHER_ROWS = 8


class EASEConfig(RepeatConfig):
    lambda_: float = Field(
        200.0, ge=0.0, le=1e7, description="L2 regularisation lambda on B (Steck 2019)."
    )
    max_memory_gb: float = Field(
        2.5,
        ge=0.01,
        le=1024.0,
        description="Memory budget for the dense item-item matrices (2.5 keeps the whole fit "
        "within the 3 GB a command may take, issue 19).",
    )
    binary: bool = Field(True, description="Use 0/1 interactions (as in the paper).")
    precision: Literal["float64", "float32"] = Field(
        "float32", description="float64 doubles the memory and roughly the time."
    )
    max_items: int | None = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="Fit on at most this many most popular items (None: every item with "
        "interactions); the rest are scored by popularity below them. 10,000 keeps the fit "
        "to seconds on 2 cores (cost ~ N^3) and leaves the demo shop (~2-3k items) whole.",
    )


def max_items(budget_gb: float, precision: str = "float64") -> int:
    """The largest item count whose dense Gram matrix (inverted in place) fits ``budget_gb``."""
    size = np.dtype(precision).itemsize
    return int(np.sqrt(budget_gb * 1024**3 / (_PEAK_MATRICES * size)))


def _spd_inverse(g: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite Fortran-ordered matrix, in place (Cholesky).

    ``potri`` writes only the upper triangle; it is mirrored block by block so no n^2 index
    arrays or second n x n matrix are made.
    """
    lapack = scipy.linalg.get_lapack_funcs(("potrf", "potri"), (g,))
    potrf, potri = cast("tuple[Any, Any]", lapack)  # a tuple of names gives a tuple
    c, info = potrf(g, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"potrf failed (info={info})")
    p, info = potri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"potri failed (info={info})")
    n = p.shape[0]
    for start in range(0, n, _SYM_BLOCK):
        stop = min(n, start + _SYM_BLOCK)
        # Rows start:stop below the diagonal block <- the columns above it, transposed.
        p[start:stop, :start] = p[:start, start:stop].T
        blk = p[start:stop, start:stop]
        p[start:stop, start:stop] = np.triu(blk) + np.triu(blk, 1).T
    return p


class EASE(Recommender):
    """Closed-form linear item-item model; see the module docstring.

    Its repeat-purchase defaults (w = 0.3, g = 0.6) and how they were chosen: see
    :class:`~ltrec.models.base.RepeatConfig`.
    """

    name = "ease"
    config_cls = EASEConfig
    config: EASEConfig  # the instance of config_cls that __init__ makes
    repeat_default = 0.3
    popularity_default = 0.6
    live_history = True  # score = history @ B: a new event changes the scores at once
    contribution_method = "exact"

    def _fit(self, data: InteractionData, progress: Progress | None) -> None:
        cfg = self.config
        active = np.flatnonzero(np.diff(self.seen_.tocsc().indptr) > 0)
        if cfg.max_items is not None and len(active) > cfg.max_items:
            # The N most popular items (pop_ ranks by distinct users, ties by weight).
            order = np.lexsort((active, -self.pop_[active]))
            active = np.sort(active[order[: cfg.max_items]])
        limit = max_items(cfg.max_memory_gb, cfg.precision)
        if len(active) > limit:
            need = _PEAK_MATRICES * np.dtype(cfg.precision).itemsize * len(active) ** 2 / 1024**3
            raise MemoryLimitError(
                f"EASE cannot hold {len(active):,} items in a {cfg.max_memory_gb:g} GB memory "
                f"budget (it needs about {need:,.1f} GB; at most {limit:,} items fit)",
                hint="set max_items (--set max_items=...) to fit the most popular items only, "
                "raise max_memory_gb (--set max_memory_gb=...) if the machine has the memory, "
                "or use itemknn or als, which scale to large catalogues",
            )
        x = self._input(self.seen_)[:, active]
        report(progress, 0.1, f"Gram matrix of {len(active):,} items")
        gram = (x.T @ x).astype(cfg.precision)
        g = gram.toarray(order="F")
        del gram
        g[np.diag_indices_from(g)] += cfg.lambda_
        report(progress, 0.4, f"inverting {len(active):,} x {len(active):,}")
        try:
            p = _spd_inverse(g)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ModelError(
                "EASE's Gram matrix is not positive definite (numerically singular)",
                hint="use a larger lambda_ (--set lambda_=500) or precision=float64",
            ) from exc
        del g
        p /= -np.diag(p)  # B_ij = -P_ij / P_jj, in place (column j divided by P_jj)
        p[np.diag_indices_from(p)] = 0.0
        self.active_ = active.astype(np.int64)
        self.b_ = np.asarray(p, dtype=np.float32)

    def _input(self, x):  # noqa: ANN001, ANN202 - csr in, csr out
        if self.config.binary:
            x = x.copy()
            x.data[:] = 1.0
        return x

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._score_history(self.seen_[users], users, items)

    def _score_history(self, x, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:  # noqa: ANN001
        x = self._input(x[:, self.active_])
        if x.shape[0] <= _GATHER_ROWS:
            # A few users (one request): add up the history's rows of B. scipy's sparse @
            # dense would first copy all of B (Fortran-ordered) into C order: 27 ms a call
            # at 2,000 items, 0.3 ms this way.
            s_active = np.zeros((x.shape[0], self.b_.shape[1]), dtype=np.float32)
            for r in range(x.shape[0]):
                lo, hi = x.indptr[r], x.indptr[r + 1]
                s_active[r] = x.data[lo:hi] @ self.b_[x.indices[lo:hi]]
        else:
            s_active = np.asarray(x @ self.b_, dtype=np.float32)
        # Unfitted items: the popularity fallback, below every fitted score, finite.
        floor = s_active.min(axis=1, keepdims=True) - 1.0 if s_active.size else 0.0
        full = np.empty((x.shape[0], self.n_items_), dtype=np.float32)
        full[:] = floor + (self.pop_ / (self.pop_.max() + 1.0)).astype(np.float32)
        full[:, self.active_] = s_active
        return full if items is None else full[:, items]

    def _contribution_matrix(self, x, hist: np.ndarray, items: np.ndarray) -> np.ndarray:  # noqa: ANN001
        """Exact: score(i) = sum_j x_j B[j, i] over the fitted items, so history item j's
        share is x_j B[j, i] / score(i). Unfitted items (scored by popularity) and unfitted
        history items contribute nothing."""
        pos = np.full(self.n_items_, -1, dtype=np.int64)
        pos[self.active_] = np.arange(len(self.active_))
        h, c = pos[hist], pos[items]
        xj = self._input(x).toarray()[0, hist]
        terms = np.zeros((len(items), len(hist)), dtype=np.float64)
        ok_h, ok_c = h >= 0, c >= 0
        sub = self.b_[np.ix_(h[ok_h], c[ok_c])].T.astype(np.float64) * xj[ok_h][None, :]
        terms[np.ix_(ok_c, ok_h)] = sub
        return score_shares(terms)

    def _state(self) -> dict[str, np.ndarray]:
        return {"active": self.active_, "b": self.b_}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.active_ = np.asarray(arrays["active"], dtype=np.int64)
        self.b_ = np.asarray(arrays["b"], dtype=np.float32)
