"""Ranking, long-tail and exposure metrics over the full catalogue (DESIGN §3, §6).

Every function is vectorised numpy over a recommendation matrix ``recs: int [n_users, k]`` of
item indices, ``-1`` padding a short list. Lists are ranked over the **whole catalogue**: no
sampled negatives, because sampled metrics can reverse the order of models (Krichene & Rendle
2020, "On Sampled Metrics for Item Recommendation").

Conventions, fixed here for every caller:

* Positions are 1-based: the item in column ``r - 1`` is at rank ``r``.
* Padding (``-1``) and repeats of an item already higher in the list are treated as empty
  slots: they never hit, are not exposed, and are not counted in ``|L_u|``. An index outside
  ``[0, n_items)`` other than ``-1`` is an error.
* ``|L_u|`` = number of real items in the list (<= k); ``T_u`` = the user's test items.
* Per-user accuracy metrics are ``NaN`` for users with no test items, so means skip them (a
  user with test items and an empty list scores 0). Per-list metrics (APLT, ARP, novelty, ...)
  are ``NaN`` for empty lists; ILD is ``NaN`` for lists with fewer than two items.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from ltrec.definitions import popularity_rank, popularity_share, shared_depth
from ltrec.errors import BadInputError

if TYPE_CHECKING:
    from scipy.sparse._base import _spbase

    #: Any scipy sparse matrix or array as scipy-stubs types it: ``sp.issparse`` narrows to an
    #: ABC, and ``sp.spmatrix`` is a mixin there, neither of which the constructors accept.
    AnySparse: TypeAlias = _spbase[Any, Any]

# --------------------------------------------------------------------------------------------
# inputs


def clean_recs(recs: np.ndarray, k: int, n_items: int) -> np.ndarray:
    """The first ``k`` columns of ``recs`` as int64, padding and repeated items set to -1.

    Raises:
        BadInputError: not a 2-d matrix, ``k < 1``, or an index outside the catalogue.
    """
    recs = np.asarray(recs)
    if recs.ndim != 2:
        raise BadInputError(f"recommendations must be a [users, k] matrix, got shape {recs.shape}")
    if k < 1:
        raise BadInputError(f"k must be at least 1, got {k}")
    out = np.array(recs[:, :k], dtype=np.int64, copy=True)
    bad = (out < -1) | (out >= n_items)
    if bad.any():
        raise BadInputError(
            f"recommendation index {int(out[bad][0])} is outside the catalogue of {n_items} items",
            hint="recommendations must be item indices of the same vocabulary as the test data",
        )
    if out.shape[1] > 1:
        # A repeated item (a re-ranker bug) earns nothing: keep its first, highest occurrence.
        order = np.argsort(out, axis=1, kind="stable")
        srt = np.take_along_axis(out, order, axis=1)
        dup = np.zeros_like(out, dtype=bool)
        dup[:, 1:] = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
        rows = np.nonzero(dup)[0]
        out[rows, order[dup]] = -1
    return out


def as_truth(test, n_users: int, n_items: int) -> sp.csr_matrix:
    """Test items as a boolean CSR matrix ``[n_users, n_items]`` with sorted indices.

    Args:
        test: a scipy sparse matrix (non-zeros are test items) or a sequence of ``n_users``
            integer arrays of item indices.
    """
    if sp.issparse(test):
        m = sp.csr_matrix(cast("AnySparse", test), dtype=bool)
        if m.shape != (n_users, n_items):
            raise BadInputError(f"test matrix has shape {m.shape}, expected {(n_users, n_items)}")
    else:
        if len(test) != n_users:
            raise BadInputError(f"test has {len(test)} users, recommendations have {n_users}")
        lengths = np.fromiter((len(t) for t in test), dtype=np.int64, count=n_users)
        cols = (
            np.concatenate([np.asarray(t, dtype=np.int64) for t in test])
            if lengths.sum()
            else np.zeros(0, dtype=np.int64)
        )
        if cols.size and (cols.min() < 0 or cols.max() >= n_items):
            raise BadInputError("a test item index is outside the catalogue")
        rows = np.repeat(np.arange(n_users), lengths)
        m = sp.csr_matrix(
            (np.ones(cols.size, dtype=bool), (rows, cols)), shape=(n_users, n_items), dtype=bool
        )
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    return m


def hit_matrix(recs: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """``hits[u, r] = 1`` iff ``recs[u, r]`` is a test item of user u (bool ``[n_users, k]``).

    Looks every (user, item) key up in the sorted keys of ``truth`` (one ``searchsorted``).
    """
    n_users, n_items = truth.shape
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(truth.indptr))
    keys = rows * n_items + truth.indices.astype(np.int64)  # sorted: CSR with sorted indices
    q = np.arange(recs.shape[0], dtype=np.int64)[:, None] * n_items + recs
    if keys.size == 0:
        return np.zeros(recs.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(keys, q), keys.size - 1)
    return (keys[pos] == q) & (recs >= 0)


def _per_user(num: npt.ArrayLike, den: npt.ArrayLike) -> np.ndarray:
    """num / den with NaN where den == 0."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _discount(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


# --------------------------------------------------------------------------------------------
# accuracy (per user)


def precision(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    """Precision@K = |L_u ∩ T_u| / K (denominator K even if the list is shorter).

    Herlocker et al. 2004, "Evaluating Collaborative Filtering Recommender Systems".
    """
    return _per_user(hits.sum(axis=1), np.where(n_rel > 0, k, 0))


def recall(hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    """Recall@K = |L_u ∩ T_u| / |T_u| (denominator |T_u|, not min(|T_u|, K)).

    With this denominator recall never decreases as K grows; it cannot reach 1 when
    ``|T_u| > K`` (Herlocker et al. 2004).
    """
    return _per_user(hits.sum(axis=1), n_rel)


def ndcg(hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    """NDCG@K with binary relevance (Järvelin & Kekäläinen 2002, "Cumulated Gain-Based ...").

    DCG = sum_{r=1..K} rel_r / log2(r + 1); IDCG = sum_{r=1..min(|T_u|, K)} 1 / log2(r + 1);
    NDCG = DCG / IDCG, in [0, 1].
    """
    k = hits.shape[1]
    disc = _discount(k)
    dcg = hits @ disc
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(n_rel, k)]
    return _per_user(dcg, ideal)


def average_precision(hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    """AP@K = (1 / min(|T_u|, K)) * sum_{r=1..K} P@r * rel_r  (MAP@K is its mean).

    The denominator min(|T_u|, K) makes a perfect list score 1 (the common top-K convention,
    e.g. Elliot, Anelli et al. 2021; Manning et al. 2008 §8.4 for uncut AP).
    """
    k = hits.shape[1]
    h = hits.astype(float)
    prec_at_r = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    return _per_user((prec_at_r * h).sum(axis=1), np.minimum(n_rel, k))


def hit_rate(hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    """HitRate@K = 1 if |L_u ∩ T_u| > 0 else 0 (Deshpande & Karypis 2004)."""
    return _per_user(hits.any(axis=1), n_rel > 0)


def reciprocal_rank(hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    """RR@K = 1 / rank of the first hit, 0 without a hit (Voorhees 1999, TREC-8 QA)."""
    first = np.argmax(hits, axis=1) + 1.0
    rr = np.where(hits.any(axis=1), 1.0 / first, 0.0)
    return _per_user(rr, n_rel > 0)


def tail_recall(hits: np.ndarray, recs: np.ndarray, truth: sp.csr_matrix, tail: np.ndarray):
    """Tail recall@K = |L_u ∩ T_u ∩ Γ| / |T_u ∩ Γ|, Γ the tail; NaN without tail test items.

    Recall restricted to the tail (as in Abdollahpouri et al. 2017, "Controlling Popularity
    Bias in Learning-to-Rank Recommendation").
    """
    tail = np.asarray(tail, dtype=bool)
    tail_hits = (hits & tail[np.maximum(recs, 0)]).sum(axis=1)
    n_tail = np.asarray(truth @ tail.astype(np.int64)).ravel()
    return _per_user(tail_hits, n_tail)


# --------------------------------------------------------------------------------------------
# long tail and novelty (per list)


def list_length(recs: np.ndarray) -> np.ndarray:
    """|L_u|: real items per list."""
    return (recs >= 0).sum(axis=1)


def _list_mean(recs: np.ndarray, values: np.ndarray) -> np.ndarray:
    valid = recs >= 0
    v = np.where(valid, np.asarray(values, dtype=float)[np.maximum(recs, 0)], 0.0)
    return _per_user(v.sum(axis=1), valid.sum(axis=1))


def aplt(recs: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """APLT@K = |L_u ∩ Γ| / |L_u| (Abdollahpouri et al. 2019, "Managing Popularity Bias in
    Recommender Systems with Personalized Re-ranking"); its mean over users is the tail share.
    """
    return _list_mean(recs, np.asarray(tail, dtype=float))


def aclt(recs: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """ACLT@K = |L_u ∩ Γ|: the count of tail items in the list (Abdollahpouri et al. 2019).

    NaN for empty lists, like the other per-list metrics.
    """
    valid = recs >= 0
    count = (valid & np.asarray(tail, dtype=bool)[np.maximum(recs, 0)]).sum(axis=1)
    return np.where(valid.any(axis=1), count.astype(float), np.nan)


def arp(recs: np.ndarray, pop: np.ndarray) -> np.ndarray:
    """ARP@K = sum_{i in L_u} φ(i) / |L_u|, φ(i) the item's training popularity.

    Yin et al. 2012, "Challenging the Long Tail Recommendation"; Abdollahpouri et al. 2019.
    """
    return _list_mean(recs, pop)


def pop_rank(recs: np.ndarray, pop: np.ndarray) -> np.ndarray:
    """Mean popularity rank of the list: sum_{i in L_u} rank(i) / |L_u|, rank 1 = most popular
    (ties share their average rank). Higher means deeper into the tail.
    """
    return _list_mean(recs, popularity_rank(pop))


def novelty(recs: np.ndarray, pop: np.ndarray) -> np.ndarray:
    """Novelty@K = sum_{i in L_u} -log2 p(i) / |L_u|, in bits.

    p(i) = (φ(i) + 1) / (sum_j φ(j) + n) is the Laplace-smoothed popularity share (the +1 keeps
    never-seen items finite). Self-information novelty of Zhou et al. 2010, "Solving the
    apparent diversity-accuracy dilemma of recommender systems" (PNAS); Castells et al. 2011.
    """
    return _list_mean(recs, -np.log2(popularity_share(pop)))


def ild_embedding(recs: np.ndarray, emb: np.ndarray, batch: int = 8192) -> np.ndarray:
    """Intra-list diversity by embedding: 1 - mean pairwise cosine similarity of the list.

    ILD(L) = 1 - (2 / (|L| (|L| - 1))) sum_{i<j in L} cos(e_i, e_j)  (Ziegler et al. 2005,
    "Improving Recommendation Lists Through Topic Diversification"). Range [0, 2] in general,
    [0, 1] for non-negative embeddings. NaN for lists with fewer than two items; zero vectors
    count as cosine 0 with everything.
    """
    emb = np.asarray(emb, dtype=np.float32)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    unit = np.divide(emb, norm, out=np.zeros_like(emb), where=norm > 0)
    out = np.empty(recs.shape[0])
    for s in range(0, recs.shape[0], batch):
        r = recs[s : s + batch]
        valid = r >= 0
        v = unit[np.maximum(r, 0)] * valid[..., None]
        gram = np.einsum("nkd,njd->nkj", v, v, dtype=np.float64)
        out[s : s + batch] = _ild_from_gram(gram, valid)
    return out


def _ild_from_gram(sim: np.ndarray, valid: np.ndarray) -> np.ndarray:
    m = valid.sum(axis=1).astype(float)
    pair_sum = (sim.sum(axis=(1, 2)) - np.trace(sim, axis1=1, axis2=2)) / 2.0
    pairs = m * (m - 1) / 2.0
    mean_sim = _per_user(pair_sum, pairs)
    return 1.0 - mean_sim


def ild_category(recs: np.ndarray, category: np.ndarray) -> np.ndarray:
    """Intra-list diversity by category: the share of item pairs in different categories.

    The cosine ILD with one-hot category vectors: 1 - (2 / (|L| (|L| - 1))) sum_{i<j} 1[c_i = c_j]
    (Ziegler et al. 2005). Missing categories form one "unknown" category. NaN below two items.
    """
    codes = _codes(category)
    valid = recs >= 0
    c = np.where(valid, codes[np.maximum(recs, 0)], -1)
    same = (c[:, :, None] == c[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    return _ild_from_gram(same.astype(float), valid)


def _codes(category) -> np.ndarray:
    codes, _ = pd.factorize(pd.Series(np.asarray(category, dtype=object)), use_na_sentinel=False)
    return codes.astype(np.int64)


# --------------------------------------------------------------------------------------------
# list change versus a base list (per user)


def rbo(recs: np.ndarray, base: np.ndarray, p: float = 0.9) -> np.ndarray:
    """Rank-biased overlap, extrapolated (Webber, Moffat & Zobel 2010, eq. 30 "RBO_EXT").

    With s = max(|L_u|, |B_u|) and X_d = |L[:d] ∩ B[:d]|:
    RBO = (X_s / s) p^s + ((1 - p) / p) sum_{d=1..s} (X_d / d) p^d. Identical lists score 1,
    disjoint lists 0; ``p`` is the persistence (top-weightedness; 0.9 puts ~86% of the weight on
    the first 10 ranks). NaN when both lists are empty.
    """
    if not 0.0 < p < 1.0:
        raise BadInputError(f"RBO persistence p must be in (0, 1), got {p}")
    x = shared_depth(recs, base).astype(float)
    k = x.shape[1]
    d = np.arange(1, k + 1)
    s = np.maximum(list_length(recs), list_length(base))
    within = d[None, :] <= s[:, None]
    agree = np.where(within, x / d * p**d, 0.0).sum(axis=1) * (1 - p) / p
    xs = x[np.arange(x.shape[0]), np.maximum(s, 1) - 1]
    tail = _per_user(xs, s) * p ** s.astype(float)
    return np.where(s > 0, agree + tail, np.nan)


# --------------------------------------------------------------------------------------------
# exposure and catalogue-level metrics


def position_weights(k: int, weighting: str = "count") -> np.ndarray:
    """Exposure weight per rank r = 1..k: 1 (``count``) or 1 / log2(r + 1) (``position``).

    The logarithmic position weight is the DCG discount used for exposure in fairness-of-
    exposure work (Singh & Joachims 2018, "Fairness of Exposure in Rankings").
    """
    if weighting == "count":
        return np.ones(k)
    if weighting == "position":
        return _discount(k)
    raise BadInputError(f"unknown exposure weighting {weighting!r}; use 'count' or 'position'")


def exposure_matrix(recs: np.ndarray, n_items: int, weighting: str = "count") -> sp.csr_matrix:
    """Per-user exposure ``E[u, i]`` = weight of the rank at which u's list shows item i."""
    w = position_weights(recs.shape[1], weighting)
    valid = recs >= 0
    rows = np.nonzero(valid)[0]
    return sp.csr_matrix(
        (np.broadcast_to(w, recs.shape)[valid], (rows, recs[valid])),
        shape=(recs.shape[0], n_items),
    )


def exposure(recs: np.ndarray, n_items: int, weighting: str = "count") -> np.ndarray:
    """Total exposure per item: e_i = sum_u sum_r w(r) 1[L_u[r] = i]; sums to the list weights."""
    return np.asarray(exposure_matrix(recs, n_items, weighting).sum(axis=0)).ravel()


def entropy(x: np.ndarray) -> np.ndarray | float:
    """Shannon entropy of the exposure distribution, in bits: H = -sum_i p_i log2 p_i with
    p_i = x_i / sum_j x_j and 0 log 0 = 0. Between 0 (all on one item) and log2(n) (uniform).
    Shannon 1948; used for recommendation exposure by Adomavicius & Kwon 2012. ``[n]`` or
    ``[B, n]``; NaN if the total is 0.
    """
    x = np.asarray(x, dtype=float)
    total = x.sum(axis=-1, keepdims=True)
    p = np.divide(x, total, out=np.zeros_like(x), where=total > 0)
    logp = np.log2(p, out=np.zeros_like(p), where=p > 0)
    h = -(p * logp).sum(axis=-1)
    h = np.where(total[..., 0] > 0, h, np.nan)
    return float(h) if np.ndim(h) == 0 else h


def coverage(x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray | float:
    """Catalogue coverage: |{i : e_i > 0}| / n, the share of items recommended to anyone
    (Ge, Delgado-Battenfeld & Jannach 2010, "Beyond accuracy"). With ``mask`` (e.g. the tail):
    |{i in mask : e_i > 0}| / |mask| (tail coverage). Takes exposure ``[n]`` or ``[B, n]``.
    """
    x = np.asarray(x)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        x = x[..., mask]
    if x.shape[-1] == 0:
        return np.nan
    c = (x > 0).mean(axis=-1)
    return float(c) if np.ndim(c) == 0 else c


def std_over_mean(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """std(a, b) / mean(a, b) with the population std, elementwise; = |a - b| / (a + b)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return _per_user(np.abs(a - b), a + b)


def pop_rsp(recs: np.ndarray, tail: np.ndarray, seen: sp.csr_matrix | None = None) -> float:
    """PopRSP@K: ranking-based statistical parity between head and tail items.

    P(R@K | g) = sum_u |L_u ∩ g| / sum_u |g \\ I_u|  (I_u: the user's training items, which
    cannot be recommended); PopRSP = std(P_head, P_tail) / mean(P_head, P_tail) with the
    population std, i.e. |P_head - P_tail| / (P_head + P_tail). 0 = parity.
    Zhu, Wang & Caverlee 2020, "Measuring and Mitigating Item Under-Recommendation Bias in
    Personalized Ranking Systems" (SIGIR); popularity groups as in Zhu et al. 2021 and Elliot.
    """
    parts = rsp_parts(recs, tail, seen)
    return float(std_over_mean(parts[0].sum() / parts[1].sum(), parts[2].sum() / parts[3].sum()))


def rsp_parts(recs: np.ndarray, tail: np.ndarray, seen: sp.csr_matrix | None = None):
    """Per-user numerators and denominators of P(R@K | head) and P(R@K | tail)."""
    tail = np.asarray(tail, dtype=bool)
    valid = recs >= 0
    in_tail = valid & tail[np.maximum(recs, 0)]
    rec_tail = in_tail.sum(axis=1).astype(float)
    rec_head = (valid & ~in_tail).sum(axis=1).astype(float)
    n_tail, n_head = float(tail.sum()), float((~tail).sum())
    if seen is not None:
        seen_tail = np.asarray(seen.astype(bool) @ tail.astype(np.int64)).ravel()
        seen_head = np.asarray(seen.astype(bool).sum(axis=1)).ravel() - seen_tail
    else:
        seen_tail = seen_head = np.zeros(recs.shape[0])
    return rec_head, n_head - seen_head, rec_tail, n_tail - seen_tail


def reo_parts(hits: np.ndarray, recs: np.ndarray, truth: sp.csr_matrix, tail: np.ndarray):
    """Per-user numerators and denominators of P(R@K | g, y = 1) for head and tail."""
    tail = np.asarray(tail, dtype=bool)
    hit_tail = (hits & tail[np.maximum(recs, 0)]).sum(axis=1).astype(float)
    hit_head = hits.sum(axis=1) - hit_tail
    test_tail = np.asarray(truth @ tail.astype(np.int64)).ravel().astype(float)
    test_head = np.diff(truth.indptr) - test_tail
    return hit_head, test_head, hit_tail, test_tail


def pop_reo(hits: np.ndarray, recs: np.ndarray, truth: sp.csr_matrix, tail: np.ndarray) -> float:
    """PopREO@K: ranking-based equal opportunity between head and tail items.

    P(R@K | g, y=1) = sum_u |L_u ∩ T_u ∩ g| / sum_u |T_u ∩ g| (the recall of group g's test
    items); PopREO = std / mean over the two groups = |P_head - P_tail| / (P_head + P_tail).
    0 = equal opportunity. Zhu, Wang & Caverlee 2020 (SIGIR); Zhu et al. 2021 (popularity).
    NaN if a group has no test items or neither group is ever hit.
    """
    hh, th, ht, tt = reo_parts(hits, recs, truth, tail)
    ph = hh.sum() / th.sum() if th.sum() > 0 else np.nan
    pt = ht.sum() / tt.sum() if tt.sum() > 0 else np.nan
    return float(std_over_mean(ph, pt))


#: Per-user metrics that need test items (NaN for users without any).
ACCURACY: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")
#: Metric names that are bounded in [0, 1].
UNIT_BOUNDED: tuple[str, ...] = (
    *ACCURACY,
    "tail_recall",
    "aplt",
    "coverage",
    "tail_coverage",
    "gini",
    "gini_position",
    "pop_reo",
    "pop_rsp",
    "ild_category",
    "overlap",
    "rbo",
)


def accuracy_metrics(hits: np.ndarray, n_rel: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """All per-user accuracy metrics at K from the hit matrix and |T_u|."""
    return {
        "precision": precision(hits, n_rel, k),
        "recall": recall(hits, n_rel),
        "ndcg": ndcg(hits, n_rel),
        "map": average_precision(hits, n_rel),
        "hit_rate": hit_rate(hits, n_rel),
        "mrr": reciprocal_rank(hits, n_rel),
    }
