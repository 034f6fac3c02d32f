"""EASE: Embarrassingly Shallow Autoencoder (Steck 2019, "Embarrassingly Shallow Autoencoders
for Sparse Data", WWW).

Closed form: G = X^T X + lambda I, P = G^-1, B = I - P diag(1 / diag(P)) (so B_ij = -P_ij / P_jj
off the diagonal and diag(B) = 0); scores = X B. It needs the dense item-item Gram matrix, so it
is fitted on the items that have training interactions (the others have zero columns and would
only add zero rows) and refuses, with a clear :class:`ModelError`, when that matrix and its
inverse do not fit in ``max_memory_gb``. Items without interactions get a score just below the
user's lowest, so they rank last but stay finite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.linalg
from pydantic import Field

from ltrec.errors import ModelError
from ltrec.models.base import ModelConfig, Progress, Recommender, report

if TYPE_CHECKING:
    from ltrec.models.data import InteractionData

#: Dense n x n matrices alive at the peak of the fit: G is inverted in place (LAPACK getrf +
#: getri) and B is formed in place, so one dense matrix plus the sparse Gram and workspace.
_PEAK_MATRICES = 2


class EASEConfig(ModelConfig):
    lambda_: float = Field(
        200.0, ge=0.0, le=1e7, description="L2 regularisation lambda on B (Steck 2019)."
    )
    max_memory_gb: float = Field(
        4.0, ge=0.01, le=1024.0, description="Memory budget for the dense item-item matrices."
    )
    binary: bool = Field(True, description="Use 0/1 interactions (as in the paper).")
    precision: Literal["float64", "float32"] = Field(
        "float64", description="float32 halves the memory (and fits ~1.4x more items)."
    )


def max_items(budget_gb: float, precision: str = "float64") -> int:
    """The largest item count whose dense Gram matrix (inverted in place) fits ``budget_gb``."""
    size = np.dtype(precision).itemsize
    return int(np.sqrt(budget_gb * 1024**3 / (_PEAK_MATRICES * size)))


class EASE(Recommender):
    """Closed-form linear item-item model; see the module docstring."""

    name = "ease"
    config_cls = EASEConfig

    def _fit(self, data: InteractionData, progress: Progress | None) -> None:
        cfg: EASEConfig = self.config  # type: ignore[assignment]
        active = np.flatnonzero(np.diff(self.seen_.tocsc().indptr) > 0)
        limit = max_items(cfg.max_memory_gb, cfg.precision)
        if len(active) > limit:
            need = _PEAK_MATRICES * np.dtype(cfg.precision).itemsize * len(active) ** 2 / 1024**3
            raise ModelError(
                f"EASE cannot hold {len(active):,} items in a {cfg.max_memory_gb:g} GB memory "
                f"budget (it needs about {need:,.1f} GB; at most {limit:,} items fit)",
                hint="raise max_memory_gb (--set max_memory_gb=...) if the machine has the "
                "memory, set precision=float32, or use itemknn or als, which scale to large "
                "catalogues",
            )
        x = self._input(self.seen_)[:, active]
        report(progress, 0.1, f"Gram matrix of {len(active):,} items")
        gram = x.T @ x
        g = gram.toarray(order="F").astype(cfg.precision, order="F", copy=False)
        del gram
        g[np.diag_indices_from(g)] += cfg.lambda_
        report(progress, 0.4, f"inverting {len(active):,} x {len(active):,}")
        try:
            # G is symmetric and Fortran-ordered, so LAPACK inverts it in place (no copy).
            p = scipy.linalg.inv(g, overwrite_a=True, check_finite=False)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise ModelError(
                "EASE's Gram matrix is singular", hint="use a positive lambda_ (--set lambda_=100)"
            ) from exc
        del g
        p /= -np.diag(p)  # B_ij = -P_ij / P_jj, in place (column j divided by P_jj)
        p[np.diag_indices_from(p)] = 0.0
        self.active_ = active.astype(np.int64)
        self.b_ = np.asarray(p, dtype=np.float32)

    def _input(self, x):  # noqa: ANN001, ANN202 - csr in, csr out
        if self.config.binary:  # type: ignore[attr-defined]
            x = x.copy()
            x.data[:] = 1.0
        return x

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        x = self._input(self.seen_[users][:, self.active_])
        s_active = np.asarray(x @ self.b_, dtype=np.float32)
        # Items without training interactions rank last but stay finite.
        floor = s_active.min(axis=1, keepdims=True) - 1.0 if s_active.size else 0.0
        full = np.empty((len(users), self.n_items_), dtype=np.float32)
        full[:] = floor
        full[:, self.active_] = s_active
        return full if items is None else full[:, items]

    def _state(self) -> dict[str, np.ndarray]:
        return {"active": self.active_, "b": self.b_}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.active_ = np.asarray(arrays["active"], dtype=np.int64)
        self.b_ = np.asarray(arrays["b"], dtype=np.float32)
