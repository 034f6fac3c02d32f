"""The analysis of a live A/B experiment (issue 22 §3): what each arm of ``ltrec serve`` did.

Compute, then render: :func:`experiment_result` returns a typed :class:`ExperimentResult`
(JSON via ``to_json``); the Experiments page (:mod:`ltrec.ui.experiments`) and ``ltrec
experiment`` only show it.

Data. The server writes one ``impression`` row per served item into the dataset's
``live_events`` table (``source='recommendation'``, with ``experiment``, ``arm``, ``position``,
``request_id``); events posted back (``source='api'``) are **attributed** to a served list by
:func:`attributed_sql`, the one place that rule lives: an event of user u on item i counts for
the latest impression of i to u in the same experiment with ``ts_imp <= ts_event <= ts_imp +
window`` (default 24 h). Events with no such impression are not the recommender's doing and are
left out.

Metrics per arm, over the users the arm exposed (users with at least one impression):

* ``ctr``: clicked impressions / impressions (an impression is clicked when a view of its item
  is attributed to its list);
* ``conversion``: users with an attributed purchase / users;
* ``revenue_per_user``: sum of quantity x price of attributed purchases / users (quantity 1
  when missing; purchases without a price add nothing, and with no priced purchase at all the
  metric is not measured);
* ``tail_exposure_share``: impressions of tail items / impressions;
* ``tail_purchase_share``: attributed purchases of tail items / attributed purchases;
* ``exposure_gini``: Gini of impressions over the whole catalogue, zero-exposure items included.

Tail = the store's popularity buckets (:func:`ltrec.analytics.popularity.popularity_buckets`,
default cuts): the last bucket. A metric whose events are absent (no view, purchase or price
posted in the experiment) is left out, never shown as zero; ``missing`` says why in one
sentence.

Intervals: 95% percentile bootstrap over users (Efron & Tibshirani 1993, ch. 13), seeded, each
arm resampled on its own (:func:`ltrec.evaluation.aggregate.boot_counts`): ratio metrics are
``C @ numerator / C @ denominator`` so they stay ratios of sums, and the share metrics resample
two pseudo-users with each arm (one success, one failure: Agresti & Caffo 2000) so that a share
with no success yet still has a spread (:data:`_PSEUDO`); the Gini is recomputed on
``C @ per-user exposure`` with the bias-shifted interval the offline evaluation uses
(:func:`~ltrec.evaluation.aggregate.bc_interval`). The difference to control (absolute and
relative, on the log of the ratio) is ``estimate +- z * sd`` of the difference of independent
resamples (:func:`_spread`) at a Bonferroni level over every (arm, metric) compared
(:func:`diff_level`: 99.2% for two arms and six metrics), so that an A/A experiment shows no
difference at all in 95% of repeats; it is "detected" when its relative interval excludes
zero. No verdict below 30 users per arm (:data:`MIN_USERS`). "Not enough data" otherwise uses
the normal approximation:
``n_needed = n * ((z + z_0.8) * se / (0.1 * control))^2`` with ``z`` the quantile of that
level and ``se`` the bootstrap standard error of the difference (power 0.8, a 10% relative
effect).

Sample-ratio mismatch: a chi-square goodness-of-fit test of exposed users per arm against the
configured split (Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch in Online Controlled
Experiments"); it warns below p = 0.001, the threshold they recommend for a check run on every
experiment.
"""

# SQL here uses this module's fixed column names; values are bound parameters.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from ltrec.app.live_experiments import experiments, load_experiment
from ltrec.definitions import Metric, gini, metric, signed_pct
from ltrec.errors import BadInputError
from ltrec.evaluation.aggregate import MetricValue, bc_interval, boot_counts
from ltrec.store.connect import connect
from ltrec.store.connect import data_dir as resolve

#: Attribution window by default, hours.
WINDOW_HOURS = 24.0
#: Longest attribution window, hours (a year).
MAX_WINDOW_HOURS = 24.0 * 366
#: Bootstrap resamples by default.
N_BOOT = 1000
#: Family-wise error rate of the verdict: all differences of an experiment together.
ALPHA = 0.05
#: SRM warning threshold (Fabijan et al. 2019).
SRM_ALPHA = 0.001
#: The effect "not enough data yet" sizes the experiment for (relative to control).
MDE = 0.10
#: Fewer exposed users than this in an arm: no verdict (a bootstrap of a handful of users
#: understates the spread).
MIN_USERS = 30
#: The primary metric: the verdict's power sentence and the A/A check use it.
PRIMARY = "tail_purchase_share"
TABLE = "live_events"

#: The metric records of an experiment (ltrec.definitions: the tail shares and the Gini are
#: computed here over the experiment's impressions and attributed purchases).
METRICS: dict[str, Metric] = {
    k: metric(k)
    for k in (
        "ctr",
        "conversion",
        "revenue_per_user",
        "tail_exposure_share",
        "tail_purchase_share",
        "exposure_gini",
    )
}
#: Short names in verdict sentences.
SHORT = {
    "ctr": "click-through",
    "conversion": "conversion",
    "revenue_per_user": "revenue per user",
    "tail_exposure_share": "tail exposure",
    "tail_purchase_share": "tail purchases",
    "exposure_gini": "exposure Gini",
}
#: The order a verdict names metrics in: outcomes first, then exposure.
VERDICT_ORDER = (
    "tail_purchase_share",
    "revenue_per_user",
    "conversion",
    "ctr",
    "tail_exposure_share",
    "exposure_gini",
)
#: Metrics that are shares in [0, 1].
SHARES = ("ctr", "conversion", "tail_exposure_share", "tail_purchase_share", "exposure_gini")
#: The per-user sums every metric is built from.
_SUMS = (
    "users",
    "impressions",
    "tail_impressions",
    "clicks",
    "purchases",
    "tail_purchases",
    "converted",
    "revenue",
)


class ExperimentLike(Protocol):
    """What the analysis reads of :class:`ltrec.app.live_experiments.Experiment` (read-only)."""

    @property
    def id(self) -> str: ...

    @property
    def dataset(self) -> str: ...

    @property
    def arms(self) -> Mapping[str, dict]: ...

    @property
    def split(self) -> tuple[float, ...]: ...

    @property
    def started_at(self) -> str: ...

    @property
    def stopped_at(self) -> str | None: ...


def diff_level(comparisons: int, alpha: float = ALPHA) -> float:
    """The level of each difference's interval: Bonferroni over every (arm, metric) comparison,
    so that an A/A experiment shows no difference at all in at least 1 - alpha of repeats."""
    return 1.0 - alpha / max(1, comparisons)


def method_text(n_boot: int, seed: int, level: float = 1 - ALPHA) -> str:
    return (
        f"95% percentile bootstrap over users ({n_boot:,} resamples, seed {seed}; each arm "
        "resampled on its own; shares with one pseudo-user success and one failure per arm, "
        "after Agresti & Caffo; the Gini with the bias-shifted interval); differences to the "
        f"control have {level:.1%} intervals, estimate +- z x bootstrap standard deviation "
        "(relative ones on the log scale; Bonferroni over every arm and metric compared, "
        "so that identical arms show no difference at all in 95% of experiments) and a "
        "difference is detected when its interval excludes zero"
    )


# ----------------------------------------------------------------------------- attribution


def attributed_sql(window_hours: float = WINDOW_HOURS) -> str:
    """The one attribution rule, as SQL over ``live_events`` with ``$exp`` bound.

    One row per attributed posted event (``source='api'``): its ``seq, user_id, item_id,
    event_type, ts, quantity, price`` with the ``arm, request_id, position, served_ts`` of the
    latest impression of the same user and item in the same experiment such that
    ``served_ts <= ts <= served_ts + window``. Ties (two lists at the same instant) go to the
    smaller request id, so the result is deterministic.
    """
    window_us = int(round(float(window_hours) * 3600e6))
    return f"""
        WITH imp AS (
            SELECT user_id, item_id, arm, request_id, position, ts
            FROM {TABLE}
            WHERE experiment = $exp AND event_type = 'impression'
              AND source = 'recommendation'
        ), posted AS (
            SELECT seq, user_id, item_id, event_type, ts, quantity, price
            FROM {TABLE}
            WHERE experiment = $exp AND source = 'api' AND event_type <> 'impression'
        )
        SELECT p.seq, p.user_id, p.item_id, p.event_type, p.ts, p.quantity, p.price,
               i.arm, i.request_id, i.position, i.ts AS served_ts
        FROM posted p JOIN imp i
          ON p.user_id = i.user_id AND p.item_id = i.item_id
         AND i.ts <= p.ts AND p.ts <= i.ts + to_microseconds({window_us})
        QUALIFY row_number() OVER (
            PARTITION BY p.seq ORDER BY i.ts DESC, i.request_id) = 1
    """


def attribute(
    con: duckdb.DuckDBPyConnection, exp_id: str, window_hours: float = WINDOW_HOURS
) -> pd.DataFrame:
    """:func:`attributed_sql` run on ``con`` (empty when the table has no experiment data)."""
    cols = [
        "seq",
        "user_id",
        "item_id",
        "event_type",
        "ts",
        "quantity",
        "price",
        "arm",
        "request_id",
        "position",
        "served_ts",
    ]
    if not _has_log(con):
        return pd.DataFrame(columns=cols)
    return con.execute(attributed_sql(window_hours), {"exp": exp_id}).df()


def _has_log(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``live_events`` exists with the experiment columns (written by a server that
    ran an experiment)."""
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND table_name = ?",
        [TABLE],
    ).fetchall()
    have = {r[0] for r in rows}
    return {"experiment", "arm", "position", "request_id", "seq"} <= have


# ----------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class Difference:
    """Arm minus control: absolute ``delta`` and relative ``rel`` (arm / control - 1), each
    with its 95% interval; ``detected`` when the relative interval (the absolute one when the
    control is 0) excludes zero."""

    delta: float
    low: float | None
    high: float | None
    rel: float | None
    rel_low: float | None
    rel_high: float | None
    detected: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: _num(getattr(self, k)) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class ArmResult:
    """One arm: its policy, exposed users, impressions, metrics, difference to control and
    the verdict sentence."""

    arm: str
    policy: dict
    share: float  # configured
    users: int
    impressions: int
    metrics: dict[str, MetricValue]
    vs_control: dict[str, Difference] = field(default_factory=dict)
    verdict: str = ""
    users_needed: int | None = None  # more users per arm for a 10% effect on PRIMARY

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "policy": self.policy,
            "share": self.share,
            "users": self.users,
            "impressions": self.impressions,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "vs_control": {k: v.to_dict() for k, v in self.vs_control.items()},
            "verdict": self.verdict,
            "users_needed": self.users_needed,
        }


@dataclass(frozen=True)
class SampleRatio:
    """Chi-square test of exposed users per arm against the configured split."""

    observed: dict[str, int]
    expected: dict[str, float]  # configured shares
    chi2: float | None
    p_value: float | None
    warning: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "observed": self.observed,
            "expected": self.expected,
            "chi2": _num(self.chi2),
            "p_value": _num(self.p_value),
            "warning": self.warning,
        }


@dataclass(frozen=True)
class ExperimentResult:
    """Everything the Experiments view and ``ltrec experiment --json`` show."""

    experiment: str
    dataset: str
    control: str
    started_at: str
    stopped_at: str | None
    window_hours: float
    method: str
    shown: tuple[str, ...]  # metric keys the data supports, display order
    arms: list[ArmResult]
    srm: SampleRatio
    missing: str | None  # one sentence: what the data lacks
    n_boot: int
    seed: int
    difference_level: float = 1 - ALPHA  # level of each difference's interval (Bonferroni)

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    def arm(self, name: str) -> ArmResult:
        for a in self.arms:
            if a.arm == name:
                return a
        raise BadInputError(f"no arm {name!r}; arms: {', '.join(a.arm for a in self.arms)}")

    def table(self) -> pd.DataFrame:
        """One row per arm and metric: ``arm, metric, name, value, low, high, delta, delta_low,
        delta_high, rel, rel_low, rel_high, detected``."""
        rows = []
        for a in self.arms:
            for key in self.shown:
                v = a.metrics[key]
                d = a.vs_control.get(key)
                rows.append(
                    {
                        "arm": a.arm,
                        "metric": key,
                        "name": METRICS[key].name,
                        "value": v.mean,
                        "low": v.low,
                        "high": v.high,
                        "delta": None if d is None else d.delta,
                        "delta_low": None if d is None else d.low,
                        "delta_high": None if d is None else d.high,
                        "rel": None if d is None else d.rel,
                        "rel_low": None if d is None else d.rel_low,
                        "rel_high": None if d is None else d.rel_high,
                        "detected": None if d is None else d.detected,
                    }
                )
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """The result as text: verdicts, warnings, then one line per metric and arm."""
        state = "running" if self.running else f"stopped {self.stopped_at}"
        lines = [
            f"experiment {self.experiment} on '{self.dataset}' (started {self.started_at}, "
            f"{state}; attribution window {self.window_hours:g} h)",
            *[a.verdict for a in self.arms],
        ]
        if self.srm.warning:
            lines.append("WARNING: " + self.srm.warning)
        if self.missing:
            lines.append(self.missing)
        width = max(len(METRICS[k].name) for k in self.shown) if self.shown else 0
        lines.append("")

        def row(label: str, cells: list[str]) -> str:
            return (f"{label:<{width}}  " + "  ".join(f"{c:<26}" for c in cells)).rstrip()

        lines.append(row("", [a.arm for a in self.arms]))
        lines.append(row("users", [f"{a.users:,}" for a in self.arms]))
        for key in self.shown:
            m = METRICS[key]
            cells = []
            for a in self.arms:
                v = a.metrics[key]
                cell = m.format(v.mean)
                if v.low is not None:
                    cell += f" [{m.format(v.low)}, {m.format(v.high)}]"
                cells.append(cell)
            lines.append(row(m.name, cells))
        lines.append(f"intervals: {self.method}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "dataset": self.dataset,
            "control": self.control,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "running": self.running,
            "window_hours": self.window_hours,
            "method": self.method,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "metrics": list(self.shown),
            "arms": [a.to_dict() for a in self.arms],
            "srm": self.srm.to_dict(),
            "missing": self.missing,
            "difference_level": self.difference_level,
        }


def _num(x: Any) -> Any:
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, float | np.floating):
        return float(x) if np.isfinite(x) else None
    return x


# ----------------------------------------------------------------------------- per-user data


@dataclass(frozen=True)
class _ArmData:
    users: np.ndarray  # user ids
    sums: np.ndarray  # [n_users, len(_SUMS)]
    exposure: sp.csr_matrix  # [n_users, n_items] impressions


def _arm_data(
    con: duckdb.DuckDBPyConnection,
    exp_id: str,
    window_hours: float,
    tail: set[str],
    items: list[str],
) -> tuple[dict[str, _ArmData], dict[str, Any]]:
    """Per arm: per-user sums and the exposure matrix; plus what the log holds (``present``)."""
    present: dict[str, Any] = {"view": 0, "purchase": 0, "priced": 0}
    if not _has_log(con):
        return {}, present
    imp = con.execute(
        f"""SELECT arm, user_id, item_id, count(*) AS n FROM {TABLE}
            WHERE experiment = $exp AND event_type = 'impression' AND source = 'recommendation'
            GROUP BY ALL""",
        {"exp": exp_id},
    ).df()
    for etype, n, priced in con.execute(
        f"""SELECT event_type, count(*), count(price) FILTER (event_type = 'purchase')
            FROM {TABLE} WHERE experiment = $exp AND source = 'api' GROUP BY 1""",
        {"exp": exp_id},
    ).fetchall():
        present[etype] = int(n)
        present["priced"] += int(priced)
    att = attribute(con, exp_id, window_hours)
    # catalogue order for the exposure matrix; items served but not in the catalogue still count
    extra = sorted(set(imp["item_id"]) - set(items))
    col_of = {it: j for j, it in enumerate([*items, *extra])}
    n_items = len(col_of)
    out: dict[str, _ArmData] = {}
    for arm, g in imp.groupby("arm", sort=False):
        users = np.array(sorted(g["user_id"].unique()), dtype=object)
        row_of = {u: k for k, u in enumerate(users)}
        rows = g["user_id"].map(row_of).to_numpy()
        cols = g["item_id"].map(col_of).to_numpy()
        n = g["n"].to_numpy(dtype=float)
        exposure = sp.csr_matrix((n, (rows, cols)), shape=(len(users), n_items))
        sums = np.zeros((len(users), len(_SUMS)))
        sums[:, 0] = 1.0
        is_tail = g["item_id"].isin(tail).to_numpy()
        sums[:, 1] = np.bincount(rows, weights=n, minlength=len(users))
        sums[:, 2] = np.bincount(rows, weights=n * is_tail, minlength=len(users))
        a = att[att["arm"] == arm]
        if len(a):
            arow = a["user_id"].map(row_of).to_numpy()
            views = a[a["event_type"] == "view"].drop_duplicates(["request_id", "item_id"])
            sums[:, 3] = np.bincount(views["user_id"].map(row_of).to_numpy(), minlength=len(users))
            buy = (a["event_type"] == "purchase").to_numpy()
            btail = buy & a["item_id"].isin(tail).to_numpy()
            sums[:, 4] = np.bincount(arow, weights=buy, minlength=len(users))
            sums[:, 5] = np.bincount(arow, weights=btail, minlength=len(users))
            sums[:, 6] = sums[:, 4] > 0
            qty = pd.to_numeric(a["quantity"], errors="coerce").fillna(1).to_numpy(dtype=float)
            price = pd.to_numeric(a["price"], errors="coerce").fillna(0).to_numpy(dtype=float)
            sums[:, 7] = np.bincount(arow, weights=buy * qty * price, minlength=len(users))
        out[str(arm)] = _ArmData(users, sums, exposure)
    return out, present


def _shown(present: dict[str, Any]) -> tuple[tuple[str, ...], str | None]:
    """Metric keys the log supports and the sentence that says what it lacks."""
    lacks: list[str] = []
    drop: set[str] = set()
    if not present["view"]:
        drop.add("ctr")
        lacks.append("no view was posted back, so click-through is not measured")
    if not present["purchase"]:
        drop |= {"conversion", "revenue_per_user", "tail_purchase_share"}
        lacks.append(
            "no purchase was posted back, so conversion, revenue per user and the tail share "
            "of purchases are not measured"
        )
    elif not present["priced"]:
        drop.add("revenue_per_user")
        lacks.append("no posted purchase carries a price, so revenue per user is not measured")
    shown = tuple(k for k in METRICS if k not in drop)
    if not lacks:
        return shown, None
    return shown, "In this experiment " + "; ".join(lacks) + "."


# ----------------------------------------------------------------------------- bootstrap


def _values(s: np.ndarray, e: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics from summed columns ``s [B, len(_SUMS)]`` and item exposure ``e [B, n_items]``."""
    col = {k: s[:, j] for j, k in enumerate(_SUMS)}

    def ratio(a: str, b: str) -> np.ndarray:
        out = np.full(len(s), np.nan)
        np.divide(col[a], col[b], out=out, where=col[b] > 0)
        return out

    return {
        "ctr": ratio("clicks", "impressions"),
        "conversion": ratio("converted", "users"),
        "revenue_per_user": ratio("revenue", "users"),
        "tail_exposure_share": ratio("tail_impressions", "impressions"),
        "tail_purchase_share": ratio("tail_purchases", "purchases"),
        "exposure_gini": np.atleast_1d(gini(e)) if e.shape[1] else np.full(len(s), np.nan),
    }


#: Two pseudo-users resampled with each arm's users for the share metrics' intervals: one
#: "success" and one "failure" of every share (Agresti & Caffo 2000, "Simple and effective
#: confidence intervals for proportions and differences of proportions result from adding two
#: successes and two failures"). Without them an arm with no tail purchase yet has no spread
#: at all (every resample is 0) and a handful in the other arm looks like a sure difference;
#: with them the A/A false-positive rate holds at 5% (benchmarks/bench_ab.py). Point
#: estimates stay the plain ratios; revenue and the Gini use the real users only.
_PSEUDO = np.array(
    [
        # users, impressions, tail_impressions, clicks, purchases, tail_purchases, converted,
        # revenue
        [1, 1, 1, 1, 1, 1, 1, 0],
        [1, 1, 0, 0, 1, 0, 0, 0],
    ],
    dtype=float,
)
#: Metrics whose resamples come from the real users only.
_UNADJUSTED = ("revenue_per_user", "exposure_gini")


def _samples(d: _ArmData, n_boot: int, seed: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Point estimates and ``n_boot`` resampled values of every metric for one arm."""
    n = len(d.users)
    point = {
        k: float(v[0])
        for k, v in _values(d.sums.sum(axis=0)[None, :], np.asarray(d.exposure.sum(axis=0))).items()
    }
    if n == 0 or n_boot <= 0:
        return point, {}
    parts: list[dict[str, np.ndarray]] = []
    xt = d.exposure.T.tocsr()
    m = len(_PSEUDO)
    for c in boot_counts(n + m, n_boot, seed, chunk=32):
        c = c.astype(float)
        real = c[:, :n] @ d.sums
        e = np.asarray(xt @ c[:, :n].T).T
        plain = _values(real, e)
        shares = _values(real + c[:, n:] @ _PSEUDO, e[:, :0])
        parts.append({k: plain[k] if k in _UNADJUSTED else shares[k] for k in plain})
    return point, {k: np.concatenate([p[k] for p in parts]) for k in point}


def _interval(key: str, est: float, samples: np.ndarray | None) -> tuple[float | None, ...]:
    if samples is None or not np.isfinite(est):
        return None, None
    s = samples[np.isfinite(samples)]
    if s.size == 0:
        return None, None
    if key == "exposure_gini":  # biased under resampling, as offline (aggregate._Catalogue)
        lo, hi = bc_interval(s, est)
    else:
        lo, hi = (float(x) for x in np.quantile(s, [0.025, 0.975]))
    # A percentile interval can miss its own estimate when nearly every resample falls on one
    # side (one user holds all of a ratio's denominator); it is widened to include it.
    lo, hi = min(lo, est), max(hi, est)
    if key in SHARES:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    elif key == "revenue_per_user":
        lo = max(lo, 0.0)
    return lo, hi


def _spread(samples: np.ndarray, est: float, level: float) -> tuple[float, float]:
    """``level`` interval of a difference: ``est +- z * sd`` with the bootstrap standard
    deviation. The Bonferroni levels (99.2% and beyond) sit in tails that 1,000 resamples
    hold a handful of: percentiles there came out too narrow (an A/A showed a difference in
    conversion 4 times in 100 at 99.2%); the standard deviation uses every resample."""
    z = float(stats.norm.ppf(1 - (1 - level) / 2))
    sd = float(np.std(samples, ddof=1)) if samples.size > 1 else 0.0
    return est - z * sd, est + z * sd


def _rel_spread(sa: np.ndarray, sc: np.ndarray, rel: float, level: float) -> tuple[float, float]:
    """``level`` interval of ``arm / control - 1``: on the log of the ratio when every resample
    is positive (a ratio's spread is multiplicative), else as :func:`_spread`."""
    if rel > -1 and (sa > 0).all() and (sc > 0).all():
        lo, hi = _spread(np.log(sa / sc), float(np.log1p(rel)), level)
        return float(np.expm1(lo)), float(np.expm1(hi))
    return _spread(sa / sc - 1.0, rel, level)


def _difference(
    key: str,
    est_a: float,
    est_c: float,
    sa: np.ndarray | None,
    sc: np.ndarray | None,
    level: float = 1 - ALPHA,
) -> Difference:
    delta = est_a - est_c
    rel = est_a / est_c - 1.0 if est_c not in (0.0,) and np.isfinite(est_c) else None
    low = high = rlo = rhi = None
    detected = False
    if not (np.isfinite(est_a) and np.isfinite(est_c)):  # an arm without the metric's events
        return Difference(delta, None, None, None, None, None, False)
    if sa is not None and sc is not None:
        ok = np.isfinite(sa) & np.isfinite(sc)
        if ok.any():
            d = sa[ok] - sc[ok]
            low, high = _spread(d, delta, level)
            good = ok & (sc != 0)
            if rel is not None and good.any():
                rlo, rhi = _rel_spread(sa[good], sc[good], rel, level)
                detected = rlo > 0 or rhi < 0
            else:
                detected = low > 0 or high < 0
    return Difference(delta, low, high, rel, rlo, rhi, bool(detected))


def users_needed(
    n: int, diff: Difference, control: float, mde: float = MDE, level: float = 1 - ALPHA
) -> int | None:
    """More users per arm (beyond ``n``) to detect a ``mde`` relative effect on a metric whose
    difference has the ``level`` interval of ``diff`` at ``n`` users per arm (two-sided at
    that level, power 0.8, normal approximation with the bootstrap standard error). None: not
    computable."""
    if diff.low is None or diff.high is None or n <= 0 or not np.isfinite(control):
        return None
    if control == 0:
        return None
    z_level = stats.norm.ppf(1 - (1 - level) / 2)
    se = (diff.high - diff.low) / (2 * z_level)
    if se <= 0:
        return 0
    z = z_level + stats.norm.ppf(0.8)
    need = n * (z * se / (mde * abs(control))) ** 2
    return max(0, int(np.ceil(need - n)))


# ----------------------------------------------------------------------------- verdict


def _delta_text(key: str, d: Difference) -> str:
    if key in SHARES:  # a share's absolute change, in percentage points
        # called for a detected difference, which has its interval
        return f"{d.delta * 100:+.1f} pp [{d.low * 100:+.1f}, {d.high * 100:+.1f}]"  # type: ignore[operator]  # see above
    return f"{d.delta:+.3g} [{d.low:+.3g}, {d.high:+.3g}]"


def verdict(arm: ArmResult, control: str, shown: Sequence[str], min_users: int) -> str:
    """The plain sentence for one arm (the control gets a description of itself);
    ``min_users``: exposed users of the smaller of this arm and the control."""
    if arm.users == 0:
        return f"{arm.arm}: no user has been served yet."
    if arm.arm == control:
        return f"{arm.arm}: the control ({arm.users:,} users, {arm.impressions:,} impressions)."
    if min_users < MIN_USERS:
        return (
            f"{arm.arm}: not enough data yet: the smaller arm has {min_users:,} users; at "
            f"least {MIN_USERS} per arm are needed before the intervals can be trusted."
        )
    found, none = [], []
    for key in (k for k in VERDICT_ORDER if k in shown):
        d = arm.vs_control.get(key)
        if d is None:
            continue
        short = SHORT[key]
        if d.detected and d.rel is not None:
            rel = [signed_pct(x, 0) for x in (d.rel, d.rel_low, d.rel_high)]
            found.append(f"{short} {rel[0]} [{rel[1]}, {rel[2]}]")
        elif d.detected:
            found.append(f"{short} {_delta_text(key, d)}")
        else:
            none.append(short)
    parts = list(found)
    if none:
        listed = none[0] if len(none) == 1 else f"{', '.join(none[:-1])} and {none[-1]}"
        parts.append(f"{listed} no detectable difference")
    text = f"{arm.arm}: " + ", ".join(parts) if parts else f"{arm.arm}: nothing to compare yet"
    if arm.users_needed:
        text += (
            f"; not enough data yet: about {arm.users_needed:,} more users per arm for a "
            f"{MDE:.0%} effect on the {METRICS[PRIMARY].name.lower()}"
        )
    return text + "."


# ----------------------------------------------------------------------------- analysis


def sample_ratio(observed: dict[str, int], split: dict[str, float]) -> SampleRatio:
    """Chi-square goodness of fit of users per arm against the configured shares."""
    obs = np.array([observed.get(a, 0) for a in split], dtype=float)
    shares = np.array(list(split.values()), dtype=float)
    total = obs.sum()
    if total == 0 or len(obs) < 2:
        return SampleRatio(dict(observed), dict(split), None, None, None)
    res = stats.chisquare(obs, total * shares / shares.sum())
    chi2, p = float(res.statistic), float(res.pvalue)
    warning = None
    if p < SRM_ALPHA:
        seen = ", ".join(f"{a} {o / total:.1%}" for a, o in zip(split, obs, strict=True))
        want = ", ".join(f"{a} {s:.0%}" for a, s in split.items())
        warning = (
            f"Sample-ratio mismatch: users split {seen}, configured {want} (chi-square "
            f"p = {p:.1e}). Something assigns or logs users unevenly; do not trust the "
            "differences until it is found."
        )
    return SampleRatio(dict(observed), dict(split), chi2, p, warning)


def analyse(
    con: duckdb.DuckDBPyConnection,
    exp: ExperimentLike,
    *,
    tail: set[str],
    items: Sequence[str],
    window_hours: float = WINDOW_HOURS,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> ExperimentResult:
    """Analyse experiment ``exp`` from the ``live_events`` table on ``con``.

    Args:
        con: a connection whose current catalog holds ``live_events``.
        exp: the experiment (arms in order, the first is the control; split).
        tail: tail item ids. items: the catalogue (for the Gini's zero-exposure items).
        window_hours: attribution window. n_boot: bootstrap resamples. seed: bootstrap seed.
    """
    if not 0 < window_hours <= MAX_WINDOW_HOURS:
        raise BadInputError(
            f"the attribution window must be between 0 and {MAX_WINDOW_HOURS:g} hours, got "
            f"{window_hours:g}",
            hint="pass --window-hours 24 (the default) or another positive number of hours",
        )
    arms = list(exp.arms)
    control = arms[0]
    data, present = _arm_data(con, exp.id, window_hours, tail, list(items))
    shown, missing = _shown(present)
    point: dict[str, dict[str, float]] = {}
    samples: dict[str, dict[str, np.ndarray]] = {}
    empty = _ArmData(
        np.array([], dtype=object),
        np.zeros((0, len(_SUMS))),
        sp.csr_matrix((0, max(1, len(items)))),
    )
    for i, arm in enumerate(arms):
        # independent, reproducible resamples per arm
        point[arm], samples[arm] = _samples(data.get(arm, empty), n_boot, seed + 7919 * i)
    level = diff_level(len(shown) * (len(arms) - 1))
    results: list[ArmResult] = []
    for arm, share in zip(arms, exp.split, strict=True):
        d = data.get(arm, empty)
        metrics = {}
        for key in shown:
            est = point[arm][key]
            lo, hi = _interval(key, est, samples[arm].get(key))
            metrics[key] = MetricValue(est, lo, hi, len(d.users))
        diffs = {}
        need = None
        if arm != control and len(d.users) and len(data.get(control, empty).users):
            for key in shown:
                diffs[key] = _difference(
                    key,
                    point[arm][key],
                    point[control][key],
                    samples[arm].get(key),
                    samples[control].get(key),
                    level,
                )
            p = diffs.get(PRIMARY)
            n = min(len(d.users), len(data[control].users))
            if p is not None and not p.detected and n >= MIN_USERS:
                need = users_needed(n, p, point[control][PRIMARY], level=level)
        res = ArmResult(
            arm,
            dict(exp.arms[arm]),
            float(share),
            len(d.users),
            int(d.sums[:, 1].sum()),
            metrics,
            diffs,
            "",
            need,
        )
        n_min = min(len(d.users), len(data.get(control, empty).users))
        results.append(replace(res, verdict=verdict(res, control, shown, n_min)))
    srm = sample_ratio(
        {a.arm: a.users for a in results}, dict(zip(arms, map(float, exp.split), strict=True))
    )
    if not any(a.users for a in results):
        missing = "No user has been served in this experiment yet." + (
            "" if missing is None else " " + missing
        )
    return ExperimentResult(
        exp.id,
        exp.dataset,
        control,
        exp.started_at,
        exp.stopped_at,
        float(window_hours),
        method_text(n_boot, seed, level),
        shown,
        results,
        srm,
        missing,
        n_boot,
        seed,
        level,
    )


def tail_and_catalogue(name: str, data_dir: Path | str | None = None) -> tuple[set[str], list[str]]:
    """The store's tail items (last popularity bucket, default cuts) and its catalogue."""
    # lazy: ltrec.analytics loads ibis, which listing experiments (ltrec experiment) never needs
    from ltrec.analytics.backend import open_store
    from ltrec.analytics.popularity import popularity_buckets  # lazy: as the line above (ibis)

    b = popularity_buckets(open_store(name, data_dir))
    last = b.frame["bucket_idx"].max()
    tail = set(b.frame.loc[b.frame["bucket_idx"] == last, "item_id"])
    return tail, b.frame["item_id"].tolist()


def experiment_result(
    name: str,
    exp_id: str | None = None,
    *,
    window_hours: float = WINDOW_HOURS,
    data_dir: Path | str | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> ExperimentResult:
    """The analysis of experiment ``exp_id`` (default: the running one, else the newest) of
    dataset ``name``. Raises ``DatasetNotFoundError`` / ``BadInputError`` for unknown names."""
    con = connect(name, data_dir)  # DatasetNotFoundError first, naming the datasets
    try:
        exp = load_experiment(resolve(data_dir), name, exp_id)
        tail, items = tail_and_catalogue(name, data_dir)
        return analyse(
            con, exp, tail=tail, items=items, window_hours=window_hours, n_boot=n_boot, seed=seed
        )
    finally:
        con.close()


def list_experiments(name: str, data_dir: Path | str | None = None) -> list[Any]:
    """The dataset's experiments, newest first (none when it was never served with arms)."""
    return list(reversed(experiments(resolve(data_dir), name)))
