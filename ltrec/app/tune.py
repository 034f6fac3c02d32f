"""``ltrec tune``: find the re-ranking setting with the most tail for a bounded accuracy loss.

The test split is never used to choose. The run's *training* events are split again by time
(the same split rule, on training events only: :func:`validation_split`); the run's model
(same name, same parameters, same seed) is refitted on the earlier part ("fit") and every
setting of the search space is scored on the later part ("validation"):

* settings = {base order} ∪ SPACES[strategy] for each strategy, each crossed with every
  candidate mix of :data:`MIXES` (how many tail candidates the pool adds, and from where);
* the loss of a setting is the relative NDCG@K loss against the base order on validation,
  ``1 - ndcg / ndcg_base``; settings within ``max_loss`` qualify;
* the chosen setting has the best objective (default APLT@10) among the qualifying ones (ties:
  the higher NDCG, then the earlier in the grid); the best linear tail boost is chosen the same
  way among the plain tail boosts on the base candidates (the obvious knob, the floor of the
  issue's 1.5x goal). The best linear boost and the best few other families are then refined
  by bisection on their strength towards the bound (the same steps for each, so the floor is
  as well tuned as the choice).

Only then is the run's *saved* model opened on its own test split, and base, best linear and
chosen are re-ranked through the one pipeline and evaluated with bootstrap intervals, paired
(same users, same resamples) against the base and against the linear boost.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltrec.app.pipeline import RecSession
from ltrec.config import MAX_LOSS
from ltrec.errors import BadInputError
from ltrec.evaluation.aggregate import HIGHER_IS_BETTER, EvalResult, base_name, boot_counts, compare
from ltrec.evaluation.pareto import pareto_front
from ltrec.evaluation.split import Split, temporal_split
from ltrec.models.base import make_model
from ltrec.models.candidates import pool_tail_recall
from ltrec.models.data import InteractionData, load_catalogue
from ltrec.models.registry import check_evaluable, is_all_data, resolve_run, run_manifest
from ltrec.models.train import add_text, split_targets
from ltrec.progress import Progress, report
from ltrec.rerank.adapters import context_from_data
from ltrec.rerank.base import Context
from ltrec.rerank.pipeline import parse_config, to_dict
from ltrec.rerank.strategies import StrategyConfig
from ltrec.rerank.sweep import evaluation_scorer
from ltrec.store import connect

#: Coarse strengths: the best few families are then refined by bisection towards the loss
#: bound (:data:`REFINE_TOP`, :data:`REFINE_STEPS`), so the grid only has to bracket it.
_BETAS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
_LAMBDAS = (0.1, 0.3, 0.5, 0.7, 0.9)
_CAL_LAMBDAS = (0.5, 0.7, 0.9, 0.99)

#: Search space per strategy: a small grid of that strategy's fields (the pool size and the
#: candidate mix are added by the tuner). New strategies add their grid here.
SPACES: dict[str, list[dict[str, Any]]] = {
    "tail_boost": [{"beta": b, "signal": s} for s in ("tail", "log_popularity") for b in _BETAS],
    # the linear boost's set in the base order: same tail, less NDCG lost (a stronger beta fits)
    "tail_select": [{"beta": b, "signal": "tail"} for b in _BETAS],
    "xquad": [{"lambda": x, "personalised": p} for p in (True, False) for x in _LAMBDAS],
    # shrink 0 is xquad's personalised setting; 10 pulls short histories to the shop's share
    "xquad_personal": [{"lambda": x, "shrink": 10.0} for x in _LAMBDAS],
    "calibrated_popularity": [{"lambda": x, "groups": "paper"} for x in _CAL_LAMBDAS],
    "calibration": [{"lambda": x, "by": "bucket"} for x in _CAL_LAMBDAS],
    "fair": [{"p": p} for p in (0.1, 0.2, 0.3, 0.4, 0.6)],
    "mmr": [{"lambda": x, "by": "category"} for x in (0.1, 0.3, 0.5)],
}
#: Strategies searched when none are named: MMR diversifies but does not target the tail.
DEFAULT_EXCLUDED = ("mmr",)
#: The strategy that is "the obvious knob": the floor the chosen setting is compared with.
LINEAR = "tail_boost"
#: Candidate mixes: tail candidates added to the model's top ``pool`` and where they come from
#: (ltrec.models.candidates.candidate_pool).
MIXES: list[dict[str, Any]] = [
    {"tail_pool": 0},
    {"tail_pool": 50, "tail_source": "cooccurrence"},
    {"tail_pool": 50, "tail_source": "text"},
    {"tail_pool": 200, "tail_source": "both"},
]
#: Objectives a tuner may maximise (or minimise, by :data:`HIGHER_IS_BETTER`): tail and
#: exposure metrics of the evaluation core.
OBJECTIVES = (
    "aplt",
    "aclt",
    "tail_recall",
    "coverage",
    "tail_coverage",
    "novelty",
    "entropy",
    "gini",
    "arp",
)
#: Metrics reported for the test split (plus the objective).
TEST_METRICS = ("ndcg", "recall", "aplt", "tail_recall", "coverage", "tail_coverage", "novelty")
#: Strength refinement: bisection steps towards the loss bound, for the best linear boost and
#: for the best settings of this many other families (same strategy, fields and mix).
REFINE_STEPS = 5
REFINE_TOP = 3


# --------------------------------------------------------------------------- arguments


def parse_objective(objective: str) -> tuple[str, int]:
    """``"aplt@10"`` -> ``("aplt", 10)``; a bad name or K is a :class:`BadInputError`."""
    name, sep, k_text = str(objective).strip().partition("@")
    if name not in OBJECTIVES:
        raise BadInputError(
            f"unknown objective {objective!r}",
            hint=f"choose one of {', '.join(o + '@10' for o in OBJECTIVES)}",
        )
    try:
        k = int(k_text) if sep else 10
    except ValueError:
        k = 0
    if not 1 <= k <= 100:
        raise BadInputError(
            f"the objective's list length must be 1..100, got {k_text!r}",
            hint="write the objective as METRIC@K, e.g. aplt@10",
        )
    return name, k


def _strategies(strategies: Sequence[str] | str | None) -> list[str]:
    if strategies is None:
        return [s for s in SPACES if s not in DEFAULT_EXCLUDED]
    if isinstance(strategies, str):
        strategies = [s.strip() for s in strategies.split(",")]
    names = [s for s in (str(x).strip() for x in strategies) if s]
    if not names:
        raise BadInputError("no strategy to search", hint=f"choose from {', '.join(SPACES)}")
    bad = [s for s in names if s not in SPACES]
    if bad:
        raise BadInputError(
            f"unknown strateg{'y' if len(bad) == 1 else 'ies'} {', '.join(map(repr, bad))}",
            hint=f"choose from {', '.join(SPACES)}",
        )
    return list(dict.fromkeys(names))


def _mixes(mixes: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    if mixes is None:
        return [dict(m) for m in MIXES]
    out = [dict(m) for m in mixes]
    if not out:
        raise BadInputError("no candidate mix to search", hint='e.g. [{"tail_pool": 0}]')
    for m in out:
        bad = set(m) - {"tail_pool", "tail_source"}
        if bad:
            raise BadInputError(
                f"a candidate mix has only tail_pool and tail_source, not {', '.join(sorted(bad))}"
            )
        parse_config({"strategy": "none", **m})  # bounds checked now, not mid-search
    return out


def _check_loss(max_loss: float) -> float:
    try:
        value = float(max_loss)
    except (TypeError, ValueError):
        value = math.nan
    if not (0.0 <= value < 1.0):
        raise BadInputError(
            f"--max-loss must be a share between 0 and 1 (0.05 = 5% NDCG loss), got {max_loss!r}",
            hint="e.g. --max-loss 0.05",
        )
    return value


# --------------------------------------------------------------------------- the split


def validation_split(split: Split) -> Split:
    """The validation split inside a run's training period: the training events of ``split``,
    split again by the same rule (same targets, same seen-item rule; a fixed cut-off becomes
    the same *share* of the training events). The test events are not an input."""
    config = split.config
    if config.cutoff is not None:
        config = config.model_copy(update={"cutoff": None})
    try:
        return temporal_split(split.train, config)
    except BadInputError as err:
        raise BadInputError(
            f"the run's training period cannot be split into fit + validation: {err.message}",
            hint="train the run on more data (or a smaller test share) to tune it",
        ) from None


# --------------------------------------------------------------------------- pools and lists


def _mix_key(cfg: StrategyConfig, users: np.ndarray) -> tuple:
    """Settings with the same key share their candidate pools."""
    return (int(cfg.pool), int(cfg.tail_pool), str(cfg.tail_source), hash(users.tobytes()))


class _Lists:
    """Candidate pools and re-ranked lists of one session (a model, its data and context),
    through the one pipeline: pools once per candidate mix, then only the re-ranking."""

    def __init__(self, session: Any, k: int) -> None:
        self.session, self.k = session, k
        self._pools: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._recall: dict[tuple, float] = {}

    @property
    def data(self) -> Any:
        return self.session.data

    @property
    def context(self) -> Context:
        return self.session.context

    def pools(self, users: np.ndarray, cfg: StrategyConfig) -> tuple[np.ndarray, np.ndarray]:
        key = _mix_key(cfg, users)
        if key not in self._pools:
            self._pools[key] = self.session.with_config(cfg).pools(users)
        return self._pools[key]

    def lists(self, users: np.ndarray, cfg: StrategyConfig) -> np.ndarray:
        items, scores = self.pools(users, cfg)
        s = self.session.with_config(cfg)
        return s.rerank_pools(users, items, scores, self.k).items

    def pool_tail_recall(self, users: np.ndarray, test: Any, cfg: StrategyConfig) -> float:
        """Share of the users' tail test items that the setting's pool holds at all."""
        key = _mix_key(cfg, users)
        if key not in self._recall:
            self._recall[key] = float(
                pool_tail_recall(self.pools(users, cfg)[0], test, self.context.tail)
            )
        return self._recall[key]


# --------------------------------------------------------------------------- the result


@dataclass
class TuneResult:
    """What :func:`tune` found. ``to_dict()`` is the ``ltrec tune --json`` object.

    Attributes:
        setting / best_linear: the chosen setting and the best linear tail boost.
        table: every setting evaluated on validation (one row each: ``label``, ``setting``
            (JSON text), ``strategy``, ``value``, every metric, ``loss``, ``within_bound``,
            ``refined``, ``pareto``).
        validation / test: the JSON blocks (see the README's ``ltrec tune`` keys).
    """

    dataset: str
    run_id: str
    model: str
    k: int
    objective: str
    max_loss: float
    setting: StrategyConfig
    best_linear: StrategyConfig
    table: pd.DataFrame
    validation: dict[str, Any]
    test: dict[str, Any]
    searched: dict[str, Any]
    seconds: float = 0.0
    results: dict[str, EvalResult] = field(default_factory=dict, repr=False)

    @property
    def accuracy(self) -> str:
        return f"ndcg@{self.k}"

    def pareto(self) -> list[dict[str, Any]]:
        """Validation settings on the front of (NDCG, objective), best NDCG first."""
        t = self.table[self.table["pareto"]].sort_values(
            [self.accuracy, self.objective], ascending=[False, False], kind="stable"
        )
        return [_row_dict(r, self.accuracy, self.objective) for _, r in t.iterrows()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "run_id": self.run_id,
            "model": self.model,
            "k": self.k,
            "objective": self.objective,
            "accuracy": self.accuracy,
            "max_loss": self.max_loss,
            "setting": to_dict(self.setting),
            "label": setting_label(self.setting),
            "best_linear_setting": to_dict(self.best_linear),
            "searched": self.searched,
            "validation": self.validation,
            "test": self.test,
            "pareto": self.pareto(),
            "seconds": round(self.seconds, 2),
        }


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _row_dict(row: pd.Series, accuracy: str, objective: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "label": row["label"],
        "setting": json.loads(row["setting"]),
        accuracy: _num(row[accuracy]),
        objective: _num(row[objective]),
    }
    for name in ("aplt", "tail_recall", "coverage"):
        key = f"{name}@{accuracy.split('@')[1]}"
        out[key] = _num(row[key])
    out["loss"] = _num(row["loss"])
    out["within_bound"] = bool(row["within_bound"])
    return out


# --------------------------------------------------------------------------- the search


def _settings(strategies: Sequence[str], mixes: Sequence[Mapping[str, Any]], m: int):
    """(config, family key) for the plain base order (first: the loss reference), then the base
    order x the mixes with tail candidates and every strategy grid point x every mix, in order.

    The family groups the settings that differ only in the strategy's strength (for the
    refinement)."""
    plain = parse_config({"strategy": "none", "pool": m})
    out: list[tuple[StrategyConfig, tuple]] = [(plain, ("none", "plain"))]
    for mix in mixes:
        base = parse_config({"strategy": "none", "pool": m, **mix})
        if base != plain:
            out.append((base, ("none", repr(sorted(mix.items())))))
        for name in strategies:
            for params in SPACES[name]:
                cfg = parse_config({"strategy": name, "pool": m, **params, **mix})
                strength_key = type(cfg).STRENGTH
                rest = {
                    k: v
                    for k, v in to_dict(cfg).items()
                    if k not in (strength_key, _alias(cfg, strength_key))
                }
                out.append((cfg, (name, repr(sorted(rest.items())))))
    return out


def _alias(cfg: StrategyConfig, name: str | None) -> str | None:
    if not name:
        return None
    return type(cfg).model_fields[name].alias or name


class _Search:
    """Scores settings on the validation users and keeps one table row per setting."""

    def __init__(
        self,
        lists: _Lists,
        users: np.ndarray,
        test: list[np.ndarray],
        obj: str,
        base: StrategyConfig,
    ) -> None:
        self.lists, self.users, self.obj, self.test = lists, users, obj, test
        data, k = lists.data, lists.k
        self.accuracy = f"ndcg@{k}"
        self.scorer = evaluation_scorer(
            test,
            item_pop=data.item_pop,
            k=k,
            tail_mask=lists.context.tail,
            seen=data.matrix[users],
        )
        self.base_items = lists.lists(users, base)
        self.rows: list[dict[str, Any]] = []
        self._refined: set[tuple] = set()
        self.base_ndcg: float | None = None
        self.max_loss = 0.0

    def loss(self, ndcg: float) -> float:
        b = self.base_ndcg or 0.0
        return 0.0 if b <= 0 else 1.0 - ndcg / b

    def run(self, cfg: StrategyConfig, family: tuple, refined: bool = False) -> dict[str, Any]:
        items = self.lists.lists(self.users, cfg)
        metrics = dict(self.scorer(items, self.base_items))
        row = {
            "strategy": getattr(cfg, "strategy", "none"),
            "value": cfg.strength,
            "label": setting_label(cfg),
            "setting": cfg.model_dump_json(by_alias=True),
            "family": family,
            "refined": refined,
            **metrics,
            "pool_tail_recall": self.lists.pool_tail_recall(self.users, self.test, cfg),
        }
        row["_cfg"] = cfg
        self.rows.append(row)
        return row

    def ok(self, row: Mapping[str, Any]) -> bool:
        return within_bound(row[self.accuracy], self.base_ndcg or 0.0, self.max_loss)

    def better(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        return _key(a, self.obj, self.accuracy) > _key(b, self.obj, self.accuracy)

    def best(self, pick: Callable[[Mapping[str, Any]], bool]) -> dict[str, Any] | None:
        rows = [r for r in self.rows if pick(r)]
        i = choose(rows, self.obj, self.accuracy, self.base_ndcg or 0.0, self.max_loss)
        return None if i is None else rows[i]

    def top_families(self, n: int) -> list[dict[str, Any]]:
        """The best row within the bound of each of the ``n`` best families."""
        out: dict[tuple, dict[str, Any]] = {}
        for row in self.rows:
            if not self.ok(row):
                continue
            f = row["family"]
            if f not in out or self.better(row, out[f]):
                out[f] = row
        order = sorted(out.values(), key=lambda r: _key(r, self.obj, self.accuracy), reverse=True)
        return order[:n]

    def refine(self, row: dict[str, Any]) -> dict[str, Any]:
        """Bisection on the strength between ``row`` and the next stronger setting of its
        family that breaks the bound: the strongest setting within the bound on that bracket."""
        cfg: StrategyConfig = row["_cfg"]
        if not type(cfg).STRENGTH or row["family"] in self._refined:
            return row
        self._refined.add(row["family"])
        above = [
            r
            for r in self.rows
            if r["family"] == row["family"] and r["value"] > row["value"] and not self.ok(r)
        ]
        if not above:
            return row
        hi = min(r["value"] for r in above)
        lo, best = row["value"], row
        for _ in range(REFINE_STEPS):
            mid = round((lo + hi) / 2, 6)  # a short number to show and share
            if not lo < mid < hi:
                break
            r = self.run(cfg.with_strength(mid), row["family"], refined=True)
            if self.ok(r):
                lo = mid
                if self.better(r, best):
                    best = r
            else:
                hi = mid
        return best


def within_bound(accuracy: float, base: float, max_loss: float) -> bool:
    """``1 - accuracy / base <= max_loss`` (every setting qualifies when the base scores 0)."""
    if not base > 0:
        return True
    return bool(1.0 - accuracy / base <= max_loss + 1e-12)


def _key(row: Mapping[str, Any], objective: str, accuracy: str) -> tuple[float, float]:
    sign = 1.0 if HIGHER_IS_BETTER.get(objective.split("@")[0], True) else -1.0
    obj, acc = float(row[objective]), float(row[accuracy])
    return (
        sign * obj if math.isfinite(obj) else -math.inf,
        acc if math.isfinite(acc) else -math.inf,
    )


def choose(
    rows: Sequence[Mapping[str, Any]],
    objective: str,
    accuracy: str,
    base: float,
    max_loss: float,
) -> int | None:
    """Position of the row with the best ``objective`` among the rows whose ``accuracy`` is
    within ``max_loss`` of ``base``; ties go to the better accuracy, then the earlier row.
    None when no row qualifies."""
    best: int | None = None
    for i, row in enumerate(rows):
        if not within_bound(float(row[accuracy]), base, max_loss):
            continue
        if best is None or _key(row, objective, accuracy) > _key(rows[best], objective, accuracy):
            best = i
    return best


def setting_label(cfg: StrategyConfig) -> str:
    """The setting's label, naming its tail candidates when it adds any."""
    text = cfg.label()
    tail_pool = int(getattr(cfg, "tail_pool", 0) or 0)
    if tail_pool:
        text += f" + {tail_pool} tail candidates ({getattr(cfg, 'tail_source', 'both')})"
    return text


def _metrics_of(row: Mapping[str, Any] | None, names: Sequence[str]) -> dict[str, Any] | None:
    if row is None:
        return None
    return {n: _num(row[n]) for n in names if n in row}


# --------------------------------------------------------------------------- the test report


def paired_ratio(
    a: EvalResult, b: EvalResult, metric: str, n_boot: int, seed: int
) -> dict[str, Any]:
    """mean_a / mean_b of a per-user metric with a paired 95% bootstrap interval (both means on
    the same resampled users: the shared per-user part cancels)."""
    name = base_name(metric)
    both = pd.concat(
        [a.per_user[name].rename("a"), b.per_user[name].rename("b")], axis=1, join="inner"
    ).dropna()
    va, vb = both["a"].to_numpy(float), both["b"].to_numpy(float)
    ratio = float(va.mean() / vb.mean()) if len(both) and vb.mean() > 0 else None
    low = high = None
    if ratio is not None and n_boot > 0:
        samples = []
        for c in boot_counts(len(both), n_boot, seed):
            c = c.astype(float)
            den = c @ vb
            samples.append(np.where(den > 0, (c @ va) / np.where(den > 0, den, 1.0), np.nan))
        s = np.concatenate(samples)
        s = s[np.isfinite(s)]
        if s.size:
            low, high = (float(x) for x in np.quantile(s, [0.025, 0.975]))
    return {"metric": metric, "mean": ratio, "low": low, "high": high, "n": int(len(both))}


def _compact(result: EvalResult, names: Sequence[str]) -> dict[str, Any]:
    d = result.to_dict()
    return {n: d[n] for n in names if n in d}


def _paired(result: EvalResult, base: EvalResult, names: Sequence[str], n_boot: int, seed: int):
    frame = compare(result, base, metrics=list(names), n_boot=n_boot, seed=seed)
    return {
        r["metric"]: {
            "delta": _num(r["delta"]),
            "low": _num(r["low"]),
            "high": _num(r["high"]),
            "rel_delta": _num(r["rel_delta"]),
            "p_value": _num(r["p_value"]),
        }
        for r in frame.to_dict("records")
    }


# --------------------------------------------------------------------------- tune


def tuning_run(dataset: str, run_id: str | None, data_dir: Path | str | None = None) -> str:
    """The run to tune. None: the registry's run (production, else newest), or, for a
    production run fitted on all data, the run it was made from (``from_run``): the tuned
    setting is reported on a test split.

    Raises:
        NoTestSplitError: an all-data run named explicitly (or one without a source run).
        RegistryError: no such run, or none at all.
    """
    given = run_id is not None
    run_id = resolve_run(dataset, run_id, data_dir)
    manifest = run_manifest(dataset, run_id, data_dir)
    source = manifest.get("from_run")
    if not given and is_all_data(manifest) and isinstance(source, str):
        run_id = source
        manifest = run_manifest(dataset, run_id, data_dir)
    check_evaluable(dataset, run_id, manifest)  # before any data is loaded
    return run_id


def _open(dataset: str, run_id: str | None, data_dir: Path | str | None, text: bool) -> Any:
    """A session over the run to tune (:func:`tuning_run`) and the data it was trained on."""
    run_id = tuning_run(dataset, run_id, data_dir)
    session = RecSession.open(dataset, run_id, data_dir=data_dir)
    if session.data.split is None:
        raise BadInputError(
            f"run {session.run_id} has no test split to report the tuned setting on",
            hint=f"tune a run trained with a split (`ltrec runs {dataset}`)",
        )
    if text and session.data.item_text_emb is None:
        data = add_text(session.data, dataset, data_dir=data_dir)
        session = RecSession.from_parts(
            session.model, data, None, run=session.run, dataset=dataset, data_dir=data_dir
        )
    return session


def _targets(data: Any) -> tuple[np.ndarray, list[np.ndarray]]:
    return split_targets(data)


def _sample(
    users: np.ndarray, test: list[np.ndarray], n: int, seed: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    if users.size <= n:
        return users, test
    keep = np.sort(np.random.default_rng(seed).choice(users.size, n, replace=False))
    return users[keep], [test[i] for i in keep]


def tune(
    dataset: str,
    run_id: str,
    *,
    max_loss: float = MAX_LOSS,
    objective: str = "aplt@10",
    strategies: Sequence[str] | str | None = None,
    data_dir: Path | str | None = None,
    progress: Progress | None = None,
    max_users: int = 1000,
    n_boot: int = 500,
    pool: int = 200,
    mixes: Sequence[Mapping[str, Any]] | None = None,
) -> TuneResult:
    """Search re-ranking settings on a validation split of the run's training period and report
    the chosen one on the run's test split (see the module doc).

    Args:
        dataset: dataset name.
        run_id: a saved run (its model, parameters and split are reused).
        max_loss: largest relative NDCG@K loss against the base order allowed on validation.
        objective: the metric maximised within the bound, ``METRIC@K`` (:data:`OBJECTIVES`).
        strategies: strategy names to search (default: every :data:`SPACES` strategy but MMR).
        data_dir: the data directory.
        progress: ``progress(done, message)``.
        max_users: validation users scored (a seeded sample when there are more).
        n_boot: bootstrap resamples of the test report.
        pool: the model's candidates per user (M).
        mixes: candidate mixes to search (default :data:`MIXES`), each ``{"tail_pool": N,
            "tail_source": ...}``.

    Raises:
        BadInputError: a bad objective, loss bound or strategy name; a run without a test split;
            a training period too short to split.
        RegistryError / StaleRunError: the run cannot be opened (see ``ltrec evaluate``).
    """
    t0 = time.perf_counter()
    max_loss = _check_loss(max_loss)
    obj_name, k = parse_objective(objective)
    objective = f"{obj_name}@{k}"
    names = _strategies(strategies)
    if not 1 <= int(max_users) <= 1_000_000:
        raise BadInputError(f"max_users must be 1..1000000, got {max_users}")
    mixes = _mixes(mixes)
    text = any(m.get("tail_source") in ("text", "both") for m in mixes if m.get("tail_pool"))

    report(progress, 0.0, f"opening run {run_id or '(default)'}")
    session = _open(dataset, run_id, data_dir, text)
    run_id, data = session.run_id, session.data
    model_name = session.model.name
    params = session.model.config.model_dump(mode="json")
    seed = int(params.get("seed", 0) or 0)

    # ---- validation: the training period only -----------------------------------------

    val = validation_split(data.split)
    con = connect(dataset, Path(data_dir) if data_dir is not None else None)
    try:
        items_df, users_df = load_catalogue(con)
    finally:
        con.close()
    fit_data = InteractionData.from_split(
        val, items_df, users_df, repeat_domain=data.repeat_domain
    )
    if text or session.model.content_model:
        fit_data = add_text(fit_data, dataset, data_dir=data_dir)
    report(progress, 0.05, f"fitting {model_name} on {len(val.train):,} fit events")
    fit_model = make_model(model_name, params)
    fit_model.fit(fit_data, progress=lambda d, m: report(progress, 0.05 + 0.25 * d, m))
    fit_session = RecSession.from_parts(
        fit_model, fit_data, context_from_data(fit_data, items=items_df), dataset=dataset
    )
    v_users, v_test = _sample(*_targets(fit_data), int(max_users), seed)
    grid = _settings(names, mixes, pool)
    fit_lists = _Lists(fit_session, k)
    search = _Search(fit_lists, v_users, v_test, objective, grid[0][0])
    search.max_loss = max_loss

    report(progress, 0.3, f"searching {len(grid)} settings on {v_users.size:,} users")
    base_row = search.run(*grid[0])
    search.base_ndcg = float(base_row[search.accuracy])
    for i, (cfg, family) in enumerate(grid[1:], start=1):
        search.run(cfg, family)
        if i % 10 == 0:
            report(progress, 0.3 + 0.45 * i / len(grid), f"{i}/{len(grid)} settings")

    def is_linear(r: Mapping[str, Any]) -> bool:
        return r["strategy"] == LINEAR and int(getattr(r["_cfg"], "tail_pool", 0) or 0) == 0

    linear_grid = search.best(is_linear) if LINEAR in names else None
    report(progress, 0.75, "refining the strengths")
    linear_row = search.refine(linear_grid) if linear_grid is not None else None
    for row in search.top_families(REFINE_TOP):
        search.refine(row)
    chosen_row = search.best(lambda r: True) or base_row

    table = pd.DataFrame([{k_: v for k_, v in r.items() if k_ != "_cfg"} for r in search.rows])
    table["loss"] = [search.loss(x) for x in table[search.accuracy]]
    table["within_bound"] = [
        within_bound(x, search.base_ndcg, max_loss) for x in table[search.accuracy]
    ]
    table["pareto"] = pareto_front(
        table[[search.accuracy, objective]].to_numpy(float),
        (True, HIGHER_IS_BETTER.get(obj_name, True)),
    )
    table = table.drop(columns=["family"])

    chosen_cfg: StrategyConfig = chosen_row["_cfg"]
    linear_cfg: StrategyConfig = (
        linear_row["_cfg"]
        if linear_row is not None
        else parse_config({"strategy": LINEAR, "beta": 0.0, "pool": pool})
    )
    shown = sorted({search.accuracy, objective, *(f"{n}@{k}" for n in TEST_METRICS)})
    validation = {
        "cutoff": val.cutoff.isoformat(),
        "fit_events": int(len(val.train)),
        "users": int(v_users.size),
        "target_pairs": int(len(val.test)),
        "evaluated": int(len(table)),
        "within_bound": int(table["within_bound"].sum()),
        "base": _metrics_of(base_row, [*shown, "pool_tail_recall"]),
        "best_linear": _metrics_of(linear_row, [*shown, "pool_tail_recall"]),
        "chosen": _metrics_of(chosen_row, [*shown, "pool_tail_recall"]),
        "loss": {
            "best_linear": None
            if linear_row is None
            else _num(search.loss(linear_row[search.accuracy])),
            "chosen": _num(search.loss(chosen_row[search.accuracy])),
        },
    }

    # ---- the test split: the saved model, chosen setting only --------------------------
    report(progress, 0.8, "evaluating on the test split")
    base_cfg = grid[0][0]
    results = {
        key: session.with_config(cfg).evaluate(k, n_boot, seed=seed)
        for key, cfg in (("base", base_cfg), ("best_linear", linear_cfg), ("chosen", chosen_cfg))
    }
    t_users, t_test = _targets(data)
    test_lists = _Lists(session, k)
    pool_recall = {
        key: _num(test_lists.pool_tail_recall(t_users, t_test, cfg))
        for key, cfg in (("base", base_cfg), ("best_linear", linear_cfg), ("chosen", chosen_cfg))
    }
    names_test = [n for n in shown if n in results["base"].metrics]
    per_user = [n for n in names_test if n.split("@")[0] in results["base"].per_user.columns]
    b_ndcg = results["base"].metrics[search.accuracy].mean
    test = {
        "users": int(t_users.size),
        "pool_tail_recall": pool_recall,
        "base": _compact(results["base"], names_test),
        "best_linear": _compact(results["best_linear"], names_test),
        "chosen": _compact(results["chosen"], names_test),
        "loss": {
            key: (_num(1 - results[key].metrics[search.accuracy].mean / b_ndcg) if b_ndcg else 0.0)
            for key in ("best_linear", "chosen")
        },
        "paired": {
            "chosen_vs_base": _paired(results["chosen"], results["base"], per_user, n_boot, seed),
            "best_linear_vs_base": _paired(
                results["best_linear"], results["base"], per_user, n_boot, seed
            ),
            "chosen_vs_best_linear": _paired(
                results["chosen"], results["best_linear"], per_user, n_boot, seed
            ),
        },
        # chosen / best linear, paired: APLT (the 1.5x goal) and the objective
        "ratio": {
            m: paired_ratio(results["chosen"], results["best_linear"], m, n_boot, seed)
            for m in dict.fromkeys((f"aplt@{k}", objective))
            if m.split("@")[0] in results["base"].per_user.columns
        },
    }
    searched = {
        "strategies": names,
        "mixes": [dict(m) for m in mixes],
        "pool": pool,
        "settings": int(len(table)),
    }
    report(progress, 1.0, f"chosen: {setting_label(chosen_cfg)}")
    return TuneResult(
        dataset=dataset,
        run_id=run_id,
        model=model_name,
        k=k,
        objective=objective,
        max_loss=max_loss,
        setting=chosen_cfg,
        best_linear=linear_cfg,
        table=table,
        validation=validation,
        test=test,
        searched=searched,
        seconds=time.perf_counter() - t0,
        results=results,
    )


__all__ = [
    "DEFAULT_EXCLUDED",
    "MIXES",
    "OBJECTIVES",
    "SPACES",
    "TuneResult",
    "choose",
    "paired_ratio",
    "parse_objective",
    "setting_label",
    "tuning_run",
    "tune",
    "validation_split",
]
