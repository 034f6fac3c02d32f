"""Every metric and concept once: its implementation and its record (DESIGN §1, §3).

Analytics, evaluation, the simulator, charts, page help texts and the CLI JSON all take their
definitions from here, so one number means the same on every page. Each :class:`Metric` record
says what a number is (name, formula in words, unit, which direction is better, display format,
the paper it comes from); :func:`fmt` formats a value by its record and :func:`pct` is the one
percentage format.

Rules fixed here for every caller:

* **Gini** over the whole catalogue, zero-exposure items included; an all-zero (or empty) input
  has no concentration to measure and gives ``NaN`` (shown as "–"), never 0, which would read
  as "perfectly equal".
* **Popularity rank**: ordinal, 1 = most popular, ties broken by item index (every ltrec
  vocabulary sorts item ids, so: by item id), i.e. ``ORDER BY popularity DESC, item_id`` -- the
  same order that cuts the popularity buckets, so rank r is in the head iff the head holds the
  first r items.
* **Popularity buckets**: by cumulative popularity share in that order (see
  :func:`popularity_buckets`); names from :func:`bucket_names`, colours from
  :data:`BUCKET_COLOURS`.
* **List overlap**: ``|L ∩ B| / max(|L|, |B|)``, symmetric, in [0, 1].
* **Exposure**: impressions when the data has them, else views (:func:`exposure_event`).
* **Conversion**: per (user, item) pair, view -> purchase = pairs with a purchase / pairs that
  reached the view stage (``view_purchase``; likewise ``view_cart``, ``cart_purchase``), on every
  page, whatever the exposure event; shrunk per item by an empirical-Bayes Beta prior.
* **Item text**: ``title. category path. brand. description`` (:func:`item_text`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from ltrec.errors import BadInputError

Direction = Literal["higher", "lower", "neutral"]

# --------------------------------------------------------------------------------------------
# display formats


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))  # type: ignore[arg-type]  # any real number; float() raising on other values is intended
    except (TypeError, ValueError):
        return False


#: How a missing value (None, NaN) is shown everywhere.
MISSING = "–"


def pct(x: float | None, digits: int = 1) -> str:
    """The one percentage format: ``0.6262 -> "62.6%"``; None / NaN -> ``"–"``."""
    if _missing(x):
        return MISSING
    return f"{float(x):.{digits}%}"  # type: ignore[arg-type]  # any real number; float() raising on other values is intended


#: The same percentage format for plotly (``tickformat`` / ``hovertemplate``), d3 syntax.
PCT_D3 = ".1%"
#: For ``st.column_config.NumberColumn(format=...)`` on 0..1 shares: Streamlit's preset
#: (two decimals; a printf format cannot scale by 100, and tables keep shares 0..1 for download).
PCT_COLUMN = "percent"


def signed_pct(x: float | None, digits: int = 1) -> str:
    """A change in percentage points or a relative change: ``+3.2%`` / ``-0.5%``."""
    if _missing(x):
        return MISSING
    return f"{float(x):+.{digits}%}"  # type: ignore[arg-type]  # any real number; float() raising on other values is intended


# --------------------------------------------------------------------------------------------
# metric records


@dataclass(frozen=True)
class Metric:
    """What a number is, once.

    Attributes:
        key: the stable key (CLI JSON, result frames); ``"ndcg"`` also names ``"ndcg@10"``.
        name: the label pages and charts show.
        formula: the definition in words (and symbols), shown as help next to the number.
        unit: ``"share"`` (0..1, shown as a percentage), ``"ratio"`` (0..1 shown as a
            decimal), ``"items"``, ``"users"``, ``"events"``, ``"bits"``, ``"rank"``,
            ``"score"``...
        direction: ``"higher"`` or ``"lower"`` is better, ``"neutral"`` for descriptive facts.
        fmt: display format: ``"pct"`` (:func:`pct`) or a Python format spec (``".3f"``,
            ``",d"``, ``",.1f"``).
        reference: the paper or source of the definition.
    """

    key: str
    name: str
    formula: str
    unit: str
    direction: Direction
    fmt: str
    reference: str = ""

    @property
    def higher_is_better(self) -> bool | None:
        return {"higher": True, "lower": False}.get(self.direction)

    @property
    def help(self) -> str:
        """The tooltip: formula, and the reference when there is one."""
        return f"{self.formula} ({self.reference})" if self.reference else self.formula

    def label(self, k: int | None = None) -> str:
        """``"NDCG@10"`` with a list length, else the name."""
        return f"{self.name}@{k}" if k is not None else self.name

    def format(self, value: object) -> str:
        if _missing(value):
            return MISSING
        if self.fmt == "pct":
            return pct(float(value))  # type: ignore[arg-type]  # any real number; float() raising on other values is intended
        if self.fmt.endswith("d"):
            return format(int(round(float(value))), self.fmt)  # type: ignore[arg-type]  # any real number; float() raising on other values is intended
        return format(float(value), self.fmt)  # type: ignore[arg-type]  # any real number; float() raising on other values is intended

    def to_json(self) -> dict[str, str]:
        return asdict(self)


_HS = "Herlocker et al. 2004, Evaluating Collaborative Filtering Recommender Systems"
_APLT = (
    "Abdollahpouri, Burke & Mobasher 2019, Managing Popularity Bias in Recommender Systems "
    "with Personalized Re-ranking"
)
_GINI = (
    "Gini 1912, Lorenz-curve form; exposure concentration as in Fleder & Hosanagar 2009, "
    "Blockbuster Culture's Next Rise or Fall"
)
#: The Gini formula in words, shown wherever a Gini is.
GINI_FORMULA = (
    "G = Σ (2i − n − 1) x₍ᵢ₎ / (n Σ x), x ascending over every catalogue item, zero items "
    "included; 0 = equal, (n − 1)/n = one item gets everything; no events: –"
)
_ZHU = (
    "Zhu, Wang & Caverlee 2020, Measuring and Mitigating Item Under-Recommendation Bias in "
    "Personalized Ranking Systems"
)
_BUCKETS = (
    "head = the smallest set of most popular items that makes the first cut's share of "
    "interactions (default 80%), the rest is the tail"
)
_WILSON = "Wilson 1927 score interval; empirical-Bayes Beta shrinkage"


def _records(*ms: Metric) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for m in ms:
        if m.key in out:
            raise ValueError(f"metric {m.key!r} defined twice")
        out[m.key] = m
    return out


#: Every metric and KPI, by key.
METRICS: dict[str, Metric] = _records(
    # ---- accuracy at K (per user, averaged) ----
    Metric(
        "precision",
        "Precision",
        "share of the K slots that hold a test item: |L ∩ T| / K",
        "ratio",
        "higher",
        ".3f",
        _HS,
    ),
    Metric(
        "recall",
        "Recall",
        "share of the user's test items found in the top K: |L ∩ T| / |T|",
        "ratio",
        "higher",
        ".3f",
        _HS,
    ),
    Metric(
        "ndcg",
        "NDCG",
        "DCG / ideal DCG, binary relevance, discount 1/log2(r + 1)",
        "ratio",
        "higher",
        ".3f",
        "Järvelin & Kekäläinen 2002, Cumulated Gain-Based Evaluation of IR Techniques",
    ),
    Metric(
        "map",
        "MAP",
        "mean over users of Σ precision@r at each hit / min(|T|, K)",
        "ratio",
        "higher",
        ".3f",
        "Manning, Raghavan & Schütze 2008, §8.4",
    ),
    Metric(
        "hit_rate",
        "Hit rate",
        "share of users with at least one test item in the top K",
        "share",
        "higher",
        "pct",
        "Deshpande & Karypis 2004, Item-based top-N recommendation",
    ),
    Metric(
        "mrr",
        "MRR",
        "mean of 1 / rank of the first hit (0 without a hit)",
        "ratio",
        "higher",
        ".3f",
        "Voorhees 1999, TREC-8 Question Answering Track",
    ),
    Metric(
        "tail_recall",
        "Tail recall",
        "recall on the user's tail test items only: |L ∩ T ∩ tail| / |T ∩ tail|",
        "ratio",
        "higher",
        ".3f",
        "Abdollahpouri et al. 2017, Controlling Popularity Bias in Learning-to-Rank",
    ),
    # ---- long tail per list ----
    Metric(
        "aplt",
        "Tail share (APLT)",
        "share of each list on tail items, averaged over lists: |L ∩ tail| / |L|; " + _BUCKETS,
        "share",
        "higher",
        "pct",
        _APLT,
    ),
    Metric(
        "aclt",
        "Tail items per list (ACLT)",
        "number of tail items in each list, averaged",
        "items",
        "higher",
        ".2f",
        _APLT,
    ),
    Metric(
        "arp",
        "ARP",
        "average recommendation popularity: mean training popularity "
        "(distinct users) of the listed items",
        "users",
        "lower",
        ",.1f",
        "Yin et al. 2012, Challenging the Long Tail Recommendation",
    ),
    Metric(
        "pop_rank",
        "Mean popularity rank",
        "mean popularity rank of the listed items "
        "(1 = most popular; ties by item id): higher = deeper in the tail",
        "rank",
        "higher",
        ",.1f",
        _APLT,
    ),
    Metric(
        "novelty",
        "Novelty",
        "mean −log2 p(i) of the listed items, p(i) = (pop + 1) / (Σ pop + n)",
        "bits",
        "higher",
        ".2f",
        "Zhou et al. 2010, Solving the apparent diversity-accuracy dilemma (PNAS)",
    ),
    Metric(
        "ild_embedding",
        "Diversity (text)",
        "1 − mean pairwise cosine of the listed items' text embeddings",
        "ratio",
        "higher",
        ".3f",
        "Ziegler et al. 2005, Improving Recommendation Lists Through Topic Diversification",
    ),
    Metric(
        "ild_category",
        "Diversity (category)",
        "share of item pairs in a list from different categories",
        "share",
        "higher",
        "pct",
        "Ziegler et al. 2005",
    ),
    Metric(
        "overlap",
        "Overlap",
        "|L ∩ B| / max(|L|, |B|): share of items the list "
        "shares with the base list (1 = same items)",
        "share",
        "higher",
        "pct",
        "set overlap of top-K lists",
    ),
    Metric(
        "rbo",
        "RBO",
        "rank-biased overlap with the base list, p = 0.9 (extrapolated)",
        "ratio",
        "higher",
        ".3f",
        "Webber, Moffat & Zobel 2010, A Similarity Measure for Indefinite Rankings",
    ),
    # ---- catalogue level (recommendation exposure) ----
    Metric(
        "coverage",
        "Catalogue coverage",
        "share of catalogue items recommended to anyone",
        "share",
        "higher",
        "pct",
        "Ge, Delgado-Battenfeld & Jannach 2010, Beyond accuracy",
    ),
    Metric(
        "tail_coverage",
        "Tail coverage",
        "share of tail items recommended to anyone",
        "share",
        "higher",
        "pct",
        "Ge et al. 2010",
    ),
    Metric(
        "gini",
        "Exposure Gini",
        "Gini of recommendation counts per item: " + GINI_FORMULA,
        "ratio",
        "lower",
        ".3f",
        _GINI,
    ),
    Metric(
        "gini_position",
        "Exposure Gini (position-weighted)",
        "Gini of position-weighted recommendation exposure, weight 1/log2(r + 1): " + GINI_FORMULA,
        "ratio",
        "lower",
        ".3f",
        "Singh & Joachims 2018, Fairness of Exposure in Rankings",
    ),
    Metric(
        "entropy",
        "Exposure entropy",
        "Shannon entropy of recommendation counts, −Σ p log2 p",
        "bits",
        "higher",
        ".2f",
        "Adomavicius & Kwon 2012, Improving Aggregate Recommendation Diversity",
    ),
    Metric(
        "pop_reo",
        "PopREO",
        "|P_head − P_tail| / (P_head + P_tail), P_g = recall of group "
        "g's test items (0 = equal opportunity)",
        "ratio",
        "lower",
        ".3f",
        _ZHU,
    ),
    Metric(
        "pop_rsp",
        "PopRSP",
        "|P_head − P_tail| / (P_head + P_tail), P_g = recommendation "
        "rate of group g's items (0 = parity)",
        "ratio",
        "lower",
        ".3f",
        _ZHU,
    ),
    # ---- the data (analytics KPIs) ----
    Metric(
        "tail_item_share",
        "Tail share of items",
        "catalogue items in the tail bucket / all catalogue items; " + _BUCKETS,
        "share",
        "neutral",
        "pct",
        _APLT,
    ),
    Metric(
        "tail_exposure_share",
        "Tail share of exposure",
        "exposure events (impressions, else views) on tail items / all exposure events",
        "share",
        "higher",
        "pct",
        _APLT,
    ),
    Metric(
        "tail_purchase_share",
        "Tail share of purchases",
        "purchase events on tail items / all purchase events",
        "share",
        "higher",
        "pct",
        _APLT,
    ),
    Metric(
        "run_tail_item_share",
        "Tail share (training)",
        "catalogue items in the tail bucket of the run's training popularity / all items of "
        "the run; " + _BUCKETS + " (the data pages measure popularity on all events in view, "
        "so their tail share of items can differ)",
        "share",
        "neutral",
        "pct",
        _APLT,
    ),
    Metric(
        "tail_buyer_share",
        "Tail share of buyers",
        "distinct buyers of tail items (summed "
        "over items) / distinct buyers of all items: purchase concentration, not exposure",
        "share",
        "higher",
        "pct",
        _APLT,
    ),
    Metric(
        "gini_exposure",
        "Exposure Gini",
        "Gini of exposure events (impressions, else views) per item: " + GINI_FORMULA,
        "ratio",
        "lower",
        ".3f",
        _GINI,
    ),
    Metric(
        "gini_buyers",
        "Gini of buyers",
        "Gini of distinct buyers per item, not exposure: " + GINI_FORMULA,
        "ratio",
        "lower",
        ".3f",
        _GINI,
    ),
    Metric(
        "popularity_gini",
        "Popularity Gini",
        "Gini of item popularity (distinct users): " + GINI_FORMULA,
        "ratio",
        "lower",
        ".3f",
        _GINI,
    ),
    Metric(
        "view_cart",
        "view → cart",
        "(user, item) pairs that reached cart (carted or bought) / pairs that reached view "
        "(viewed, carted or bought)",
        "share",
        "higher",
        "pct",
        _WILSON,
    ),
    Metric(
        "cart_purchase",
        "cart → purchase",
        "(user, item) pairs with a purchase / pairs that reached cart (carted or bought)",
        "share",
        "higher",
        "pct",
        _WILSON,
    ),
    Metric(
        "view_purchase",
        "view → purchase",
        "(user, item) pairs with a purchase / pairs that reached view (viewed, carted or "
        "bought), whatever the exposure event",
        "share",
        "higher",
        "pct",
        _WILSON,
    ),
    Metric(
        "shrunk",
        "Shrunk conversion",
        "(purchases + a) / (views + a + b): view → purchase "
        "shrunk toward the catalogue mean by a fitted Beta(a, b) prior",
        "share",
        "higher",
        "pct",
        _WILSON,
    ),
    Metric(
        "lift",
        "Lift",
        "shrunk conversion / catalogue mean conversion",
        "ratio",
        "higher",
        ".2f",
        "",
    ),
    # ---- an online experiment (measured on the served lists and the events posted back) ----
    Metric(
        "ctr",
        "Click-through",
        "clicked impressions / impressions; an impression is clicked when a view of its item "
        "is attributed to the list that showed it",
        "share",
        "higher",
        "pct",
        "",
    ),
    Metric(
        "conversion",
        "Conversion",
        "users with an attributed purchase / users the arm served (a user-level rate, not the "
        "pair-level view → purchase)",
        "share",
        "higher",
        "pct",
        "",
    ),
    Metric(
        "revenue_per_user",
        "Revenue per user",
        "quantity x price of attributed purchases / users the arm served",
        "currency",
        "higher",
        ",.2f",
        "",
    ),
    # ---- a re-ranked list (Studio) ----
    Metric(
        "tail_share",
        "Tail share",
        "share of the list's (or the round's) recommendation slots on tail items: APLT of one list",
        "share",
        "higher",
        "pct",
        _APLT,
    ),
    Metric(
        "mean_base_score",
        "Mean base score",
        "mean of the base model's scores over the listed items",
        "score",
        "neutral",
        ".3g",
        "",
    ),
)


#: Keys that existing JSON outputs use for a metric recorded under another key (JSON keys are
#: never renamed): the simulator's per-round figures are the evaluation's catalogue metrics.
ALIASES: dict[str, str] = {
    "exposure_gini": "gini",
    "exposure_gini_cum": "gini",
    "coverage_cum": "coverage",
}


def metric(key: str) -> Metric:
    """The record of ``key`` (``"ndcg@10"`` finds ``"ndcg"``; aliases resolve).

    Raises:
        BadInputError: unknown key, naming the known ones.
    """
    base = key.split("@", 1)[0]
    try:
        return METRICS[ALIASES.get(base, base)]
    except KeyError:
        raise BadInputError(
            f"unknown metric {key!r}", hint="known metrics: " + ", ".join(METRICS)
        ) from None


def fmt(key: str, value: object) -> str:
    """``value`` formatted as the record of ``key`` says (``"ndcg@10"``: the ndcg format)."""
    return metric(key).format(value)


def higher_is_better() -> dict[str, bool]:
    """Key -> True (higher is better) / False, for metrics with a direction."""
    return {k: m.higher_is_better for k, m in METRICS.items() if m.higher_is_better is not None}


def definitions_json(keys: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
    """The records as JSON (the CLI's ``definitions`` key): output key -> record fields.

    ``keys`` are the output's own keys (``"ndcg@10"`` and aliases resolve); keys without a
    record are left out. None: every record.
    """
    if keys is None:
        return {k: m.to_json() for k, m in METRICS.items()}
    out: dict[str, dict[str, str]] = {}
    for k in keys:
        base = k.split("@", 1)[0]
        if ALIASES.get(base, base) in METRICS:
            out[base] = metric(base).to_json()
    return out


# --------------------------------------------------------------------------------------------
# concentration


def gini(x: np.ndarray | Sequence[float]) -> np.ndarray | float:
    """Gini coefficient over the whole catalogue, zero items included.

    ``G = sum_{i=1..n} (2i - n - 1) x_(i) / (n sum_i x_i)`` with x ascending. All equal -> 0;
    everything on one item -> (n - 1) / n. An all-zero or empty input has no concentration to
    measure: ``NaN``. Accepts ``[n]`` (a float) or a batch ``[B, n]`` (one value per row).
    (Lorenz-curve form of Gini 1912; exposure concentration as in Fleder & Hosanagar 2009.)

    Raises:
        BadInputError: a negative or non-finite value.
    """
    x = np.asarray(x, dtype=float)
    if x.size and (not np.isfinite(x).all() or (x < 0).any()):
        raise BadInputError("Gini needs finite, non-negative values (counts per item)")
    xs = np.sort(x, axis=-1)
    n = xs.shape[-1]
    coef = 2.0 * np.arange(1, n + 1) - n - 1
    total = xs.sum(axis=-1)
    num = xs @ coef
    den = n * total
    g = np.divide(num, den, out=np.full(np.shape(num), np.nan), where=den > 0)
    return float(g) if np.ndim(g) == 0 else g


# --------------------------------------------------------------------------------------------
# popularity rank and buckets


def _check_pop(pop: np.ndarray | Sequence[float]) -> np.ndarray:
    pop = np.asarray(pop, dtype=float)
    if pop.ndim != 1:
        raise BadInputError(f"item popularity must be one value per item, got shape {pop.shape}")
    if not np.isfinite(pop).all() or (pop < 0).any():
        raise BadInputError("item popularity must be finite and non-negative")
    return pop


def popularity_order(pop: np.ndarray | Sequence[float]) -> np.ndarray:
    """Item indices, most popular first, ties by item index (``ORDER BY pop DESC, item_id``)."""
    return np.argsort(-_check_pop(pop), kind="stable")


def popularity_rank(pop: np.ndarray | Sequence[float]) -> np.ndarray:
    """Ordinal rank per item, 1 = most popular, ties by item index (so: a permutation of 1..n).

    The order that cuts the buckets, so the head is exactly the items of rank 1..h.
    """
    order = popularity_order(pop)
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(1, order.size + 1)
    return rank


#: Float slack when comparing a cumulative share with a cut (0.8 = 4/5 must reach 0.8).
SHARE_EPS = 1e-9


def check_cuts(cuts: Sequence[float]) -> tuple[float, ...]:
    """Bucket cuts: 1 to 8 strictly increasing shares strictly between 0 and 1."""
    c = tuple(float(x) for x in cuts)
    if not c or len(c) > 8:
        raise BadInputError("give 1 to 8 bucket cuts")
    if any(not 0 < x < 1 for x in c):
        raise BadInputError("bucket cuts must be shares strictly between 0 and 1")
    if any(b <= a for a, b in zip(c, c[1:], strict=False)):
        raise BadInputError("bucket cuts must be strictly increasing")
    return c


def popularity_buckets(
    pop: np.ndarray | Sequence[float], cuts: Sequence[float] = (0.8,)
) -> np.ndarray:
    """Bucket index per item: 0 = head, ``len(cuts)`` = tail (DESIGN §3).

    Items in :func:`popularity_order` (popularity descending, ties by item index); an item's
    bucket is the number of cuts ``c`` with ``before >= c``, ``before`` the popularity share
    of the items ranked above it. So the head is the smallest prefix whose share reaches the
    first cut (the short-head / long-tail split of APLT, Abdollahpouri et al. 2019). Items with
    zero popularity are always tail ("cold"); all-zero popularity: every item is tail. The
    analytics' Ibis twin (:func:`ltrec.analytics.popularity.buckets_expr`) applies the same rule
    in the database and is tested equal to this one.
    """
    pop = _check_pop(pop)
    cuts_arr = np.asarray(check_cuts(cuts))
    last = cuts_arr.size
    out = np.full(pop.size, last, dtype=np.int64)
    total = pop.sum()
    if total <= 0:
        return out
    order = np.argsort(-pop, kind="stable")
    before = (np.cumsum(pop[order]) - pop[order]) / total
    out[order] = np.searchsorted(cuts_arr, before + SHARE_EPS, side="right")
    out[pop == 0] = last
    return out


def tail_mask(pop: np.ndarray | Sequence[float], cuts: Sequence[float] = (0.8,)) -> np.ndarray:
    """Boolean mask of the tail (the last bucket of :func:`popularity_buckets`)."""
    return popularity_buckets(pop, cuts) == len(cuts)


def popularity_share(pop: np.ndarray | Sequence[float]) -> np.ndarray:
    """Laplace-smoothed popularity share p(i) = (pop_i + 1) / (sum_j pop_j + n).

    The +1 keeps ``-log2 p`` (novelty) finite for items nobody has interacted with yet.
    """
    pop = _check_pop(pop)
    return (pop + 1.0) / (pop.sum() + pop.size)


def bucket_names(n_cuts: int) -> list[str]:
    """``head``, ``mid`` (or ``mid1``, ``mid2``, ...), ``tail`` for ``n_cuts`` cuts."""
    if n_cuts < 1:
        raise BadInputError("buckets need at least one cut")
    if n_cuts == 1:
        return ["head", "tail"]
    if n_cuts == 2:
        return ["head", "mid", "tail"]
    return ["head", *[f"mid{i}" for i in range(1, n_cuts)], "tail"]


#: One colour per bucket name, the same on every chart, table and badge. Green and red are
#: left to "better" / "worse" (charts.metrics), so the tail is purple, never red.
BUCKET_COLOURS: dict[str, str] = {
    "head": "#1f77b4",
    "mid": "#9ecae1",
    "mid1": "#9ecae1",
    "mid2": "#17becf",
    "mid3": "#bcbd22",
    "mid4": "#8c564b",
    "mid5": "#e377c2",
    "mid6": "#ff7f0e",
    "mid7": "#c5b0d5",
    "tail": "#9467bd",
    "all": "#7f7f7f",
}


def bucket_colour(name: str) -> str:
    """The colour of bucket ``name`` (grey for an unknown name)."""
    return BUCKET_COLOURS.get(str(name), "#7f7f7f")


def bucket_tint(name: str, alpha: float = 0.18) -> str:
    """The bucket's colour as a light cell background (same hue as in the charts)."""
    h = bucket_colour(name).lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


# --------------------------------------------------------------------------------------------
# list change


def _list_length(recs: np.ndarray) -> np.ndarray:
    return (recs >= 0).sum(axis=1)


def shared_depth(recs: np.ndarray, base: np.ndarray) -> np.ndarray:
    """X[u, d-1] = |L_u[:d] ∩ B_u[:d]| for d = 1..k (padding -1 never matches)."""
    k = max(recs.shape[1], base.shape[1])
    a = np.full((recs.shape[0], k), -1, dtype=np.int64)
    b = np.full((recs.shape[0], k), -2, dtype=np.int64)  # -2: padding never matches padding
    a[:, : recs.shape[1]] = recs
    b[:, : base.shape[1]] = np.where(base >= 0, base, -2)
    eq = (a[:, :, None] == b[:, None, :]).astype(np.int32)
    cum = eq.cumsum(axis=1).cumsum(axis=2)
    return np.diagonal(cum, axis1=1, axis2=2)


def list_overlap(recs: np.ndarray | Sequence[int], base: np.ndarray | Sequence[int]):
    """Overlap = |L ∩ B| / max(|L|, |B|): 1 = the same items, 0 = none shared; NaN if both empty.

    Symmetric. Takes two lists (``[k]`` item indices: a float) or two matrices ``[n, k]``
    (one value per row); ``-1`` pads a short list. Lists must not repeat an item (the metrics'
    ``clean_recs`` blanks repeats).
    """
    a = np.asarray(recs, dtype=np.int64)
    b = np.asarray(base, dtype=np.int64)
    single = a.ndim == 1
    if single:
        a, b = a[None, :], b.reshape(1, -1)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise BadInputError(f"overlap needs two lists or [n, k] matrices, got {a.shape}, {b.shape}")
    shared = shared_depth(a, b)[:, -1] if max(a.shape[1], b.shape[1]) else np.zeros(a.shape[0])
    den = np.maximum(_list_length(a), _list_length(b)).astype(float)
    out = np.divide(shared, den, out=np.full(den.shape, np.nan), where=den > 0)
    return float(out[0]) if single else out


# --------------------------------------------------------------------------------------------
# exposure


#: Exposure event types in order of preference: impressions when the data has them, else views.
EXPOSURE_EVENTS: tuple[str, ...] = ("impression", "view")


def exposure_event(event_types: Iterable[str]) -> str | None:
    """The event that measures exposure: ``impression`` if present, else ``view``, else None."""
    present = set(event_types)
    return next((e for e in EXPOSURE_EVENTS if e in present), None)


# --------------------------------------------------------------------------------------------
# item text


def _clean(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and np.isnan(value):
        return ""
    return " ".join(str(value).split())


def item_text(
    title: object,
    category: object = None,
    brand: object = None,
    description: object = None,
    *,
    with_description: bool = True,
) -> str:
    """The text that represents an item: ``title. category path. brand. description``.

    Empty parts are skipped, whitespace is collapsed; the category path keeps its ``>``
    separators (they read as a phrase to the encoder). The description goes last so the
    64-token cut trims it first.
    """
    parts = [_clean(title), _clean(category), _clean(brand)]
    if with_description:
        parts.append(_clean(description))
    return ". ".join(p for p in parts if p)


#: The feedback-loop simulator's per-round metrics, in display order (its ``rounds`` frame,
#: :class:`ltrec.simulation.SimulationResult`, also has ``policy`` and ``round``).
ROUND_METRICS: dict[str, str] = {
    "exposure_gini": "Gini of this round's recommendation counts over the whole catalogue",
    "exposure_gini_cum": "Gini of recommendation counts summed over all rounds so far",
    "tail_share": "share of this round's recommendation slots on tail items (tail fixed at "
    "the start)",
    "coverage": "share of the catalogue recommended to anyone this round",
    "coverage_cum": "share of the catalogue recommended to anyone so far",
    "arp": "mean starting popularity (distinct users) of the recommended items",
    "popularity_gini": "Gini of item popularity in the (growing) interaction data",
    "slots": "recommendation slots filled this round (active users x K)",
    "clicks": "views of recommended items this round",
    "carts": "recommended items added to cart this round",
    "purchases": "recommended items bought this round",
    "tail_purchases": "purchases of tail items this round",
    "revenue": "sum of the prices of items bought this round (NaN without prices)",
    "cum_clicks": "views so far",
    "cum_purchases": "purchases so far",
    "cum_tail_purchases": "tail purchases so far",
    "cum_revenue": "revenue so far",
}
