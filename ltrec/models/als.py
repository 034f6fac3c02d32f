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
popularity are blended in (:func:`ltrec.models.base.repeat_blend`; weights in :class:`ALS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from ltrec.models.base import Progress, Recommender, RepeatConfig, report

if TYPE_CHECKING:
    from ltrec.models.data import InteractionData


class ALSConfig(RepeatConfig):
    factors: int = Field(64, ge=1, le=1024, description="Latent dimensions.")
    regularization: float = Field(0.05, ge=0.0, le=1000.0, description="L2 penalty.")
    alpha: float = Field(10.0, ge=0.0, le=10_000.0, description="Confidence scale alpha.")
    iterations: int = Field(15, ge=1, le=200, description="ALS sweeps.")
    threads: int = Field(1, ge=0, le=256, description="Solver threads (0: all cores).")


class ALS(Recommender):
    """Matrix factorisation for implicit feedback; see the module docstring.

    Its repeat-purchase defaults (w = 0.3, g = 0.6) and how they were chosen: see
    :class:`~ltrec.models.base.RepeatConfig`.
    """

    name = "als"
    config_cls = ALSConfig
    repeat_default = 0.3
    popularity_default = 0.6

    def _fit(self, data: InteractionData, progress: Progress | None) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        cfg: ALSConfig = self.config  # type: ignore[assignment]
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

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        y = self.item_factors_ if items is None else self.item_factors_[items]
        return self.user_factors_[users] @ y.T

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.user_factors_ = np.asarray(arrays["user_factors"], dtype=np.float32)
        self.item_factors_ = np.asarray(arrays["item_factors"], dtype=np.float32)
