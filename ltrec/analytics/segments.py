"""Funnels by user segment x popularity bucket, with Wilson intervals and small-cell suppression.

A *cell* is (segment value, bucket). Counts are of (user, item) pairs (see
:mod:`ltrec.analytics.conversion`): ``views`` = pairs that reached the view stage, ``carts``,
``purchases``; ``users`` = distinct users in the cell. A cell with fewer than ``k`` users is
suppressed: its counts and rates are blanked (DESIGN §3, default ``Settings.small_cell_k``).

**No leak through totals.** Margins (a segment over all buckets, a bucket over all segments, the
grand total) are computed only from pairs in *shown* cells, so "total minus the visible cells"
is always zero and reveals nothing about a suppressed cell. A margin that itself has fewer than
``k`` users is suppressed too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from ltrec.analytics.backend import UNKNOWN, Scope, Store
from ltrec.analytics.conversion import add_rates, pairs_expr
from ltrec.analytics.popularity import BucketConfig, buckets_expr
from ltrec.config import get_settings
from ltrec.definitions import bucket_names
from ltrec.errors import BadInputError

#: Derived segment columns of ``user_derived`` (built by ``ltrec.store.finalize``).
DERIVED = ("activity_level", "tenure", "tail_affinity")
#: A users column with more distinct values than this is not offered as a segment.
MAX_LEVELS = 50
ALL = "(all)"
COUNTS = ("users", "views", "carts", "purchases")


def segment_dimensions(store: Store, max_levels: int = MAX_LEVELS) -> list[str]:
    """Segment columns: derived ones first, then ``users`` columns with 1..max_levels values."""
    dims = [d for d in DERIVED if store.has("user_derived")]
    us = store.table("users")
    cols = [c for c in us.columns if c != "user_id"]
    if cols:
        n = us.aggregate(**{f"c{j}": us[c].nunique() for j, c in enumerate(cols)}).to_pandas()
        dims += [c for j, c in enumerate(cols) if 1 <= int(n[f"c{j}"].iloc[0]) <= max_levels]
    return dims


def _segment_table(store: Store, segment: str) -> ir.Table:
    if segment in DERIVED and store.has("user_derived"):
        t = store.table("user_derived")
    else:
        t = store.table("users")
        if segment == "user_id" or segment not in t.columns:
            raise BadInputError(
                f"unknown segment dimension {segment!r}",
                hint="choose one of: " + ", ".join(segment_dimensions(store)),
            )
    return t.select(user_id=t.user_id.cast("string"), seg=t[segment].cast("string"))


@dataclass
class SegmentFunnel:
    """Funnel cells of one segment dimension crossed with popularity buckets.

    Attributes:
        frame: ``segment, bucket, users, views, carts, purchases`` (pairs), the rates
            ``view_cart, cart_purchase, view_purchase`` with ``_lo``/``_hi`` 95% Wilson bounds,
            ``tail_purchase_share`` (bucket ``all`` rows: share of the segment's purchases on
            tail items, from shown cells), ``suppressed``. Margins have segment ``(all)`` or
            bucket ``all``.
        dimension: the segment column; ``k``: the suppression threshold; ``buckets``: names.
        has_views: False for data without views (view rates are then NaN).
        rates: the conversion rates the data can measure (both events present, dataset
            profile); every other rate column is NaN.
    """

    frame: pd.DataFrame
    dimension: str
    k: int
    buckets: list[str]
    has_views: bool
    rates: list[str] = field(default_factory=list)

    def cells(self) -> pd.DataFrame:
        """Inner cells only (no margins)."""
        f = self.frame
        return f[(f["segment"] != ALL) & (f["bucket"] != "all")].reset_index(drop=True)


def segment_funnel(
    store: Store,
    segment: str,
    scope: Scope = Scope(),
    cfg: BucketConfig | None = None,
    k: int | None = None,
) -> SegmentFunnel:
    """View -> cart -> purchase by ``segment`` x bucket, suppressed below ``k`` users."""
    cfg = cfg or BucketConfig()
    k = get_settings().small_cell_k if k is None else k
    seg = _segment_table(store, segment)
    pr = pairs_expr(store, scope)
    b = buckets_expr(store, scope, cfg).select("item_id", "bucket")
    j = pr.join(b, pr.item_id == b.item_id).left_join(seg, pr.user_id == seg.user_id)
    j = j.select(
        pr.user_id,
        pr.cart,
        pr.purchase,
        b.bucket,
        segment=ibis.coalesce(seg.seg.nullif(""), ibis.literal(UNKNOWN)),
    )

    def agg(t: ir.Table, by: list[str]) -> ir.Table:
        metrics = dict(
            users=t.user_id.nunique(),
            views=t.count(),
            carts=t.cart.sum(),
            purchases=t.purchase.sum(),
        )
        return t.group_by(by).agg(**metrics) if by else t.aggregate(**metrics)

    cells = agg(j, ["segment", "bucket"])
    shown = cells.filter(cells.users >= k).select(s_seg="segment", s_bucket="bucket")
    # a self-join (shown cells come from j): Ibis needs a fresh view of j to tell them apart
    jv = j.view()
    js = jv.join(shown, (jv.segment == shown.s_seg) & (jv.bucket == shown.s_bucket))
    js = js.select(jv.user_id, jv.cart, jv.purchase, jv.bucket, jv.segment)
    # one statement: inner cells and the three margins (shown cells only), so the engine plans
    # the shared pairs/buckets join once instead of once per part
    minus1 = ibis.literal(-1).cast("int64")
    all_seg = ibis.literal(ALL)
    seg_m = agg(js, ["segment"])
    bkt_m = agg(js, ["bucket"])
    grand = agg(js, [])
    cols = ["segment", "bucket", *COUNTS]
    union = ibis.union(
        cells.select(cells.segment, cells.bucket.cast("int64").name("bucket"), *COUNTS),
        seg_m.mutate(bucket=minus1).select(cols),
        bkt_m.mutate(segment=all_seg, bucket=bkt_m.bucket.cast("int64")).select(cols),
        grand.mutate(segment=all_seg, bucket=minus1).select(cols),
    )
    union = union.select("segment", "bucket", *[union[c].cast("int64").name(c) for c in COUNTS])
    df = union.to_pandas()
    for c in COUNTS:
        df[c] = pd.to_numeric(df[c]).fillna(0).astype("int64")
    names = bucket_names(len(cfg.cuts))
    df["bucket"] = [names[int(i)] if int(i) >= 0 else "all" for i in df["bucket"]]
    # tail share of purchases per segment (bucket 'all' rows), from shown cells only
    shown_cells = df[(df["segment"] != ALL) & (df["bucket"] == "tail") & (df["users"] >= k)]
    tail_buys = dict(zip(shown_cells["segment"], shown_cells["purchases"], strict=True))
    tail_all = df.loc[(df["segment"] == ALL) & (df["bucket"] == "tail"), "purchases"]
    df = add_rates(df)
    share = []
    for s, bkt, p in zip(df["segment"], df["bucket"], df["purchases"], strict=True):
        if bkt != "all" or p == 0:
            share.append(np.nan)
        elif s == ALL:
            share.append(float(tail_all.iloc[0]) / p if len(tail_all) else 0.0)
        else:
            share.append(tail_buys.get(s, 0) / p)
    df["tail_purchase_share"] = share
    df["suppressed"] = df["users"] < k
    num = [c for c in df.columns if c not in ("segment", "bucket", "suppressed")]
    hide = df["suppressed"].to_numpy()
    for c in num:
        df[c] = df[c].astype("float64").where(~hide, np.nan)
    profile = store.profile()
    for rate in ("view_cart", "cart_purchase", "view_purchase"):
        if not profile.rate_available(rate):
            df[[rate, f"{rate}_lo", f"{rate}_hi"]] = np.nan
    order = {n: i for i, n in enumerate([*names, "all"])}
    df["_s"] = df["segment"] == ALL
    df["_b"] = df["bucket"].map(order)
    df = df.sort_values(["_s", "segment", "_b"]).drop(columns=["_s", "_b"])
    return SegmentFunnel(
        df.reset_index(drop=True), segment, k, names, profile.has_views, profile.rates
    )
