"""Re-ranking strategies. Each has a pydantic config and a class with ``rerank``.

Every strategy works on the pool in base order (score descending) with the relevance
rel(i) = minmax(s)(i) in [0, 1], and has one *strength* parameter (``STRENGTH``): at strength 0 it
returns the base order, and on the tail-targeting strategies the tail share does not fall as the
strength grows. Greedy strategies report, as an item's final score, the marginal objective at the
moment it was chosen.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
from pydantic import ConfigDict, Field

from ltrec.config import ConfigBase
from ltrec.definitions import bucket_names, popularity_buckets
from ltrec.rerank.base import Candidates, Context, Ranked, finish, minmax
from ltrec.rerank.fair import min_tail_counts
from ltrec.rerank.rules import RulesConfig


class StrategyConfig(ConfigBase):
    """Fields every setting shares: the pool size and the business rules."""

    model_config = ConfigDict(populate_by_name=True)

    #: Name of the strength parameter a sweep varies, and its upper bound.
    STRENGTH: ClassVar[str | None] = None
    STRENGTH_MAX: ClassVar[float] = 1.0

    pool: int = Field(200, ge=1, le=5000, description="Candidates taken from the base model (M).")
    tail_pool: int = Field(
        0,
        ge=0,
        le=1000,
        description="Tail candidates added to the pool by a second source "
        "(ltrec.models.candidates.candidate_pool).",
    )
    tail_source: Literal["cooccurrence", "text", "both"] = Field(
        "both", description="What finds the tail candidates: co-occurrence, item text, or both."
    )
    rules: RulesConfig = Field(default_factory=RulesConfig, description="Business rules.")

    @property
    def strength(self) -> float:
        return float(getattr(self, self.STRENGTH)) if self.STRENGTH else 0.0

    def with_strength(self, value: float) -> StrategyConfig:
        """A validated copy with the strength parameter set to ``value``."""
        if not self.STRENGTH:
            return self
        data = self.model_dump()
        data[self.STRENGTH] = value
        return type(self).model_validate(data)

    def label(self) -> str:
        name = getattr(self, "strategy", "none")
        if name == "none":
            return "base" if not self.rules.active else "base + rules"
        field = type(self).model_fields[self.STRENGTH]  # type: ignore[index]  # STRENGTH is set: strategy 'none' returned above
        key = field.alias or self.STRENGTH
        text = f"{name} {key}={self.strength:g}"
        return text + (" + rules" if self.rules.active else "")


#: Pool positions ranked at once ([users, M]) by the strategies that rank a batch of users.
BATCH_CELLS = 1_000_000


def _padded(pools: Sequence[Candidates]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pools (each in base order) as [users, M] arrays: (items, valid, lengths, rel), rel the
    per-pool min-max relevance computed elementwise as :func:`minmax` (a constant pool is all
    ones); padding slots hold item 0 and are not ``valid``."""
    b = len(pools)
    lens = np.array([len(c) for c in pools])
    width = max(int(lens.max()), 1)
    valid = np.arange(width)[None, :] < lens[:, None]
    items = np.zeros((b, width), dtype=np.int64)
    scores = np.zeros((b, width))
    for r, c in enumerate(pools):
        items[r, : lens[r]] = c.items
        scores[r, : lens[r]] = c.scores
    lo = np.where(valid, scores, np.inf).min(axis=1, keepdims=True)
    hi = np.where(valid, scores, -np.inf).max(axis=1, keepdims=True)
    span = hi - lo
    flat = span <= 1e-12
    rel = np.where(flat, 1.0, (scores - lo) / np.where(flat, 1.0, span))
    return items, valid, lens, rel


# ---------------------------------------------------------------------------- base order


class BaseOrderConfig(StrategyConfig):
    """No strategy: the base model's order (business rules still apply)."""

    strategy: Literal["none"] = "none"


class BaseOrder:
    """The base order, top K."""

    def __init__(self, config: BaseOrderConfig | None = None) -> None:
        self.config = config or BaseOrderConfig()

    def rerank(self, candidates: Candidates, context: Context, user: int | None, k: int) -> Ranked:
        n = min(k, len(candidates))
        picked = np.arange(n)
        return finish(candidates, picked, candidates.scores[:n], "", self.config.label())


# ---------------------------------------------------------------------------- tail boost


class TailBoostConfig(StrategyConfig):
    """Tail boost / popularity penalty: s'(i) = rel(i) + beta * b(i)."""

    STRENGTH: ClassVar[str] = "beta"
    STRENGTH_MAX: ClassVar[float] = 5.0

    strategy: Literal["tail_boost"] = "tail_boost"
    beta: float = Field(0.3, ge=0.0, le=5.0, description="Boost weight beta.")
    signal: Literal["tail", "log_popularity"] = Field(
        "tail", description="b(i): the tail flag, or 1 - normalised log popularity."
    )


class TailBoost:
    """Additive boost of tail (or less popular) items.

    s'(i) = rel(i) + beta * b(i), with rel = min-max normalised base score and b(i) either the
    tail flag 1[i in tail] or 1 - log(1 + pop(i)) / log(1 + max pop) (a popularity penalty).
    The list is the top K by s'. This is the score-mixing baseline of popularity-bias work
    (e.g. Abdollahpouri et al. 2019 compare against it); at beta = 0 it is the base order.
    """

    def __init__(self, config: TailBoostConfig) -> None:
        self.config = config

    def rerank(self, candidates: Candidates, context: Context, user: int | None, k: int) -> Ranked:
        cfg = self.config
        items = candidates.items
        rel = minmax(candidates.scores)
        if cfg.signal == "tail":
            bonus = cfg.beta * context.tail[items]
            what = "tail item"
        else:
            bonus = cfg.beta * context.low_pop[items]
            what = "low popularity"
        final = rel + bonus
        picked = np.argsort(-final, kind="stable")[:k]
        reasons = [f"boosted: {what} (+{bonus[p]:.2f})" for p in picked]
        return finish(candidates, picked, final[picked], reasons, cfg.label())


class TailSelectConfig(StrategyConfig):
    """Tail boost that selects, base order that ranks: the linear boost's K items, shown in
    the base model's order."""

    STRENGTH: ClassVar[str] = "beta"
    STRENGTH_MAX: ClassVar[float] = 5.0

    strategy: Literal["tail_select"] = "tail_select"
    beta: float = Field(0.3, ge=0.0, le=5.0, description="Boost weight beta of the selection.")
    signal: Literal["tail", "log_popularity"] = Field(
        "tail", description="b(i): the tail flag, or 1 - normalised log popularity."
    )


class TailSelect:
    """The set of the linear tail boost, in the base order.

    The K items with the highest rel(i) + beta * b(i) (exactly :class:`TailBoost`'s list, as a
    set; same rel and b) are listed by their base score, the boost's ties kept in base order.
    Why: the boost decides *which* tail items enter, but also lifts each of them above head
    items the base model scores higher, and a list's expected DCG is highest when its items are
    in the order of their chance of being relevant (the probability ranking principle;
    Robertson 1977). The base score is that order's best estimate (on the demo's validation
    split tail and head items at the same base rank are hit about equally often), so for the
    same items the base order loses the least NDCG and the same loss bound admits a stronger
    boost: more tail slots. Final scores are the normalised base scores (descending).
    """

    def __init__(self, config: TailSelectConfig) -> None:
        self.config = config

    def rerank(self, candidates: Candidates, context: Context, user: int | None, k: int) -> Ranked:
        cfg = self.config
        items = candidates.items
        rel = minmax(candidates.scores)
        if cfg.signal == "tail":
            bonus = cfg.beta * context.tail[items]
            what = "tail item"
        else:
            bonus = cfg.beta * context.low_pop[items]
            what = "low popularity"
        chosen = np.argsort(-(rel + bonus), kind="stable")[:k]
        # Pool positions ascend in base order (the pool is score-descending, ties kept).
        picked = np.sort(chosen)
        reasons = [f"selected: {what} (+{bonus[p]:.2f})" for p in picked]
        return finish(candidates, picked, rel[picked], reasons, cfg.label())


# ---------------------------------------------------------------------------- xQuAD


class XQuADConfig(StrategyConfig):
    """Popularity-aware xQuAD with head and tail as the two aspects."""

    STRENGTH: ClassVar[str] = "lam"

    strategy: Literal["xquad"] = "xquad"
    lam: float = Field(0.5, ge=0.0, le=1.0, alias="lambda", description="Trade-off lambda.")
    personalised: bool = Field(
        True, description="P(tail|u) = the user's own tail share (else 1/2 for both aspects)."
    )
    smooth: bool = Field(
        True, description="Smooth coverage (share of S outside the aspect) instead of binary."
    )


class XQuAD:
    """Popularity-aware xQuAD (Abdollahpouri, Burke & Mobasher 2019, "Managing Popularity Bias
    in Recommender Systems with Personalized Re-ranking", FLAIRS-32), after Santos et al. 2010.

    Greedy: S grows by argmax_v (1 - lambda) P(v|u) + lambda * sum_{c in {head, tail}}
    P(c|u) P(v|c) cov(c|S), with P(v|u) = rel(v), P(v|c) = 1[v in c], and the coverage
    cov(c|S) = prod_{j in S} (1 - P(j|c)) = 1[no item of c in S] (binary) or, in the smooth
    variant, 1 - |S ∩ c| / |S| (1 for an empty S). P(tail|u) is 1/2 (not personalised) or the
    user's tail share in their history (personalised; 1/2 for a user without history), and
    P(head|u) = 1 - P(tail|u). The paper's smooth variant sets P(i|c, S) to "the ratio of items
    in S that cover c" inside prod_{i in S} (1 - P(i|c, S)); read as the chance that c is still
    uncovered that is 1 - |S ∩ c| / |S| (a literal product over S would be that to the power
    |S|), the reading used here and in the worked example of tests/rerank/test_known_answers.py.

    Because every item belongs to exactly one aspect, the best candidate of an aspect is its
    highest-relevance remaining item, so each step compares two queue heads: O(K) per user.
    """

    def __init__(self, config: XQuADConfig) -> None:
        self.config = config

    def p_tail(self, context: Context, user: int | None) -> float:
        """P(tail|u): the user's tail share when personalised (1/2 without history), else 1/2."""
        if not self.config.personalised:
            return 0.5
        share = context.user_tail_share(user)
        return 0.5 if share is None else share

    def rerank(self, candidates: Candidates, context: Context, user: int | None, k: int) -> Ranked:
        cfg = self.config
        rel = minmax(candidates.scores)
        tail = context.tail[candidates.items]
        p_tail = self.p_tail(context, user)
        queues = (np.flatnonzero(~tail), np.flatnonzero(tail))  # head, tail; base order
        p_aspect = (1.0 - p_tail, p_tail)
        ptr = [0, 0]
        chosen = [0, 0]  # items of each aspect in S
        lam = cfg.lam
        picked, final, reasons = [], [], []
        for step in range(min(k, len(candidates))):
            best, best_obj, best_div = -1, -np.inf, 0.0
            for a in (0, 1):
                if ptr[a] >= queues[a].size:
                    continue
                pos = int(queues[a][ptr[a]])
                if cfg.smooth:
                    cov = 1.0 if step == 0 else 1.0 - chosen[a] / step
                else:
                    cov = 1.0 if chosen[a] == 0 else 0.0
                div = lam * p_aspect[a] * cov
                obj = (1.0 - lam) * rel[pos] + div
                if obj > best_obj or (obj == best_obj and pos < best):
                    best, best_obj, best_div, best_a = pos, obj, div, a
            ptr[best_a] += 1
            chosen[best_a] += 1
            picked.append(best)
            final.append(best_obj)
            aspect = "tail" if best_a == 1 else "head"
            reasons.append(f"moved up: covers the {aspect} aspect (+{best_div:.2f})")
        return finish(candidates, np.array(picked, dtype=np.int64), final, reasons, cfg.label())

    def rerank_many(
        self,
        pools: Sequence[Candidates],
        context: Context,
        users: Sequence[int | None],
        k: int,
    ) -> list[Ranked]:
        """The lists of many users' pools, as :meth:`rerank` per user: each greedy step
        compares the two queue heads of every user at once."""
        out: list[Ranked | None] = [None] * len(pools)
        todo = []
        for i, cand in enumerate(pools):
            if min(k, len(cand)) == 0:
                out[i] = self.rerank(cand, context, users[i], k)
            else:
                todo.append(i)
        if not todo:
            return out  # type: ignore[return-value]  # every slot of out is filled by now
        label = self.config.label()
        chunk = max(1, BATCH_CELLS // max(len(pools[i]) for i in todo))
        for lo in range(0, len(todo), chunk):
            part = todo[lo : lo + chunk]
            p_tail = np.array([self.p_tail(context, users[i]) for i in part])
            ranked = self._greedy([pools[i] for i in part], context, p_tail, k)
            for i, (picked, final, div, is_tail) in zip(part, ranked, strict=True):
                reasons = [
                    f"moved up: covers the {'tail' if a else 'head'} aspect (+{d:.2f})"
                    if p > r
                    else ""
                    for r, (p, d, a) in enumerate(
                        zip(picked.tolist(), div.tolist(), is_tail.tolist(), strict=True)
                    )
                ]
                out[i] = finish(pools[i], picked, final, reasons, label)
        return out  # type: ignore[return-value]  # every slot of out is filled by now

    def _greedy(
        self, pools: Sequence[Candidates], context: Context, p_tail: np.ndarray, k: int
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """(picked positions, final scores, diversity terms, tail flags) per pool; the same
        arithmetic as :meth:`rerank`, elementwise over users."""
        lam, smooth = self.config.lam, self.config.smooth
        items, valid, lens, rel = _padded(pools)
        b, width = items.shape
        tail = context.tail[items] & valid
        head = ~context.tail[items] & valid
        # Each aspect's positions in base order, first in the row (stable sort on "not a").
        queue = (np.argsort(~head, axis=1, kind="stable"), np.argsort(~tail, axis=1, kind="stable"))
        size = (head.sum(axis=1), tail.sum(axis=1))
        weight = (lam * (1.0 - p_tail), lam * p_tail)
        rows = np.arange(b)
        n = np.minimum(lens, k)
        steps = int(n.max())
        ptr = [np.zeros(b, dtype=np.int64), np.zeros(b, dtype=np.int64)]  # = items taken
        picked = np.zeros((b, steps), dtype=np.int64)
        final = np.zeros((b, steps))
        div_at = np.zeros((b, steps))
        tail_at = np.zeros((b, steps), dtype=bool)
        for t in range(steps):
            pos, obj, div, ok = [], [], [], []
            for a in (0, 1):
                ok.append(ptr[a] < size[a])
                pos.append(queue[a][rows, np.minimum(ptr[a], width - 1)])
                if smooth:
                    cov = np.ones(b) if t == 0 else 1.0 - ptr[a] / t
                else:
                    cov = np.where(ptr[a] == 0, 1.0, 0.0)
                div.append(weight[a] * cov)
                obj.append((1.0 - lam) * rel[rows, pos[a]] + div[a])
            # The head queue is looked at first; the tail wins when strictly better, or equal
            # and higher in the base order, or when the head queue is empty.
            take = ok[1] & (~ok[0] | (obj[1] > obj[0]) | ((obj[1] == obj[0]) & (pos[1] < pos[0])))
            picked[:, t] = np.where(take, pos[1], pos[0])
            final[:, t] = np.where(take, obj[1], obj[0])
            div_at[:, t] = np.where(take, div[1], div[0])
            tail_at[:, t] = take
            ptr[1] += take
            ptr[0] += ~take
        return [
            (picked[r, : n[r]], final[r, : n[r]], div_at[r, : n[r]], tail_at[r, : n[r]])
            for r in range(b)
        ]


class PersonalXQuADConfig(StrategyConfig):
    """Personalised popularity-aware xQuAD: P(tail|u) from the user's own history."""

    STRENGTH: ClassVar[str] = "lam"

    strategy: Literal["xquad_personal"] = "xquad_personal"
    lam: float = Field(0.5, ge=0.0, le=1.0, alias="lambda", description="Trade-off lambda.")
    smooth: bool = Field(
        True, description="Smooth coverage (share of S outside the aspect) instead of binary."
    )
    shrink: float = Field(
        0.0,
        ge=0.0,
        le=100.0,
        description="Pseudo-count m pulling a short history's tail share towards the shop's: "
        "P(tail|u) = (tail items + m p0) / (history + m); 0 = the user's own share.",
    )


class PersonalXQuAD(XQuAD):
    """Personalised xQuAD (Abdollahpouri, Burke & Mobasher 2019, as :class:`XQuAD`): the tail
    aspect's weight is each user's own appetite for the tail,

        P(tail|u) = (t_u + m p0) / (n_u + m),

    with n_u the user's history length, t_u its tail items, p0 the tail share of every
    user's history together and m = ``shrink`` (0: the paper's plain share t_u / n_u). A user
    without history gets p0, so tail slots go to users who like the tail and a new user gets
    the shop's average appetite.
    """

    def __init__(self, config: PersonalXQuADConfig) -> None:
        self.config = config  # type: ignore[assignment]  # narrows the base's StrategyConfig

    def p_tail(self, context: Context, user: int | None) -> float:
        n = context.history(user).size
        p0 = _tail_share_of_histories(context)
        m = self.config.shrink  # type: ignore[attr-defined]  # a PersonalXQuADConfig (set in __init__)
        if n == 0:
            return p0
        t = float(context.user_buckets[user, -1]) * n
        return (t + m * p0) / (n + m)


_DERIVED: weakref.WeakKeyDictionary[Context, dict[str, object]] = weakref.WeakKeyDictionary()


def _derived(context: Context) -> dict[str, object]:
    """Per-context values the personalised strategies compute once (dropped with the context)."""
    return _DERIVED.setdefault(context, {})


def _tail_share_of_histories(context: Context) -> float:
    """p0: the share of tail items over every user's history together (1/2 without any)."""
    cache = _derived(context)
    if "p0" not in cache:
        h = context.history_items
        cache["p0"] = float(context.tail[h].mean()) if h.size else 0.5
    return cache["p0"]  # type: ignore[return-value]  # the float stored above under this key


#: Cumulative interaction shares that cut head / mid / tail in Abdollahpouri et al. 2021:
#: the head items take the first 20% of interactions, the tail items the last 20%.
PAPER_CUTS = (0.2, 0.8)
PAPER_GROUPS = tuple(bucket_names(len(PAPER_CUTS)))  # head / mid / tail


def popularity_groups(context: Context, groups: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """(group code per item, group names): the paper's head/mid/tail or the context's buckets."""
    if groups == "buckets":
        return context.bucket, context.bucket_names
    cache = _derived(context)
    if "paper_groups" not in cache:
        cache["paper_groups"] = popularity_buckets(context.popularity, PAPER_CUTS)
    return cache["paper_groups"], PAPER_GROUPS  # type: ignore[return-value]  # the array stored above


def user_group_distribution(context: Context, user: int | None, groups: str) -> np.ndarray:
    """p(g|u): the share of the user's history in each popularity group (zeros without one)."""
    codes, names = popularity_groups(context, groups)
    hist = context.history(user)
    counts = np.bincount(codes[hist], minlength=len(names)).astype(float)
    total = counts.sum()
    return counts / total if total else counts


def js_divergence(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon divergence in bits, in [0, 1]:

    JS(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m),  m = (p + q) / 2.
    """
    return float(_js_rows(np.asarray([p], dtype=float), np.asarray([q], dtype=float))[0])


def _js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """:func:`js_divergence` over the last axis of same-shaped arrays (0 log 0 = 0)."""
    m = (p + q) / 2
    safe_m = np.where(m > 0, m, 1.0)
    out = np.zeros(np.broadcast_shapes(p.shape, q.shape)[:-1])
    for x in (p, q):
        term = np.where(x > 0, x * np.log2(np.where(x > 0, x, 1.0) / safe_m), 0.0)
        out = out + term.sum(axis=-1)
    return np.maximum(out / 2, 0.0)


class CalibratedPopularityConfig(StrategyConfig):
    """Calibrated popularity: the list's head/mid/tail mix matches the user's history."""

    STRENGTH: ClassVar[str] = "lam"

    strategy: Literal["calibrated_popularity"] = "calibrated_popularity"
    lam: float = Field(0.5, ge=0.0, le=1.0, alias="lambda", description="Trade-off lambda.")
    groups: Literal["paper", "buckets"] = Field(
        "paper",
        description="Popularity groups: the paper's head/mid/tail (the first 20% and the last "
        "20% of interactions) or the dataset's popularity buckets.",
    )


class CalibratedPopularity:
    """Calibrated popularity, CP (Abdollahpouri, Mansoury, Burke, Mobasher & Malthouse 2021,
    "User-centered Evaluation of Popularity Bias in Recommender Systems", UMAP).

    Items fall into popularity groups g (head H: the most popular items, taking the first 20%
    of interactions; tail T: the least popular, taking the last 20%; mid M: the rest). p(g|u)
    is the user's history over the groups, q(g|S) = |S ∩ g| / |S| the list's. The list
    maximises, greedily,

        (1 - lambda) * sum_{i in S} rel(i) - lambda * JS(p, q(S)),

    JS the Jensen-Shannon divergence (:func:`js_divergence`, in bits; finite without the
    smoothing KL needs). Each step adds the item with the best objective for S ∪ {i}; within a
    group that is the highest-relevance remaining item. An item's final score is its marginal
    objective, (1 - lambda) rel(i) - lambda * (JS after - JS before). A user without history
    gets the base order (there is nothing to calibrate to).
    """

    def __init__(self, config: CalibratedPopularityConfig) -> None:
        self.config = config

    def rerank(self, candidates: Candidates, context: Context, user: int | None, k: int) -> Ranked:
        return self.rerank_many([candidates], context, [user], k)[0]

    def rerank_many(
        self,
        pools: Sequence[Candidates],
        context: Context,
        users: Sequence[int | None],
        k: int,
    ) -> list[Ranked]:
        """The lists of many users' pools: each greedy step scores every user's group queue
        heads at once. One user's :meth:`rerank` is the same code on a batch of one."""
        cfg = self.config
        out: list[Ranked | None] = [None] * len(pools)
        todo, dists = [], []
        for i, cand in enumerate(pools):
            n = min(k, len(cand))
            p = user_group_distribution(context, users[i], cfg.groups)
            if p.sum() <= 0 or cfg.lam == 0 or n == 0:
                notes = (
                    () if cfg.lam == 0 or n == 0 else ("no history to calibrate to: base order",)
                )
                out[i] = finish(cand, np.arange(n), cand.scores[:n], "", cfg.label(), notes=notes)
            else:
                todo.append(i)
                dists.append(p)
        if not todo:
            return out  # type: ignore[return-value]  # every slot of out is filled by now
        _, names = popularity_groups(context, cfg.groups)
        label = cfg.label()
        chunk = max(1, BATCH_CELLS // max(len(pools[i]) for i in todo))
        for lo in range(0, len(todo), chunk):
            part = todo[lo : lo + chunk]
            p = np.stack(dists[lo : lo + chunk])
            ranked = self._greedy([pools[i] for i in part], context, p, k)
            for j, (i, (picked, final, group)) in enumerate(zip(part, ranked, strict=True)):
                reasons = [
                    f"moved up for calibrated popularity ({names[g]}: {p[j, g]:.0%} of the "
                    "user's history)"
                    if q > r
                    else ""
                    for r, (q, g) in enumerate(zip(picked.tolist(), group.tolist(), strict=True))
                ]
                out[i] = finish(pools[i], picked, final, reasons, label)
        return out  # type: ignore[return-value]  # every slot of out is filled by now

    def _greedy(
        self, pools: Sequence[Candidates], context: Context, p: np.ndarray, k: int
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(picked positions, final scores, group of each pick) per pool; ``p`` [users, G]."""
        lam = self.config.lam
        codes, names = popularity_groups(context, self.config.groups)
        n_groups = len(names)
        items, valid, lens, rel = _padded(pools)
        b, width = items.shape
        group = np.where(valid, codes[items], -1)
        # Each group's positions in base order, first in the row; within a group the best
        # candidate is its highest-relevance remaining item.
        queue = np.stack(
            [np.argsort(group != g, axis=1, kind="stable") for g in range(n_groups)], axis=1
        )  # [b, G, width]
        size = np.stack([(group == g).sum(axis=1) for g in range(n_groups)], axis=1)  # [b, G]
        rows = np.arange(b)
        n = np.minimum(lens, k)
        steps = int(n.max())
        ptr = np.zeros((b, n_groups), dtype=np.int64)  # = items taken from each group
        eye = np.eye(n_groups)
        js_prev = np.zeros(b)
        picked = np.zeros((b, steps), dtype=np.int64)
        final = np.zeros((b, steps))
        chosen = np.zeros((b, steps), dtype=np.int64)
        for t in range(steps):
            ok = ptr < size
            pos = np.take_along_axis(queue, np.minimum(ptr, width - 1)[:, :, None], axis=2)[..., 0]
            # q(S ∪ {head of g}) for every candidate group g: [b, G (candidate), G]
            q = (ptr[:, None, :] + eye[None, :, :]) / (t + 1)
            js = _js_rows(p[:, None, :], q)  # [b, G]
            # The sum of rel over S is common to every candidate: compare the marginals.
            obj = np.where(ok, (1 - lam) * rel[rows[:, None], pos] - lam * js, -np.inf)
            best = obj.max(axis=1, keepdims=True)
            # Ties (to rounding: equal divergences of mirrored mixes are computed in different
            # orders) go to the candidate higher in the base order.
            tie = ok & (obj >= best - 1e-12)
            g = np.argmin(np.where(tie, pos, np.iinfo(np.int64).max), axis=1)
            at = pos[rows, g]
            picked[:, t] = at
            final[:, t] = (1 - lam) * rel[rows, at] - lam * (js[rows, g] - js_prev)
            chosen[:, t] = g
            js_prev = js[rows, g]
            ptr[rows, g] += 1
        return [(picked[r, : n[r]], final[r, : n[r]], chosen[r, : n[r]]) for r in range(b)]


# ---------------------------------------------------------------------------- calibration


class CalibrationConfig(StrategyConfig):
    """Calibrated recommendations over popularity buckets or categories."""

    STRENGTH: ClassVar[str] = "lam"

    strategy: Literal["calibration"] = "calibration"
    lam: float = Field(0.5, ge=0.0, le=1.0, alias="lambda", description="Trade-off lambda.")
    by: Literal["bucket", "category"] = Field("bucket", description="Distribution over ...")
    alpha: float = Field(0.01, gt=0.0, le=0.5, description="Smoothing of q towards p.")


class Calibration:
    """Calibrated re-ranking (Steck 2018, "Calibrated Recommendations", RecSys).

    p(c|u) is the user's historical distribution over aspects c (popularity buckets or
    categories), q(c|S) = |S ∩ c| / |S| the list's, smoothed as q~ = (1 - alpha) q + alpha p so
    the divergence stays finite. The list maximises, greedily (Steck's §3, a (1 - 1/e)
    approximation of the submodular objective),

        (1 - lambda) * sum_{i in S} rel(i) - lambda * KL(p || q~(S)),
        KL(p || q~) = sum_c p(c|u) log(p(c|u) / q~(c|S)).

    Each step adds the item with the best objective for S ∪ {i}; within an aspect that is the
    highest-relevance remaining item, so only one candidate per aspect is scored. A user without
    history gets the base order (there is nothing to calibrate to).
    """

    def __init__(self, config: CalibrationConfig) -> None:
        self.config = config

    def rerank(self, candidates: Candidates, context: Context, user: int | None, k: int) -> Ranked:
        cfg = self.config
        n = min(k, len(candidates))
        p = context.user_distribution(user, cfg.by)
        if p.sum() <= 0 or cfg.lam == 0:
            notes = () if cfg.lam == 0 else ("no history to calibrate to: base order",)
            return finish(
                candidates, np.arange(n), candidates.scores[:n], "", cfg.label(), notes=notes
            )
        rel = minmax(candidates.scores)
        codes = context.aspect_codes(cfg.by)[candidates.items]
        aspects, inv = np.unique(codes, return_inverse=True)
        grouped = np.argsort(inv, kind="stable")  # positions grouped by aspect, base order within
        starts = np.searchsorted(inv[grouped], np.arange(aspects.size))
        ends = np.append(starts[1:], grouped.size)
        lam, alpha = cfg.lam, cfg.alpha
        # Only aspects present in the pool can change; an aspect c outside it keeps q(c) = 0 and
        # contributes the constant p(c) log(1 / alpha) to the divergence.
        pa = p[aspects].tolist()
        outside = float(p.sum() - sum(pa)) * math.log(1.0 / alpha)
        n_asp = len(pa)
        ends_l = ends.tolist()
        order = grouped.tolist()
        ptr_l = starts.tolist()
        heads = [order[i] for i in ptr_l]
        rel_l = rel.tolist()
        kl_prev = 0.0
        picked, final, reasons = [], [], []
        # Plain floats: with a handful of aspects a Python loop beats numpy's per-call overhead;
        # with many (categories), numpy over the aspects.
        if n_asp > 12:
            steps = self._steps_vector(p[aspects], outside, grouped, starts, ends, rel, n)
        else:
            steps = self._steps_scalar(pa, outside, order, ptr_l, ends_l, heads, rel_l, n)
        for pos, a, kl in steps:
            picked.append(pos)
            final.append((1 - lam) * rel_l[pos] - lam * (kl - kl_prev))
            kl_prev = kl
            name = _aspect_name(context, cfg.by, int(aspects[a]))
            reasons.append(f"moved up for calibration ({name}: {pa[a]:.0%} of the user's history)")
        return finish(candidates, np.array(picked, dtype=np.int64), final, reasons, cfg.label())

    def _steps_scalar(
        self,
        pa: list[float],
        outside: float,
        order: list[int],
        ptr: list[int],
        ends: list[int],
        heads: list[int],
        rel: list[float],
        n: int,
    ) -> list[tuple[int, int, float]]:
        """Greedy steps as (pool position, aspect, KL after the step), in plain Python."""
        lam, alpha = self.config.lam, self.config.alpha
        n_asp = len(pa)
        cnt = [0] * n_asp
        out = []
        for step in range(n):
            f = (1 - alpha) / (step + 1)
            terms = [0.0] * n_asp
            t_new = [0.0] * n_asp
            total = outside
            for j in range(n_asp):
                pj = pa[j]
                if pj > 0:
                    terms[j] = pj * math.log(pj / (f * cnt[j] + alpha * pj))
                    t_new[j] = pj * math.log(pj / (f * (cnt[j] + 1) + alpha * pj))
                    total += terms[j]
            best, best_obj, best_kl = -1, -math.inf, 0.0
            for j in range(n_asp):
                if ptr[j] >= ends[j]:
                    continue
                kl = total - terms[j] + t_new[j]  # only aspect j's term changes
                obj = (1 - lam) * rel[heads[j]] - lam * kl
                if obj > best_obj or (obj == best_obj and heads[j] < heads[best]):
                    best, best_obj, best_kl = j, obj, kl
            out.append((heads[best], best, best_kl))
            ptr[best] += 1
            cnt[best] += 1
            if ptr[best] < ends[best]:
                heads[best] = order[ptr[best]]
        return out

    def _steps_vector(
        self,
        pa: np.ndarray,
        outside: float,
        grouped: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        rel: np.ndarray,
        n: int,
    ) -> list[tuple[int, int, float]]:
        """The same greedy steps as :meth:`_steps_scalar`, numpy over the aspects."""
        lam, alpha = self.config.lam, self.config.alpha
        pa_safe = np.where(pa > 0, pa, 1.0)
        base = alpha * pa + (pa == 0)  # the +1 where p = 0 keeps the log finite (term is 0)
        cnt = np.zeros(pa.size)
        ptr = starts.copy()
        heads = grouped[starts]
        head_rel = rel[heads]
        dead = np.zeros(pa.size, dtype=bool)
        out = []
        for step in range(n):
            f = (1 - alpha) / (step + 1)
            denom = f * cnt + base
            terms = pa * np.log(pa_safe / denom)
            kl = (outside + terms.sum()) - terms + pa * np.log(pa_safe / (denom + f))
            obj = (1 - lam) * head_rel - lam * kl
            obj[dead] = -np.inf
            a = int(np.argmax(obj))
            ties = np.flatnonzero(obj == obj[a])
            if ties.size > 1:  # equal objectives: the item higher in the base order first
                a = int(ties[np.argmin(heads[ties])])
            out.append((int(heads[a]), a, float(kl[a])))
            ptr[a] += 1
            cnt[a] += 1
            if ptr[a] < ends[a]:
                heads[a] = grouped[ptr[a]]
                head_rel[a] = rel[heads[a]]
            else:
                dead[a] = True
        return out


def _aspect_name(context: Context, by: str, code: int) -> str:
    if by == "bucket":
        return context.bucket_names[code]
    return context.category_names[code] if code < len(context.category_names) else "unknown"


def kl_to_history(
    context: Context, user: int | None, items: np.ndarray, by: str = "bucket", alpha: float = 0.01
) -> float:
    """KL(p || q~) between the user's history and a list (Steck 2018; see :class:`Calibration`)."""
    p = context.user_distribution(user, by)
    if p.sum() <= 0 or len(items) == 0:
        return 0.0
    q = np.bincount(context.aspect_codes(by)[items], minlength=p.size) / len(items)
    qt = (1 - alpha) * q + alpha * p
    m = p > 0
    return float(np.sum(p[m] * np.log(p[m] / qt[m])))


# ---------------------------------------------------------------------------- MMR


class MMRConfig(StrategyConfig):
    """Maximal marginal relevance by text embedding or category."""

    STRENGTH: ClassVar[str] = "lam"

    strategy: Literal["mmr"] = "mmr"
    lam: float = Field(0.3, ge=0.0, le=1.0, alias="lambda", description="Diversity weight.")
    by: Literal["embedding", "category"] = Field("embedding", description="Similarity measure.")


class MMR:
    """Maximal marginal relevance (Carbonell & Goldstein 1998, "The Use of MMR,
    Diversity-Based Reranking for Reordering Documents and Producing Summaries", SIGIR).

    Greedy: S grows by argmax_i (1 - lambda) rel(i) - lambda * max_{j in S} sim(i, j), with sim
    the cosine of the items' text embeddings, or 1[same known category]. (The paper writes
    lambda on the relevance term; here lambda weighs diversity, so 0 is the base order.) The
    first item is the base top; ties go to the item higher in the base order. Without
    embeddings in the context, category similarity is used and the list says so.

    Many users are re-ranked at once (:meth:`rerank_many`): their pools are padded into
    [users, M] arrays and each greedy step is one argmax over every user. The similarity of
    each pool to the item its user just took is read from a cosine table of all pool items
    (one matrix product, when few distinct items serve many users, as in an evaluation) or
    computed per step in one batched matrix-vector product. One user's :meth:`rerank` is the
    same code on a batch of one.
    """

    #: Pool embeddings gathered at once ([users, M, d] float32), in floats: bounds memory.
    BATCH_FLOATS = 8_000_000
    #: Most distinct pool items whose similarity table ([U, U] float32) is computed once.
    MAX_TABLE = 6_000

    def __init__(self, config: MMRConfig) -> None:
        self.config = config

    def rerank(self, candidates: Candidates, context: Context, user: int | None, k: int) -> Ranked:
        return self.rerank_many([candidates], context, [user], k)[0]

    def rerank_many(
        self,
        pools: Sequence[Candidates],
        context: Context,
        users: Sequence[int | None],
        k: int,
    ) -> list[Ranked]:
        """The lists of many users' pools (each in base order), as :meth:`rerank` per user."""
        cfg = self.config
        out: list[Ranked | None] = [None] * len(pools)
        by = cfg.by
        notes: tuple[str, ...] = ()
        if by == "embedding" and context.embedding is None:
            by = "category"
            notes = ("no text embeddings in this dataset: similarity by category",)
        todo = []
        for i, cand in enumerate(pools):
            n = min(k, len(cand))
            if cfg.lam == 0 or n == 0:
                out[i] = finish(cand, np.arange(n), cand.scores[:n], "", cfg.label())
            else:
                todo.append(i)
        if not todo:
            return out  # type: ignore[return-value]  # every slot of out is filled by now
        width = max(len(pools[i]) for i in todo)
        steps = min(k, width)
        table = None
        chunk = max(1, BATCH_CELLS // width)
        if by == "embedding":
            seen = np.zeros(context.n_items, dtype=bool)
            for i in todo:
                seen[pools[i].items] = True
            uniq = np.flatnonzero(seen)
            # The cosine of every pair of pool items in one matrix product, when that is
            # cheaper than one matrix-vector product per user and step (many users sharing
            # a catalogue of a few thousand items, as in an evaluation).
            if uniq.size <= self.MAX_TABLE and uniq.size**2 <= 4 * len(todo) * width * steps:
                emb = context.embedding[uniq]  # type: ignore[index]  # MMR runs only with text vectors (needs_text)
                where = np.zeros(context.n_items, dtype=np.int64)
                where[uniq] = np.arange(uniq.size)
                table = (emb @ emb.T, where)
            else:
                chunk = max(1, self.BATCH_FLOATS // (width * context.embedding.shape[1]))  # type: ignore[union-attr]  # MMR runs only with text vectors (needs_text)
        label = cfg.label()
        for lo in range(0, len(todo), chunk):
            part = todo[lo : lo + chunk]
            ranked = self._greedy([pools[i] for i in part], context, by, k, table)
            for i, (picked, final, sim) in zip(part, ranked, strict=True):
                # Worded only for items that moved up (finish words the others).
                reasons = [
                    f"moved up for diversity (max similarity {m:.2f})" if p > r else ""
                    for r, (p, m) in enumerate(zip(picked.tolist(), sim.tolist(), strict=True))
                ]
                out[i] = finish(pools[i], picked, final, reasons, label, notes=notes)
        return out  # type: ignore[return-value]  # every slot of out is filled by now

    def _greedy(
        self,
        pools: Sequence[Candidates],
        context: Context,
        by: str,
        k: int,
        table: tuple[np.ndarray, np.ndarray] | None,
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(picked positions, final scores, max similarity when picked) per pool.

        ``table``: (cosine of every pair of pool items, row of each item in it), or None to
        take each step's similarities from the pool embeddings.
        """
        lam = self.config.lam
        items, valid, lens, rel = _padded(pools)
        b, width = items.shape
        rel = (1 - lam) * rel
        if by == "category":
            cat = np.where(valid, context.category[items], -1)
        elif table is not None:
            sims, where = table
            loc = where[items]
        else:
            emb = context.embedding[items]  # type: ignore[index]  # MMR runs only with text vectors (needs_text)
        rows = np.arange(b)
        n = np.minimum(lens, k)
        steps = int(n.max())
        # An infinite similarity marks a slot that cannot be taken (padding, already chosen):
        # its objective is -inf (lambda > 0 here), without a mask pass per step.
        max_sim = np.where(valid, 0.0, np.inf)
        picked = np.zeros((b, steps), dtype=np.int64)
        final = np.zeros((b, steps))
        sim_at = np.zeros((b, steps))
        for t in range(steps):
            obj = rel - lam * max_sim
            pos = np.argmax(obj, axis=1)  # first maximum: ties keep base order
            picked[:, t] = pos
            final[:, t] = obj[rows, pos]
            sim_at[:, t] = max_sim[rows, pos]
            max_sim[rows, pos] = np.inf
            if t + 1 < steps:
                if by == "category":
                    c = cat[rows, pos][:, None]
                    sim = ((cat == c) & (c >= 0)).astype(float)
                elif table is not None:
                    sim = sims[loc[rows, pos][:, None], loc]
                else:
                    sim = np.matmul(emb, emb[rows, pos][:, :, None])[:, :, 0]
                np.maximum(max_sim, sim, out=max_sim)
        return [(picked[r, : n[r]], final[r, : n[r]], sim_at[r, : n[r]]) for r in range(b)]


def intra_list_distance(context: Context, items: np.ndarray, by: str = "embedding") -> float:
    """Mean pairwise dissimilarity 1 - sim(i, j) of a list (0 for fewer than two items)."""
    n = len(items)
    if n < 2:
        return 0.0
    if by == "embedding" and context.embedding is not None:
        e = context.embedding[items]
        sim = e @ e.T
    else:
        c = context.category[items]
        sim = ((c[:, None] == c[None, :]) & (c[:, None] >= 0)).astype(float)
    off = ~np.eye(n, dtype=bool)
    return float(1.0 - sim[off].mean())


# ---------------------------------------------------------------------------- FA*IR


class FairConfig(StrategyConfig):
    """FA*IR with tail items as the protected group."""

    STRENGTH: ClassVar[str] = "p"

    strategy: Literal["fair"] = "fair"
    p: float = Field(0.3, ge=0.0, le=1.0, description="Minimum tail proportion p.")
    alpha: float = Field(0.1, ge=0.001, le=0.5, description="Significance of the test.")
    adjust_alpha: bool = Field(False, description="Correct alpha for testing every prefix.")


class Fair:
    """FA*IR (Zehlike et al. 2017, "FA*IR: A Fair Top-k Ranking Algorithm", CIKM), Algorithm 2.

    Tail items are the protected group. Two queues in base order, tail and head; position r
    takes the best tail item when the prefix holds fewer than m(r) tail items, else the better
    of the two queue heads. m(r) = min{tau : F(tau; r, p) > alpha} (binomial CDF, exact; see
    :mod:`ltrec.rerank.fair`). When the pool runs out of tail items, the rest is filled from the
    head and the list notes the shortfall. Final scores are the normalised base scores.
    """

    def __init__(self, config: FairConfig) -> None:
        self.config = config

    def rerank(self, candidates: Candidates, context: Context, user: int | None, k: int) -> Ranked:
        cfg = self.config
        n = min(k, len(candidates))
        need = min_tail_counts(n, cfg.p, cfg.alpha, cfg.adjust_alpha) if n else ()
        rel = minmax(candidates.scores)
        tail = context.tail[candidates.items]
        queues = (np.flatnonzero(~tail).tolist(), np.flatnonzero(tail).tolist())
        ptr = [0, 0]
        have = 0
        short = False
        picked, reasons = [], []
        for r in range(1, n + 1):
            heads = [queues[a][ptr[a]] if ptr[a] < len(queues[a]) else None for a in (0, 1)]
            if have < need[r - 1] and heads[1] is not None:
                a = 1
            elif heads[0] is None:
                a = 1
            elif heads[1] is None:
                a = 0
                short = short or have < need[r - 1]
            else:
                a = 0 if heads[0] < heads[1] else 1
            pos = heads[a]
            ptr[a] += 1
            have += a
            picked.append(pos)
            reasons.append(f"moved up: FA*IR needs {need[r - 1]} tail items in the top {r}")
        notes = ("the pool holds too few tail items to meet the FA*IR minimum",) if short else ()
        arr = np.array(picked, dtype=np.int64)
        return finish(candidates, arr, rel[arr], reasons, cfg.label(), notes=notes)
