"""Candidate pools: what a re-ranker chooses from (DESIGN §5).

:func:`candidate_pool` is THE function that builds a pool (interfaces contract B); the pipeline
(:class:`ltrec.app.pipeline.RecSession`) calls it for every list.

Why a second source. A re-ranker can only promote what the pool holds, and the top 200 of a
popularity-biased model hold few tail items, mostly the wrong ones. So up to ``tail_pool`` tail
items (the last popularity bucket) nearest the user's history are added:

* ``cooccurrence``: sum over the user's history items j of cos(j, t), the cosine of the two
  items' 0/1 columns in the training matrix (item-kNN's similarity, unpruned, no shrinkage:
  Sarwar et al. 2001), computed as history @ X_n^T @ X_n[:, tail] without an item-item matrix;
* ``text``: cosine of the tail item's text vector with the user's profile, the normalised sum
  of the history items' normalised text vectors (the classic content-based profile; Lops,
  de Gemmis & Semeraro 2011, "Content-based Recommender Systems: State of the Art and Trends");
* ``both``: the two rankings interleaved, co-occurrence first, duplicates dropped (a
  round-robin merge, so neither source's score scale decides), which is what a pool wants:
  a tail item a few neighbours bought and one described like the user's purchases.

A source only proposes items with a positive signal (so "up to" ``tail_pool``) and never an
item the user has interacted with, nor one already among the model's top m.

Calibrated scores. A re-ranker compares pool scores (min-max over the pool, then a boost), so
the added items need scores on the base model's scale. They get them by rank-based
distribution matching: the tail candidate the source ranks r-th gets the r-th best base score
among the same user's eligible tail items (tail, not seen, not in the top m). The added items
thus carry exactly the score distribution the base model gives the tail items just outside its
pool, reordered by the tail source: no item is lifted above the base model's own pool by the
calibration itself, and a strategy that boosts tail items treats them like the base model's
own tail candidates. This is quantile (histogram) matching of one score list onto another, as
in score normalisation for rank fusion (Montague & Aslam 2001, "Relevance Score Normalization
for Metasearch", CIKM; Fernández, Vallet & Castells 2006, "Probabilistic Score Normalization
for Rank Aggregation", ECIR), done per user with the base model's own tail scores as the
reference distribution.

:func:`pool_tail_recall` says how much of the achievable tail a pool holds: the share of each
user's tail test items that are in the pool (tail recall at the pool's depth).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from ltrec.config import get_settings
from ltrec.definitions import tail_mask as bucket_tail
from ltrec.errors import BadInputError, ConfigError, ModelError
from ltrec.evaluation import metrics as M
from ltrec.models.base import top_k

TailSource = Literal["cooccurrence", "text", "both"]
TAIL_SOURCES: tuple[str, ...] = ("cooccurrence", "text", "both")
#: Most tail candidates per user (StrategyConfig.tail_pool's bound).
MAX_TAIL_POOL = 1000
#: Dense [users, tail items] cells per block: bounds the source and calibration matrices.
_BLOCK_CELLS = 4_000_000


def candidate_pool(
    model: Any,
    data: Any,
    users: np.ndarray,
    m: int,
    *,
    tail_pool: int = 0,
    tail_source: TailSource = "both",
    tail_mask: np.ndarray | None = None,
    history: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The pools of ``users``: ``(items [n, m + tail_pool], scores)``, -1 / -inf padded.

    Args:
        model: a fitted :class:`~ltrec.models.base.Recommender`.
        data: the model's :class:`~ltrec.models.data.InteractionData` (its training matrix,
            popularity and text vectors).
        users: user indices (``-1``: unknown to training).
        m: the model's top m (seen items excluded unless the domain repeats), scored from
            ``history`` rows (:meth:`~ltrec.models.base.Recommender.recommend_history`) when
            given.
        tail_pool: tail candidates added per user (0: the model's top m alone).
        tail_source: ``cooccurrence``, ``text`` or ``both`` (see the module docstring). With
            ``both`` and no text vectors in ``data``, co-occurrence alone.
        tail_mask: ``[n_items]`` tail flags (default: the last popularity bucket of the
            data's training popularity under the settings' bucket cuts).
        history: CSR ``[n, n_items]`` event weights describing the users (live history);
            None: their training rows.

    Returns:
        ``(items, scores)``, int64 and float32 ``[n, m + tail_pool]``, best first by score
        (the added items carry calibrated scores, see the module docstring), padded with
        ``-1`` / ``-inf``.
    """
    if not isinstance(m, int | np.integer) or m < 1:
        raise ModelError(f"the pool size m must be a positive integer, got {m!r}")
    if not isinstance(tail_pool, int | np.integer) or not 0 <= tail_pool <= MAX_TAIL_POOL:
        raise ConfigError(
            f"tail_pool must be an integer from 0 to {MAX_TAIL_POOL}, got {tail_pool!r}"
        )
    if tail_source not in TAIL_SOURCES:
        raise ConfigError(
            f"unknown tail_source {tail_source!r}", hint=f"choose one of: {', '.join(TAIL_SOURCES)}"
        )
    m, tail_pool = int(m), int(tail_pool)
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    if history is not None:
        history = sp.csr_matrix(history, dtype=np.float32)
        if history.shape != (len(users), data.n_items):
            raise BadInputError(
                f"history has shape {history.shape}, expected {(len(users), data.n_items)} "
                "(one row per user, one column per item)"
            )
        # The data's rule on seen items, as recommend applies it (kept in repeat domains).
        items, scores = model.recommend_history(history, m, exclude_seen=None, users=users)
    else:
        items, scores = model.recommend(users, m)
    items = np.atleast_2d(np.asarray(items, dtype=np.int64))
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float32))
    if not tail_pool:
        return items, scores
    tail = _tail(data, tail_mask)
    live = history is not None
    if not live:
        history = _training_rows(data, users)
    source = tail_source
    if source != "cooccurrence" and data.item_text_emb is None:
        if source == "text":
            raise ModelError(
                "tail candidates by text need item text vectors and the data has none",
                hint="load the run's data with its text vectors (ltrec.models.train.add_text), "
                "or use tail_source 'cooccurrence'",
            )
        source = "cooccurrence"
    tail_items = np.flatnonzero(tail)
    out_i = np.full((len(users), m + tail_pool), -1, dtype=np.int64)
    out_s = np.full((len(users), m + tail_pool), -np.inf, dtype=np.float32)
    if len(users) == 0:
        return out_i, out_s
    parts = _Sources(data, tail_items, source)
    block = max(1, _BLOCK_CELLS // max(1, len(tail_items)))
    for start in range(0, len(users), block):
        rows = slice(start, start + block)
        cand, cal = _tail_candidates(
            model, parts, users[rows], history[rows], live, items[rows], tail_pool
        )
        merged_i = np.concatenate([items[rows], cand], axis=1)
        merged_s = np.concatenate([scores[rows], cal], axis=1)
        # Best first; ties keep the base model's items first (stable); padding last.
        key = np.where(merged_i >= 0, merged_s, -np.inf)
        order = np.argsort(-key, axis=1, kind="stable")
        merged_i = np.take_along_axis(merged_i, order, axis=1)
        merged_s = np.take_along_axis(key, order, axis=1)
        merged_i[np.isneginf(merged_s)] = -1
        w = merged_i.shape[1]
        out_i[rows, :w], out_s[rows, :w] = merged_i, merged_s
    return out_i, out_s


def _tail(data: Any, tail_mask: np.ndarray | None) -> np.ndarray:
    if tail_mask is None:

        return bucket_tail(data.item_pop, get_settings().bucket_cuts)
    tail = np.asarray(tail_mask, dtype=bool).reshape(-1)
    if tail.shape != (data.n_items,):
        raise BadInputError(f"tail_mask has {tail.size} flags for {data.n_items} items")
    return tail


def _training_rows(data: Any, users: np.ndarray) -> sp.csr_matrix:
    """Training rows of ``users``; a user unknown to training (-1) has an empty row."""
    known = users >= 0
    if known.all():
        return sp.csr_matrix(data.matrix[users], dtype=np.float32)
    pick = np.where(known, users, 0)
    rows = sp.csr_matrix(data.matrix[pick], dtype=np.float32)
    return sp.csr_matrix(sp.diags(known.astype(np.float32)) @ rows)


def _binary(x: sp.csr_matrix) -> sp.csr_matrix:
    x = sp.csr_matrix(x, dtype=np.float32, copy=True)
    x.data[:] = np.where(x.data > 0, 1.0, 0.0)
    x.eliminate_zeros()
    return x


class _Sources:
    """What the tail sources need from the data, computed once per call."""

    def __init__(self, data: Any, tail_items: np.ndarray, source: str) -> None:
        self.tail_items = tail_items
        self.source = source
        #: item index -> its tail column (-1: not a tail item)
        self.col = np.full(data.n_items, -1, dtype=np.int64)
        self.col[tail_items] = np.arange(len(tail_items))
        if source in ("cooccurrence", "both"):
            x = _binary(data.matrix)
            norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())  # 0/1 columns: |x_j|^2 = d_j
            inv = np.zeros_like(norms)
            inv[norms > 0] = 1.0 / norms[norms > 0]
            xn = sp.csr_matrix(x @ sp.diags(inv.astype(np.float32)))
            self.items_users = sp.csr_matrix(xn.T)  # [n_items, n_users], columns normalised
            self.users_tail = sp.csr_matrix(xn[:, tail_items])  # [n_users, n_tail]
        if source in ("text", "both"):
            e = np.asarray(data.item_text_emb, dtype=np.float32)
            n = np.linalg.norm(e, axis=1, keepdims=True)
            self.emb = np.divide(e, n, out=np.zeros_like(e), where=n > 0)
            self.emb_tail = self.emb[tail_items]

    def cooccurrence(self, hist: sp.csr_matrix) -> np.ndarray:
        """``[n, n_tail]``: sum over history items j of cos(j, t)."""
        via_users = hist @ self.items_users  # [n, n_users]
        return np.asarray((via_users @ self.users_tail).todense(), dtype=np.float64)

    def text(self, hist: sp.csr_matrix) -> np.ndarray:
        """``[n, n_tail]``: cosine of each tail item with the user's text profile."""
        profile = np.asarray(hist @ self.emb, dtype=np.float64)
        n = np.linalg.norm(profile, axis=1, keepdims=True)
        profile = np.divide(profile, n, out=np.zeros_like(profile), where=n > 0)
        return profile @ self.emb_tail.T.astype(np.float64)


def _ranked(src: np.ndarray, excluded: np.ndarray, k: int) -> np.ndarray:
    """Indices (into the tail columns) of the k best positive, allowed entries; -1 padded."""
    s = np.where(excluded | ~(src > 0), -np.inf, src)
    idx, _ = top_k(s, k)
    if idx.shape[1] < k:
        idx = np.pad(idx, ((0, 0), (0, k - idx.shape[1])), constant_values=-1)
    return idx


def _interleave(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Round-robin merge of two ranked index rows (a first), duplicates and padding dropped."""
    both = np.empty((a.shape[0], 2 * a.shape[1]), dtype=np.int64)
    both[:, 0::2], both[:, 1::2] = a, b
    # Drop repeats: keep an index's first position only.
    order = np.argsort(both, axis=1, kind="stable")
    srt = np.take_along_axis(both, order, axis=1)
    dup = np.zeros_like(both, dtype=bool)
    dup[:, 1:] = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
    r, c = np.nonzero(dup)
    both[r, order[r, c]] = -1
    # Compact: valid entries first, in their interleaved order.
    keep = np.argsort(both < 0, axis=1, kind="stable")
    return np.take_along_axis(both, keep, axis=1)[:, :k]


def _tail_candidates(
    model: Any,
    parts: _Sources,
    users: np.ndarray,
    hist: sp.csr_matrix,
    live: bool,
    base_items: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(items [n, k], calibrated scores [n, k])`` of one block of users (``live``: ``hist``
    is the caller's history, scored by ``score_history``; else the training rows)."""
    n, n_tail = len(users), len(parts.tail_items)
    if n_tail == 0:
        return np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32)
    col = parts.col
    # Not eligible: interacted with (any weight), or already in the model's top m.
    excluded = np.zeros((n, n_tail), dtype=bool)
    h = sp.csr_matrix(hist)
    h.eliminate_zeros()
    r = np.repeat(np.arange(n), np.diff(h.indptr))
    c = h.indices.astype(np.int64)
    c = col[c]
    excluded[r[c >= 0], c[c >= 0]] = True
    bc = np.where(base_items >= 0, col[np.maximum(base_items, 0)], -1)
    br = np.broadcast_to(np.arange(n)[:, None], bc.shape)
    excluded[br[bc >= 0], bc[bc >= 0]] = True
    hb = _binary(h)
    if parts.source == "cooccurrence":
        idx = _ranked(parts.cooccurrence(hb), excluded, k)
    elif parts.source == "text":
        idx = _ranked(parts.text(hb), excluded, k)
    else:
        idx = _interleave(
            _ranked(parts.cooccurrence(hb), excluded, k), _ranked(parts.text(hb), excluded, k), k
        )
    # The base model's scores of the eligible tail items, best first: the reference scale.
    if live:
        base = model.score_history(h, parts.tail_items, users=users)
        base = np.asarray(base, dtype=np.float64)
    else:
        base = np.asarray(model.score(users, parts.tail_items), dtype=np.float64).reshape(n, -1)
    base = np.where(excluded | ~np.isfinite(base), -np.inf, base)
    ref = -np.sort(-base, axis=1)[:, :k]
    if ref.shape[1] < k:
        ref = np.pad(ref, ((0, 0), (0, k - ref.shape[1])), constant_values=-np.inf)
    valid = idx >= 0
    cal = np.where(valid, ref, -np.inf)
    # Every candidate is eligible, so there are at least as many finite reference scores as
    # candidates; a model that scores some item -inf is the one way to run short: those
    # candidates sit at the row's lowest finite reference score.
    short = valid & ~np.isfinite(cal)
    if short.any():
        floor = np.where(np.isfinite(ref), ref, np.inf).min(axis=1, keepdims=True)
        floor = np.where(np.isfinite(floor), floor, 0.0)
        cal = np.where(short, np.broadcast_to(floor, cal.shape), cal)
    items = np.where(valid, parts.tail_items[np.maximum(idx, 0)], -1)
    return items, cal.astype(np.float32)


def pool_tail_recall(
    pool_items: np.ndarray, test: Any, tail_mask: np.ndarray, *, per_user: bool = False
) -> float | np.ndarray:
    """How much of the achievable tail a pool holds: |P_u ∩ T_u ∩ Γ| / |T_u ∩ Γ|.

    Tail recall (:func:`ltrec.evaluation.metrics.tail_recall`) at the pool's depth: a
    re-ranker cannot list a tail test item its pool lacks, so this bounds the tail recall any
    strategy can reach from the pool.

    Args:
        pool_items: ``int [n_users, width]`` pools (``-1`` padding).
        test: the users' test items, a CSR ``[n_users, n_items]`` or one index array per user.
        tail_mask: ``[n_items]`` tail flags (Γ).
        per_user: return one value per user (NaN for a user without tail test items).

    Returns:
        The mean over users with at least one tail test item (NaN when there is none), or
        the per-user values.
    """
    tail = np.asarray(tail_mask, dtype=bool).reshape(-1)
    pool = np.atleast_2d(np.asarray(pool_items))
    if pool.shape[1] == 0:
        pool = np.full((pool.shape[0], 1), -1, dtype=np.int64)
    r = M.clean_recs(pool, pool.shape[1], tail.size)
    truth = M.as_truth(test, r.shape[0], tail.size)
    values = M.tail_recall(M.hit_matrix(r, truth), r, truth, tail)
    if per_user:
        return values
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else float("nan")
