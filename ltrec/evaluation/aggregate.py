"""From recommendation lists to typed results: means with bootstrap intervals, paired tests and
per-segment breakdowns (DESIGN §6).

Intervals are percentile bootstrap intervals over users (Efron & Tibshirani 1993, ch. 13):
users are resampled with replacement ``n_boot`` times (seeded), expressed as a count matrix
``C [B, n_users]`` so that every resampled mean is one matrix product, ``C @ values / C @ valid``
(vectorised, chunked to bound memory). Catalogue-level metrics (Gini, entropy, PopREO, PopRSP)
are recomputed from ``C @ per-user exposure``, with bias-shifted percentile intervals
(:func:`bc_interval`), because resampling users biases them. Coverage gets no interval: a
resample repeats about a third of the users, so the number of distinct items shown is biased
low and a percentile interval would not cover the estimate; its ``low``/``high`` are ``None``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltrec.config import get_settings
from ltrec.definitions import METRICS, gini, list_overlap, popularity_buckets
from ltrec.errors import BadInputError
from ltrec.evaluation import metrics as M

if TYPE_CHECKING:
    from ltrec.evaluation.metrics import AnySparse

#: Per-user metric names in display order (optional ones appear when their input is given).
PER_USER: tuple[str, ...] = (
    *M.ACCURACY,
    "tail_recall",
    "aplt",
    "aclt",
    "arp",
    "pop_rank",
    "novelty",
    "ild_embedding",
    "ild_category",
    "overlap",
    "rbo",
)
#: Catalogue-level metric names.
CATALOGUE: tuple[str, ...] = (
    "coverage",
    "tail_coverage",
    "gini",
    "gini_position",
    "entropy",
    "pop_reo",
    "pop_rsp",
)
#: Metrics for which a larger value is better (for deltas and Pareto fronts), from their records.
HIGHER_IS_BETTER: dict[str, bool] = {
    k: METRICS[k].direction == "higher" for k in (*PER_USER, *CATALOGUE)
}


def base_name(metric: str) -> str:
    """``"ndcg@10"`` -> ``"ndcg"``."""
    return metric.split("@", 1)[0]


@dataclass(frozen=True)
class MetricValue:
    """A metric's point estimate with its 95% bootstrap interval and the number of users."""

    mean: float
    low: float | None
    high: float | None
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        def f(x: float | None) -> float | None:
            return None if x is None or not np.isfinite(x) else float(x)

        return {"mean": f(self.mean), "low": f(self.low), "high": f(self.high), "n": int(self.n)}


# --------------------------------------------------------------------------------------------
# bootstrap


def boot_counts(n: int, n_boot: int, seed: int, chunk: int = 64) -> Iterator[np.ndarray]:
    """Resample counts ``C [b, n]`` (float32), chunk by chunk; ``n_boot`` rows in all.

    Row j counts how often each of the n users is drawn in bootstrap sample j. Seeded, so the
    same (n, n_boot, seed) always gives the same samples, and two settings evaluated on the same
    users are resampled identically (paired).
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, min(chunk, max(1, 4_000_000 // max(n, 1))))
    for s in range(0, n_boot, chunk):
        b = min(chunk, n_boot - s)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float32)


def boot_means(
    values: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Means of each column of ``values [n, m]`` (NaN skipped) with percentile intervals.

    Returns:
        ``(mean [m], low [m], high [m], n_valid [m])``; low/high are NaN when n_boot is 0 or a
        column has no valid value.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    valid = ~np.isnan(values)
    filled = np.where(valid, values, 0.0)
    n_valid = valid.sum(axis=0)
    valid_f = valid.astype(float)  # float @ float goes to BLAS; float @ bool does not
    mean = M._per_user(filled.sum(axis=0), n_valid)
    m = values.shape[1]
    if n_boot <= 0 or values.shape[0] == 0:
        nan = np.full(m, np.nan)
        return mean, nan, nan.copy(), n_valid
    samples = np.empty((n_boot, m))
    s = 0
    for c in boot_counts(values.shape[0], n_boot, seed):
        c64 = c.astype(float)
        samples[s : s + len(c)] = M._per_user(c64 @ filled, c64 @ valid_f)
        s += len(c)
    alpha = (1.0 - level) / 2.0
    with warnings.catch_warnings():  # a column with no valid value: NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(samples, [alpha, 1 - alpha], axis=0)
    low = np.where(n_valid > 0, low, np.nan)
    high = np.where(n_valid > 0, high, np.nan)
    return mean, low, high, n_valid


@dataclass(frozen=True)
class _Catalogue:
    """What catalogue-level metrics need, per user, so any user weighting can be evaluated."""

    exp_count: sp.csr_matrix  # [n_users, n_items]
    exp_pos: sp.csr_matrix
    tail: np.ndarray  # [n_items] bool
    rsp: tuple[np.ndarray, ...]  # head num, head den, tail num, tail den (per user)
    reo: tuple[np.ndarray, ...]

    @property
    def n_users(self) -> int:
        return self.exp_count.shape[0]

    def subset(self, rows: np.ndarray) -> _Catalogue:
        return _Catalogue(
            self.exp_count[rows],
            self.exp_pos[rows],
            self.tail,
            tuple(p[rows] for p in self.rsp),
            tuple(p[rows] for p in self.reo),
        )

    def values(self, w: np.ndarray) -> dict[str, np.ndarray]:
        """Catalogue metrics under user weights ``w [B, n_users]`` (1 = each user once)."""
        w = np.asarray(w, dtype=float)
        e = np.asarray(self.exp_count.T @ w.T).T  # [B, n_items]
        ep = np.asarray(self.exp_pos.T @ w.T).T
        rsp = [w @ p for p in self.rsp]
        reo = [w @ p for p in self.reo]
        return {
            "coverage": np.atleast_1d(M.coverage(e)),
            "tail_coverage": np.atleast_1d(M.coverage(e, self.tail)),
            "gini": np.atleast_1d(gini(e)),
            "gini_position": np.atleast_1d(gini(ep)),
            "entropy": np.atleast_1d(M.entropy(e)),
            "pop_rsp": M.std_over_mean(M._per_user(rsp[0], rsp[1]), M._per_user(rsp[2], rsp[3])),
            "pop_reo": M.std_over_mean(M._per_user(reo[0], reo[1]), M._per_user(reo[2], reo[3])),
        }

    def estimate(
        self, n_boot: int, seed: int, level: float = 0.95
    ) -> dict[str, tuple[float, float | None, float | None]]:
        point = {k: float(v[0]) for k, v in self.values(np.ones((1, self.n_users))).items()}
        if n_boot <= 0 or self.n_users == 0:
            return {k: (v, None, None) for k, v in point.items()}
        chunks = [self.values(c) for c in boot_counts(self.n_users, n_boot, seed, chunk=32)]
        out: dict[str, tuple[float, float | None, float | None]] = {}
        for name, v in point.items():
            if name in ("coverage", "tail_coverage"):
                out[name] = (v, None, None)
                continue
            samples = np.concatenate([c[name] for c in chunks])
            samples = samples[np.isfinite(samples)]
            if samples.size == 0 or not np.isfinite(v):
                out[name] = (v, None, None)
            else:
                lo, hi = bc_interval(samples, v, level)
                # The shift can cross a bound: every catalogue metric is >= 0, all but
                # entropy <= 1.
                hi = hi if name == "entropy" else min(hi, 1.0)
                out[name] = (v, max(lo, 0.0), hi)
        return out


def bc_interval(samples: np.ndarray, estimate: float, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval shifted by the bootstrap estimate of bias.

    Statistics such as the Gini of exposure are biased under resampling (a resample repeats
    users, which concentrates exposure), so the plain percentile interval can lie entirely
    above the estimate. With bias b = mean(samples) - estimate (Efron & Tibshirani 1993, §10.2),
    the interval is [q_{alpha/2} - b, q_{1-alpha/2} - b]: the bootstrap spread, centred where
    the bias-free distribution would be. (Efron's BC interval fails here: when every sample
    exceeds the estimate its z0 is infinite.)
    """
    alpha = (1.0 - level) / 2.0
    bias = float(np.mean(samples)) - estimate
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return float(lo - bias), float(hi - bias)


# --------------------------------------------------------------------------------------------
# the result


@dataclass(frozen=True)
class EvalResult:
    """Metrics of one setting at one K.

    Attributes:
        k: the list length evaluated.
        metrics: ``"ndcg@10"`` -> :class:`MetricValue`, in display order.
        per_user: one row per user (index ``user_id``), one column per per-user metric (plain
            names: ``ndcg``, ``aplt``, ...), plus ``n_test`` and ``list_len``.
        segments: long table of per-segment breakdowns (see :func:`segment_breakdown`) or None.
        label: a name for charts ("EASE + tail boost 0.3").
    """

    k: int
    metrics: dict[str, MetricValue]
    per_user: pd.DataFrame
    segments: pd.DataFrame | None = None
    label: str = ""
    _catalogue: _Catalogue | None = field(default=None, repr=False, compare=False)

    def __getitem__(self, name: str) -> MetricValue:
        if "@" not in name:
            name = f"{name}@{self.k}"
        return self.metrics[name]

    def to_dict(self) -> dict[str, dict[str, float | int | None]]:
        """``{"ndcg@10": {"mean": .., "low": .., "high": .., "n": ..}, ...}`` (JSON-ready)."""
        return {name: v.to_dict() for name, v in self.metrics.items()}

    def table(self) -> pd.DataFrame:
        """One row per metric: ``metric, mean, low, high, n``."""
        rows = [{"metric": k, **v.to_dict()} for k, v in self.metrics.items()]
        return pd.DataFrame(rows, columns=["metric", "mean", "low", "high", "n"])


def _bool_items(mask, n_items: int, what: str) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (n_items,):
        raise BadInputError(f"{what} must have one value per item ({n_items}), got {mask.shape}")
    return mask


def evaluate(
    recs: np.ndarray,
    test,
    *,
    item_pop: np.ndarray,
    k: int,
    tail_mask: np.ndarray | None = None,
    item_category: Sequence | np.ndarray | None = None,
    item_embedding: np.ndarray | None = None,
    base_recs: np.ndarray | None = None,
    user_ids: Sequence | None = None,
    segments: pd.DataFrame | None = None,
    seen: AnySparse | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    rbo_p: float = 0.9,
    small_cell_k: int | None = None,
    label: str = "",
) -> EvalResult:
    """Evaluate top-K lists against test items over the full catalogue.

    Args:
        recs: ``int [n_users, >= k]`` item indices, best first, ``-1`` padding.
        test: CSR ``[n_users, n_items]`` or a list of item-index arrays, one per user.
        item_pop: training popularity per item (length = catalogue size).
        k: list length evaluated (columns beyond k are ignored).
        tail_mask: tail items; default: the last bucket of :func:`popularity_buckets` with
            ``get_settings().bucket_cuts``.
        item_category: a category per item, for category ILD.
        item_embedding: ``[n_items, d]``, for embedding ILD.
        base_recs: the base model's lists, for overlap and RBO.
        user_ids: one id per row (index of ``per_user``); default 0..n-1.
        segments: a frame with ``user_id`` and segment columns: adds a per-segment breakdown.
        seen: CSR ``[n_users, n_items]`` of training items (the PopRSP denominator excludes them).
        n_boot: bootstrap resamples (0: no intervals).
        seed: bootstrap seed.
        rbo_p: RBO persistence.
        small_cell_k: segment cells with fewer users are suppressed (default from settings).
        label: a name for charts.
    """
    item_pop = np.asarray(item_pop, dtype=float)
    n_items = item_pop.size
    if n_items == 0:
        raise BadInputError("the catalogue is empty", hint="evaluate with at least one item")
    r = M.clean_recs(recs, k, n_items)
    n_users = r.shape[0]
    if n_boot < 0:
        raise BadInputError("n_boot must be >= 0")
    if user_ids is None:
        index = pd.RangeIndex(n_users, name="user_id")
    else:
        if len(user_ids) != n_users:
            raise BadInputError(f"{len(user_ids)} user ids for {n_users} recommendation lists")
        index = pd.Index(list(user_ids), name="user_id")
    truth = M.as_truth(test, n_users, n_items)
    if seen is not None:
        seen = sp.csr_matrix(seen, dtype=bool)
        if seen.shape != (n_users, n_items):
            raise BadInputError(f"seen has shape {seen.shape}, expected {(n_users, n_items)}")
    if tail_mask is None:
        cuts = get_settings().bucket_cuts
        tail = popularity_buckets(item_pop, cuts) == len(cuts)
    else:
        tail = _bool_items(tail_mask, n_items, "tail_mask")
    n_rel = np.diff(truth.indptr)
    hits = M.hit_matrix(r, truth)

    cols: dict[str, np.ndarray] = M.accuracy_metrics(hits, n_rel, k)
    cols["tail_recall"] = M.tail_recall(hits, r, truth, tail)
    cols["aplt"] = M.aplt(r, tail)
    cols["aclt"] = M.aclt(r, tail)
    cols["arp"] = M.arp(r, item_pop)
    cols["pop_rank"] = M.pop_rank(r, item_pop)
    cols["novelty"] = M.novelty(r, item_pop)
    if item_embedding is not None:
        emb = np.asarray(item_embedding)
        if emb.ndim != 2 or emb.shape[0] != n_items:
            raise BadInputError(f"item_embedding must be [{n_items}, d], got {emb.shape}")
        cols["ild_embedding"] = M.ild_embedding(r, emb)
    if item_category is not None:
        if len(item_category) != n_items:
            raise BadInputError(f"item_category must have {n_items} values")
        cols["ild_category"] = M.ild_category(r, np.asarray(item_category, dtype=object))
    if base_recs is not None:
        b = M.clean_recs(base_recs, k, n_items)
        if b.shape[0] != n_users:
            raise BadInputError(f"base_recs has {b.shape[0]} lists, recs has {n_users}")
        cols["overlap"] = list_overlap(r, b)
        cols["rbo"] = M.rbo(r, b, rbo_p)

    per_user = pd.DataFrame(cols, index=index)
    per_user["n_test"] = n_rel
    per_user["list_len"] = M.list_length(r)

    cat = _Catalogue(
        M.exposure_matrix(r, n_items, "count"),
        M.exposure_matrix(r, n_items, "position"),
        tail,
        M.rsp_parts(r, tail, seen),
        M.reo_parts(hits, r, truth, tail),
    )
    metrics = _summarise(per_user, cat, k, n_boot, seed)
    seg = None
    if segments is not None:
        seg = segment_breakdown(
            per_user,
            segments,
            k=k,
            small_cell_k=small_cell_k,
            n_boot=n_boot,
            seed=seed,
            catalogue=cat,
        )
    return EvalResult(k, metrics, per_user, seg, label, cat)


def _summarise(
    per_user: pd.DataFrame, cat: _Catalogue | None, k: int, n_boot: int, seed: int
) -> dict[str, MetricValue]:
    names = [c for c in PER_USER if c in per_user.columns]
    mean, low, high, n = boot_means(per_user[names].to_numpy(dtype=float), n_boot, seed)
    out: dict[str, MetricValue] = {}
    for j, name in enumerate(names):
        lo = None if np.isnan(low[j]) else float(low[j])
        hi = None if np.isnan(high[j]) else float(high[j])
        out[f"{name}@{k}"] = MetricValue(float(mean[j]), lo, hi, int(n[j]))
    if cat is not None:
        n_lists = int((per_user["list_len"] > 0).sum())
        for name, (v, lo, hi) in cat.estimate(n_boot, seed).items():
            out[f"{name}@{k}"] = MetricValue(v, lo, hi, n_lists)
    return out


# --------------------------------------------------------------------------------------------
# segments


def segment_breakdown(
    per_user: pd.DataFrame,
    segments: pd.DataFrame,
    *,
    k: int,
    columns: Sequence[str] | None = None,
    small_cell_k: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    catalogue: _Catalogue | None = None,
) -> pd.DataFrame:
    """Every metric per segment value, with small cells suppressed (DESIGN §3).

    Args:
        per_user: ``EvalResult.per_user`` (index ``user_id``).
        segments: ``user_id`` plus one column per segment dimension (region, tier, ...).
        columns: dimensions to break down by (default: every column but ``user_id``).
        small_cell_k: cells with fewer users are suppressed: ``suppressed`` True and every
            number (including the user count) blank. Default ``get_settings().small_cell_k``.

    Returns:
        Long table: ``dimension, segment, n_users, suppressed, metric, mean, low, high, n``.
        Users missing from ``segments`` fall in the segment "(unknown)".
    """
    small = get_settings().small_cell_k if small_cell_k is None else small_cell_k
    seg = segments.set_index("user_id") if "user_id" in segments.columns else segments.copy()
    try:
        seg.index = seg.index.astype(per_user.index.dtype)
    except (TypeError, ValueError) as exc:
        raise BadInputError(
            f"segment user ids ({seg.index.dtype}) do not match the evaluated users "
            f"({per_user.index.dtype})",
            hint="pass user_ids to evaluate() and the same ids in the segments' user_id column",
        ) from exc
    dims = list(columns) if columns is not None else [c for c in seg.columns]
    missing = [d for d in dims if d not in seg.columns]
    if missing:
        raise BadInputError(f"segment column(s) {missing} not found; have {list(seg.columns)}")
    seg = seg[~seg.index.duplicated(keep="first")]
    rows: list[dict] = []
    for dim in dims:
        values = seg[dim].reindex(per_user.index).astype(object)
        values = values.where(values.notna(), "(unknown)").astype(str)
        for value, idx in values.groupby(values, sort=True).indices.items():
            n_users = len(idx)
            base = {"dimension": dim, "segment": value}
            if n_users < small:
                rows.append({**base, "n_users": None, "suppressed": True, "metric": None})
                continue
            sub = per_user.iloc[idx]
            sub_cat = catalogue.subset(np.asarray(idx)) if catalogue is not None else None
            for name, mv in _summarise(sub, sub_cat, k, n_boot, seed).items():
                rows.append(
                    {**base, "n_users": n_users, "suppressed": False, "metric": name} | mv.to_dict()
                )
    cols = ["dimension", "segment", "n_users", "suppressed", "metric", "mean", "low", "high", "n"]
    out = pd.DataFrame(rows, columns=cols)
    out["n_users"] = out["n_users"].astype("Int64")
    out["n"] = out["n"].astype("Int64")
    return out


# --------------------------------------------------------------------------------------------
# paired comparison


@dataclass(frozen=True)
class PairedTest:
    """Setting B minus setting A on the users both evaluated (a paired comparison)."""

    metric: str
    n: int
    mean_a: float
    mean_b: float
    delta: float
    low: float | None
    high: float | None
    statistic: float
    p_value: float
    method: str = "Wilcoxon signed-rank (two-sided, zero differences dropped)"

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def paired_test(
    a: EvalResult | pd.Series,
    b: EvalResult | pd.Series,
    metric: str,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> PairedTest:
    """Wilcoxon signed-rank test of per-user values of B against A (Wilcoxon 1945), with a
    paired bootstrap 95% interval of the mean difference.

    Users are matched by id; users missing a value in either setting (e.g. no test items) are
    dropped. With no non-zero difference the p-value is 1.
    """
    # lazy: scipy.stats doubles `import ltrec.evaluation` (+1.4 s CPU); only this test needs it
    from scipy.stats import wilcoxon

    name = base_name(metric)
    sa = a.per_user[name] if isinstance(a, EvalResult) else a
    sb = b.per_user[name] if isinstance(b, EvalResult) else b
    joined = pd.concat([sa.rename("a"), sb.rename("b")], axis=1, join="inner").dropna()
    n = len(joined)
    if n == 0:
        raise BadInputError(f"no users have {name} in both settings; nothing to compare")
    d = (joined["b"] - joined["a"]).to_numpy()
    mean, low, high, _ = boot_means(d, n_boot, seed)
    if np.any(d != 0):
        res = wilcoxon(d, zero_method="wilcox", alternative="two-sided")
        stat, p = float(res.statistic), float(res.pvalue)
    else:
        stat, p = 0.0, 1.0
    return PairedTest(
        metric,
        n,
        float(joined["a"].mean()),
        float(joined["b"].mean()),
        float(mean[0]),
        None if np.isnan(low[0]) else float(low[0]),
        None if np.isnan(high[0]) else float(high[0]),
        stat,
        p,
    )


def compare(
    result: EvalResult,
    base: EvalResult,
    *,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Deltas of ``result`` against ``base`` with paired intervals, for tables and charts.

    Per-user metrics: paired bootstrap interval of the mean difference and a Wilcoxon p-value.
    Catalogue metrics: when both results cover the same users, both are recomputed on the same
    bootstrap resamples and the interval is that of the difference; otherwise no interval.

    Returns:
        ``metric, base, value, delta, low, high, rel_delta, p_value, higher_is_better``.
    """
    names = (
        list(metrics) if metrics is not None else [m for m in result.metrics if m in base.metrics]
    )
    cat_boot = None
    same_users = result.per_user.index.equals(base.per_user.index)
    if same_users and result._catalogue is not None and base._catalogue is not None and n_boot:
        cat_boot = _paired_catalogue(result._catalogue, base._catalogue, n_boot, seed)
    rows = []
    for m in names:
        name = base_name(m)
        if m not in result.metrics or m not in base.metrics:
            raise BadInputError(f"metric {m} is missing from one of the results")
        v, b0 = result.metrics[m].mean, base.metrics[m].mean
        low = high = p = None
        delta = v - b0
        if name in result.per_user.columns and name in base.per_user.columns:
            try:
                t = paired_test(base, result, m, n_boot=n_boot, seed=seed)
                low, high, p = t.low, t.high, t.p_value
            except BadInputError:  # no user has the metric in both (e.g. no tail test items)
                pass
        elif cat_boot is not None and name in cat_boot:
            low, high = cat_boot[name]
        rel = delta / b0 if b0 not in (0, None) and np.isfinite(b0) else None
        rows.append(
            {
                "metric": m,
                "base": b0,
                "value": v,
                "delta": delta,
                "low": low,
                "high": high,
                "rel_delta": rel,
                "p_value": p,
                "higher_is_better": HIGHER_IS_BETTER.get(name, True),
            }
        )
    return pd.DataFrame(rows)


def compare_many(
    results: Mapping[str, EvalResult],
    base: str,
    *,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`compare` of every setting against ``results[base]``, stacked with a ``setting``
    column first (the base itself is left out)."""
    if base not in results:
        raise BadInputError(f"base setting {base!r} not among {list(results)}")
    frames = [
        compare(r, results[base], metrics=metrics, n_boot=n_boot, seed=seed).assign(setting=name)
        for name, r in results.items()
        if name != base
    ]
    cols = ["setting", "metric", "base", "value", "delta", "low", "high", "rel_delta"]
    cols += ["p_value", "higher_is_better"]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols]


def _paired_catalogue(
    a: _Catalogue, b: _Catalogue, n_boot: int, seed: int
) -> dict[str, tuple[float | None, float | None]]:
    diffs: dict[str, list[np.ndarray]] = {}
    for c in boot_counts(a.n_users, n_boot, seed, chunk=32):
        va, vb = a.values(c), b.values(c)
        for name in va:
            diffs.setdefault(name, []).append(va[name] - vb[name])
    out: dict[str, tuple[float | None, float | None]] = {}
    for name, parts in diffs.items():
        if name in ("coverage", "tail_coverage"):
            continue
        d = np.concatenate(parts)
        d = d[np.isfinite(d)]
        if d.size:
            lo, hi = np.quantile(d, [0.025, 0.975])
            out[name] = (float(lo), float(hi))
    return out
