"""Item-based k-nearest-neighbours with shrunk cosine similarity (Sarwar et al. 2001).

sim(i, j) = (x_i . x_j) / (||x_i|| ||x_j|| + h), where x_i is item i's column of the user-item
weight matrix and h the shrinkage term (Koren 2008; it damps similarities between items with few
common users). Each item keeps only its ``neighbours`` most similar items (pruning), so the
similarity matrix S stays sparse, and score(u, i) = sum_j x_uj S[j, i].

Repeat consumption. S has a zero diagonal (an item is not its own neighbour), so the score of an
item the user already bought says nothing about buying it again. On repeat-purchase data the
user's own purchase frequency is blended in, as TIFU-kNN (Hu et al. 2020, SIGIR) mixes the
personal frequency vector with the neighbours' one, backed off to global popularity as in the
next-basket baselines of Li et al. 2023: see :func:`ltrec.models.repeat.repeat_blend` and the
weights in :class:`ItemKNN`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from ltrec.errors import MemoryLimitError
from ltrec.models.base import (
    Recommender,
    RepeatConfig,
    csr_from_arrays,
    csr_to_arrays,
    item_item_shares,
)
from ltrec.progress import Progress, report

if TYPE_CHECKING:
    from ltrec.models.data import InteractionData

#: Items whose similarity columns are computed at once: bounds the dense block of X^T X.
_BLOCK_ITEMS = 2048
#: Bytes per stored entry: a co-occurrence block (SpGEMM output, then its CSC copy) and a kept
#: neighbour (row, column and value lists, then the CSR built from them).
_BLOCK_ENTRY_BYTES = 24
_KEPT_ENTRY_BYTES = 40


class ItemKNNConfig(RepeatConfig):
    neighbours: int = Field(100, ge=1, le=5000, description="Neighbours kept per item.")
    shrinkage: float = Field(100.0, ge=0.0, le=10_000.0, description="Cosine shrinkage h.")
    # 0/1 by default: summed weights let repeat purchases (groceries) dominate the cosine; on
    # the CC0 Complete Journey sample weights gave Recall@10 0.0008, binary 0.032.
    binary: bool = Field(True, description="Use 0/1 interactions instead of event weights.")
    max_memory_gb: float = Field(
        3.0,
        ge=0.01,
        le=1024.0,
        description="Memory budget of the fit: the kept similarities and a quarter of it for "
        "each co-occurrence block (blocks shrink to fit; the result is the same).",
    )


def _blocks(x: sp.csr_matrix, budget_bytes: float) -> list[tuple[int, int]]:
    """Column ranges of at most :data:`_BLOCK_ITEMS` items whose co-occurrence block fits
    ``budget_bytes``: column i of X^T X holds at most min(n_items, sum over i's users of their
    item counts) entries. The blocks change the memory, never the similarities."""
    n = x.shape[1]
    per_user = np.diff(x.indptr).astype(np.float64)
    ones = sp.csr_matrix((np.ones(x.nnz), x.indices, x.indptr), shape=x.shape)
    bound = np.minimum(np.asarray(ones.T @ per_user).ravel(), n) * _BLOCK_ENTRY_BYTES
    out, start, size = [], 0, 0.0
    for i in range(n):
        if i > start and (i - start >= _BLOCK_ITEMS or size + bound[i] > budget_bytes):
            out.append((start, i))
            start, size = i, 0.0
        size += bound[i]
    if n:
        out.append((start, n))
    return out


class ItemKNN(Recommender):
    """Sparse item-kNN over the training interactions (see the module docstring).

    Its repeat-purchase defaults (w = 0.3, g = 0.6) and how they were chosen: see
    :class:`~ltrec.models.base.RepeatConfig`.
    """

    name = "itemknn"
    config_cls = ItemKNNConfig
    config: ItemKNNConfig  # the instance of config_cls that __init__ makes
    repeat_default = 0.3
    popularity_default = 0.6
    live_history = True  # score = history @ S: a new event changes the scores at once
    contribution_method = "exact"

    def _fit(self, data: InteractionData, progress: Progress | None) -> None:
        cfg = self.config
        x = self._input(self.seen_)
        xc = x.tocsc()
        norms = np.sqrt(np.asarray(xc.multiply(xc).sum(axis=0)).ravel())
        n = x.shape[1]
        budget = cfg.max_memory_gb * 1024**3
        kept = n * min(cfg.neighbours, max(n - 1, 0)) * _KEPT_ENTRY_BYTES
        if kept > 0.75 * budget:
            raise MemoryLimitError(
                f"item-kNN cannot keep {cfg.neighbours:,} neighbours for each of {n:,} items "
                f"in a {cfg.max_memory_gb:g} GB memory budget (about {kept / 1024**3:,.1f} GB; "
                f"at most {int(0.75 * budget / _KEPT_ENTRY_BYTES / max(n, 1)):,} neighbours fit)",
                hint="keep fewer neighbours (--set neighbours=...), raise max_memory_gb "
                "(--set max_memory_gb=...) if the machine has the memory, or use als",
            )
        xt = xc.T.tocsr()
        rows, cols, vals = [], [], []
        for start, stop in _blocks(x, budget / 4):
            # Co-occurrence of every item j with the items of this block: [n, block], sparse.
            block = (xt @ xc[:, start:stop]).tocsc()
            block.setdiag(0.0, k=-start)  # no self-similarity
            block.eliminate_zeros()
            for c in range(stop - start):
                lo, hi = block.indptr[c], block.indptr[c + 1]
                if lo == hi:
                    continue
                j = block.indices[lo:hi]
                s = block.data[lo:hi] / (norms[j] * norms[start + c] + cfg.shrinkage)
                if len(s) > cfg.neighbours:
                    keep = np.argpartition(-s, cfg.neighbours - 1)[: cfg.neighbours]
                    j, s = j[keep], s[keep]
                rows.append(j)
                cols.append(np.full(len(j), start + c, dtype=np.int64))
                vals.append(s)
            report(progress, stop / n, f"item similarities {stop:,}/{n:,}")
        if rows:
            r, col, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        else:
            r = col = np.empty(0, np.int64)
            v = np.empty(0, np.float32)
        # S[j, i]: similarity of neighbour j to item i, so that scores = X @ S.
        self.sim_ = sp.csr_matrix((v.astype(np.float32), (r, col)), shape=(n, n))

    def _input(self, x: sp.csr_matrix) -> sp.csr_matrix:
        if self.config.binary:
            x = x.copy()
            x.data[:] = 1.0
        return x

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._score_history(self.seen_[users], users, items)

    def _score_history(
        self, x: sp.csr_matrix, users: np.ndarray, items: np.ndarray | None
    ) -> np.ndarray:
        sim = self.sim_ if items is None else self.sim_[:, items]
        return np.asarray((self._input(x) @ sim).todense(), dtype=np.float32)

    def _contribution_matrix(
        self, x: sp.csr_matrix, hist: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """Exact shares of score = x @ S (all terms >= 0: cosine of non-negative data)."""
        return item_item_shares(self._input(x), self.sim_, hist, items)

    def _state(self) -> dict[str, np.ndarray]:
        return csr_to_arrays("sim", self.sim_)

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.sim_ = csr_from_arrays("sim", arrays)
