"""Where exposure and purchases go: the bucket table, tail share by category, weekly trend.

**Exposure** is impressions when the data has any, else views, else purchases (a purchase-only
log such as the Complete Journey grocery data); :func:`exposure_event` says which, and every
result carries it. Shares are of event counts: ``tail exposure share`` = exposure events on tail
items / all exposure events. Buckets are those of :mod:`ltrec.analytics.popularity` over the
same scope.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from ltrec.analytics.backend import Scope, Store
from ltrec.analytics.concentration import item_event_counts
from ltrec.analytics.conversion import add_rates, pairs_expr
from ltrec.analytics.popularity import BucketConfig, bucket_names, buckets_expr
from ltrec.config import EVENT_TYPES


def event_counts(store: Store, scope: Scope = Scope()) -> dict[str, int]:
    """Number of events of each canonical type in the scope (all four keys, zeros included)."""
    ev = store.events(scope)
    row = ev.aggregate(**{t: ev.count(where=ev.event_type == t) for t in EVENT_TYPES}).to_pandas()
    return {t: int(row[t].iloc[0] or 0) for t in EVENT_TYPES}


def exposure_event(counts: dict[str, int]) -> str:
    """Impressions when the data has them, else views, else purchases, else carts."""
    for t in ("impression", "view", "purchase", "cart"):
        if counts.get(t, 0) > 0:
            return t
    return "impression"


def _item_table(store: Store, scope: Scope, cfg: BucketConfig) -> ir.Table:
    b = buckets_expr(store, scope, cfg)
    c = item_event_counts(store, scope)
    j = b.join(c, b.item_id == c.item_id)
    return j.select(b.item_id, b.category, b.bucket, b.cold, *[c[t] for t in EVENT_TYPES])


@dataclass
class BucketTable:
    """One row per bucket (head first).

    Attributes:
        frame: ``bucket, items, cold_items, item_share, exposure, exposure_share, purchases,
            purchase_share, views, carts, purchases`` (view/cart/purchase pairs),
            ``view_cart, cart_purchase, view_purchase`` with ``_lo``/``_hi`` Wilson bounds
            (NaN when the data has no views).
        exposure_event: the event counted as exposure.
    """

    frame: pd.DataFrame
    exposure_event: str
    cuts: tuple[float, ...]


def bucket_table(
    store: Store, scope: Scope = Scope(), cfg: BucketConfig | None = None
) -> BucketTable:
    """Items, catalogue share, exposure share, purchase share and conversion per bucket."""
    cfg = cfg or BucketConfig()
    counts = event_counts(store, scope)
    exp = exposure_event(counts)
    it = _item_table(store, scope, cfg)
    agg = it.group_by("bucket").agg(
        items=it.count(),
        cold_items=it.cold.cast("int64").sum(),
        exposure_events=it[exp].sum(),
        purchase_events=it.purchase.sum(),
    )
    pr = pairs_expr(store, scope)
    b = buckets_expr(store, scope, cfg)
    pj = pr.join(b, pr.item_id == b.item_id)
    conv = pj.group_by(b.bucket).agg(
        views=pj.count(), carts=pj.cart.sum(), purchases=pj.purchase.sum()
    )
    j = agg.left_join(conv, agg.bucket == conv.bucket)
    df = j.select(
        agg.bucket,
        agg.items,
        agg.cold_items,
        agg.exposure_events,
        agg.purchase_events,
        views=ibis.coalesce(conv.views, 0),
        carts=ibis.coalesce(conv.carts, 0),
        purchases=ibis.coalesce(conv.purchases, 0),
    ).to_pandas()
    names = bucket_names(len(cfg.cuts))
    full = pd.DataFrame({"bucket_idx": range(len(names))})
    df = full.merge(df.rename(columns={"bucket": "bucket_idx"}), on="bucket_idx", how="left")
    df = df.fillna(0)
    for col in (
        "items",
        "cold_items",
        "exposure_events",
        "purchase_events",
        "views",
        "carts",
        "purchases",
    ):
        df[col] = df[col].astype("int64")
    df.insert(0, "bucket", [names[i] for i in df["bucket_idx"]])
    df = df.drop(columns="bucket_idx")
    df.insert(3, "item_share", _share(df["items"]))
    df.insert(5, "exposure_share", _share(df["exposure_events"]))
    df.insert(7, "purchase_share", _share(df["purchase_events"]))
    df = add_rates(df)
    if counts["view"] == 0:  # purchase-only logs: every pair "converts"; say nothing instead
        rate_cols = [c for c in df.columns if c.startswith(("view_", "cart_"))]
        df[rate_cols] = np.nan
    return BucketTable(df, exp, tuple(cfg.cuts))


def _share(col: pd.Series) -> pd.Series:
    total = float(col.sum())
    return col / total if total > 0 else col * 0.0


@dataclass
class CategoryTail:
    """Tail share per top-level category.

    Attributes:
        frame: ``category, items, tail_items, tail_item_share, exposure, tail_exposure,
            tail_exposure_share, purchases, tail_purchases, tail_purchase_share``, by exposure.
    """

    frame: pd.DataFrame
    exposure_event: str


def tail_by_category(
    store: Store, scope: Scope = Scope(), cfg: BucketConfig | None = None
) -> CategoryTail:
    """For each top-level category: share of its items in the tail, and the tail's share of the
    category's exposure and purchases (buckets are catalogue-wide, not per category)."""
    cfg = cfg or BucketConfig()
    exp = exposure_event(event_counts(store, scope))
    it = _item_table(store, scope, cfg)
    tail = it.bucket == len(cfg.cuts)
    agg = it.group_by("category").agg(
        items=it.count(),
        tail_items=it.count(where=tail),
        exposure=it[exp].sum(),
        tail_exposure=it[exp].sum(where=tail),
        purchases=it.purchase.sum(),
        tail_purchases=it.purchase.sum(where=tail),
    )
    df = agg.to_pandas().fillna(0)
    for c in ("items", "tail_items", "exposure", "tail_exposure", "purchases", "tail_purchases"):
        df[c] = df[c].astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        df["tail_item_share"] = df["tail_items"] / df["items"]
        df["tail_exposure_share"] = df["tail_exposure"] / df["exposure"].replace(0, np.nan)
        df["tail_purchase_share"] = df["tail_purchases"] / df["purchases"].replace(0, np.nan)
    df = df.sort_values(["exposure", "category"], ascending=[False, True]).reset_index(drop=True)
    cols = [
        "category",
        "items",
        "tail_items",
        "tail_item_share",
        "exposure",
        "tail_exposure",
        "tail_exposure_share",
        "purchases",
        "tail_purchases",
        "tail_purchase_share",
    ]
    return CategoryTail(df[cols], exp)


@dataclass
class TailTrend:
    """Weekly tail share of exposure and purchases.

    Attributes:
        frame: ``week`` (Monday), ``exposure, tail_exposure, tail_exposure_share, purchases,
            tail_purchases, tail_purchase_share``, by week.
    """

    frame: pd.DataFrame
    exposure_event: str


def tail_trend(store: Store, scope: Scope = Scope(), cfg: BucketConfig | None = None) -> TailTrend:
    """Per ISO week: tail items' share of exposure events and of purchase events (buckets fixed
    over the whole scope, so a rising line means the tail gains, not that buckets moved)."""
    cfg = cfg or BucketConfig()
    exp = exposure_event(event_counts(store, scope))
    ev = store.events(scope)
    ev = ev.filter(ev.event_type.isin([exp, "purchase"]))
    b = buckets_expr(store, scope, cfg)
    j = ev.join(b, ev.item_id == b.item_id)
    j = j.select(week=j.ts.truncate("W"), event_type=j.event_type, tail=j.bucket == len(cfg.cuts))
    is_exp, is_buy = j.event_type == exp, j.event_type == "purchase"
    agg = j.group_by("week").agg(
        exposure=j.count(where=is_exp),
        tail_exposure=j.count(where=is_exp & j.tail),
        purchases=j.count(where=is_buy),
        tail_purchases=j.count(where=is_buy & j.tail),
    )
    df = agg.to_pandas().sort_values("week").reset_index(drop=True)
    df["week"] = pd.to_datetime(df["week"])
    with np.errstate(invalid="ignore", divide="ignore"):
        df["tail_exposure_share"] = df["tail_exposure"] / df["exposure"].replace(0, np.nan)
        df["tail_purchase_share"] = df["tail_purchases"] / df["purchases"].replace(0, np.nan)
    cols = [
        "week",
        "exposure",
        "tail_exposure",
        "tail_exposure_share",
        "purchases",
        "tail_purchases",
        "tail_purchase_share",
    ]
    return TailTrend(df[cols], exp)
