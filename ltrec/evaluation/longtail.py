"""Popularity buckets and ranks (DESIGN §3), the numpy twin of the analytics SQL version.

Buckets follow the short-head / long-tail split used by APLT (Abdollahpouri, Burke & Mobasher
2019, "Managing Popularity Bias in Recommender Systems with Personalized Re-ranking"): sort items
by popularity, descending, and cut by cumulative interaction share. With the default cut 0.8 the
head is the smallest set of top items that makes at least 80% of interactions; the rest is tail.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ltrec.errors import BadInputError


def _check_pop(pop: np.ndarray) -> np.ndarray:
    pop = np.asarray(pop, dtype=float)
    if pop.ndim != 1:
        raise BadInputError(f"item popularity must be one value per item, got shape {pop.shape}")
    if not np.isfinite(pop).all() or (pop < 0).any():
        raise BadInputError("item popularity must be finite and non-negative")
    return pop


def popularity_buckets(
    pop: np.ndarray, cuts: Sequence[float] = (0.8,), ties: str = "order"
) -> np.ndarray:
    """Bucket index per item: 0 = head, ``len(cuts)`` = tail.

    Items are sorted by popularity, descending. An item's bucket is the number of cuts ``c`` with
    ``share_before >= c``, where ``share_before`` is the popularity share of all strictly more
    popular items, i.e. bucket b holds the items from where cumulative share first reaches
    ``cuts[b-1]`` up to where it first reaches ``cuts[b]``. So with cuts (0.8,), the head is the
    smallest prefix whose share reaches 80%.

    Ties are broken by item index by default (``ties="order"``), which is the analytics SQL's
    ``ORDER BY popularity DESC, item_id`` whenever item indices follow sorted item ids (as every
    ltrec vocabulary does): one rule everywhere, and the head is literally the smallest set.
    Items with zero popularity are always in the last bucket (tail, "cold"). If every item has
    zero popularity, every item is tail.

    Args:
        pop: popularity per item (distinct users, or weighted interactions), non-negative.
        cuts: strictly increasing cumulative shares in (0, 1).
        ties: ``"order"`` (default, as above; a tie group may straddle a cut) or ``"group"``:
            items with equal popularity share the bucket of the first of them, so the result
            does not depend on item order.

    Returns:
        ``int`` array, one bucket index per item.
    """
    pop = _check_pop(pop)
    cuts_arr = np.asarray(cuts, dtype=float)
    if cuts_arr.size == 0 or (cuts_arr <= 0).any() or (cuts_arr >= 1).any():
        raise BadInputError("bucket cuts must be shares strictly between 0 and 1")
    if (np.diff(cuts_arr) <= 0).any():
        raise BadInputError("bucket cuts must be strictly increasing")
    last = cuts_arr.size
    out = np.full(pop.size, last, dtype=np.int64)
    total = pop.sum()
    if total <= 0:
        return out
    if ties == "order":
        order = np.argsort(-pop, kind="stable")
        before = (np.cumsum(pop[order]) - pop[order]) / total
        out[order] = np.searchsorted(cuts_arr, before + 1e-12, side="right")
        out[pop == 0] = last
        return out
    if ties != "group":
        raise BadInputError(f"unknown tie rule {ties!r}; use 'group' or 'order'")
    values = np.unique(pop)[::-1]  # distinct popularity values, descending: one per tie group
    group_mass = values * np.bincount(np.searchsorted(-values, -pop), minlength=values.size)
    before = (np.cumsum(group_mass) - group_mass) / total  # share of strictly more popular items
    # Float rounding must not push an exact boundary (e.g. 0.8 = 4/5) below its cut.
    group_bucket = np.searchsorted(cuts_arr, before + 1e-12, side="right")
    out = group_bucket[np.searchsorted(-values, -pop)]
    out[pop == 0] = last
    return out.astype(np.int64)


def tail_mask(pop: np.ndarray, cuts: Sequence[float] = (0.8,)) -> np.ndarray:
    """Boolean mask of the tail (the last bucket of :func:`popularity_buckets`)."""
    return popularity_buckets(pop, cuts) == len(cuts)


def popularity_rank(pop: np.ndarray) -> np.ndarray:
    """Rank per item by popularity, 1 = most popular; ties get their average rank."""
    pop = _check_pop(pop)
    # Average ranks in numpy (scipy.stats costs seconds to import): a tie group spanning
    # ordinal ranks a..b gets (a + b) / 2.
    _, inverse, counts = np.unique(-pop, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts + 1
    return (first + (counts - 1) / 2.0)[inverse]


def popularity_share(pop: np.ndarray) -> np.ndarray:
    """Laplace-smoothed popularity share p(i) = (pop_i + 1) / (sum_j pop_j + n).

    The +1 keeps ``-log2 p`` (novelty) finite for items nobody has interacted with yet.
    """
    pop = _check_pop(pop)
    return (pop + 1.0) / (pop.sum() + pop.size)
