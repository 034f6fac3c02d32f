"""Conversion: funnel stages per (user, item) pair, Wilson intervals, empirical-Bayes shrinkage,
hidden gems (DESIGN §3).

**Funnel stages.** A (user, item) pair reaches *view* if the user viewed, carted or bought the
item, *cart* if they carted or bought it, *purchase* if they bought it (a later stage implies the
earlier ones even when the log misses them). Rates are shares of pairs: view->cart = cart pairs /
view pairs, cart->purchase = purchase pairs / cart pairs, view->purchase = purchase pairs / view
pairs, so every rate is a proportion with a binomial interval.

**Wilson interval** (Wilson 1927) for s successes in n trials, z = 1.96:
``(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``.

**Shrinkage.** Item view->purchase rates are shrunk toward a Beta(a, b) prior fitted to all items
by the method of moments, corrected for binomial noise (Kleinman 1973, "Proportions with
extraneous variance"; the empirical-Bayes recipe of Efron & Morris 1975 and Robinson 2017): with
raw rates p_i = s_i / n_i, their mean m and variance S², the between-item variance is
``tau² = (S² - m(1-m) mean(1/n_i)) / (1 - mean(1/n_i))`` and ``a + b = m(1-m)/tau² - 1``; the
shrunk rate is ``(s_i + a) / (n_i + a + b)``. A tail item with 2 views and 1 purchase therefore
sits near the catalogue mean, not at 50%.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from pydantic import Field

from ltrec.analytics.backend import INTERACTIONS, Scope, Store
from ltrec.analytics.popularity import BucketConfig, buckets_expr
from ltrec.config import ConfigBase
from ltrec.definitions import bucket_names

Z95 = 1.959963984540054
#: Upper bound for the prior strength a + b when items show no extra-binomial variance.
MAX_PRIOR_STRENGTH = 1e6


def wilson(
    successes: np.ndarray | float, trials: np.ndarray | float, z: float = Z95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (lower, upper); NaN where there are no trials."""
    s = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = s / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo, hi = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    bad = n <= 0
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def pairs_expr(store: Store, scope: Scope = Scope()) -> ir.Table:
    """Ibis table ``(user_id, item_id, cart, purchase)``: one row per (user, item) pair that
    reached the view stage; ``cart``/``purchase`` are 0/1 flags of the later stages."""
    ev = store.events(scope)
    ev = ev.filter(ev.event_type.isin(INTERACTIONS))
    stage = ibis.cases((ev.event_type == "purchase", 3), (ev.event_type == "cart", 2), else_=1)
    ev = ev.mutate(stage=stage)
    p = ev.group_by(["user_id", "item_id"]).agg(stage=ev.stage.max())
    return p.select(
        "user_id",
        "item_id",
        cart=ibis.ifelse(p.stage >= 2, 1, 0).cast("int64"),
        purchase=ibis.ifelse(p.stage >= 3, 1, 0).cast("int64"),
    )


def add_rates(
    df: pd.DataFrame, views: str = "views", carts: str = "carts", purchases: str = "purchases"
) -> pd.DataFrame:
    """Add view->cart, cart->purchase, view->purchase rates and 95% Wilson bounds."""
    out = df.copy()
    for name, s, n in (
        ("view_cart", carts, views),
        ("cart_purchase", purchases, carts),
        ("view_purchase", purchases, views),
    ):
        sv = out[s].to_numpy(dtype=float)
        nv = out[n].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(nv > 0, sv / np.where(nv > 0, nv, 1), np.nan)
        out[f"{name}_lo"], out[f"{name}_hi"] = wilson(sv, nv)
    return out


@dataclass
class BetaPrior:
    """A Beta(a, b) prior fitted by moments; ``mean`` = a / (a + b)."""

    a: float
    b: float

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)

    @property
    def strength(self) -> float:
        return self.a + self.b


def fit_beta_prior(
    successes: np.ndarray, trials: np.ndarray, min_trials: int = 5, min_items: int = 10
) -> BetaPrior:
    """Method-of-moments Beta prior with the binomial-noise correction (Kleinman 1973).

    Fitted on items with at least ``min_trials`` trials when there are ``min_items`` of them
    (items with one or two trials make the moment estimate very noisy: as in Robinson 2017 the
    prior is fitted on well-measured items and applied to all), else on every item with a trial.
    When the observed spread is no more than binomial noise the prior strength is capped at
    ``MAX_PRIOR_STRENGTH`` (every item shrinks to the mean).
    """
    s = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    keep = n >= min_trials
    if keep.sum() < min_items:
        keep = n > 0
    s, n = s[keep], n[keep]
    if n.size == 0:
        return BetaPrior(1.0, 1.0)
    p = s / n
    m = float(p.mean())
    if m <= 0 or m >= 1:  # all zero or all one: a weak prior at a clipped mean
        m = min(max(m, 1e-6), 1 - 1e-6)
        return BetaPrior(m * 2, (1 - m) * 2)
    s2 = float(p.var(ddof=1)) if p.size > 1 else 0.0
    inv_n = float(np.mean(1 / n))
    tau2 = (s2 - m * (1 - m) * inv_n) / (1 - inv_n) if inv_n < 1 else 0.0
    strength = m * (1 - m) / tau2 - 1 if tau2 > 0 else MAX_PRIOR_STRENGTH
    strength = float(np.clip(strength, 1e-3, MAX_PRIOR_STRENGTH))
    return BetaPrior(m * strength, (1 - m) * strength)


def item_conversion_expr(
    store: Store, scope: Scope = Scope(), cfg: BucketConfig | None = None
) -> ir.Table:
    """Ibis table per catalogue item: bucket, exposure and pair counts (views, carts, purchases)."""
    b = buckets_expr(store, scope, cfg)
    pr = pairs_expr(store, scope)
    per = pr.group_by("item_id").agg(
        views=pr.count(), carts=pr.cart.sum(), purchases=pr.purchase.sum()
    )
    ev = store.events(scope)
    exp = ev.group_by("item_id").agg(
        impressions=ev.count(where=ev.event_type == "impression"),
        view_events=ev.count(where=ev.event_type == "view"),
    )
    j = b.left_join(per, b.item_id == per.item_id).left_join(exp, b.item_id == exp.item_id)
    return j.select(
        b.item_id,
        b.category,
        b.popularity,
        b.rank,
        b.bucket,
        b.cold,
        views=ibis.coalesce(per.views, 0).cast("int64"),
        carts=ibis.coalesce(per.carts, 0).cast("int64"),
        purchases=ibis.coalesce(per.purchases, 0).cast("int64"),
        impressions=ibis.coalesce(exp.impressions, 0).cast("int64"),
        view_events=ibis.coalesce(exp.view_events, 0).cast("int64"),
    )


_CONV_COLS = (
    "item_id",
    "title",
    "category",
    "bucket",
    "rank",
    "popularity",
    "exposure",
    "views",
    "carts",
    "purchases",
    "view_cart",
    "cart_purchase",
    "view_purchase",
    "view_purchase_lo",
    "view_purchase_hi",
    "shrunk",
    "cold",
)


@dataclass
class ItemConversion:
    """Per-item conversion with shrinkage.

    Attributes:
        frame: ``item_id, title, category, bucket, rank, popularity, exposure, views, carts,
            purchases, view_purchase (raw), view_purchase_lo/hi (Wilson), shrunk`` (view->purchase
            shrunk toward the prior), sorted by ``shrunk`` descending. ``exposure`` is NaN and
            every rate whose two events the data lacks is NaN (dataset profile).
        prior: the fitted :class:`BetaPrior`.
        exposure_event: which event counts as exposure (impression, else view, else None:
            not measured).
    """

    frame: pd.DataFrame
    prior: BetaPrior
    exposure_event: str | None


def item_conversion(
    store: Store, scope: Scope = Scope(), cfg: BucketConfig | None = None
) -> ItemConversion:
    """View->purchase conversion of every item, raw, with Wilson bounds, and shrunk."""
    cfg = cfg or BucketConfig()
    df = item_conversion_expr(store, scope, cfg).to_pandas()
    names = bucket_names(len(cfg.cuts))
    df["bucket"] = pd.Categorical.from_codes(df["bucket"].astype(int), categories=pd.Index(names))
    profile = store.profile()
    exp = profile.exposure_event
    by_event = {"impression": "impressions", "view": "view_events"}
    df["exposure"] = df[by_event[exp]].astype("float64") if exp else np.nan
    df = add_rates(df)
    for rate in ("view_cart", "cart_purchase", "view_purchase"):
        if not profile.rate_available(rate):
            df[[rate, f"{rate}_lo", f"{rate}_hi"]] = np.nan
    seen = df["views"] > 0
    prior = fit_beta_prior(df.loc[seen, "purchases"].to_numpy(), df.loc[seen, "views"].to_numpy())
    df["shrunk"] = (df["purchases"] + prior.a) / (df["views"] + prior.strength)
    df.loc[~seen, "shrunk"] = np.nan
    if not profile.rate_available("view_purchase"):  # every pair "converts": say nothing
        df["shrunk"] = np.nan
    titles = store.table("items").select("item_id", "title").to_pandas()
    df = df.merge(titles, on="item_id", how="left")
    df = df.sort_values(["shrunk", "item_id"], ascending=[False, True], na_position="last")
    return ItemConversion(df[list(_CONV_COLS)].reset_index(drop=True), prior, exp)


class GemsConfig(ConfigBase):
    """What makes a hidden gem.

    Attributes:
        top: how many to return (None: every one).
        min_lift: shrunk conversion at least this multiple of the prior mean.
        max_exposure_quantile: exposure at most this quantile of exposure over items with
            any exposure ("low exposure").
        min_views: at least this many viewing users (a floor on evidence besides shrinkage).
    """

    top: int | None = Field(20, ge=1, le=1000)
    min_lift: float = Field(1.2, ge=0.0, le=100.0)
    max_exposure_quantile: float = Field(0.5, gt=0.0, le=1.0)
    min_views: int = Field(2, ge=1, le=1_000_000)


@dataclass
class HiddenGems:
    """Tail items that convert well and are rarely shown.

    Attributes:
        frame: rows of :class:`ItemConversion` plus ``lift`` (shrunk / prior mean).
        threshold_exposure: the exposure ceiling used; ``prior_mean``: the catalogue mean rate.
        reason: why the list is empty, when it is.
        measurable: False when the data cannot define hidden gems at all (no exposure or no
            view -> purchase conversion); ``reason`` says why and ``alternative`` holds what the
            data can answer instead.
        alternative: :class:`TailBuyers` when not ``measurable`` and the data has purchases.
    """

    frame: pd.DataFrame
    threshold_exposure: float
    prior_mean: float
    reason: str | None = None
    measurable: bool = True
    alternative: TailBuyers | None = None


def hidden_gems(
    store: Store,
    scope: Scope = Scope(),
    cfg: BucketConfig | None = None,
    gems: GemsConfig = GemsConfig(),
    conv: ItemConversion | None = None,
) -> HiddenGems:
    """Tail items with shrunk view->purchase conversion >= ``min_lift`` x the prior mean and
    exposure <= the ``max_exposure_quantile`` of exposed items, best first."""
    profile = store.profile()
    if not profile.has_conversion:
        missing = [t for t in ("view", "purchase") if not profile.has(t)]
        why = (
            "hidden gems need exposure (impressions or views) and view → purchase "
            f"conversion, and this data has no {' and no '.join(t + 's' for t in missing)}"
        )
        alt = tail_buyers(store, scope, cfg) if profile.has_purchases else None
        empty = pd.DataFrame(columns=[*_CONV_COLS, "lift"])
        return HiddenGems(empty, float("nan"), float("nan"), why, False, alt)
    conv = conv or item_conversion(store, scope, cfg)
    df = conv.frame
    if int(df["views"].sum()) == 0:
        return HiddenGems(
            df.head(0).assign(lift=[]),
            0.0,
            float("nan"),
            "no views in the selected dates, so conversion is not defined",
        )
    exposed = df.loc[df["exposure"] > 0, "exposure"]
    ceiling = float(np.quantile(exposed, gems.max_exposure_quantile)) if len(exposed) else 0.0
    mean = conv.prior.mean
    out = df[
        (df["bucket"] == "tail")
        & (df["views"] >= gems.min_views)
        & (df["exposure"] <= ceiling)
        & (df["shrunk"] >= gems.min_lift * mean)
    ].copy()
    out["lift"] = out["shrunk"] / mean
    out = (out if gems.top is None else out.head(gems.top)).reset_index(drop=True)
    reason = None if len(out) else "no tail item converts clearly above the catalogue average"
    return HiddenGems(out, ceiling, mean, reason)


@dataclass
class TailBuyers:
    """What purchase-only data can say about the tail instead of hidden gems: tail items with
    many distinct buyers, and how many of them came back for it.

    Attributes:
        frame: ``item_id, title, category, buyers`` (distinct buyers), ``repeat_buyers``
            (buyers who bought it on more than one occasion, i.e. at distinct times),
            ``repeat_rate`` (repeat_buyers / buyers) with its 95% Wilson bounds
            ``repeat_rate_lo``/``_hi``; tail items with at least ``min_buyers`` buyers, ordered
            by ``order``.
        order: ``repeat_rate_lo`` when the data has repeat purchases (the lower Wilson bound,
            so an item with 2 buyers who both came back does not top one with 40 of 60),
            else ``buyers``.
        label: what the list is, in words, for the page.
    """

    frame: pd.DataFrame
    order: str
    label: str
    min_buyers: int


def tail_buyers(
    store: Store,
    scope: Scope = Scope(),
    cfg: BucketConfig | None = None,
    top: int | None = 20,
    min_buyers: int = 3,
) -> TailBuyers:
    """Tail items by repeat-purchase rate (when the data has repeat purchases) or by distinct
    buyers: labelled as such, never as conversion."""
    cfg = cfg or BucketConfig()
    profile = store.profile()
    b = buckets_expr(store, scope, cfg)
    ev = store.events(scope)
    pur = ev.filter(ev.event_type == "purchase")
    per_pair = pur.group_by(["user_id", "item_id"]).agg(times=pur.ts.nunique())
    per_item = per_pair.group_by("item_id").agg(
        buyers=per_pair.count(), repeat_buyers=per_pair.count(where=per_pair.times > 1)
    )
    tail = b.filter(b.bucket == len(cfg.cuts))
    j = tail.join(per_item, tail.item_id == per_item.item_id)
    j = j.filter(j.buyers >= min_buyers).select(
        tail.item_id, tail.category, j.buyers, j.repeat_buyers
    )
    df = j.to_pandas()
    df["buyers"] = df["buyers"].astype("int64")
    df["repeat_buyers"] = df["repeat_buyers"].astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        df["repeat_rate"] = df["repeat_buyers"] / df["buyers"]
    df["repeat_rate_lo"], df["repeat_rate_hi"] = wilson(df["repeat_buyers"], df["buyers"])
    if profile.has_repeat_purchases:
        order = "repeat_rate_lo"
        label = (
            "Tail items whose buyers come back: share of distinct buyers who bought the item "
            "on more than one occasion (ranked by the lower 95% bound)"
        )
        df = df.sort_values([order, "buyers", "item_id"], ascending=[False, False, True])
    else:
        order = "buyers"
        label = "Tail items with the most distinct buyers"
        df = df.sort_values(["buyers", "item_id"], ascending=[False, True])
    titles = store.table("items").select("item_id", "title").to_pandas()
    titles["item_id"] = titles["item_id"].astype(str)
    df = (df if top is None else df.head(top)).merge(titles, on="item_id", how="left")
    cols = ["item_id", "title", "category", "buyers", "repeat_buyers", "repeat_rate"]
    cols += ["repeat_rate_lo", "repeat_rate_hi"]
    return TailBuyers(df[cols].reset_index(drop=True), order, label, min_buyers)
