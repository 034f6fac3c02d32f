"""What should I fix? Neglected categories and brands, and the full list of items to boost.

**Groups** (``by="category"``: the item's category path as the shop wrote it, e.g.
``Home > Kitchen > Knives``; ``by="brand"``): for each group, its share of the catalogue (items,
a count, not an estimate), its share of **exposure** (exposure events: impressions, else views,
the dataset profile's rule; not measured on purchase-only data), its share of **demand**
(purchase events, else carts, else views when views are not the exposure), and its view ->
purchase **conversion** (purchase pairs / view pairs, as in :mod:`ltrec.analytics.conversion`)
relative to the shop average.

**Intervals (95%).** Event shares are ratios of sums over users whose events are not
independent (one user makes many), so a share ``p = sum_u y_u / sum_u x_u`` gets the
linearised (ratio-estimator) variance with users as clusters (Cochran 1977, §6.3):
``v = n/(n-1) * sum_u (y_u - p x_u)^2 / (sum_u x_u)^2`` over the ``n`` users with any such
event, and the Wilson interval (:func:`~ltrec.analytics.conversion.wilson`) is taken at Kish's
effective sample size ``N / deff`` with ``deff = max(1, v / (p(1-p)/N))`` for ``N`` events
(Korn & Graubard 1998): it stays inside [0, 1] and is not degenerate at 0 events. The sums are
aggregated by the engine, per group; no event table reaches pandas. Conversion: Wilson on pairs;
the multiple of the shop average divides the group's rate and its bounds by the shop's rate
(the shop rate, measured on every pair, is taken as known).

**Ranking.** Groups whose exposure share is clearly below their catalogue share (the upper 95%
bound below it: ``under``) come first, then ``in line``, then ``over``; within each, the group
that surely converts best (lower bound of the multiple) first, then the larger gap. Without
exposure the same rule runs on the demand share.

**Whole-catalogue rule.** Buckets, the prior of shrunk conversion, the shop averages and every
share are computed on the whole catalogue (the date range applies); a category filter then
keeps the rows of that top-level category (``by="brand"``: each brand's items in it, as shares
of the whole shop): it never redefines head and tail inside it.

**Items to boost** (:func:`boost_candidates`, the one definition the Overview counts): every
hidden gem (:func:`~ltrec.analytics.conversion.hidden_gems`, uncapped), best shrunk conversion
first; on data without view -> purchase conversion, every tail item with repeat buyers
(:func:`~ltrec.analytics.conversion.tail_buyers`, uncapped). Each row carries its evidence and
up to three **similar head items**: the head items that most of its users also interacted with.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from ltrec.analytics.backend import CATEGORY_SEP, UNKNOWN, Scope, Store
from ltrec.analytics.conversion import (
    GemsConfig,
    HiddenGems,
    ItemConversion,
    hidden_gems,
    item_conversion,
    pairs_expr,
    tail_buyers,
    wilson,
)
from ltrec.analytics.popularity import buckets_expr
from ltrec.analytics.view import ViewParams
from ltrec.definitions import bucket_names, pct
from ltrec.errors import BadInputError

#: What ``by`` may be.
BY: tuple[str, ...] = ("category", "brand")
#: Similar head items shown per candidate.
SIMILAR_TOP = 3
#: Status order of the ranking.
STATUS_ORDER = {"under": 0, "in line": 1, "over": 2}


# --------------------------------------------------------------------------------- intervals


def cluster_share_interval(
    share: np.ndarray,
    events: float,
    sq: np.ndarray,
    n_users: int,
) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson bounds of event shares at Kish's effective sample size (module docstring).

    Args:
        share: ``p`` per group (group events / all ``events``).
        events: ``N``, all events of the kind (the denominator).
        sq: ``sum_u (y_u - p x_u)^2`` per group, over users.
        n_users: users with at least one event of the kind.
    """
    p = np.asarray(share, dtype=float)
    sq = np.asarray(sq, dtype=float)
    if events <= 0 or n_users < 1:
        nan = np.full(p.shape, np.nan)
        return nan, nan
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = n_users / (n_users - 1) if n_users > 1 else np.nan
        v = corr * np.maximum(sq, 0.0) / events**2
        srs = p * (1 - p) / events
        deff = np.where(srs > 0, np.maximum(1.0, v / np.where(srs > 0, srs, 1.0)), 1.0)
        deff = np.where(np.isfinite(deff), deff, 1.0)
    n_eff = events / deff
    return wilson(p * n_eff, n_eff)


def beta_interval(
    successes: npt.ArrayLike, trials: npt.ArrayLike, a: float, b: float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed posterior interval of a rate under a Beta(a, b) prior:
    ``Beta(a + s, b + n - s)`` quantiles (the shrunk rate is its mean)."""
    s = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    alpha = (1 - level) / 2
    lo = sps.beta.ppf(alpha, a + s, b + n - s)
    hi = sps.beta.ppf(1 - alpha, a + s, b + n - s)
    return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


# --------------------------------------------------------------------------------- groups


def _group_map(store: Store, by: str, category: str | None) -> ir.Table:
    """``(item_id, name, top)`` for every catalogue item (orphans of the events included):
    ``name`` is the group (category path or brand, ``(unknown)`` when blank), ``top`` the
    top-level category the page's filter compares with."""
    cat = store.items()  # item_id, category (top level), title
    it = store.table("items")
    raw = it.select(item_id=it.item_id.cast("string"), path=it.category, brand=it.brand)
    j = cat.left_join(raw, cat.item_id == raw.item_id)
    col = j.path if by == "category" else j.brand
    # segments of a path trimmed and re-joined, so "Home >Kitchen" and "Home > Kitchen" agree
    clean = col.re_replace(r"\s*>\s*", CATEGORY_SEP).re_replace(r"^\s+|\s+$", "")
    name = ibis.coalesce(clean.nullif(""), ibis.literal(UNKNOWN))
    g = j.select(item_id=cat.item_id, name=name, top=cat.category)
    if category is not None:
        g = g.filter(g.top == category)
    return g


def _kinds(store: Store) -> tuple[str | None, str | None]:
    """(exposure event, demand event) of the data; None where it has none."""
    profile = store.profile()
    exp = profile.exposure_event
    demand = next((t for t in ("purchase", "cart", "view") if profile.has(t) and t != exp), None)
    return exp, demand


def _share_sums(
    store: Store, scope: Scope, groups: ir.Table, kinds: dict[str, str]
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per group and kind (``e``: exposure, ``d``: demand): events ``y``, and the sums the
    cluster variance needs; and the totals over all users. Two aggregate queries."""
    ev = store.events(scope)
    ev = ev.filter(ev.event_type.isin(list(kinds.values())))
    cnt = {k: ev.count(where=ev.event_type == t) for k, t in kinds.items()}
    per_u = ev.group_by("user_id").agg(**{f"x{k}": c.cast("float64") for k, c in cnt.items()})
    tot = per_u.aggregate(
        **{f"x{k}": per_u[f"x{k}"].sum() for k in kinds},
        **{f"x{k}2": (per_u[f"x{k}"] * per_u[f"x{k}"]).sum() for k in kinds},
        **{f"n{k}": per_u.count(where=per_u[f"x{k}"] > 0) for k in kinds},
    ).to_pandas()
    totals = {c: float(tot[c].iloc[0] or 0) for c in tot.columns}
    j = ev.join(groups, ev.item_id == groups.item_id)
    per_ug = j.group_by([j.user_id, j.name]).agg(
        **{f"y{k}": j.count(where=j.event_type == t).cast("float64") for k, t in kinds.items()}
    )
    k2 = per_ug.join(per_u, per_ug.user_id == per_u.user_id)
    agg = k2.group_by("name").agg(
        **{f"y{k}": k2[f"y{k}"].sum() for k in kinds},
        **{f"y{k}2": (k2[f"y{k}"] * k2[f"y{k}"]).sum() for k in kinds},
        **{f"y{k}x": (k2[f"y{k}"] * k2[f"x{k}"]).sum() for k in kinds},
    )
    return agg.to_pandas(), totals


def _add_share(df: pd.DataFrame, k: str, col: str, totals: dict[str, float]) -> None:
    """``col``, ``col_share``, ``col_share_low/high`` from the sums of kind ``k``."""
    n = totals[f"x{k}"]
    y = df[f"y{k}"].to_numpy(dtype=float)
    p = y / n if n > 0 else np.full(len(df), np.nan)
    sq = df[f"y{k}2"] - 2 * p * df[f"y{k}x"] + p * p * totals[f"x{k}2"]
    lo, hi = cluster_share_interval(p, n, sq.to_numpy(dtype=float), int(totals[f"n{k}"]))
    df[col] = y.astype("int64")
    df[f"{col}_share"] = p
    df[f"{col}_share_low"], df[f"{col}_share_high"] = lo, hi


# --------------------------------------------------------------------------------- result


@dataclass
class BoostCandidates:
    """Items to boost: THE definition (the Overview counts it, the Opportunities page lists it).

    Attributes:
        frame: the full ranked list, whole-catalogue buckets, filtered to the params' category.
        basis: ``conversion`` (hidden gems), ``repeat_buyers`` or ``buyers`` (purchase-only
            data: tail items whose buyers come back, or with the most buyers), or None when the
            data can define neither (``reason`` says why).
        label: what the list is, in words.
        gems: the uncapped :class:`HiddenGems` (its ``alternative`` uncapped too).
        reason: why the list is empty, when it is.
    """

    frame: pd.DataFrame
    basis: str | None
    label: str
    gems: HiddenGems
    reason: str | None = None

    @property
    def count(self) -> int:
        return int(len(self.frame))


def whole_scope(params: ViewParams) -> Scope:
    """The params' dates over the whole catalogue (no category: see the module docstring)."""
    return Scope(start=params.start, end=params.end)


def boost_candidates(
    store: Store, params: ViewParams | None = None, conv: ItemConversion | None = None
) -> BoostCandidates:
    """Every tail item worth boosting, best first (module docstring), for ``params``."""
    params = params or ViewParams()
    scope, cfg = whole_scope(params), params.buckets()
    profile = store.profile()
    if profile.has_conversion and conv is None:
        conv = item_conversion(store, scope, cfg)
    gems = hidden_gems(store, scope, cfg, GemsConfig(top=None), conv)
    if gems.measurable:
        frame, basis = gems.frame, "conversion"
        label = (
            "Tail items whose shrunk view → purchase conversion is at least "
            f"{GemsConfig().min_lift:g}x the shop average while their exposure is at most the "
            "median"
        )
        reason = gems.reason
    elif profile.has_purchases:
        alt = tail_buyers(store, scope, cfg, top=None)
        gems.alternative = alt
        frame, basis, label = alt.frame, alt.order.replace("_rate_lo", "_buyers"), alt.label
        reason = None if len(frame) else "no tail item has enough buyers to stand out"
    else:
        frame, basis, label, reason = gems.frame, None, "", gems.reason
    if params.category is not None and len(frame):
        frame = frame[frame["category"] == params.category]
    return BoostCandidates(frame.reset_index(drop=True), basis, label, gems, reason)


@dataclass
class Opportunities:
    """What to fix, ranked (see the module docstring).

    Attributes:
        categories: one row per group (category path or brand), ranked: ``rank, name, items,
            catalogue_share, tail_items, exposure, exposure_share(_low/_high), demand,
            demand_share(_low/_high), views, purchases, conversion(_low/_high),
            lift(_low/_high), status, verdict``; columns of what the data lacks are NaN.
        items: the full ranked list of items to boost with their evidence (rank, item_id,
            title, category, brand, bucket, then exposure, views, purchases, shrunk(_low/_high),
            lift; or buyers, repeat_buyers, repeat_rate(_low/_high) on purchase-only data),
            ``similar_head_items`` (text) and ``similar_head_ids`` (list).
        note: what the data lacks and what is shown instead, or None.
        by: ``category`` or ``brand``.
        exposure_event, demand_event: the event types counted (None when absent).
        shop_conversion: view -> purchase of all pairs, or None when not measured.
        candidates: the :class:`BoostCandidates` behind ``items``.
    """

    categories: pd.DataFrame
    items: pd.DataFrame
    note: str | None
    by: str = "category"
    exposure_event: str | None = None
    demand_event: str | None = None
    shop_conversion: float | None = None
    candidates: BoostCandidates | None = field(default=None, repr=False)
    params: ViewParams = field(default_factory=ViewParams)

    def summary(self, items: int = 20) -> str:
        """Plain text: the note, one verdict per group, then the first ``items`` items."""
        lines = [self.note] if self.note else []
        lines.append(f"{self.by} ranked (under-exposed first):")
        lines += [f"  {r.rank}. {r.verdict}" for r in self.categories.itertuples()]
        cand = self.candidates
        n = len(self.items)
        if cand is None or cand.basis is None:
            lines.append(f"items to boost: none ({cand.reason if cand else 'not measured'})")
            return "\n".join(lines)
        lines.append(f"{n} candidates to boost ({cand.label}):")
        for r in self.items.head(items).to_dict("records"):
            if cand.basis == "conversion":
                ev = (
                    f"{int(r['views'])} views, {int(r['purchases'])} purchases, shrunk "
                    f"conversion {pct(r['shrunk'])} [{pct(r['shrunk_low'])}, "
                    f"{pct(r['shrunk_high'])}]"
                )
            else:
                ev = (
                    f"{int(r['buyers'])} buyers, repeat rate {pct(r['repeat_rate'])} "
                    f"[{pct(r['repeat_rate_low'])}, {pct(r['repeat_rate_high'])}]"
                )
            sim = f"; like {r['similar_head_items']}" if r["similar_head_items"] else ""
            lines.append(f"  {r['rank']}. {r['item_id']} ({r['category']}): {ev}{sim}")
        if n > items:
            lines.append(f"  ... {n - items} more (--json for every one)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json``: ``categories[...]`` and ``items[...]``, each estimate an object
        ``{value, low, high}``; what the data lacks is null, never 0."""
        cats = [_group_json(r) for r in self.categories.to_dict("records")]
        its = [_item_json(r) for r in self.items.to_dict("records")]
        cand = self.candidates
        return {
            "by": self.by,
            "category_filter": self.params.category,
            "bucket_cuts": list(self.params.cuts),
            "exposure_event": self.exposure_event,
            "demand_event": self.demand_event,
            "shop_conversion": _num(self.shop_conversion),
            "note": self.note,
            "items_basis": cand.basis if cand else None,
            "items_label": cand.label if cand else None,
            "candidates": len(its),
            "categories": cats,
            "items": its,
        }


def _num(x: Any) -> float | int | None:
    if x is None:
        return None
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def _est(r: dict[Hashable, Any], col: str) -> dict[str, float | None] | None:
    v = _num(r.get(col))
    if v is None:
        return None
    return {"value": v, "low": _num(r.get(f"{col}_low")), "high": _num(r.get(f"{col}_high"))}


def _group_json(r: dict[Hashable, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rank": int(r["rank"]),
        "name": r["name"],
        "items": int(r["items"]),
        "catalogue_share": _num(r["catalogue_share"]),
        "tail_items": int(r["tail_items"]),
    }
    for c in ("exposure", "demand", "views", "purchases"):
        out[c] = _num(r[c])
    for c in ("exposure_share", "demand_share", "conversion", "lift"):
        out[c] = _est(r, c)
    out["status"], out["verdict"] = r["status"], r["verdict"]
    return out


_ITEM_PLAIN = ("item_id", "title", "category", "brand", "bucket")
_ITEM_NUMS = ("exposure", "views", "purchases", "buyers", "repeat_buyers")
_ITEM_EST = ("shrunk", "lift", "repeat_rate")


def _item_json(r: dict[Hashable, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"rank": int(r["rank"])}
    for c in _ITEM_PLAIN:
        v = r.get(c)
        out[c] = None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
    for c in _ITEM_NUMS:
        if c in r:
            out[c] = _num(r[c])
    for c in _ITEM_EST:
        if c in r:
            out[c] = _est(r, c)
    out["similar_head_items"] = list(r.get("similar_head_ids") or [])
    return out


# --------------------------------------------------------------------------------- main


def check_by(store: Store, by: str) -> None:
    """Refuse an unknown ``by`` or a grouping the items table has no values for."""
    if by not in BY:
        raise BadInputError(f"unknown grouping {by!r}", hint=f"use one of: {', '.join(BY)}")
    profile = store.profile()
    has = profile.has_categories if by == "category" else profile.has_brands
    if not has:
        raise BadInputError(
            f"this dataset's items table has no {by} values, so there is nothing to group by",
            hint=f"import an items file with a {by} column (ltrec import NAME --items FILE), or "
            f"use --by {'brand' if by == 'category' else 'category'}",
        )


GROUP_COLUMNS = [
    "rank", "name", "items", "catalogue_share", "tail_items",
    "exposure", "exposure_share", "exposure_share_low", "exposure_share_high",
    "demand", "demand_share", "demand_share_low", "demand_share_high",
    "views", "purchases", "conversion", "conversion_low", "conversion_high",
    "lift", "lift_low", "lift_high", "status", "verdict",
]  # fmt: skip


def opportunities(
    store: Store, by: str | None = "category", params: ViewParams | None = None
) -> Opportunities:
    """Neglected categories (or brands) ranked, and every item to boost (module docstring).

    ``by=None``: no groups (``categories`` is empty), only the items to boost: for data whose
    items table has neither categories nor brands.
    """
    params = params or ViewParams()
    if by is not None:
        check_by(store, by)
    scope, cfg = whole_scope(params), params.buckets()
    profile = store.profile()
    exp, demand = _kinds(store)
    conv = item_conversion(store, scope, cfg)  # per item, whole catalogue: one query
    if params.category is not None:
        tops = set(conv.frame["category"].astype(str))
        if params.category not in tops:
            raise BadInputError(
                f"no top-level category {params.category!r} in this dataset",
                hint=f"categories: {', '.join(sorted(tops)[:30])}",
            )
    shop = None
    if profile.rate_available("view_purchase"):
        v_all, p_all = float(conv.frame["views"].sum()), float(conv.frame["purchases"].sum())
        shop = p_all / v_all if v_all > 0 else None
    if by is None:
        groups = pd.DataFrame(columns=GROUP_COLUMNS)
    else:
        groups = _groups(store, by, params, conv, (exp, demand), shop)
    cand = boost_candidates(store, params, conv if profile.has_conversion else None)
    items = _evidence(store, scope, params, cand, conv)
    return Opportunities(
        categories=groups,
        items=items,
        note=_note(profile, exp, demand, shop),
        by=by or "none",
        exposure_event=exp,
        demand_event=demand,
        shop_conversion=shop,
        candidates=cand,
        params=params,
    )


def _groups(
    store: Store,
    by: str,
    params: ViewParams,
    conv: ItemConversion,
    events: tuple[str | None, str | None],
    shop: float | None,
) -> pd.DataFrame:
    """The ranked group table (module docstring)."""
    exp, demand = events
    gmap = _group_map(store, by, None).to_pandas()  # one row per catalogue item (no events)
    n_items = len(gmap)
    per = conv.frame[["item_id", "bucket", "views", "purchases"]].merge(gmap, on="item_id")
    tail = bucket_names(len(params.cuts))[-1]
    if params.category is not None:
        per = per[per["top"] == params.category]
    g = per.groupby("name", observed=True).agg(
        items=("item_id", "size"),
        tail_items=("bucket", lambda b: int((b == tail).sum())),
        views=("views", "sum"),
        purchases=("purchases", "sum"),
    )
    df = g.reset_index()
    df["catalogue_share"] = df["items"] / n_items if n_items else np.nan
    kinds = {k: t for k, t in (("e", exp), ("d", demand)) if t is not None}
    if kinds:
        groups = _group_map(store, by, params.category)
        sums, totals = _share_sums(store, whole_scope(params), groups, kinds)
        df = df.merge(sums, on="name", how="left").fillna({c: 0.0 for c in sums.columns[1:]})
    for k, col in (("e", "exposure"), ("d", "demand")):
        if k in kinds:
            _add_share(df, k, col, totals)
        else:
            df[[col, f"{col}_share", f"{col}_share_low", f"{col}_share_high"]] = np.nan
    _add_conversion(df, shop)
    df = _rank(df, exp is not None)
    df["verdict"] = [_verdict(r, exp, demand, shop) for r in df.to_dict("records")]
    profile = store.profile()
    for col, event in (("views", "view"), ("purchases", "purchase")):
        if not profile.has(event):
            df[col] = np.nan  # pairs of an event the data lacks: not 0
    return df[GROUP_COLUMNS]


def _add_conversion(df: pd.DataFrame, shop: float | None) -> None:
    s, n = df["purchases"].to_numpy(dtype=float), df["views"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        df["conversion"] = np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)
    df["conversion_low"], df["conversion_high"] = wilson(s, n)
    for c in ("", "_low", "_high"):
        df[f"lift{c}"] = df[f"conversion{c}"] / shop if shop else np.nan
    if shop is None:
        df[["conversion", "conversion_low", "conversion_high"]] = np.nan


def _rank(df: pd.DataFrame, exposure: bool) -> pd.DataFrame:
    col = "exposure_share" if exposure else "demand_share"
    if df[col].isna().all():
        df["status"] = "not measured"
        df["gap"] = np.nan
    else:
        under = df[f"{col}_high"] < df["catalogue_share"]
        over = df[f"{col}_low"] > df["catalogue_share"]
        df["status"] = np.select([under, over], ["under", "over"], "in line")
        df["gap"] = df["catalogue_share"] - df[col]
    df["_order"] = df["status"].map(STATUS_ORDER).fillna(3)
    df = df.sort_values(
        ["_order", "lift_low", "gap", "name"],
        ascending=[True, False, False, True],
        na_position="last",
    ).reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df.drop(columns=["_order", "gap"])


def _verdict(
    r: dict[Hashable, Any], exp: str | None, demand: str | None, shop: float | None
) -> str:
    """``Kitchen > Knives: 9.0% of the catalogue, 2.0% of impressions, 3.1% of purchases,
    converts 1.4x the shop average [1.1, 1.8]: under-exposed``."""
    parts = [f"{pct(r['catalogue_share'])} of the catalogue"]
    if exp is not None:
        parts.append(f"{pct(r['exposure_share'])} of {exp}s")
    if demand is not None:
        d = f"{pct(r['demand_share'])} of {demand}s"
        if exp is None:  # the figure the status rests on: with its interval
            d += f" [{pct(r['demand_share_low'])}, {pct(r['demand_share_high'])}]"
        parts.append(d)
    if shop is not None:
        if pd.isna(r["lift"]):
            parts.append("no views to measure conversion")
        else:
            parts.append(
                f"converts {r['lift']:.1f}x the shop average "
                f"[{r['lift_low']:.1f}, {r['lift_high']:.1f}]"
            )
    status = r["status"]
    if exp is not None:
        word = {"under": "under-exposed", "over": "over-exposed"}.get(
            status, "exposure in line with its size"
        )
    elif demand is not None:
        word = {"under": "bought less than its size", "over": "bought more than its size"}.get(
            status, "bought in line with its size"
        )
    else:
        word = "nothing measured"
    return f"{r['name']}: {', '.join(parts)}: {word}"


def _note(profile: Any, exp: str | None, demand: str | None, shop: float | None) -> str | None:
    lacks = []
    if exp is None:
        lacks.append(
            "exposure is not measured (no impressions or views): categories are compared on "
            f"their share of {demand}s"
            if demand
            else "exposure is not measured"
        )
    elif exp == "view":
        lacks.append("exposure is counted in views (the data has no impressions)")
    if demand is None:
        lacks.append("demand is not measured (no purchases, carts or other views)")
    elif demand != "purchase":
        lacks.append(f"demand is counted in {demand}s (the data has no purchases)")
    if shop is None:
        lacks.append("conversion is not measured (it needs views and purchases)")
    if not lacks:
        return None
    text = "; ".join(lacks)
    return text[0].upper() + text[1:] + "."


# --------------------------------------------------------------------------------- items


def _evidence(
    store: Store,
    scope: Scope,
    params: ViewParams,
    cand: BoostCandidates,
    conv: ItemConversion,
) -> pd.DataFrame:
    """The candidates with their evidence on one row, ranked 1..N."""
    f = cand.frame.drop(columns=["rank"], errors="ignore")
    it = store.table("items")
    extra = it.select(
        item_id=it.item_id.cast("string"), path=it.category, brand=it.brand
    ).to_pandas()
    f = f.merge(extra, on="item_id", how="left")
    f["category"] = f["path"].where(f["path"].notna() & (f["path"] != ""), f["category"])
    if cand.basis == "conversion":
        lo, hi = beta_interval(f["purchases"], f["views"], conv.prior.a, conv.prior.b)
        f["shrunk_low"], f["shrunk_high"] = lo, hi
        mean = conv.prior.mean
        f["lift_low"], f["lift_high"] = f["shrunk_low"] / mean, f["shrunk_high"] / mean
        cols = ["exposure", "views", "purchases", "shrunk", "shrunk_low", "shrunk_high"]
        cols += ["lift", "lift_low", "lift_high"]
    elif cand.basis is not None:
        f = f.rename(
            columns={"repeat_rate_lo": "repeat_rate_low", "repeat_rate_hi": "repeat_rate_high"}
        )
        cols = ["buyers", "repeat_buyers", "repeat_rate", "repeat_rate_low", "repeat_rate_high"]
    else:
        cols = []
    buckets = conv.frame[["item_id", "bucket"]]
    if "bucket" in f:
        f = f.drop(columns="bucket")
    f = f.merge(buckets, on="item_id", how="left")
    sim = similar_head_items(store, scope, params, list(f["item_id"]))
    titles = store.table("items").select(it.item_id.cast("string").name("item_id"), "title")
    names = dict(titles.to_pandas().dropna().itertuples(index=False, name=None)) if sim else {}
    f["similar_head_ids"] = [sim.get(i, []) for i in f["item_id"]]
    f["similar_head_items"] = [
        "; ".join(f"{names[h]} ({h})" if names.get(h) else h for h in hs)
        for hs in f["similar_head_ids"]
    ]
    f.insert(0, "rank", np.arange(1, len(f) + 1))
    keep = ["rank", "item_id", "title", "category", "brand", "bucket", *cols]
    keep += ["similar_head_items", "similar_head_ids"]
    return f[keep].reset_index(drop=True)


def similar_head_items(
    store: Store, scope: Scope, params: ViewParams, ids: list[str], top: int = SIMILAR_TOP
) -> dict[str, list[str]]:
    """For each item of ``ids``: up to ``top`` head items (whole-catalogue buckets) that the
    most of its users also interacted with, most shared users first (ties: the more popular)."""
    if not ids:
        return {}
    pr = pairs_expr(store, scope)
    b = buckets_expr(store, scope, params.buckets())
    head = b.filter(b.bucket == 0).select(head_id=b.item_id, head_rank=b.rank)
    c = pr.filter(pr.item_id.isin(ids)).select(cuser=pr.user_id, cand_id=pr.item_id)
    h = pr.join(head, pr.item_id == head.head_id).select(
        huser=pr.user_id, head_id=head.head_id, head_rank=head.head_rank
    )
    j = c.join(h, c.cuser == h.huser)
    s = j.group_by(["cand_id", "head_id", "head_rank"]).agg(shared=j.count())
    w = ibis.window(group_by=s.cand_id, order_by=[ibis.desc(s.shared), s.head_rank])
    s = s.mutate(r=ibis.row_number().over(w)).filter(lambda t: t.r < top)
    df = s.to_pandas().sort_values(["cand_id", "r"])
    return {k: list(v) for k, v in df.groupby("cand_id", sort=False)["head_id"]}
