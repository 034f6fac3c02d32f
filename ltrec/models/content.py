"""A content-collaborative item-item blend for tail and cold items.

Co-occurrence alone knows nothing about an item few people touched, and nothing at all about a
new one; product text (MiniLM sentence embeddings, :mod:`ltrec.features.text`) knows every item
the catalogue describes. The blend mixes the two item-item similarities, in the spirit of the
hybrid item-item models that back collaborative similarity off to content for cold items
(Gantner et al. 2010, "Learning Attribute-to-Feature Mappings for Cold-Start Recommendations";
the collaborative/content mix of Melville et al. 2002, "Content-Boosted Collaborative
Filtering")::

    C[j, i] = shrunk cosine of items j and i over the training matrix (item-kNN's, pruned)
    T[j, i] = max(0, cos(e_j, e_i)) of the item text embeddings (top ``neighbours`` per item)
    S = mix * C + (1 - mix) * T,   diagonal 0,   top ``neighbours`` per item i

C and T each keep their top ``neighbours`` per item first (so neither part is ever dense), and
S keeps the top ``neighbours`` of their union: an item just outside both top lists is left out
even where the sum would have ranked it in.
    score(u, i) = sum_j x_uj S[j, i]

with x_u the user's 0/1 history. An item without training events has an empty column in C, so
its score comes from the text part alone: a new product described like what the user bought is
scored (and ranked) before anyone has bought it. The score is linear in the history, so it
follows a changed history without refitting (``live_history``) and each history item's part of
a score is exact (``x_uj S[j, i]``).

The text vectors are the data's (:attr:`~ltrec.models.data.InteractionData.item_text_emb`,
filled by ``ltrec train`` from the dataset's encoder); fitting without them is a clear error.

Repeat consumption: S has a zero diagonal, so on repeat-purchase data the user's own frequency and
popularity are blended in as for item-kNN (:func:`ltrec.models.repeat.repeat_blend`, weights 0.3
and 0.6, item-kNN's, not tuned separately).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from ltrec.errors import ModelError
from ltrec.models.base import RepeatConfig, SimilarityModel, top_k
from ltrec.models.itemknn import ItemKNN
from ltrec.models.rp3beta import prune_rows
from ltrec.progress import Progress, report

if TYPE_CHECKING:
    from ltrec.models.data import InteractionData

#: Items whose text similarities are computed at once: bounds the dense [block, n_items] block.
_BLOCK_ITEMS = 2048


class ContentBlendConfig(RepeatConfig):
    mix: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Weight of the co-occurrence cosine; the text cosine gets 1 - mix.",
    )
    neighbours: int = Field(100, ge=1, le=5000, description="Neighbours kept per item.")
    shrinkage: float = Field(
        10.0, ge=0.0, le=10_000.0, description="Shrinkage h of the co-occurrence cosine."
    )


def text_neighbours(
    emb: np.ndarray, neighbours: int, progress: Progress | None = None
) -> sp.csr_matrix:
    """Top ``neighbours`` positive text cosines per item: CSR ``T[j, i]``, zero diagonal.

    Rows of ``emb`` are L2-normalised here (a zero row: an item without text, no neighbours).
    Column i holds the items most similar to item i (ties: the lower index).
    """
    e = np.asarray(emb, dtype=np.float32)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    e = np.divide(e, norms, out=np.zeros_like(e), where=norms > 0)
    n = len(e)
    k = min(neighbours, max(n - 1, 0))
    rows, cols, vals = [], [], []
    for start in range(0, n, _BLOCK_ITEMS):
        stop = min(n, start + _BLOCK_ITEMS)
        sims = e[start:stop] @ e.T  # [block, n]; symmetric, so row i = column i
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        sims[sims <= 0] = -np.inf  # only positive cosines are neighbours
        if k:
            idx, v = top_k(sims, k)
            keep = idx >= 0
            target = np.broadcast_to(np.arange(start, stop)[:, None], idx.shape)
            rows.append(idx[keep])  # neighbour j
            cols.append(target[keep])  # target i
            vals.append(v[keep])
        report(progress, stop / n, f"text similarities {stop:,}/{n:,}")
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)  # type: ignore[arg-type]  # scipy-stubs type an empty (shape-only) matrix as float64, bool or int
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )


def prune_columns(s: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of every column (ties: the lower row index)."""
    return sp.csr_matrix(prune_rows(sp.csr_matrix(s.T), k).T)


class ContentBlend(SimilarityModel):
    """History x (co-occurrence + text) item similarity; scores cold items from their text."""

    name = "content"
    config_cls = ContentBlendConfig
    config: ContentBlendConfig  # the instance of config_cls that __init__ makes
    content_model = True
    live_history = True  # score = history @ S: a new event changes the scores at once
    contribution_method = "exact"
    repeat_default = 0.3
    popularity_default = 0.6

    def _fit(self, data: InteractionData, progress: Progress | None) -> None:
        cfg = self.config
        if data.item_text_emb is None or len(data.item_text_emb) != data.n_items:
            raise ModelError(
                "the content blend needs item text vectors and the data has none",
                hint="train it with `ltrec train NAME content` (it adds the MiniLM vectors of "
                "the catalogue), or build the data with a text encoder",
            )
        # The co-occurrence part is item-kNN's shrunk cosine: one definition of it.
        knn = ItemKNN(
            neighbours=cfg.neighbours,
            shrinkage=cfg.shrinkage,
            binary=True,
            repeat_weight=0.0,
            popularity_weight=0.0,
        )
        knn.fit(data, progress=lambda d, m: report(progress, 0.5 * d, m))
        text = text_neighbours(
            data.item_text_emb, cfg.neighbours, lambda d, m: report(progress, 0.5 + 0.45 * d, m)
        )
        s = sp.csr_matrix(cfg.mix * knn.sim_ + (1.0 - cfg.mix) * text, dtype=np.float32)
        s.setdiag(0.0)
        s.eliminate_zeros()
        self.sim_ = prune_columns(s, cfg.neighbours).astype(np.float32)

    @staticmethod
    def _input(x: sp.csr_matrix) -> sp.csr_matrix:
        x = sp.csr_matrix(x, dtype=np.float32, copy=True)
        x.data[:] = np.where(x.data > 0, 1.0, 0.0)
        x.eliminate_zeros()
        return x
