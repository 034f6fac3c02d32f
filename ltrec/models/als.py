"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008, "Collaborative Filtering for Implicit
Feedback Datasets", ICDM) via the ``implicit`` library (CPU solver).

Confidence c_ui = 1 + alpha * r_ui with r_ui the summed event weight; preference p_ui = 1 where
r_ui > 0. Minimises sum_ui c_ui (p_ui - x_u . y_i)^2 + reg (||x_u||^2 + ||y_i||^2) by
alternating least squares (conjugate-gradient steps, Takacs et al. 2011). Scores = x_u . y_i.
The library's BLAS threads are pinned to 1 during the fit (threadpoolctl), as ``implicit`` asks,
so its own threads do not oversubscribe the cores.

Repeat consumption. x_u . y_i reconstructs the 0/1 preference p_ui, so every item a user bought
scores near 1 whether it was bought once or ten times: the confidence c_ui only weighs the
squared error, it does not rank re-buys; and without item biases its factors rank the staples
everyone buys poorly. On repeat-purchase data the user's own purchase frequency and global
popularity are blended in (:func:`ltrec.models.repeat.repeat_blend`; weights in :class:`ALS`).

Scoring from a history (live events, users new to training). The user factor is solved from
the history by the same closed form as ``implicit``'s ``recalculate_user`` (Hu et al. 2008,
eq. 4, with the library's confidence c_j = alpha * r_j):

    x_u = (Y^T Y + reg I + sum_j (c_j - 1) y_j y_j^T)^-1 sum_j c_j y_j

It equals the fitted factor only approximately: the fit takes a few conjugate-gradient steps
per sweep against the previous sweep's item factors, not the exact solve against the final
ones (conformance fixture: within 5% of the user's largest score; demo shop: the top 10 from
the history share 97.7% of their items with the fitted top 10, in the same order for 24% of
users, ``benchmarks/bench_history.py``). :meth:`score` keeps the fitted factors;
:meth:`score_history` always solves. The same algebra splits a score exactly into history
items (``implicit``'s ``explain``): x_u . y_i = sum_j c_j y_i^T A_u^-1 y_j, the contributions
:meth:`ALS.contributions` reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from ltrec.errors import MemoryLimitError
from ltrec.models.base import Recommender, RepeatConfig, score_shares
from ltrec.progress import Progress, report

if TYPE_CHECKING:
    from ltrec.models.data import InteractionData


class ALSConfig(RepeatConfig):
    factors: int = Field(64, ge=1, le=1024, description="Latent dimensions.")
    regularization: float = Field(0.05, ge=0.0, le=1000.0, description="L2 penalty.")
    alpha: float = Field(10.0, ge=0.0, le=10_000.0, description="Confidence scale alpha.")
    iterations: int = Field(15, ge=1, le=200, description="ALS sweeps.")
    threads: int = Field(1, ge=0, le=256, description="Solver threads (0: all cores).")
    max_memory_gb: float = Field(
        3.0, ge=0.01, le=1024.0, description="Memory budget of the fit (factors and matrices)."
    )


#: Float32 copies of the factor matrices alive in a fit (the solver's, ours, a scoring block)
#: and bytes per stored interaction (the confidence matrix and its transpose, CSR).
_FACTOR_COPIES = 3
_PAIR_BYTES = 24


def fit_memory_gb(n_users: int, n_items: int, nnz: int, factors: int) -> float:
    """About how much memory an ALS fit takes (GB)."""
    need = (n_users + n_items) * factors * 4 * _FACTOR_COPIES + nnz * _PAIR_BYTES
    return need / 1024**3


class ALS(Recommender):
    """Matrix factorisation for implicit feedback; see the module docstring.

    Its repeat-purchase defaults (w = 0.3, g = 0.6) and how they were chosen: see
    :class:`~ltrec.models.base.RepeatConfig`.
    """

    name = "als"
    config_cls = ALSConfig
    config: ALSConfig  # the instance of config_cls that __init__ makes
    repeat_default = 0.3
    popularity_default = 0.6
    # The user factor is re-solved from the history (see the module docstring): it follows a
    # new event at once, though it matches the fitted factor only approximately.
    live_history = True
    contribution_method = "exact"
    fresh_scores = True  # _score is a new matrix product per call

    def _fit(self, data: InteractionData, progress: Progress | None) -> None:
        # lazy: implicit loads native code, which only an ALS fit needs
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits  # lazy: only a fit caps BLAS threads

        cfg = self.config
        n_users, n_items = self.seen_.shape
        need = fit_memory_gb(n_users, n_items, self.seen_.nnz, cfg.factors)
        if need > cfg.max_memory_gb:
            raise MemoryLimitError(
                f"ALS with {cfg.factors} factors for {n_users:,} users and {n_items:,} items "
                f"needs about {need:,.1f} GB, above its {cfg.max_memory_gb:g} GB memory budget",
                hint="use fewer factors (--set factors=...), raise max_memory_gb "
                "(--set max_memory_gb=...) if the machine has the memory, or train on Spark "
                "(--engine spark)",
            )
        limits = threadpool_limits(limits=1, user_api="blas")
        model = AlternatingLeastSquares(
            factors=cfg.factors,
            regularization=cfg.regularization,
            alpha=cfg.alpha,
            iterations=cfg.iterations,
            random_state=cfg.seed,
            num_threads=cfg.threads,
        )

        def on_epoch(epoch: int, elapsed: float, loss: object) -> None:  # noqa: ARG001
            report(
                progress, (epoch + 1) / cfg.iterations, f"ALS sweep {epoch + 1}/{cfg.iterations}"
            )

        try:
            model.fit(self.seen_, show_progress=False, callback=on_epoch)
        finally:
            limits.restore_original_limits()
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self._yty: np.ndarray | None = None  # Y^T Y of the history solve, computed on first use

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        y = self.item_factors_ if items is None else self.item_factors_[items]
        if len(users) == 1:  # one user: the same values as the 1-row GEMM, ~15% faster
            return (y @ self.user_factors_[users[0]])[None, :]
        return self.user_factors_[users] @ y.T

    def _system(self, x: sp.csr_matrix, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(A_u, c, hist)`` of history row ``row``: the normal matrix of the user's least
        squares (float64), the confidences alpha * r_j and the history item indices."""
        cfg = self.config
        yty = getattr(self, "_yty", None)
        if yty is None:
            y = self.item_factors_.astype(np.float64)
            self._yty = yty = y.T @ y
        lo, hi = x.indptr[row], x.indptr[row + 1]
        hist = x.indices[lo:hi].astype(np.int64)
        c = cfg.alpha * x.data[lo:hi].astype(np.float64)
        yh = self.item_factors_[hist].astype(np.float64)  # only the history's rows
        eye = np.eye(self.item_factors_.shape[1])
        a = yty + cfg.regularization * eye + (yh * (c - 1.0)[:, None]).T @ yh
        return a, c, hist

    def history_factors(self, history: sp.csr_matrix) -> np.ndarray:
        """User factors ``[n, factors]`` solved from history rows (``implicit``'s
        ``recalculate_user``; see the module docstring)."""
        self._check_fitted()
        return self._factors(self._history(history)[0])

    def _factors(self, x: sp.csr_matrix) -> np.ndarray:
        out = np.zeros((x.shape[0], self.item_factors_.shape[1]), dtype=np.float32)
        for r in range(x.shape[0]):
            a, c, hist = self._system(x, r)
            if len(hist):
                out[r] = np.linalg.solve(a, self.item_factors_[hist].T.astype(np.float64) @ c)
        return out

    def _score_history(
        self, x: sp.csr_matrix, users: np.ndarray, items: np.ndarray | None
    ) -> np.ndarray:
        y = self.item_factors_ if items is None else self.item_factors_[items]
        f = self._factors(x)
        if len(f) == 1:  # one user (a live request): GEMV, as _score does
            return (y @ f[0])[None, :]
        return f @ y.T

    # Scores are x_u . y_i: the ANN index (ltrec.models.ann) searches the item factors.
    def _ann_item_vectors(self) -> np.ndarray:
        return self.item_factors_

    def _ann_user_vectors(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users]

    def _ann_history_vectors(self, x: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        return self._factors(x)

    def _contribution_matrix(
        self, x: sp.csr_matrix, hist: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """Exact for the re-solved factor: x_u . y_i = sum_j c_j y_i^T A_u^-1 y_j."""
        a, c, _ = self._system(x, 0)
        y = self.item_factors_
        weighted = np.linalg.solve(a, y[items].T.astype(np.float64)).T  # y_i^T A_u^-1
        return score_shares(weighted @ y[hist].T.astype(np.float64) * c[None, :])

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.user_factors_ = np.asarray(arrays["user_factors"], dtype=np.float32)
        self.item_factors_ = np.asarray(arrays["item_factors"], dtype=np.float32)
        self._yty = None
