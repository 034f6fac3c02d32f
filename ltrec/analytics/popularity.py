"""Item popularity, popularity buckets and the rank-frequency curve (DESIGN §3).

Popularity of an item is the number of distinct users who interacted with it in the scope
(:class:`PopularityConfig` picks the event type, or a weighted sum over types). Buckets follow the
short-head / long-tail split of Abdollahpouri et al. and Elliot (APLT): sort items by popularity,
descending, and cut by cumulative interaction share. With cuts ``(c_1 < ... < c_m)`` an item
belongs to bucket ``j`` = the number of cuts ``c`` with ``S_prev >= c * S``, where ``S_prev`` is
the popularity of all items ranked above it and ``S`` the total: so the head is the smallest
set of top items whose popularity reaches ``c_1 * S``. Items with zero popularity are always in
the tail (``S_prev = S``) and are flagged ``cold``. Ties are broken by ``item_id`` so the split
is the same on every engine. This is :func:`ltrec.definitions.popularity_buckets` (and
``rank`` is :func:`ltrec.definitions.popularity_rank`) run in the database; a test holds the two
equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from ltrec.analytics.backend import INTERACTIONS, Scope, Store
from ltrec.config import EVENT_WEIGHTS, ConfigBase, get_settings
from ltrec.definitions import SHARE_EPS, bucket_names

PopularityEvent = Literal["interaction", "impression", "view", "cart", "purchase", "weighted"]


class PopularityConfig(ConfigBase):
    """How popularity is measured.

    Attributes:
        event: ``interaction`` (distinct users with a view, cart or purchase), one event type
            (distinct users with that event), or ``weighted`` (sum over types of
            ``weight[type] * distinct users with that type``, weights from ``weights``).
        weights: per-type weights for ``weighted``; default ``EVENT_WEIGHTS``.
    """

    event: PopularityEvent = "interaction"
    weights: dict[str, float] = Field(default_factory=lambda: dict(EVENT_WEIGHTS))

    @field_validator("weights")
    @classmethod
    def _weights(cls, w: dict[str, float]) -> dict[str, float]:
        if any(k not in EVENT_WEIGHTS for k in w) or any(not 0 <= v <= 1e6 for v in w.values()):
            raise ValueError("weights: event types impression/view/cart/purchase, values >= 0")
        if not any(v > 0 for v in w.values()):
            raise ValueError("weights: at least one event type needs a positive weight")
        return w


class BucketConfig(ConfigBase):
    """Popularity buckets: strictly increasing cumulative-share cuts in (0, 1)."""

    cuts: tuple[float, ...] = Field(default_factory=lambda: get_settings().bucket_cuts)
    popularity: PopularityConfig = PopularityConfig()

    @field_validator("cuts")
    @classmethod
    def _cuts(cls, cuts: tuple[float, ...]) -> tuple[float, ...]:
        if not cuts or len(cuts) > 8:
            raise ValueError("give 1 to 8 bucket cuts")
        if any(not 0 < c < 1 for c in cuts) or list(cuts) != sorted(set(cuts)):
            raise ValueError("bucket cuts must be strictly increasing shares between 0 and 1")
        return cuts


def popularity_expr(
    store: Store, scope: Scope = Scope(), cfg: PopularityConfig = PopularityConfig()
) -> ir.Table:
    """Ibis table ``(item_id, category, popularity)`` over the whole catalogue in the scope."""
    ev = store.events(scope)
    if cfg.event == "weighted":
        used = [t for t, w in cfg.weights.items() if w > 0]
        ev = ev.filter(ev.event_type.isin(used))
        per = ev.group_by("item_id").agg(
            **{f"n_{t}": ev.user_id.nunique(where=ev.event_type == t) for t in used}
        )
        score = sum((per[f"n_{t}"] * float(cfg.weights[t]) for t in used), ibis.literal(0.0))
        per = per.select("item_id", pop=score.cast("float64"))
    else:
        types = INTERACTIONS if cfg.event == "interaction" else (cfg.event,)
        ev = ev.filter(ev.event_type.isin(types))
        per = ev.group_by("item_id").agg(pop=ev.user_id.nunique().cast("int64"))
    cat = store.items(scope)
    zero = ibis.literal(0.0 if cfg.event == "weighted" else 0)
    j = cat.left_join(per, cat.item_id == per.item_id)
    return j.select(cat.item_id, cat.category, popularity=ibis.coalesce(per.pop, zero))


def buckets_expr(store: Store, scope: Scope = Scope(), cfg: BucketConfig | None = None) -> ir.Table:
    """Ibis table ``(item_id, category, popularity, rank, bucket, cold)``; ``bucket`` is 0..m."""
    cfg = cfg or BucketConfig()
    p = popularity_expr(store, scope, cfg.popularity)
    order = [ibis.desc(p.popularity), p.item_id]
    cum = p.popularity.sum().over(ibis.window(order_by=order, rows=(None, 0)))
    total = p.popularity.sum().over(ibis.window())
    p = p.mutate(prev=(cum - p.popularity).cast("float64"), total=total.cast("float64"))
    bucket = sum(
        (ibis.ifelse(p.prev >= p.total * c - SHARE_EPS * p.total, 1, 0) for c in cfg.cuts),
        ibis.literal(0),
    )
    rank = ibis.row_number().over(ibis.window(order_by=order)) + 1
    return p.select(
        "item_id",
        "category",
        "popularity",
        rank=rank.cast("int64"),
        bucket=bucket.cast("int64"),
        cold=p.popularity == 0,
    )


@dataclass
class Buckets:
    """Items with their popularity, rank (1 = most popular) and bucket.

    Attributes:
        frame: ``item_id, category, popularity, rank, bucket (name), bucket_idx, cold``,
            sorted by rank.
        cuts: the cuts used; ``names``: bucket names, head first.
        config: the :class:`BucketConfig`.
    """

    frame: pd.DataFrame
    cuts: tuple[float, ...]
    names: list[str]
    config: BucketConfig

    def members(self, bucket: str) -> set[str]:
        return set(self.frame.loc[self.frame["bucket"] == bucket, "item_id"])


def popularity_buckets(
    store: Store, scope: Scope = Scope(), cfg: BucketConfig | None = None
) -> Buckets:
    """Assign every catalogue item to a popularity bucket (see the module docstring)."""
    cfg = cfg or BucketConfig()
    df = buckets_expr(store, scope, cfg).to_pandas()
    df = df.sort_values("rank", kind="stable").reset_index(drop=True)
    names = bucket_names(len(cfg.cuts))
    df = df.rename(columns={"bucket": "bucket_idx"})
    df["bucket"] = pd.Categorical.from_codes(
        df["bucket_idx"].astype(int), categories=pd.Index(names)
    )
    df["cold"] = df["cold"].astype(bool)
    cols = ["item_id", "category", "popularity", "rank", "bucket", "bucket_idx", "cold"]
    return Buckets(df[cols], tuple(cfg.cuts), names, cfg)


@dataclass
class RankFrequency:
    """The rank-frequency curve: popularity against rank, with bucket boundaries.

    Attributes:
        frame: ``rank, popularity, bucket`` (items with popularity > 0; a log axis has no 0).
        boundaries: for each bucket, ``(name, first rank, last rank)`` over ALL items.
        cold_items: items with zero popularity (not on the curve).
    """

    frame: pd.DataFrame
    boundaries: list[tuple[str, int, int]]
    cold_items: int
    event: str


def rank_frequency(
    store: Store, scope: Scope = Scope(), cfg: BucketConfig | None = None
) -> RankFrequency:
    """Popularity by rank for the log-log long-tail plot (Anderson's long tail)."""
    b = popularity_buckets(store, scope, cfg)
    df = b.frame
    bounds = []
    for name in b.names:
        ranks = df.loc[df["bucket"] == name, "rank"]
        if len(ranks):
            bounds.append((name, int(ranks.min()), int(ranks.max())))
    live = df[df["popularity"] > 0][["rank", "popularity", "bucket"]].reset_index(drop=True)
    return RankFrequency(
        live, bounds, int((df["popularity"] == 0).sum()), b.config.popularity.event
    )


def shares(values: np.ndarray) -> np.ndarray:
    """Each value's share of the total (zeros when the total is 0)."""
    total = float(np.sum(values))
    return values / total if total > 0 else np.zeros_like(values, dtype=float)
