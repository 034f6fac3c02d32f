"""Where exposure and purchases go: the bucket table, tail share by category, weekly trend.

**Exposure** is what the dataset profile says (:attr:`ltrec.store.profile.DatasetProfile.
exposure_event`): impressions when the data has any, else views, else not measured (a
purchase-only log such as an order-lines file or the Complete Journey grocery data). Without
exposure, every exposure column is NaN (never a made-up 0) and the result's ``exposure_event`` is
None; purchase concentration (distinct buyers per item, the buying pairs) is there instead.
Shares are of event counts: ``tail exposure share`` = exposure events on tail items / all
exposure events. Buckets are those of :mod:`ltrec.analytics.popularity` over the same scope.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from ltrec.analytics.backend import Scope, Store
from ltrec.analytics.concentration import BUYERS, item_event_counts
from ltrec.analytics.conversion import add_rates, pairs_expr
from ltrec.analytics.popularity import BucketConfig, buckets_expr
from ltrec.config import EVENT_TYPES
from ltrec.definitions import bucket_names


def event_counts(store: Store, scope: Scope = Scope()) -> dict[str, int]:
    """Number of events of each canonical type in the scope (all four keys, zeros included)."""
    ev = store.events(scope)
    row = ev.aggregate(**{t: ev.count(where=ev.event_type == t) for t in EVENT_TYPES}).to_pandas()
    return {t: int(row[t].iloc[0] or 0) for t in EVENT_TYPES}


def _no_rates(df: pd.DataFrame, store: Store) -> pd.DataFrame:
    """Blank (NaN) every conversion rate whose two events the data does not both have."""
    profile = store.profile()
    for rate in ("view_cart", "cart_purchase", "view_purchase"):
        if not profile.rate_available(rate):
            cols = [c for c in df.columns if c == rate or c.startswith(f"{rate}_")]
            df[cols] = np.nan
    return df


def item_table(store: Store, scope: Scope, cfg: BucketConfig) -> ir.Table:
    """Ibis table per catalogue item: ``item_id, category, bucket, cold``, event counts of
    every type (``impression, view, cart, purchase``) and distinct ``buyers``."""
    b = buckets_expr(store, scope, cfg)
    c = item_event_counts(store, scope)
    j = b.join(c, b.item_id == c.item_id)
    return j.select(
        b.item_id, b.category, b.bucket, b.cold, *[c[t] for t in (*EVENT_TYPES, BUYERS)]
    )


@dataclass
class BucketTable:
    """One row per bucket (head first).

    Attributes:
        frame: ``bucket, items, cold_items, item_share, exposure_events, exposure_share,
            purchase_events, purchase_share, views, carts, purchases`` (view/cart/purchase
            pairs; ``purchases`` = distinct buyers summed over the bucket's items),
            ``buyer_share`` (the bucket's share of those buying pairs), ``view_cart,
            cart_purchase, view_purchase`` with ``_lo``/``_hi`` Wilson bounds (NaN unless the
            data has both events of the rate). Exposure columns are NaN without exposure.
        exposure_event: the event counted as exposure, None when the data does not measure it.
        counts: events of each type in the scope.
    """

    frame: pd.DataFrame
    exposure_event: str | None
    cuts: tuple[float, ...]
    counts: dict[str, int]


def bucket_table(
    store: Store, scope: Scope = Scope(), cfg: BucketConfig | None = None
) -> BucketTable:
    """Items, catalogue share, exposure share, purchase share and conversion per bucket.

    One query: buckets are computed once, joined with per-item event counts (every type, so
    the exposure type is chosen afterwards) and per-item funnel pair counts.
    """
    cfg = cfg or BucketConfig()
    it = item_table(store, scope, cfg)
    pr = pairs_expr(store, scope)
    pc = pr.group_by("item_id").agg(
        views=pr.count(), carts=pr.cart.sum(), purchases=pr.purchase.sum()
    )
    j = it.left_join(pc, it.item_id == pc.item_id)
    j = j.select(
        it.bucket,
        it.cold,
        *[it[t] for t in EVENT_TYPES],
        views=ibis.coalesce(pc.views, 0),
        carts=ibis.coalesce(pc.carts, 0),
        purchases=ibis.coalesce(pc.purchases, 0),
    )
    df = (
        j.group_by("bucket")
        .agg(
            items=j.count(),
            cold_items=j.cold.cast("int64").sum(),
            **{f"n_{t}": j[t].sum() for t in EVENT_TYPES},
            views=j.views.sum(),
            carts=j.carts.sum(),
            purchases=j.purchases.sum(),
        )
        .to_pandas()
    )
    names = bucket_names(len(cfg.cuts))
    full = pd.DataFrame({"bucket_idx": range(len(names))})
    df = full.merge(df.rename(columns={"bucket": "bucket_idx"}), on="bucket_idx", how="left")
    df = df.fillna(0)
    counts = {t: int(df[f"n_{t}"].sum()) for t in EVENT_TYPES}
    exp = store.profile().exposure_event
    df["exposure_events"] = df[f"n_{exp}"] if exp else 0
    df["purchase_events"] = df["n_purchase"]
    cols = [
        "items",
        "cold_items",
        "exposure_events",
        "purchase_events",
        "views",
        "carts",
        "purchases",
    ]
    df = df[["bucket_idx", *cols]].astype("int64")
    df.insert(0, "bucket", [names[i] for i in df["bucket_idx"]])
    df = df.drop(columns="bucket_idx")
    df.insert(3, "item_share", _share(df["items"]))
    df.insert(5, "exposure_share", _share(df["exposure_events"]))
    df.insert(7, "purchase_share", _share(df["purchase_events"]))
    df["buyer_share"] = _share(df["purchases"])
    if exp is None:  # not measured: NaN, never a made-up 0
        df[["exposure_events", "exposure_share"]] = np.nan
    df = _no_rates(add_rates(df), store)
    return BucketTable(df, exp, tuple(cfg.cuts), counts)


def _share(col: pd.Series) -> pd.Series:
    total = float(col.sum())
    return col / total if total > 0 else col * 0.0


@dataclass
class CategoryTail:
    """Tail share per top-level category.

    Attributes:
        frame: ``category, items, tail_items, tail_item_share, exposure, tail_exposure,
            tail_exposure_share, purchases, tail_purchases, tail_purchase_share``, by exposure
            (by purchases when the data does not measure exposure: exposure columns NaN).
    """

    frame: pd.DataFrame
    exposure_event: str | None


def tail_by_category(
    store: Store, scope: Scope = Scope(), cfg: BucketConfig | None = None
) -> CategoryTail:
    """For each top-level category: share of its items in the tail, and the tail's share of the
    category's exposure and purchases (buckets are catalogue-wide, not per category)."""
    cfg = cfg or BucketConfig()
    it = item_table(store, scope, cfg)
    tail = it.bucket == len(cfg.cuts)
    agg = it.group_by("category").agg(
        items=it.count(),
        tail_items=it.count(where=tail),
        **{f"n_{t}": it[t].sum() for t in EVENT_TYPES},
        **{f"tail_{t}": it[t].sum(where=tail) for t in EVENT_TYPES},
    )
    raw = agg.to_pandas().fillna(0)  # one query; the exposure type is chosen afterwards
    exp = store.profile().exposure_event
    df = raw.assign(
        exposure=raw[f"n_{exp}"] if exp else 0,
        tail_exposure=raw[f"tail_{exp}"] if exp else 0,
        purchases=raw["n_purchase"],
        tail_purchases=raw["tail_purchase"],
    )
    for c in ("items", "tail_items", "exposure", "tail_exposure", "purchases", "tail_purchases"):
        df[c] = df[c].astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        df["tail_item_share"] = df["tail_items"] / df["items"]
        df["tail_exposure_share"] = df["tail_exposure"] / df["exposure"].replace(0, np.nan)
        df["tail_purchase_share"] = df["tail_purchases"] / df["purchases"].replace(0, np.nan)
    order = "exposure" if exp else "purchases"
    df = df.sort_values([order, "category"], ascending=[False, True]).reset_index(drop=True)
    if exp is None:
        df[["exposure", "tail_exposure", "tail_exposure_share"]] = np.nan
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
            tail_purchases, tail_purchase_share``, by week (exposure columns NaN when the data
            does not measure exposure).
    """

    frame: pd.DataFrame
    exposure_event: str | None


def tail_trend(store: Store, scope: Scope = Scope(), cfg: BucketConfig | None = None) -> TailTrend:
    """Per ISO week: tail items' share of exposure events and of purchase events (buckets fixed
    over the whole scope, so a rising line means the tail gains, not that buckets moved)."""
    cfg = cfg or BucketConfig()
    ev = store.events(scope)
    bk = buckets_expr(store, scope, cfg)
    j = ev.join(bk, ev.item_id == bk.item_id)
    j = j.select(week=j.ts.truncate("W"), event_type=j.event_type, tail=j.bucket == len(cfg.cuts))
    agg = j.group_by("week").agg(  # every type in one pass; the exposure type is chosen after
        **{f"n_{t}": j.count(where=j.event_type == t) for t in EVENT_TYPES},
        **{f"tail_{t}": j.count(where=(j.event_type == t) & j.tail) for t in EVENT_TYPES},
    )
    raw = agg.to_pandas()
    exp = store.profile().exposure_event
    agg = raw.assign(
        exposure=raw[f"n_{exp}"] if exp else 0,
        tail_exposure=raw[f"tail_{exp}"] if exp else 0,
        purchases=raw["n_purchase"],
        tail_purchases=raw["tail_purchase"],
    )
    df = agg.sort_values("week").reset_index(drop=True)
    df["week"] = pd.to_datetime(df["week"])
    with np.errstate(invalid="ignore", divide="ignore"):
        df["tail_exposure_share"] = df["tail_exposure"] / df["exposure"].replace(0, np.nan)
        df["tail_purchase_share"] = df["tail_purchases"] / df["purchases"].replace(0, np.nan)
    if exp is None:
        df[["exposure", "tail_exposure", "tail_exposure_share"]] = np.nan
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
