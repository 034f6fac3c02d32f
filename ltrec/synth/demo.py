"""The demo shop: a synthetic but realistic e-commerce log with a known preference model.

``ltrec demo`` builds ``data/demo.duckdb`` (DESIGN §2 "Demo data"). The generator has two parts
that a real shop also has, and keeps them apart on purpose:

1. **Exposure** (what users are shown) is popularity-biased, as in any shop whose category
   pages, bestseller shelves and recommender feed on past sales. Each item has a popularity
   propensity ``pi_i`` (log-normal, times its leaf category's Zipf weight, new items damped).
   A session has an intent (a leaf category drawn from the user's affinities) and a run of
   impressions, each from one source:

   - ``organic``: 70% category pages (an item of the intent's top category ``~ pi``), 30% the
     bestseller shelf (any item ``~ pi``, whatever the user's taste);
   - ``search``: 4 candidates of the intent leaf drawn ``~ pi^0.3``, the best match shown;
   - ``recommendation`` (the shop's current recommender): 6 candidates ``~ pi^1.1`` from the
     whole catalogue or the intent's top category, the best match shown.

   The result is the long tail of real logs: item Gini of views ~0.6-0.75 at the default size.

2. **Responses** (what users do with what they see) follow :mod:`ltrec.synth.truth`: view,
   cart and purchase probabilities depend on the user-item match ``t_u . f_i``, the item's
   appeal and the user's offsets, never on popularity. Tail items therefore convert as well as
   head items for the users whose tastes they fit (and niche users, a configurable share, have
   tastes centred on the rarer leaf categories): the "hidden gems" the app is built to find.

Catalogue and users: 14 top categories with sub-categories and leaves (``Home > Kitchen >
Knives``), brands, English titles and descriptions from per-category vocabularies
(:mod:`ltrec.synth.vocab`), log-normal prices per category, a few percent out of stock,
some items created in the last month (cold). Users have ``region``, ``device``, ``tier``,
``age_band`` and ``signup_date`` (about a quarter sign up during the log, so tenure
new/returning can be derived); device and tier shift their response offsets.

Time: ``days`` (default 181: 2025-01-01 to 2025-06-30) ending at ``end``, weekly seasonality
(weekends busier), a slow growth trend, a three-day spring sale and a diurnal curve. Generation
is vectorised numpy in time-ordered chunks of sessions (``chunk_sessions``), each appended
through Arrow, so 10M events build in bounded memory. The same config (seed included) gives
the same file contents.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import Field, ValidationError, field_validator

from ltrec.config import ConfigBase
from ltrec.definitions import gini
from ltrec.errors import ConfigError
from ltrec.progress import Progress, report
from ltrec.store.connect import check_name, dataset_path, one_row, write_meta, writing
from ltrec.store.finalize import finalize
from ltrec.store.schema import quote_ident
from ltrec.synth.truth import TRUTH_META_KEY, GroundTruth, PreferenceModel
from ltrec.synth.vocab import (
    AGE_BANDS,
    DEVICES,
    REGIONS,
    TAXONOMY,
    TIERS,
    VARIANTS,
)

DEFAULT_USERS = 5_000
DEFAULT_ITEMS = 2_000
DEFAULT_EVENTS = 500_000
SOURCES = ("organic", "search", "recommendation")
GENERATOR_VERSION = "1"


class DemoConfig(ConfigBase):
    """Size, seed and behaviour of the demo shop.

    ``users``, ``items`` and ``events`` left out scale from whatever is given: events default to
    100 per user (or 500k), users to ``5000 * events / 500k`` and items to
    ``2000 * (events / 500k)^0.77`` (so 10M events give ~100k users and ~20k items).
    """

    name: str = "demo"
    users: int | None = Field(None, ge=20, le=5_000_000)
    items: int | None = Field(None, ge=20, le=2_000_000)
    events: int | None = Field(None, ge=1_000, le=200_000_000, description="Approximate.")
    seed: int = Field(42, ge=0, le=2**63 - 1)
    days: int = Field(181, ge=14, le=730, description="Length of the log in days.")
    end: date = Field(date(2025, 7, 1), description="Exclusive end of the log.")
    niche_share: float = Field(0.2, ge=0, le=1, description="Users with tail-leaning tastes.")
    new_item_share: float = Field(
        0.06, ge=0, le=0.5, description="Items created in the last month."
    )
    out_of_stock_share: float = Field(0.04, ge=0, le=0.5)
    source_mix: tuple[float, float, float] = Field(
        (0.45, 0.25, 0.30), description="Impression shares of organic, search, recommendation."
    )
    impressions_per_session: float = Field(10.0, ge=1, le=100, description="Mean (geometric).")
    chunk_sessions: int = Field(40_000, ge=500, le=2_000_000, description="Memory knob.")
    model: PreferenceModel = Field(default_factory=PreferenceModel)

    def __init__(self, /, **data: Any) -> None:
        # A bad CLI option is bad input (exit 2) with a readable message, not a traceback.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            parts = [
                f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
                + (f" (got {e['input']!r})" if "input" in e and e["type"] != "missing" else "")
                for e in exc.errors()
            ]
            raise ConfigError(
                "invalid demo setting: " + "; ".join(parts),
                hint="see `ltrec demo --help`; e.g. --users 5000 --items 2000 --events 500000",
            ) from None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        try:
            return check_name(v)
        except Exception as exc:  # BadInputError -> pydantic error, re-raised as ConfigError
            raise ValueError(str(exc)) from None

    @field_validator("source_mix")
    @classmethod
    def _mix(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(x < 0 for x in v) or sum(v) <= 0:
            raise ValueError("source shares must be non-negative with a positive sum")
        return v

    def sizes(self) -> tuple[int, int, int]:
        """(users, items, target events) after scaling the omitted ones."""
        if self.events is not None:
            events = self.events
        elif self.users is not None:
            events = max(1_000, 100 * self.users)
        else:
            events = DEFAULT_EVENTS
        scale = events / DEFAULT_EVENTS
        users = self.users or int(min(5_000_000, max(50, round(DEFAULT_USERS * scale))))
        items = self.items or int(min(2_000_000, max(50, round(DEFAULT_ITEMS * scale**0.77))))
        return users, items, events


@dataclass
class DemoReport:
    """What a build produced (``to_dict`` keys are a public CLI interface: only add keys)."""

    name: str
    path: str
    users: int
    items: int
    events: dict[str, int]
    sessions: int
    seconds: float
    gini_views: float
    funnel: dict[str, float]
    first_ts: str
    last_ts: str
    seed: int
    cold_items: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "users": self.users,
            "items": self.items,
            "events": self.events,
            "events_total": sum(self.events.values()),
            "sessions": self.sessions,
            "seconds": round(self.seconds, 2),
            "gini_views": round(self.gini_views, 4),
            "funnel": {k: round(v, 4) for k, v in self.funnel.items()},
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "seed": self.seed,
            "cold_items": self.cold_items,
        }

    def summary(self) -> str:
        ev = ", ".join(f"{n:,} {t}s" for t, n in self.events.items())
        f = self.funnel
        return "\n".join(
            [
                f"demo shop '{self.name}' built in {self.seconds:.1f} s -> {self.path}",
                f"  {self.users:,} users, {self.items:,} items ({self.cold_items:,} never viewed),"
                f" {self.sessions:,} sessions",
                f"  {sum(self.events.values()):,} events: {ev}",
                f"  {self.first_ts} .. {self.last_ts}",
                f"  funnel: impression->view {f['impression_to_view']:.1%}, view->cart "
                f"{f['view_to_cart']:.1%}, cart->purchase {f['cart_to_purchase']:.1%}, "
                f"view->purchase {f['view_to_purchase']:.2%}",
                f"  item Gini of views {self.gini_views:.3f}",
            ]
        )


# ============================================================================ catalogue


@dataclass
class _Catalog:
    tops: list[str]
    leaves: list[str]  # full paths
    leaf_top: np.ndarray  # (L,) top index of each leaf
    leaf_pop: np.ndarray  # (L,) Zipf weight of each leaf
    leaf_center: np.ndarray  # (L, d)
    leaf_bounds: np.ndarray  # (L+1,) item index offsets (items sorted by leaf)
    top_bounds: np.ndarray  # (T+1,)
    item_leaf: np.ndarray  # (I,)
    factor: np.ndarray  # (I, d) float32
    appeal: np.ndarray  # (I,) float32
    pop: np.ndarray  # (I,) propensity, sums to 1
    price: np.ndarray  # (I,)
    created_s: np.ndarray  # (I,) seconds since log start (negative: before it)
    in_stock: np.ndarray  # (I,) bool
    sku: np.ndarray  # (I,) number in the item id
    title: list[str]
    description: list[str]
    brand: list[str]


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _allocate(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Integer counts summing to ``total``, proportional to weights (largest remainder)."""
    base = np.full(len(weights), minimum if total >= minimum * len(weights) else 0)
    rest = total - base.sum()
    share = weights / weights.sum() * rest
    counts = base + np.floor(share).astype(np.int64)
    short = total - counts.sum()
    order = np.argsort(-(share - np.floor(share)), kind="stable")
    counts[order[:short]] += 1
    return counts


def _cap(words: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in words.split(" "))


def _build_catalog(n_items: int, cfg: DemoConfig, rng: np.random.Generator) -> _Catalog:
    d = cfg.model.dim
    tops = list(TAXONOMY)
    leaves: list[str] = []
    leaf_top: list[int] = []
    leaf_sub: list[str] = []
    leaf_nouns: list[list[str]] = []
    for t, top in enumerate(tops):
        for sub_name, sub in TAXONOMY[top]["subs"].items():
            for leaf_name, nouns in sub["leaves"].items():
                leaves.append(f"{top} > {sub_name} > {leaf_name}")
                leaf_top.append(t)
                leaf_sub.append(sub_name)
                leaf_nouns.append(nouns)
    n_leaves = len(leaves)
    leaf_top_a = np.array(leaf_top)

    # Zipf over leaves in a random order: some leaf categories are mass-market, some niche.
    ranks = rng.permutation(n_leaves)
    leaf_pop = (ranks + 1.0) ** -0.9
    top_center = _unit(rng.normal(size=(len(tops), d)))
    leaf_center = _unit(top_center[leaf_top_a] + rng.normal(0, 0.18, size=(n_leaves, d)))

    counts = _allocate(n_items, leaf_pop**0.5, minimum=1)
    leaf_bounds = np.concatenate([[0], np.cumsum(counts)])
    item_leaf = np.repeat(np.arange(n_leaves), counts)
    top_bounds = np.array(
        [leaf_bounds[np.searchsorted(leaf_top_a, t)] for t in range(len(tops))] + [n_items]
    )

    factor = _unit(leaf_center[item_leaf] + rng.normal(0, 0.12, size=(n_items, d)))
    appeal = rng.normal(size=n_items).astype(np.float32)
    pop = leaf_pop[item_leaf] ** 0.7 * np.exp(rng.normal(0, 1.6, size=n_items))

    day_s = 86_400
    horizon = cfg.days * day_s
    kind = rng.random(n_items)
    new = kind < cfg.new_item_share
    mid = (kind >= cfg.new_item_share) & (kind < 2 * cfg.new_item_share)
    created = -rng.uniform(1, 3 * 365, n_items) * day_s  # catalogue built up over 3 years
    created[new] = horizon - rng.uniform(1, 30, new.sum()) * day_s
    created[mid] = rng.uniform(0, horizon - 30 * day_s, mid.sum())
    pop[new] *= 0.4  # new listings start low on category pages and in recommendations
    pop /= pop.sum()
    in_stock = rng.random(n_items) >= cfg.out_of_stock_share

    # Log-normal price per top category with a per-leaf level.
    leaf_level = np.exp(rng.normal(0, 0.3, n_leaves))
    med = np.array([TAXONOMY[t]["price"][0] for t in tops])[leaf_top_a] * leaf_level
    sd = np.array([TAXONOMY[t]["price"][1] for t in tops])[leaf_top_a]
    raw = med[item_leaf] * np.exp(rng.normal(size=n_items) * sd[item_leaf])
    price = np.maximum(np.round(raw) - 0.01, 0.99)

    # Text. Draw all choices vectorised, then join strings in one pass.
    pick = rng.random((n_items, 7))
    title: list[str] = []
    description: list[str] = []
    brand: list[str] = []
    for i in range(n_items):
        leaf = item_leaf[i]
        top_info = TAXONOMY[tops[leaf_top[leaf]]]
        sub_info = top_info["subs"][leaf_sub[leaf]]
        p = pick[i]
        brands = top_info["brands"]
        # Brands are Zipf-like too: the first few in each list are the big names.
        b = brands[min(int(len(brands) * p[0] ** 1.6), len(brands) - 1)]
        adj = top_info["adjectives"][int(p[1] * len(top_info["adjectives"]))]
        mat = top_info["materials"][int(p[2] * len(top_info["materials"]))]
        noun = leaf_nouns[leaf][int(p[3] * len(leaf_nouns[leaf]))]
        item_title = f"{b} {_cap(adj)} {_cap(mat)} {_cap(noun)}"
        if p[4] < 0.45:
            var = VARIANTS[tops[leaf_top[leaf]]]
            item_title += f", {var[int(p[4] / 0.45 * len(var))]}"
        phrases = sub_info["phrases"]
        k1 = int(p[5] * len(phrases))
        k2 = (k1 + 1 + int(p[6] * (len(phrases) - 1))) % len(phrases)
        article = "An" if adj[0] in "aeiou" else "A"
        desc = f"{article} {adj} {mat} {noun} from {b}. {phrases[k1]} {phrases[k2]}"
        title.append(item_title)
        description.append(desc)
        brand.append(b)

    return _Catalog(
        tops=tops,
        leaves=leaves,
        leaf_top=leaf_top_a,
        leaf_pop=leaf_pop,
        leaf_center=leaf_center,
        leaf_bounds=leaf_bounds,
        top_bounds=top_bounds,
        item_leaf=item_leaf,
        factor=factor,
        appeal=appeal,
        pop=pop,
        price=price,
        created_s=created.astype(np.int64),
        in_stock=in_stock,
        sku=rng.permutation(n_items) + 1,
        title=title,
        description=description,
        brand=brand,
    )


# ============================================================================ users


@dataclass
class _Users:
    taste: np.ndarray  # (U, d)
    niche: np.ndarray
    activity: np.ndarray
    signup_day: np.ndarray  # days since log start (negative: before)
    region: np.ndarray
    device: np.ndarray
    tier: np.ndarray
    age_band: np.ndarray
    click_bias: np.ndarray
    cart_bias: np.ndarray
    buy_bias: np.ndarray
    leaf_cdf: np.ndarray  # (U, L) float32 cumulative session-intent distribution


def _draw(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    keys = list(shares)
    p = np.array([shares[k] for k in keys])
    return np.array(keys, dtype=object)[rng.choice(len(keys), n, p=p / p.sum())]


def _build_users(n_users: int, cat: _Catalog, cfg: DemoConfig, rng: np.random.Generator) -> _Users:
    d = cfg.model.dim
    n_leaves = len(cat.leaves)
    nonempty = np.diff(cat.leaf_bounds) > 0
    niche = rng.random(n_users) < cfg.niche_share

    # Favourite leaves: mainstream users favour popular leaves, niche users the rare ones.
    # Niche enthusiasts are focused: mostly one favourite leaf.
    k = np.where(
        niche,
        rng.choice([1, 2, 3], n_users, p=[0.6, 0.3, 0.1]),
        rng.choice([1, 2, 3], n_users, p=[0.35, 0.4, 0.25]),
    )
    main_p = np.where(nonempty, cat.leaf_pop, 0)
    niche_p = np.where(nonempty, 1 / cat.leaf_pop, 0)
    main_p, niche_p = main_p / main_p.sum(), niche_p / niche_p.sum()
    taste = np.zeros((n_users, d))
    for j in range(3):
        fav = np.where(
            niche, rng.choice(n_leaves, n_users, p=niche_p), rng.choice(n_leaves, n_users, p=main_p)
        )
        w = rng.gamma(1.5, size=n_users) * (j < k)
        taste += w[:, None] * cat.leaf_center[fav]
    taste = _unit(taste + rng.normal(0, 0.1, size=(n_users, d)))

    # Session intent: softmax over leaves of 9 * taste . centre, nudged by leaf popularity.
    logits = 9.0 * (taste @ cat.leaf_center.T) + 0.3 * np.log(cat.leaf_pop)[None, :]
    logits[:, ~nonempty] = -np.inf
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    leaf_cdf = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1).astype(np.float32)
    leaf_cdf[:, -1] = 1.0

    region = _draw(rng, REGIONS, n_users)
    device = _draw(rng, DEVICES, n_users)
    tier = _draw(rng, TIERS, n_users)
    age_band = _draw(rng, AGE_BANDS, n_users)
    returning = rng.random(n_users) < 0.74
    signup = np.where(
        returning,
        -rng.integers(1, 3 * 365, n_users),
        rng.integers(0, max(1, cfg.days - 1), n_users),
    )
    plus = tier == "plus"
    activity = np.exp(rng.normal(0, 1.0, n_users) + 0.4 * plus)
    mobile = device == "mobile"
    tablet = device == "tablet"
    click_bias = 0.15 * mobile + rng.normal(0, 0.3, n_users)
    cart_bias = -0.3 * mobile - 0.1 * tablet + rng.normal(0, 0.3, n_users)
    buy_bias = 0.5 * plus + rng.normal(0, 0.2, n_users)
    return _Users(
        taste=taste,
        niche=niche,
        activity=activity,
        signup_day=signup,
        region=region,
        device=device,
        tier=tier,
        age_band=age_band,
        click_bias=click_bias.astype(np.float32),
        cart_bias=cart_bias.astype(np.float32),
        buy_bias=buy_bias.astype(np.float32),
        leaf_cdf=leaf_cdf,
    )


# ============================================================================ sessions


class _RangeSampler:
    """Draw item indices within contiguous groups [bounds[g], bounds[g+1]) with P ~ w."""

    def __init__(self, w: np.ndarray, bounds: np.ndarray) -> None:
        self.cdf = np.cumsum(w, dtype=np.float64)
        ext = np.concatenate([[0.0], self.cdf])
        self.lo, self.hi = ext[bounds[:-1]], ext[bounds[1:]]
        self.first, self.last = bounds[:-1], bounds[1:] - 1

    def draw(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self.lo[group], self.hi[group]
        idx = np.searchsorted(self.cdf, lo + rng.random(group.shape) * (hi - lo), side="right")
        return np.clip(idx, self.first[group], self.last[group])


def _day_weights(cfg: DemoConfig) -> np.ndarray:
    start = cfg.end - timedelta(days=cfg.days)
    weekday = np.array([1.0, 0.95, 0.95, 1.0, 1.05, 1.25, 1.3])  # Monday .. Sunday
    days = [start + timedelta(days=i) for i in range(cfg.days)]
    w = np.array([weekday[x.weekday()] for x in days]) * np.linspace(1.0, 1.25, cfg.days)
    sale = int(cfg.days * 0.45)  # a three-day spring sale
    w[sale : sale + 3] *= 1.8
    return w


#: Sessions by hour of day: quiet nights, a lunch bump, an evening peak.
_HOURS = np.array(
    [2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 6, 7, 9, 11, 12, 11, 8, 4], dtype=float
)


@dataclass
class _Context:
    cat: _Catalog
    users: _Users
    truth: GroundTruth
    cfg: DemoConfig
    organic: _RangeSampler
    organic_all: _RangeSampler
    search: _RangeSampler
    rec_top: _RangeSampler
    rec_all: _RangeSampler


def _sample_sessions(
    n: int, ctx: _Context, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(user index, start second since log start) of n sessions, sorted by start."""
    cfg, users = ctx.cfg, ctx.users
    w_day = _day_weights(cfg)
    cdf_day = np.cumsum(w_day) / w_day.sum()
    before = np.concatenate([[0.0], cdf_day])[:-1]  # mass before each day
    first_day = np.clip(users.signup_day, 0, cfg.days - 1)
    avail = 1.0 - before[first_day]
    w_user = users.activity * avail
    cdf_user = np.cumsum(w_user) / w_user.sum()
    u = np.minimum(np.searchsorted(cdf_user, rng.random(n), side="right"), len(w_user) - 1)
    lo = before[first_day[u]]
    day = np.searchsorted(cdf_day, lo + rng.random(n) * (1 - lo), side="right")
    day = np.clip(day, first_day[u], cfg.days - 1)
    hour = rng.choice(24, n, p=_HOURS / _HOURS.sum())
    start = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, n)
    order = np.argsort(start, kind="stable")
    return u[order], start[order]


def _simulate(
    ctx: _Context, s_user: np.ndarray, s_start: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Impressions, views, carts and purchases of a run of sessions, as index arrays."""
    cat, truth, cfg = ctx.cat, ctx.truth, ctx.cfg
    n_sess = len(s_user)
    n_imp = rng.geometric(1.0 / cfg.impressions_per_session, n_sess)
    sess = np.repeat(np.arange(n_sess), n_imp)
    n = len(sess)
    u = s_user[sess]

    # Session intent: one leaf category per session from the user's affinities.
    cdf = ctx.users.leaf_cdf[s_user]
    leaf = np.minimum(
        (cdf < rng.random((n_sess, 1), dtype=np.float32)).sum(axis=1), cdf.shape[1] - 1
    )
    leaf_i = leaf[sess]
    top_i = cat.leaf_top[leaf_i]

    mix = np.asarray(cfg.source_mix, dtype=float)
    src = rng.choice(3, n, p=mix / mix.sum()).astype(np.int8)
    item = np.empty(n, dtype=np.int64)
    o = np.flatnonzero(src == 0)
    # Category pages of the intent's top category; a share from the bestseller shelf, shown
    # to everyone whatever their taste (untargeted exposure that rarely converts).
    shelf = rng.random(len(o)) < 0.3
    item[o[shelf]] = ctx.organic_all.draw(np.zeros(shelf.sum(), dtype=np.int64), rng)
    item[o[~shelf]] = ctx.organic.draw(top_i[o[~shelf]], rng)
    s = np.flatnonzero(src == 1)
    if len(s):
        cand = ctx.search.draw(np.repeat(leaf_i[s, None], 4, axis=1), rng)
        score = truth.match(u[s, None], cand) + 0.1 * rng.gumbel(size=cand.shape)
        item[s] = cand[np.arange(len(s)), score.argmax(axis=1)]
    r = np.flatnonzero(src == 2)
    if len(r):
        whole = rng.random(len(r)) < 0.5
        cand = np.empty((len(r), 6), dtype=np.int64)
        cand[whole] = ctx.rec_all.draw(np.zeros((whole.sum(), 6), dtype=np.int64), rng)
        cand[~whole] = ctx.rec_top.draw(np.repeat(top_i[r[~whole], None], 6, axis=1), rng)
        score = truth.match(u[r, None], cand) + 0.3 * rng.gumbel(size=cand.shape)
        item[r] = cand[np.arange(len(r)), score.argmax(axis=1)]

    # Impression times: the session start plus exponential gaps.
    gaps = rng.exponential(20.0, n) + 2.0
    cs = np.cumsum(gaps)
    first = np.concatenate([[0], np.cumsum(n_imp)[:-1]])
    t_imp = s_start[sess] + (cs - (cs[first] - gaps[first])[sess])
    keep = t_imp >= cat.created_s[item]  # an item cannot be shown before it is listed
    sess, u, item, src, t_imp = sess[keep], u[keep], item[keep], src[keep], t_imp[keep]

    m = truth.match(u, item)
    viewed = rng.random(len(u)) < truth.click_prob(u, item, m)
    v = np.flatnonzero(viewed)
    t_view = t_imp[v] + rng.exponential(8.0, len(v)) + 1.0
    carted = rng.random(len(v)) < truth.cart_prob(u[v], item[v], m[v])
    c = v[carted]
    t_cart = t_view[carted] + rng.exponential(60.0, len(c)) + 5.0
    bought = rng.random(len(c)) < truth.buy_prob(u[c], item[c], m[c])
    b = c[bought]
    t_buy = t_cart[bought] + rng.exponential(240.0, len(b)) + 30.0
    qty_c = 1 + (rng.random(len(c)) < 0.12) * rng.geometric(0.6, len(c))
    price = cat.price[item]
    discount = np.where(rng.random(len(b)) < 0.15, rng.uniform(0.7, 0.95, len(b)), 1.0)

    idx = np.concatenate([np.arange(len(u)), v, c, b])
    etype = np.repeat(np.arange(4, dtype=np.int8), [len(u), len(v), len(c), len(b)])
    ts = np.concatenate([t_imp, t_view, t_cart, t_buy])
    qty = np.concatenate([np.ones(len(u) + len(v), np.int32), qty_c, qty_c[bought]])
    prices = np.concatenate([price[idx[: len(u) + len(v) + len(c)]], price[b] * discount])
    order = np.argsort(ts, kind="stable")
    # The log ends at `end`: events of late sessions that spill past midnight are cut off.
    order = order[ts[order] < cfg.days * 86_400]
    return {
        "u": u[idx][order].astype(np.int32),
        "i": item[idx][order].astype(np.int32),
        "e": etype[order],
        "ts": ts[order],
        "s": sess[idx][order].astype(np.int32),  # index into this run of sessions
        "q": qty[order].astype(np.int32),
        "p": np.round(prices[order], 2),
        "src": src[idx][order],
    }


# ============================================================================ writing


def _width(n: int) -> int:
    return max(4, len(str(n)))


def _dict(indices: np.ndarray, values: pa.Array) -> pa.DictionaryArray:
    # Ids travel as dictionary arrays: DuckDB copies the strings ~5x faster than it formats them.
    return pa.DictionaryArray.from_arrays(pa.array(indices, type=pa.int32()), values)


_EVENT_TYPES = pa.array(["impression", "view", "cart", "purchase"])
_SOURCES = pa.array(list(SOURCES))


def _write_catalog(con: duckdb.DuckDBPyConnection, cat: _Catalog, start: datetime, iw: int) -> None:
    start_us = int(start.timestamp() * 1_000_000)
    created = start_us + cat.created_s * 1_000_000
    tbl = pa.table(
        {
            "sku": pa.array(cat.sku),
            "title": pa.array(cat.title),
            "description": pa.array(cat.description),
            "category": pa.array(np.array(cat.leaves, dtype=object)[cat.item_leaf]),
            "brand": pa.array(cat.brand),
            "price": pa.array(cat.price),
            "in_stock": pa.array(cat.in_stock),
            "created_at": pa.array(created, type=pa.timestamp("us")),
            "idx": pa.array(np.arange(len(cat.sku))),
            "factor": pa.FixedSizeListArray.from_arrays(
                pa.array(cat.factor.ravel()), cat.factor.shape[1]
            ),
            "appeal": pa.array(cat.appeal.astype(np.float64)),
            "popularity": pa.array(cat.pop),
        }
    )
    con.register("demo_items", tbl)
    try:
        con.execute(
            """INSERT INTO items
               SELECT 'SKU-' || lpad(CAST(sku AS VARCHAR), $iw, '0'), title, description,
                      category, brand, price, in_stock, created_at
               FROM demo_items ORDER BY sku""",
            {"iw": iw},
        )
        con.execute(
            """CREATE TABLE truth_items AS
               SELECT 'SKU-' || lpad(CAST(sku AS VARCHAR), $iw, '0') AS item_id,
                      CAST(idx AS INTEGER) AS item_idx, CAST(factor AS FLOAT[]) AS factor,
                      appeal, popularity, category AS leaf
               FROM demo_items ORDER BY idx""",
            {"iw": iw},
        )
    finally:
        con.unregister("demo_items")


def _write_users(con: duckdb.DuckDBPyConnection, users: _Users, start: date, uw: int) -> None:
    n = len(users.niche)
    signup = np.datetime64(start) + users.signup_day.astype("timedelta64[D]")
    tbl = pa.table(
        {
            "idx": pa.array(np.arange(n)),
            "region": pa.array(users.region.astype(str)),
            "device": pa.array(users.device.astype(str)),
            "tier": pa.array(users.tier.astype(str)),
            "age_band": pa.array(users.age_band.astype(str)),
            "signup_date": pa.array(signup.astype("datetime64[D]")),
            "taste": pa.FixedSizeListArray.from_arrays(
                pa.array(users.taste.ravel()), users.taste.shape[1]
            ),
            "click_bias": pa.array(users.click_bias.astype(np.float64)),
            "cart_bias": pa.array(users.cart_bias.astype(np.float64)),
            "buy_bias": pa.array(users.buy_bias.astype(np.float64)),
            "activity": pa.array(users.activity),
            "niche": pa.array(users.niche),
        }
    )
    for col in ("region", "device", "tier", "age_band"):
        con.execute(f"ALTER TABLE users ADD COLUMN IF NOT EXISTS {quote_ident(col)} VARCHAR")
    con.execute("ALTER TABLE users ADD COLUMN IF NOT EXISTS signup_date DATE")
    con.register("demo_users", tbl)
    uid = "'U' || lpad(CAST(idx + 1 AS VARCHAR), $uw, '0')"
    try:
        con.execute(
            f"""INSERT INTO users (user_id, region, device, tier, age_band, signup_date)
                SELECT {uid}, region, device, tier, age_band, signup_date
                FROM demo_users ORDER BY idx""",  # noqa: S608 - fixed expression
            {"uw": uw},
        )
        con.execute(
            f"""CREATE TABLE truth_users AS
                SELECT {uid} AS user_id, CAST(idx AS INTEGER) AS user_idx,
                       CAST(taste AS FLOAT[]) AS taste, click_bias, cart_bias, buy_bias,
                       activity, niche
                FROM demo_users ORDER BY idx""",  # noqa: S608 - fixed expression
            {"uw": uw},
        )
    finally:
        con.unregister("demo_users")


def _stats(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], float, int, str, str]:
    counts = dict(con.execute("SELECT event_type, count(*) FROM events GROUP BY 1").fetchall())
    events = {t: int(counts.get(t, 0)) for t in ("impression", "view", "cart", "purchase")}
    views = con.execute(
        """SELECT count(e.item_id) FROM items i
           LEFT JOIN events e ON e.item_id = i.item_id AND e.event_type = 'view'
           GROUP BY i.item_id"""
    ).fetchnumpy()
    # a count() column: a numpy array (fetchnumpy's type also allows a pandas Categorical)
    x = cast(np.ndarray, next(iter(views.values()))).astype(np.float64)
    first, last = one_row(con.execute("SELECT min(ts), max(ts) FROM events"))
    return events, float(gini(x)), int((x == 0).sum()), str(first), str(last)


# ============================================================================ build


def build_demo(
    cfg: DemoConfig | None = None,
    data_dir: Path | str | None = None,
    progress: Progress | None = None,
) -> DemoReport:
    """Generate the demo shop and write it as dataset ``cfg.name`` (replacing it atomically).

    Returns a :class:`DemoReport` with counts, funnel rates and the item Gini of views.
    """
    cfg = cfg or DemoConfig()

    def say(message: str, done: float) -> None:
        report(progress, done, message)

    t0 = time.perf_counter()
    n_users, n_items, n_events = cfg.sizes()
    seeds = np.random.SeedSequence(cfg.seed).spawn(5)
    rng_cat, rng_users, rng_pilot, rng_sess = (np.random.default_rng(s) for s in seeds[:4])

    say(f"catalogue of {n_items:,} items", 0.0)
    cat = _build_catalog(n_items, cfg, rng_cat)
    say(f"{n_users:,} users", 0.03)
    users = _build_users(n_users, cat, cfg, rng_users)
    uw, iw = _width(n_users), _width(n_items)
    truth = GroundTruth(
        user_ids=np.char.add("U", np.char.zfill((np.arange(n_users) + 1).astype(str), uw)),
        item_ids=np.char.add("SKU-", np.char.zfill(cat.sku.astype(str), iw)),
        taste=users.taste,
        factor=cat.factor,
        appeal=cat.appeal,
        click_bias=users.click_bias,
        cart_bias=users.cart_bias,
        buy_bias=users.buy_bias,
        model=cfg.model,
        popularity=cat.pop,
        niche=users.niche,
    )
    ctx = _Context(
        cat=cat,
        users=users,
        truth=truth,
        cfg=cfg,
        organic=_RangeSampler(cat.pop, cat.top_bounds),
        organic_all=_RangeSampler(cat.pop, np.array([0, n_items])),
        search=_RangeSampler(cat.pop**0.3, cat.leaf_bounds),
        rec_top=_RangeSampler(cat.pop**1.1, cat.top_bounds),
        rec_all=_RangeSampler(cat.pop**1.1, np.array([0, n_items])),
    )

    # A pilot run (own random stream) measures events per session, so `events` is met closely.
    pilot_n = 4_000
    pu, ps = _sample_sessions(pilot_n, ctx, rng_pilot)
    per_session = len(_simulate(ctx, pu, ps, rng_pilot)["u"]) / pilot_n
    n_sessions = max(1, round(n_events / per_session))
    s_user, s_start = _sample_sessions(n_sessions, ctx, rng_sess)
    sw = _width(n_sessions)

    start_day = cfg.end - timedelta(days=cfg.days)
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC)
    start_us = int(start.timestamp() * 1_000_000)
    n_chunks = math.ceil(n_sessions / cfg.chunk_sessions)
    user_ids, item_ids = pa.array(truth.user_ids), pa.array(truth.item_ids)
    chunk_seeds = seeds[4].spawn(n_chunks)

    with writing(cfg.name, data_dir, replace=True) as con:
        con.execute("SET enable_progress_bar = false")  # the CLI reports progress itself
        _write_catalog(con, cat, start, iw)
        _write_users(con, users, start_day, uw)
        for k in range(n_chunks):
            lo, hi = k * cfg.chunk_sessions, min(n_sessions, (k + 1) * cfg.chunk_sessions)
            ev = _simulate(
                ctx, s_user[lo:hi], s_start[lo:hi], np.random.default_rng(chunk_seeds[k])
            )
            sessions = pa.array(
                np.char.add("S", np.char.zfill(np.arange(lo + 1, hi + 1).astype(str), sw))
            )
            tbl = pa.table(
                {
                    "user_id": _dict(ev["u"], user_ids),
                    "item_id": _dict(ev["i"], item_ids),
                    "event_type": _dict(ev["e"], _EVENT_TYPES),
                    "ts": pa.array(
                        start_us + np.round(ev["ts"] * 1_000_000).astype(np.int64),
                        type=pa.timestamp("us"),
                    ),
                    "session_id": _dict(ev["s"], sessions),
                    "quantity": pa.array(ev["q"]),
                    "price": pa.array(ev["p"]),
                    "source": _dict(ev["src"], _SOURCES),
                }
            )
            con.register("demo_chunk", tbl)
            try:
                con.execute(
                    "INSERT INTO events SELECT user_id::VARCHAR, item_id::VARCHAR,"
                    " event_type::VARCHAR, ts, session_id::VARCHAR, quantity, price,"
                    " source::VARCHAR FROM demo_chunk"
                )
            finally:
                con.unregister("demo_chunk")
            say(f"sessions {hi:,}/{n_sessions:,}", 0.05 + 0.85 * hi / n_sessions)
        say("statistics", 0.92)
        write_meta(
            con,
            {
                "source": "demo",
                "seed": cfg.seed,
                "demo_users": n_users,
                "demo_items": n_items,
                "demo_events_target": n_events,
                "demo_sessions": n_sessions,
                "demo_config": cfg.model_dump_json(),
                "demo_generator_version": GENERATOR_VERSION,
                TRUTH_META_KEY: cfg.model.model_dump_json(),
                "taxonomy_leaves": json.dumps(cat.leaves),
            },
        )
        events, g, cold, first, last = _stats(con)
        finalize(con)
    seconds = time.perf_counter() - t0
    funnel = {
        "impression_to_view": events["view"] / max(1, events["impression"]),
        "view_to_cart": events["cart"] / max(1, events["view"]),
        "cart_to_purchase": events["purchase"] / max(1, events["cart"]),
        "view_to_purchase": events["purchase"] / max(1, events["view"]),
    }
    say("done", 1.0)
    return DemoReport(
        name=cfg.name,
        path=str(dataset_path(cfg.name, data_dir)),
        users=n_users,
        items=n_items,
        events=events,
        sessions=n_sessions,
        seconds=seconds,
        gini_views=g,
        funnel=funnel,
        first_ts=first,
        last_ts=last,
        seed=cfg.seed,
        cold_items=cold,
    )
