"""Trade-off sweeps over a strategy's strength, their Pareto front, and two solvers.

The base model scores each sampled user once (:class:`Pools`, the top M candidates); every
point of a sweep only reruns the re-ranking, which costs well under a millisecond per user
(see ``benchmarks/bench_rerank.py``), then the metrics.

* :func:`sweep`: one row per strength with the evaluation core's metrics (NDCG, Recall, APLT,
  coverage, exposure Gini, tail recall, ...) and whether the row is on the Pareto front of
  (accuracy, tail share).
* :func:`grid`: the same table for any list of settings (several strategies side by side).
* :func:`min_strength_for_tail_share`: "the smallest strength that reaches a 30% tail share",
  by bisection over the strength (the tail share does not fall as the strength grows for the
  tail-targeting strategies; the conformance suite checks it), with a clear answer when the
  target is out of reach.
* :func:`best_above_floor`: "the best NDCG with at least a 25% tail share" among a sweep's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from ltrec.errors import BadInputError, ConfigError
from ltrec.evaluation.aggregate import evaluate
from ltrec.evaluation.pareto import pareto_front
from ltrec.rerank.base import Context, RankedBatch, rerank_batch
from ltrec.rerank.pipeline import Pipeline, parse_config, to_json
from ltrec.rerank.strategies import StrategyConfig

#: ``scorer(recs [n, k], base_recs [n, k]) -> {metric: mean}``.
Scorer = Callable[[np.ndarray, np.ndarray], Mapping[str, float]]


@dataclass(frozen=True)
class Pools:
    """Candidate pools of a user sample, computed once by the base model.

    Attributes:
        users: [n] user indices (into the model's and the context's users).
        items: [n, M] candidate item indices (-1 padding).
        scores: [n, M] base scores (-inf padding).
    """

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray

    @classmethod
    def from_model(cls, model: Any, users: Sequence[int] | np.ndarray, m: int = 200) -> Pools:
        """Pools from any recommender with ``recommend(users, k)``."""
        users = np.asarray(users, dtype=np.int64)
        items, scores = model.recommend(users, int(m))
        return cls(users, np.atleast_2d(items), np.atleast_2d(scores).astype(float))

    def __len__(self) -> int:
        return int(self.users.size)

    def sample(self, n: int, seed: int = 0) -> Pools:
        """A seeded random sample of ``n`` users (all of them when there are fewer)."""
        if n >= len(self):
            return self
        rows = np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False))
        return Pools(self.users[rows], self.items[rows], self.scores[rows])

    def rerank(self, config: StrategyConfig | Pipeline, context: Context, k: int) -> RankedBatch:
        pipe = config if isinstance(config, Pipeline) else Pipeline(config)
        m = pipe.config.pool
        return rerank_batch(
            pipe, self.items[:, :m], self.scores[:, :m], context, self.users.tolist(), k
        )


def evaluation_scorer(
    test: Any,
    *,
    item_pop: np.ndarray,
    k: int,
    tail_mask: np.ndarray | None = None,
    **kwargs: Any,
) -> Scorer:
    """A scorer over the evaluation core's :func:`~ltrec.evaluation.aggregate.evaluate`.

    ``test`` holds the sampled users' test items in the order of :attr:`Pools.users`; extra
    keyword arguments go to ``evaluate`` (no bootstrap by default: a sweep needs the means).
    """
    kwargs.setdefault("n_boot", 0)

    def score(recs: np.ndarray, base: np.ndarray) -> dict[str, float]:
        res = evaluate(
            recs, test, item_pop=item_pop, k=k, tail_mask=tail_mask, base_recs=base, **kwargs
        )
        return {name: v.mean for name, v in res.metrics.items()}

    return score


def _pareto(points: np.ndarray) -> np.ndarray:
    return pareto_front(points, (True, True))


@dataclass(frozen=True)
class SweepResult:
    """A sweep's trade-off table.

    Attributes:
        strategy: the strategy swept; parameter: its strength parameter (as in the JSON form).
        accuracy, tail: the two metric columns of the Pareto front (e.g. ``ndcg@10``,
            ``aplt@10``).
        table: one row per strength: ``value``, ``label``, ``setting`` (JSON), every metric,
            ``tail_share`` (mean share of tail items per list) and ``pareto``.
    """

    strategy: str
    parameter: str
    accuracy: str
    tail: str
    table: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "parameter": self.parameter,
            "accuracy": self.accuracy,
            "tail": self.tail,
            "rows": self.table.replace({np.nan: None}).to_dict(orient="records"),
        }


def _strength_key(cfg: StrategyConfig) -> str:
    if not cfg.STRENGTH:
        raise ConfigError(
            "the base order has no strength to sweep",
            hint="sweep a strategy: tail_boost, tail_select, xquad, xquad_personal, calibration, "
            "calibrated_popularity, mmr or fair",
        )
    field = type(cfg).model_fields[cfg.STRENGTH]
    return field.alias or cfg.STRENGTH


def sweep(
    config: StrategyConfig | str | Mapping[str, Any],
    values: Sequence[float],
    pools: Pools,
    context: Context,
    k: int,
    scorer: Scorer,
    *,
    accuracy: str | None = None,
    tail: str | None = None,
) -> SweepResult:
    """Evaluate ``config`` at each strength in ``values`` (the base order is strength 0).

    Args:
        config: the setting whose strength varies (other fields and rules stay fixed).
        values: strengths, each within the strategy's bounds.
        pools: the sampled users' candidate pools.
        context: the catalogue context.
        k: list length.
        scorer: metrics of a list matrix (see :func:`evaluation_scorer`).
        accuracy, tail: metric names for the Pareto front (default ``ndcg@k``, ``aplt@k``).
    """
    cfg = parse_config(config)
    key = _strength_key(cfg)
    if not len(values):
        raise BadInputError("a sweep needs at least one strength value")
    accuracy = accuracy or f"ndcg@{k}"
    tail = tail or f"aplt@{k}"
    base = pools.rerank(cfg.with_strength(0.0), context, k).items
    configs = [cfg.with_strength(float(v)) for v in values]
    table = _table(configs, base, pools, context, k, scorer, (accuracy, tail))
    return SweepResult(cfg.strategy, key, accuracy, tail, table)  # type: ignore[attr-defined]  # each StrategyConfig subclass declares its own Literal `strategy`; the base has none


def grid(
    settings: Sequence[StrategyConfig | str | Mapping[str, Any]],
    pools: Pools,
    context: Context,
    k: int,
    scorer: Scorer,
    *,
    accuracy: str | None = None,
    tail: str | None = None,
) -> SweepResult:
    """Evaluate any list of settings (mixed strategies, rules, pools) on the same users.

    Overlap and RBO compare with the plain base order of the pools; ``value`` is each
    setting's strength (0 for the base order).
    """
    configs = [parse_config(s) for s in settings]
    if not configs:
        raise BadInputError("a grid needs at least one setting")
    accuracy = accuracy or f"ndcg@{k}"
    tail = tail or f"aplt@{k}"
    base = pools.rerank(parse_config({"pool": pools.items.shape[1]}), context, k).items
    table = _table(configs, base, pools, context, k, scorer, (accuracy, tail))
    names = {c.strategy for c in configs}  # type: ignore[attr-defined]  # each StrategyConfig subclass declares its own Literal `strategy`; the base has none
    strategy = names.pop() if len(names) == 1 else "mixed"
    return SweepResult(strategy, "setting", accuracy, tail, table)


def _table(
    configs: Sequence[StrategyConfig],
    base: np.ndarray,
    pools: Pools,
    context: Context,
    k: int,
    scorer: Scorer,
    front: tuple[str, str],
) -> pd.DataFrame:
    rows = []
    for c in configs:
        items = pools.rerank(c, context, k).items
        rows.append(
            {
                "strategy": c.strategy,  # type: ignore[attr-defined]  # each StrategyConfig subclass declares its own Literal `strategy`; the base has none
                "value": c.strength,
                "label": c.label(),
                "setting": to_json(c),
                **dict(scorer(items, base)),
                "tail_share": _tail_share(items, context),
            }
        )
    table = pd.DataFrame(rows)
    for col in front:
        if col not in table.columns:
            raise BadInputError(
                f"the scorer gives no metric {col!r}",
                hint=f"metrics: {', '.join(c for c in table.columns if '@' in c)}",
            )
    table["pareto"] = _pareto(table[list(front)].to_numpy(dtype=float))
    return table


def _tail_share(items: np.ndarray, context: Context) -> float:
    valid = items >= 0
    counts = valid.sum(axis=1)
    tails = (context.tail[np.where(valid, items, 0)] & valid).sum(axis=1)
    ok = counts > 0
    return float((tails[ok] / counts[ok]).mean()) if ok.any() else 0.0


@dataclass(frozen=True)
class StrengthAnswer:
    """The answer of :func:`min_strength_for_tail_share`.

    Attributes:
        reachable: whether some strength within the bounds reaches the target.
        strength: the smallest such strength (None when unreachable).
        tail_share: the tail share at ``strength`` (or at the largest strength if unreachable).
        target: the target asked for.
        setting: the setting at ``strength`` as JSON (None when unreachable).
        message: one sentence for a person.
    """

    reachable: bool
    strength: float | None
    tail_share: float
    target: float
    setting: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def min_strength_for_tail_share(
    config: StrategyConfig | str | Mapping[str, Any],
    target: float,
    pools: Pools,
    context: Context,
    k: int,
    *,
    tol: float | None = None,
    max_iter: int = 40,
) -> StrengthAnswer:
    """The smallest strength whose mean tail share per list reaches ``target``.

    Bisection over [0, max strength] on the mean tail share of the re-ranked lists of
    ``pools`` (monotone in the strength for the tail-targeting strategies). Stops when the
    bracket is narrower than ``tol`` (default: 1/1000 of the strength range).
    """
    if not 0 <= target <= 1:
        raise BadInputError(f"the target tail share must be between 0 and 1, got {target}")
    cfg = parse_config(config)
    key = _strength_key(cfg)
    hi = float(type(cfg).STRENGTH_MAX)
    tol = tol if tol is not None else hi / 1000

    def share(s: float) -> float:
        return pools.rerank(cfg.with_strength(s), context, k).tail_share(context)

    at_zero = share(0.0)
    if at_zero >= target:
        return StrengthAnswer(
            True,
            0.0,
            at_zero,
            target,
            to_json(cfg.with_strength(0.0)),
            f"the base lists already reach a {at_zero:.1%} tail share (target {target:.1%})",
        )
    at_max = share(hi)
    if at_max < target:
        return StrengthAnswer(
            False,
            None,
            at_max,
            target,
            None,
            f"{cfg.strategy} reaches at most a {at_max:.1%} tail share ({key}={hi:g}), "  # type: ignore[attr-defined]  # each StrategyConfig subclass declares its own Literal `strategy`; the base has none
            f"short of {target:.1%}: widen the candidate pool (pool > {cfg.pool}) or use "
            "FA*IR with a higher p",
        )
    lo, best, best_share = 0.0, hi, at_max
    for _ in range(max_iter):
        if best - lo <= tol:
            break
        mid = (lo + best) / 2
        s = share(mid)
        if s >= target:
            best, best_share = mid, s
        else:
            lo = mid
    return StrengthAnswer(
        True,
        best,
        best_share,
        target,
        to_json(cfg.with_strength(best)),
        f"{key}={best:.4g} reaches a {best_share:.1%} tail share (target {target:.1%})",
    )


@dataclass(frozen=True)
class FloorAnswer:
    """The answer of :func:`best_above_floor`: the chosen row (None if no row qualifies)."""

    found: bool
    row: dict[str, Any] | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def best_above_floor(
    result: SweepResult, floor: float, *, tail: str | None = None, accuracy: str | None = None
) -> FloorAnswer:
    """The sweep row with the best accuracy among rows whose tail metric is >= ``floor``."""
    tail = tail or result.tail
    accuracy = accuracy or result.accuracy
    t = result.table
    ok = t[t[tail] >= floor]
    if ok.empty:
        top = t[tail].max()
        return FloorAnswer(
            False,
            None,
            f"no {result.parameter} in the sweep reaches {tail} >= {floor:.1%} "
            f"(highest: {top:.1%}); sweep higher strengths or lower the floor",
        )
    row = cast(dict[str, Any], ok.loc[ok[accuracy].idxmax()].to_dict())  # keys: column names
    return FloorAnswer(
        True,
        row,
        f"{result.parameter}={row['value']:g}: {accuracy} {row[accuracy]:.4f} with "
        f"{tail} {row[tail]:.1%}",
    )
