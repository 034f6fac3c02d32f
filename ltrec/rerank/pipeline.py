"""A pipeline: business rules around at most one strategy; its config as JSON or URL parameters.

A setting is one flat object with a ``strategy`` discriminator, the strategy's own fields, the
pool size and nested ``rules``::

    {"strategy": "tail_boost", "beta": 0.5, "rules": {"in_stock": true}}
    strategy=tail_boost&beta=0.5&rules.in_stock=1

The URL form is flat ``key=value`` pairs: rules fields are prefixed ``rules.``, list fields repeat
their key (``rules.exclude_categories=Toys&rules.exclude_categories=Books``), a pin is written
``item@position`` and fields at their default are left out, so a shared link stays short.
Bad settings raise :class:`~ltrec.errors.ConfigError` naming the key and the allowed values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import numpy as np
from pydantic import Field, TypeAdapter, ValidationError

from ltrec import safejson
from ltrec.errors import ConfigError
from ltrec.rerank.base import Candidates, Context, ListStats, Ranked
from ltrec.rerank.rules import RulesConfig, item_mask, resolve_pins
from ltrec.rerank.strategies import (
    MMR,
    BaseOrder,
    BaseOrderConfig,
    CalibratedPopularity,
    CalibratedPopularityConfig,
    Calibration,
    CalibrationConfig,
    Fair,
    FairConfig,
    MMRConfig,
    PersonalXQuAD,
    PersonalXQuADConfig,
    StrategyConfig,
    TailBoost,
    TailBoostConfig,
    TailSelect,
    TailSelectConfig,
    XQuAD,
    XQuADConfig,
)

RerankConfig = Annotated[
    BaseOrderConfig
    | TailBoostConfig
    | TailSelectConfig
    | XQuADConfig
    | PersonalXQuADConfig
    | CalibrationConfig
    | CalibratedPopularityConfig
    | MMRConfig
    | FairConfig,
    Field(discriminator="strategy"),
]

_ADAPTER: TypeAdapter[StrategyConfig] = TypeAdapter(RerankConfig)

#: Strategy name -> (config class, strategy class).
STRATEGIES: dict[str, tuple[type[StrategyConfig], type]] = {
    "none": (BaseOrderConfig, BaseOrder),
    "tail_boost": (TailBoostConfig, TailBoost),
    "tail_select": (TailSelectConfig, TailSelect),
    "xquad": (XQuADConfig, XQuAD),
    "xquad_personal": (PersonalXQuADConfig, PersonalXQuAD),
    "calibration": (CalibrationConfig, Calibration),
    "calibrated_popularity": (CalibratedPopularityConfig, CalibratedPopularity),
    "mmr": (MMRConfig, MMR),
    "fair": (FairConfig, Fair),
}


def _keys(cls: type[StrategyConfig]) -> list[str]:
    return [f.alias or name for name, f in cls.model_fields.items() if name != "rules"]


def _describe(err: ValidationError, data: Mapping[str, Any]) -> str:
    """One line per problem: 'beta: must be <= 5 (got 7)'."""
    name = data.get("strategy", "none")
    lines = []
    for e in err.errors():
        loc = [str(x) for x in e["loc"] if not (isinstance(x, str) and x in STRATEGIES)]
        key = ".".join(loc) or "setting"
        kind = e["type"]
        if kind == "extra_forbidden":
            cls = STRATEGIES.get(str(name), (BaseOrderConfig,))[0]
            allowed = _keys(cls) if not key.startswith("rules.") else list(RulesConfig.model_fields)
            shown = ", ".join(allowed)
            lines.append(f"unknown key {key!r} for strategy {name!r}; allowed: {shown}")
        elif kind == "union_tag_invalid":
            lines.append(
                f"unknown strategy {data.get('strategy')!r}; choose one of {', '.join(STRATEGIES)}"
            )
        else:
            msg = e["msg"].replace("Input should be", "must be").replace("Value error, ", "")
            got = e.get("input")
            plain = not isinstance(got, (dict, list, tuple)) and "got" not in msg
            shown = f" (got {got!r})" if plain else ""
            lines.append(f"{key}: {msg}{shown}")
    return "; ".join(lines)


def parse_config(value: str | Mapping[str, Any] | StrategyConfig | None) -> StrategyConfig:
    """A validated setting from JSON text, URL parameters (``strategy=xquad&lambda=0.5``), a
    dict or a config (None: the base order).

    A missing ``strategy`` means ``"none"`` (rules only).

    Raises:
        ConfigError: bad JSON, an unknown strategy or key, or a value out of bounds.
    """
    if value is None:
        return BaseOrderConfig()
    if isinstance(value, StrategyConfig):
        return value
    if isinstance(value, str):
        text = value.strip()
        if "=" in text and not text.startswith(("{", "[")):
            return from_query(text)  # the URL form, as a shared link carries it
        value = safejson.loads(  # bounded: no RecursionError from deeply nested text
            value,
            "the re-ranking setting",
            hint='for example \'{"strategy": "tail_boost", "beta": 0.5}\'',
        )
    if not isinstance(value, Mapping):
        raise ConfigError(
            "the re-ranking setting must be a JSON object",
            hint='for example \'{"strategy": "tail_boost", "beta": 0.5}\'',
        )
    data = dict(value)
    data.setdefault("strategy", "none")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        raise ConfigError(
            f"bad re-ranking setting: {_describe(err, data)}",
            hint=f"strategies: {', '.join(STRATEGIES)}; see `ltrec evaluate --help`",
        ) from None


def to_json(config: StrategyConfig) -> str:
    """The setting as compact JSON (fields at their default included)."""
    return config.model_dump_json(by_alias=True)


def to_dict(config: StrategyConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", by_alias=True)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back to the same float
    return str(value)


def to_query(config: StrategyConfig) -> list[tuple[str, str]]:
    """Flat URL parameters (``urlencode`` them for a link).

    The strategy's own fields are always written, so a link keeps its meaning if a default
    changes; the pool fields and rules only when they differ from the default, to keep links short.
    """
    cls = type(config)
    pairs: list[tuple[str, str]] = [("strategy", config.strategy)]  # type: ignore[attr-defined]  # each StrategyConfig subclass declares its own Literal `strategy`; the base has none
    for name, field in cls.model_fields.items():
        if name in ("strategy", "rules"):
            continue
        value = getattr(config, name)
        shared = name in ("pool", "tail_pool", "tail_source")  # StrategyConfig's own fields
        if not shared or value != field.get_default(call_default_factory=True):
            pairs.append((field.alias or name, _text(value)))
    for name, field in RulesConfig.model_fields.items():
        value = getattr(config.rules, name)
        if value == field.get_default(call_default_factory=True):
            continue
        if name == "pins":
            pairs.extend((f"rules.{name}", pin.to_text()) for pin in value)
        elif isinstance(value, tuple):
            pairs.extend((f"rules.{name}", _text(v)) for v in value)
        else:
            pairs.append((f"rules.{name}", _text(value)))
    return pairs


def to_query_string(config: StrategyConfig) -> str:
    return urlencode(to_query(config))


_LIST_RULES = {"include_categories", "exclude_categories", "pins"}


#: Most URL parameters one setting may have (pins and category lists included).
_MAX_URL_PAIRS = 500


def from_query(
    params: str | Mapping[str, str | list[str]] | Iterable[tuple[str, str]],
) -> StrategyConfig:
    """A setting from URL parameters: a query string, a mapping or (key, value) pairs.

    Keys that are not part of a setting are errors, so pass only the setting's parameters (a
    page keeps other state under other keys and filters with :func:`setting_keys`).
    """
    if isinstance(params, str):
        if len(params) > safejson.MAX_BYTES:
            raise ConfigError(
                f"the URL's re-ranking parameters are {len(params):,} characters long; at most "
                f"{safejson.MAX_BYTES:,} are accepted"
            )
        pairs = parse_qsl(params.lstrip("?"), keep_blank_values=True)
    elif isinstance(params, Mapping):
        pairs = []
        for key, val in params.items():
            vals = val if isinstance(val, (list, tuple)) else [val]
            pairs.extend((key, str(v)) for v in vals)
    else:
        pairs = [(str(k), str(v)) for k, v in params]
    size = sum(len(k) + len(v) for k, v in pairs)
    if len(pairs) > _MAX_URL_PAIRS or size > safejson.MAX_BYTES:
        raise ConfigError(
            f"the URL holds {len(pairs):,} re-ranking parameters ({size:,} characters); at most "
            f"{_MAX_URL_PAIRS} parameters and {safejson.MAX_BYTES:,} characters are accepted",
            hint="open the page without the URL's parameters and choose the setting again",
        )
    data: dict[str, Any] = {}
    rules: dict[str, Any] = {}
    for key, val in pairs:
        if key.startswith("rules."):
            name = key[len("rules.") :]
            if name in _LIST_RULES:
                rules.setdefault(name, []).append(val)
            elif name in rules:
                raise ConfigError(f"URL parameter {key!r} is given twice")
            else:
                rules[name] = val
        elif key in data:
            raise ConfigError(f"URL parameter {key!r} is given twice")
        else:
            data[key] = val
    if rules:
        data["rules"] = rules
    return parse_config(data)


def setting_keys(params: Iterable[str]) -> list[str]:
    """The keys among ``params`` that belong to a re-ranking setting."""
    known = {"strategy", "pool"}
    for cls, _ in STRATEGIES.values():
        known.update(_keys(cls))
    return [k for k in params if k in known or k.startswith("rules.")]


class Pipeline:
    """Business rules around one strategy: filter the pool, rank, then place the pins.

    The filter mask is computed once per context (cached), so re-ranking many users or
    sweeping a strength reruns only the strategy.
    """

    def __init__(self, config: StrategyConfig) -> None:
        self.config = config
        _, cls = STRATEGIES[config.strategy]  # type: ignore[attr-defined]  # each StrategyConfig subclass declares its own Literal `strategy`; the base has none
        self.strategy = cls(config)
        self._mask: tuple[Context, np.ndarray] | None = None

    def mask(self, context: Context) -> np.ndarray | None:
        if not self.config.rules.filters and not self.config.rules.pins:
            return None
        # Keyed by the context object itself (not its id, which a new object may reuse).
        if self._mask is None or self._mask[0] is not context:
            self._mask = (context, item_mask(self.config.rules, context))
        return self._mask[1]

    def rerank_many(
        self,
        pools: Sequence[Candidates],
        context: Context,
        users: Sequence[int | None],
        k: int,
    ) -> list[Ranked]:
        """Many users' lists; a strategy that ranks a batch at once (MMR) does so when no
        rule changes the pools."""
        many = getattr(self.strategy, "rerank_many", None)
        if many is not None and self.mask(context) is None:
            return list(many(pools, context, users, k))
        return [self.rerank(c, context, u, k) for c, u in zip(pools, users, strict=True)]

    def rerank(self, candidates: Candidates, context: Context, user: int | None, k: int) -> Ranked:
        rules = self.config.rules
        mask = self.mask(context)
        if mask is None:
            return self.strategy.rerank(candidates, context, user, k)
        pins, notes = resolve_pins(rules, context, mask)
        pinned = {item for item, pos in pins if pos <= k}
        keep = mask[candidates.items]
        if pinned:
            keep &= ~np.isin(candidates.items, list(pinned))
        orig_rank = np.flatnonzero(keep) + 1  # base rank in the full pool
        pool = Candidates(candidates.items[keep], candidates.scores[keep])
        ranked = self.strategy.rerank(pool, context, user, max(k - len(pinned), 0))
        base_ranks = orig_rank[ranked.base_ranks - 1] if len(ranked) else ranked.base_ranks
        # None: the strategy did not move the item itself; worded below from the final ranks.
        reasons: list[str | None] = [
            None if x == "base rank" or x.startswith("moved down") else x for x in ranked.reasons
        ]
        items = list(ranked.items)
        base = list(ranked.base_scores)
        final = list(ranked.scores)
        ranks = list(base_ranks)
        pool_rank = {int(it): j + 1 for j, it in enumerate(candidates.items)}
        pool_score = dict(zip(candidates.items.tolist(), candidates.scores.tolist(), strict=True))
        for item, pos in pins:  # ascending positions: earlier pins do not shift later ones
            if pos > k:
                notes.append(f"pinned item at position {pos} is beyond the list length {k}")
                continue
            at = min(pos - 1, len(items))
            items.insert(at, item)
            base.insert(at, pool_score.get(item, float("nan")))
            final.insert(at, float("nan"))
            ranks.insert(at, pool_rank.get(item, 0))
            reasons.insert(at, f"pinned by rule (position {pos})")
        n = min(k, len(items))
        for r in range(n):
            br = ranks[r]
            pin = str(reasons[r]).startswith("pinned by rule")
            if reasons[r] is None or (not pin and br <= r + 1):
                if br == r + 1:
                    reasons[r] = "base rank"
                elif br > r + 1:
                    reasons[r] = f"moved up from {br}: items above removed by rules"
                else:
                    reasons[r] = f"moved down from {br}"
        return Ranked(
            items=np.array(items[:n], dtype=np.int64),
            base_scores=np.array(base[:n], dtype=float),
            scores=np.array(final[:n], dtype=float),
            base_ranks=np.array(ranks[:n], dtype=np.int64),
            reasons=tuple(str(x) for x in reasons[:n]),
            setting=ranked.setting,
            notes=tuple(notes) + ranked.notes,
        )


def build(config: str | Mapping[str, Any] | StrategyConfig | None) -> Pipeline:
    """The re-ranker for a setting (JSON text, dict or config; None: the base order)."""
    return Pipeline(parse_config(config))


def side_by_side(
    settings: Iterable[str | Mapping[str, Any] | StrategyConfig | None],
    candidates: Candidates,
    context: Context,
    user: int | None,
    k: int,
) -> list[tuple[Ranked, ListStats]]:
    """The Studio's columns: each setting's list for one user with its figures against the base.

    The base list is the pool's base order (no rules), so ``overlap`` and each item's
    ``rank_change`` compare with what the model alone would show.
    """
    base = BaseOrder().rerank(candidates, context, user, k)
    out = []
    for s in settings:
        cfg = parse_config(s)
        pool = Candidates(candidates.items[: cfg.pool], candidates.scores[: cfg.pool])
        ranked = Pipeline(cfg).rerank(pool, context, user, k)
        out.append((ranked, ranked.stats(context, base=base)))
    return out
