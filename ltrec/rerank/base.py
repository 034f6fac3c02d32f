"""Re-ranking data types: a user's candidate pool, the catalogue context, the ranked result.

A re-ranker works on plain numpy arrays so it can run on any model's output (DESIGN §5):

* :class:`Candidates`: one user's pool, the base model's top M items with their scores.
* :class:`Context`: per-catalogue arrays (popularity, bucket / tail flag, category codes, text
  embedding, price, stock) and per-user history, built once per dataset with
  :meth:`Context.from_data`.
* :class:`Ranked`: the final top K with, for every item, its base score, final score, base rank
  and the reason it is there. The Rerank Studio renders it as is; :meth:`Ranked.stats` gives the
  per-list figures (tail share, ARP, mean base score, overlap with the base list).

Conventions: items and users are integer indices into the dataset's vocabularies. Ranks are
1-based. The *base order* of a pool is by base score, descending, ties kept in pool order; every
strategy at strength 0 returns that order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse

from ltrec.definitions import bucket_names as default_bucket_names
from ltrec.definitions import list_overlap, popularity_rank
from ltrec.errors import BadInputError

if TYPE_CHECKING:
    from ltrec.evaluation.metrics import AnySparse

#: Stand-in for "no item" in fixed-width batch outputs (fewer than K items survived the rules).
PAD = -1


def minmax(x: np.ndarray) -> np.ndarray:
    """Min-max normalise scores into [0, 1]: (s - min s) / (max s - min s).

    A constant pool maps to all ones, so the relevance term stays comparable across users.
    """
    if x.size == 0:
        return x.astype(float)
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 1e-12:
        return np.ones_like(x, dtype=float)
    return (x - lo) / (hi - lo)


@dataclass(frozen=True, slots=True)
class Candidates:
    """One user's candidate pool: item indices [M] and base scores [M].

    The constructor sorts the pool into base order (score descending, stable), so position j of
    ``items`` has base rank j + 1.
    """

    items: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        items = np.asarray(self.items, dtype=np.int64).ravel()
        scores = np.asarray(self.scores, dtype=float).ravel()
        if items.shape != scores.shape:
            raise BadInputError(
                f"candidate items ({items.size}) and scores ({scores.size}) differ in length"
            )
        order = np.argsort(-scores, kind="stable")
        items, scores = items[order], scores[order]
        srt = np.sort(items)  # a sort finds duplicates faster than np.unique's hash table
        if items.size > 1 and bool((srt[1:] == srt[:-1]).any()):
            # A duplicated candidate would be shown twice; keep its best-scored copy.
            _, first = np.unique(items, return_index=True)
            keep = np.sort(first)
            items, scores = items[keep], scores[keep]
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "scores", scores)

    @classmethod
    def from_row(cls, items: np.ndarray, scores: np.ndarray) -> Candidates:
        """A pool from one row of a model's ``recommend`` output, dropping padding.

        Negative item indices and non-finite scores (excluded or padded slots) are dropped.
        """
        items = np.asarray(items, dtype=np.int64)
        scores = np.asarray(scores, dtype=float)
        ok = (items >= 0) & np.isfinite(scores)
        return cls(items[ok], scores[ok])

    def __len__(self) -> int:
        return int(self.items.size)


def _csr_rows(history: object, n_users: int | None, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) of per-user history from a CSR matrix or a sequence of index arrays."""
    if history is None:
        n = n_users or 0
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if sparse.issparse(history):
        m = sparse.csr_matrix(cast("AnySparse", history))
        if m.shape[1] != n_items:
            raise BadInputError(
                f"history has {m.shape[1]} item columns but the catalogue has {n_items} items"
            )
        m.sum_duplicates()
        m.eliminate_zeros()
        return m.indptr.astype(np.int64), m.indices.astype(np.int64)
    # not a matrix: a sequence of per-user index arrays
    rows = [np.asarray(r, dtype=np.int64).ravel() for r in cast(Iterable[Any], history)]
    lengths = np.array([r.size for r in rows], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= n_items):
        raise BadInputError("history holds item indices outside the catalogue")
    return indptr, indices


@dataclass(eq=False)
class Context:
    """Everything a re-ranker may look at besides the pool. Build with :meth:`from_data`.

    Attributes:
        popularity: [n_items] popularity (distinct users, DESIGN §3).
        bucket: [n_items] popularity bucket codes, 0 = head ... ``n_buckets - 1`` = tail.
        bucket_names: names of the buckets, head first.
        category: [n_items] category codes, -1 = unknown.
        category_names: names of the category codes.
        embedding: [n_items, d] L2-normalised text embeddings, or None.
        price: [n_items] prices, NaN = unknown.
        in_stock: [n_items] stock flags.
        item_ids: [n_items] external item ids (for pins and display), or None.
        history_indptr, history_items: per-user history (CSR layout) of item indices.
    """

    popularity: np.ndarray
    bucket: np.ndarray
    bucket_names: tuple[str, ...]
    category: np.ndarray
    category_names: tuple[str, ...]
    embedding: np.ndarray | None
    price: np.ndarray
    in_stock: np.ndarray
    item_ids: np.ndarray | None
    history_indptr: np.ndarray
    history_items: np.ndarray
    # Derived once: tail flag, 1 - normalised log popularity, per-user bucket distribution.
    tail: np.ndarray = field(init=False, repr=False)
    low_pop: np.ndarray = field(init=False, repr=False)
    user_buckets: np.ndarray = field(init=False, repr=False)
    _item_index: dict[str, int] | None = field(init=False, repr=False, default=None)
    _category_codes: np.ndarray | None = field(init=False, repr=False, default=None)
    _pop_rank: np.ndarray | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.tail = self.bucket == self.n_buckets - 1
        logp = np.log1p(np.maximum(self.popularity, 0.0))
        top = float(logp.max()) if logp.size else 0.0
        self.low_pop = 1.0 - logp / top if top > 0 else np.ones_like(logp)
        counts = np.zeros((self.n_users, self.n_buckets), dtype=float)
        if self.history_items.size:
            rows = np.repeat(np.arange(self.n_users), np.diff(self.history_indptr))
            np.add.at(counts, (rows, self.bucket[self.history_items]), 1.0)
        totals = counts.sum(axis=1, keepdims=True)
        self.user_buckets = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_data(
        cls,
        popularity: Sequence[float] | np.ndarray,
        *,
        tail: Sequence[bool] | np.ndarray | None = None,
        bucket: Sequence[int] | np.ndarray | None = None,
        bucket_names: Sequence[str] | None = None,
        category: Sequence[object] | np.ndarray | None = None,
        category_names: Sequence[str] | None = None,
        embedding: np.ndarray | None = None,
        price: Sequence[float] | np.ndarray | None = None,
        in_stock: Sequence[bool] | np.ndarray | None = None,
        item_ids: Sequence[str] | np.ndarray | None = None,
        history: sparse.spmatrix | Iterable[Sequence[int]] | None = None,
        n_users: int | None = None,
    ) -> Context:
        """Build a context from plain per-item arrays and per-user history.

        Args:
            popularity: [n_items] item popularity.
            tail: [n_items] tail flags (two buckets: head, tail). Give this or ``bucket``.
            bucket: [n_items] bucket codes, 0 = head ... last = tail.
            bucket_names: bucket names, head first (default head/tail or head/mid/tail).
            category: [n_items] category codes (ints, -1 unknown) or labels (strings, None
                unknown); labels are coded in sorted order.
            category_names: names of integer category codes.
            embedding: [n_items, d] text embeddings (normalised here).
            price: [n_items] prices (NaN unknown). in_stock: [n_items] stock flags.
            item_ids: [n_items] external ids, used to resolve pinned items.
            history: user-item CSR matrix (nonzero = interacted) or one index list per user.
            n_users: number of users when ``history`` is None.
        """
        pop = np.asarray(popularity, dtype=float).ravel()
        n = pop.size
        if bucket is None and tail is None:
            raise BadInputError("a re-ranking context needs the tail flags or bucket codes")
        if bucket is None:
            bucket_arr = np.asarray(tail, dtype=bool).astype(np.int64)
        else:
            bucket_arr = np.asarray(bucket, dtype=np.int64).ravel()
        if bucket_arr.size != n:
            raise BadInputError(f"bucket codes cover {bucket_arr.size} items, not {n}")
        nb = max(int(bucket_arr.max()) + 1 if n else 2, 2)
        if bucket_names is None:
            bucket_names = tuple(default_bucket_names(nb - 1))
        if len(bucket_names) != nb:
            raise BadInputError(f"{nb} buckets need {nb} names, got {len(bucket_names)}")

        if category is None:
            cat = np.full(n, -1, dtype=np.int64)
            names: tuple[str, ...] = tuple(category_names or ())
        else:
            raw = np.asarray(category, dtype=object).ravel()
            if raw.size != n:
                raise BadInputError(f"categories cover {raw.size} items, not {n}")
            if all(isinstance(c, (int, np.integer)) for c in raw):
                cat = raw.astype(np.int64)
                top = int(cat.max()) + 1 if n else 0
                names = tuple(category_names) if category_names else tuple(map(str, range(top)))
                if len(names) < top:
                    raise BadInputError("category_names is shorter than the category codes")
            else:
                known = sorted({str(c) for c in raw if c is not None and c == c})
                lookup = {c: i for i, c in enumerate(known)}
                cat = np.array(
                    [lookup[str(c)] if c is not None and c == c else -1 for c in raw],
                    dtype=np.int64,
                )
                names = tuple(known)

        emb: np.ndarray | None = None
        if embedding is not None:
            emb = np.asarray(embedding, dtype=np.float32)
            if emb.ndim != 2 or emb.shape[0] != n:
                raise BadInputError(f"embedding must be [n_items={n}, d], got {emb.shape}")
            norms = np.linalg.norm(emb, axis=1, keepdims=True)
            emb = emb / np.where(norms > 0, norms, 1.0)

        prices = np.full(n, np.nan) if price is None else np.asarray(price, dtype=float).ravel()
        stock = np.ones(n, dtype=bool) if in_stock is None else np.asarray(in_stock, dtype=bool)
        ids = None if item_ids is None else np.asarray(item_ids, dtype=object).ravel()
        for label, arr in (("price", prices), ("in_stock", stock), ("item_ids", ids)):
            if arr is not None and arr.size != n:
                raise BadInputError(f"{label} covers {arr.size} items, not {n}")
        indptr, items = _csr_rows(history, n_users, n)
        return cls(
            popularity=pop,
            bucket=bucket_arr,
            bucket_names=tuple(bucket_names),
            category=cat,
            category_names=names,
            embedding=emb,
            price=prices,
            in_stock=stock,
            item_ids=ids,
            history_indptr=indptr,
            history_items=items,
        )

    # ------------------------------------------------------------------ accessors

    @property
    def n_items(self) -> int:
        return int(self.popularity.size)

    @property
    def n_users(self) -> int:
        return int(self.history_indptr.size - 1)

    @property
    def n_buckets(self) -> int:
        return len(self.bucket_names)

    @property
    def n_categories(self) -> int:
        """Category codes plus one slot for "unknown" (code -1 is counted at the end)."""
        return len(self.category_names) + 1

    def history(self, user: int | None) -> np.ndarray:
        """Item indices the user interacted with (empty for None or an unknown user)."""
        if user is None or not 0 <= user < self.n_users:
            return np.zeros(0, dtype=np.int64)
        return self.history_items[self.history_indptr[user] : self.history_indptr[user + 1]]

    def aspect_codes(self, by: str) -> np.ndarray:
        """[n_items] aspect codes for ``by`` = "bucket" or "category" (unknown = last code)."""
        if by == "bucket":
            return self.bucket
        if self._category_codes is None:  # computed once: re-rankers ask for it per user
            self._category_codes = np.where(
                self.category >= 0, self.category, self.n_categories - 1
            )
        return self._category_codes

    def n_aspects(self, by: str) -> int:
        return self.n_buckets if by == "bucket" else self.n_categories

    def user_distribution(self, user: int | None, by: str = "bucket") -> np.ndarray:
        """The user's historical distribution p(c|u) over buckets or categories.

        p(c|u) = |{i in H_u : c(i) = c}| / |H_u|; all zeros when the user has no history.
        """
        if by == "bucket":
            if user is None or not 0 <= user < self.n_users:
                return np.zeros(self.n_buckets)
            return self.user_buckets[user]
        hist = self.history(user)
        counts = np.bincount(self.aspect_codes(by)[hist], minlength=self.n_categories)
        total = counts.sum()
        return counts / total if total else counts.astype(float)

    def user_tail_share(self, user: int | None) -> float | None:
        """Share of the user's history on tail items (None without history)."""
        if self.history(user).size == 0:
            return None
        return float(self.user_buckets[user, -1])

    @property
    def popularity_rank(self) -> np.ndarray:
        """[n_items] :func:`ltrec.definitions.popularity_rank` (1 = most popular, ordinal)."""
        if self._pop_rank is None:
            self._pop_rank = popularity_rank(self.popularity)
        return self._pop_rank

    def item_index(self, item_id: str) -> int | None:
        """The index of an external item id (or of a numeric index string without ids)."""
        if self.item_ids is None:
            return int(item_id) if item_id.isdigit() and int(item_id) < self.n_items else None
        if self._item_index is None:
            self._item_index = {str(x): i for i, x in enumerate(self.item_ids)}
        return self._item_index.get(item_id)


@dataclass(frozen=True)
class ListStats:
    """Per-list figures the Studio shows beside a list (DESIGN §3 definitions).

    Attributes:
        tail_share: share of the list on tail items (the list's APLT term).
        arp: average recommendation popularity, mean popularity of the listed items.
        mean_base_score: mean base-model score of the listed items (pool items only).
        overlap: :func:`ltrec.definitions.list_overlap` with the base list B,
            |L ∩ B| / max(|L|, |B|) (None without a base).
        n: list length.
    """

    tail_share: float
    arp: float
    mean_base_score: float
    overlap: float | None
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "tail_share": self.tail_share,
            "arp": self.arp,
            "mean_base_score": self.mean_base_score,
            "overlap": self.overlap,
            "n": self.n,
        }


@dataclass(frozen=True)
class Ranked:
    """A re-ranked list: what the Studio renders.

    Attributes:
        items: [n] item indices, best first (n <= K).
        base_scores: [n] the base model's scores (NaN for a pinned item outside the pool).
        scores: [n] the strategy's final scores (for greedy strategies, the marginal objective
            when the item was chosen; NaN for pinned items).
        base_ranks: [n] 1-based ranks in the base order of the pool (0 = not in the pool).
        reasons: [n] why each item is where it is, e.g. "boosted: tail item (+0.21)".
        setting: a short label of the setting that produced the list.
        notes: list-level remarks (pins skipped by a filter, FA*IR short of tail items, ...).
    """

    items: np.ndarray
    base_scores: np.ndarray
    scores: np.ndarray
    base_ranks: np.ndarray
    reasons: tuple[str, ...]
    setting: str = "base"
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.items.size)

    @property
    def rank_change(self) -> np.ndarray:
        """Places moved up against the base (base rank - rank); 0 for items outside the pool."""
        ranks = np.arange(1, len(self) + 1)
        return np.where(self.base_ranks > 0, self.base_ranks - ranks, 0)

    def stats(self, context: Context, base: Ranked | None = None) -> ListStats:
        """Tail share, ARP, mean base score and overlap with ``base`` (see :class:`ListStats`)."""
        n = len(self)
        if n == 0:
            return ListStats(0.0, 0.0, float("nan"), 0.0 if base is not None else None, 0)
        overlap = None
        if base is not None:
            overlap = list_overlap(self.items, base.items)
        finite = self.base_scores[np.isfinite(self.base_scores)]
        return ListStats(
            tail_share=float(context.tail[self.items].mean()),
            arp=float(context.popularity[self.items].mean()),
            mean_base_score=float(finite.mean()) if finite.size else float("nan"),
            overlap=overlap,
            n=n,
        )

    def to_frame(self, context: Context | None = None) -> pd.DataFrame:
        """One row per item: rank, item, base_rank, rank_change, scores, reason; with a context
        also item_id, bucket, popularity, popularity_rank and category."""
        df = pd.DataFrame(
            {
                "rank": np.arange(1, len(self) + 1),
                "item": self.items,
                "base_rank": self.base_ranks,
                "rank_change": self.rank_change,
                "base_score": self.base_scores,
                "score": self.scores,
                "reason": list(self.reasons),
            }
        )
        if context is not None:
            if context.item_ids is not None:
                df.insert(2, "item_id", context.item_ids[self.items])
            df["bucket"] = [context.bucket_names[b] for b in context.bucket[self.items]]
            df["popularity"] = context.popularity[self.items]
            df["popularity_rank"] = context.popularity_rank[self.items]
            if context.category_names:
                names = (*context.category_names, "")
                df["category"] = [names[c] for c in context.category[self.items]]
        return df


@runtime_checkable
class Reranker(Protocol):
    """Anything that turns a candidate pool into a final top-K list."""

    def rerank(self, candidates: Candidates, context: Context, user: int | None, k: int) -> Ranked:
        """The top ``k`` of ``candidates`` for ``user`` (an index into ``context``'s users)."""
        ...


@dataclass(frozen=True)
class RankedBatch:
    """Fixed-width results for many users (rows padded with :data:`PAD` / NaN).

    ``items`` [n, k] feeds the evaluation metrics directly; :meth:`row` gives one user's
    :class:`Ranked` back.
    """

    users: np.ndarray
    items: np.ndarray
    base_scores: np.ndarray
    scores: np.ndarray
    base_ranks: np.ndarray
    lists: tuple[Ranked, ...]

    def row(self, i: int) -> Ranked:
        return self.lists[i]

    def tail_share(self, context: Context) -> float:
        """Mean share of tail items per list (APLT), over lists with at least one item."""
        valid = self.items >= 0
        counts = valid.sum(axis=1)
        tails = (context.tail[np.where(valid, self.items, 0)] & valid).sum(axis=1)
        ok = counts > 0
        return float((tails[ok] / counts[ok]).mean()) if ok.any() else 0.0


def rerank_batch(
    reranker: Reranker,
    items: np.ndarray,
    scores: np.ndarray,
    context: Context,
    users: Sequence[int | None] | np.ndarray,
    k: int,
) -> RankedBatch:
    """Re-rank many users' pools: ``items``/``scores`` are [n, M] rows of a model's output."""
    items = np.asarray(items)
    scores = np.asarray(scores, dtype=float)
    n = items.shape[0]
    if scores.shape != items.shape or len(users) != n:
        raise BadInputError("items, scores and users must describe the same number of users")
    out_items = np.full((n, k), PAD, dtype=np.int64)
    out_base = np.full((n, k), np.nan)
    out_scores = np.full((n, k), np.nan)
    out_ranks = np.zeros((n, k), dtype=np.int64)
    pools = [Candidates.from_row(items[i], scores[i]) for i in range(n)]
    who = [None if u is None else int(u) for u in users]
    many = getattr(reranker, "rerank_many", None)  # a strategy that ranks a batch at once
    if many is not None:
        lists = list(many(pools, context, who, k))
    else:
        lists = [reranker.rerank(pools[i], context, who[i], k) for i in range(n)]
    for i, r in enumerate(lists):
        m = len(r)
        out_items[i, :m] = r.items
        out_base[i, :m] = r.base_scores
        out_scores[i, :m] = r.scores
        out_ranks[i, :m] = r.base_ranks
    return RankedBatch(
        users=np.asarray(users, dtype=object),
        items=out_items,
        base_scores=out_base,
        scores=out_scores,
        base_ranks=out_ranks,
        lists=tuple(lists),
    )


def finish(
    cand: Candidates,
    picked: np.ndarray,
    final: npt.ArrayLike,
    moved_up: Sequence[str] | str,
    setting: str,
    *,
    notes: Sequence[str] = (),
) -> Ranked:
    """Assemble a :class:`Ranked` from positions into the (base-ordered) pool.

    Args:
        cand: the pool, in base order.
        picked: [n] positions into ``cand`` in final order.
        final: [n] final scores.
        moved_up: the reason for items that rank above their base rank (one string, or one per
            picked item).
        setting: label of the setting.
        notes: list-level remarks.
    """
    base_ranks = np.asarray(picked) + 1
    reasons = []
    for r, br in enumerate(base_ranks, start=1):
        if br > r:
            reasons.append(moved_up if isinstance(moved_up, str) else moved_up[r - 1])
        elif br == r:
            reasons.append("base rank")
        else:
            reasons.append(f"moved down from {br}")
    return Ranked(
        items=cand.items[picked],
        base_scores=cand.scores[picked],
        scores=np.asarray(final, dtype=float),
        base_ranks=np.asarray(base_ranks, dtype=np.int64),
        reasons=tuple(reasons),
        setting=setting,
        notes=tuple(notes),
    )
