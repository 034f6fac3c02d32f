"""Typed configs of the feedback-loop simulator: a policy, the user model, the simulation.

A **policy** is what a shop deploys: a model (registry name + params) and an optional re-ranking
setting (the rerank pipeline's JSON config). Policies parse from JSON so the CLI and the page
share one format::

    {"model": "popularity"}
    {"model": "ease", "params": {"lambda_": 200}, "rerank": {"strategy": "tail_boost", "beta": 0.5}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from ltrec import safejson
from ltrec.config import ConfigBase
from ltrec.errors import ConfigError
from ltrec.models.base import MODELS, get_model_class, make_config
from ltrec.rerank import parse_config

POLICY_EXAMPLE = '{"model": "ease", "rerank": {"strategy": "tail_boost", "beta": 0.5}}'


class PolicyConfig(ConfigBase):
    """A deployed recommendation policy: model + params + optional re-ranking setting."""

    model: str = Field("popularity", min_length=1, max_length=64, description="Model name.")
    params: dict[str, Any] = Field(default_factory=dict, description="Model parameters.")
    rerank: dict[str, Any] | None = Field(
        None, description="Re-ranking setting as the rerank pipeline's JSON config (or none)."
    )
    label: str | None = Field(None, max_length=80, description="Name shown in charts.")

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v not in MODELS:
            raise ValueError(f"unknown model {v!r}; choose one of {', '.join(MODELS)}")
        return v

    def validate_parts(self) -> PolicyConfig:
        """Check the params against the model's config and the re-ranking setting.

        Raises:
            ConfigError: naming the bad key or value.
        """
        make_config(get_model_class(self.model).config_cls, self.params)
        if self.rerank is not None:
            parse_config(self.rerank)
        return self

    @property
    def name(self) -> str:
        """``ease + tail_boost 0.5``: the label, or one made from the parts."""
        if self.label:
            return self.label
        if self.rerank is None:
            return self.model

        cfg = parse_config(self.rerank)
        strategy = cfg.strategy  # type: ignore[attr-defined]  # each StrategyConfig subclass declares its own Literal `strategy`; the base has none
        if strategy == "none":
            return f"{self.model} + rules"
        return f"{self.model} + {strategy} {cfg.strength:g}" if cfg.STRENGTH else strategy


def parse_policy(value: str | Mapping[str, Any] | PolicyConfig) -> PolicyConfig:
    """A validated policy from JSON text, a dict or a config.

    Raises:
        ConfigError: bad JSON, an unknown key or model, or bad model / re-ranking params.
    """
    if isinstance(value, PolicyConfig):
        return value.validate_parts()
    if isinstance(value, str):
        value = safejson.loads(  # bounded: no RecursionError from deeply nested text
            value, "the policy", hint=f"for example '{POLICY_EXAMPLE}'"
        )
    if not isinstance(value, Mapping):
        raise ConfigError("a policy must be a JSON object", hint=f"for example '{POLICY_EXAMPLE}'")
    try:
        policy = PolicyConfig(**dict(value))
    except ValidationError as err:
        msgs = "; ".join(
            f"unknown key '{'.'.join(str(p) for p in e['loc'])}'"
            if e["type"] == "extra_forbidden"
            else f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: "
            + e["msg"].replace("Value error, ", "")
            for e in err.errors()
        )
        raise ConfigError(
            f"bad policy: {msgs}",
            hint=f"keys: {', '.join(PolicyConfig.model_fields)}; e.g. '{POLICY_EXAMPLE}'",
        ) from None
    return policy.validate_parts()


class CalibrationConfig(ConfigBase):
    """The user model on real data: a model fitted on the data, its scores made probabilities."""

    model: str = Field("ease", description="Scoring model (EASE; ALS above EASE's item limit).")
    params: dict[str, Any] = Field(default_factory=dict, description="Its parameters.")
    test_share: float = Field(
        0.2, gt=0.0, le=0.5, description="Latest share of events held out to calibrate on."
    )
    pool: int = Field(
        50, ge=5, le=1000, description="Top-scored items per held-out user used as pairs."
    )
    max_users: int = Field(2000, ge=10, le=1_000_000, description="Held-out users used at most.")


class SimulationConfig(ConfigBase):
    """How the loop runs (Mansoury et al. 2020): rounds, list length, users, retraining."""

    rounds: int = Field(10, ge=1, le=200, description="Rounds of recommend -> respond -> retrain.")
    k: int = Field(10, ge=1, le=100, description="Items recommended to each active user.")
    users: int = Field(500, ge=1, le=1_000_000, description="Active users per round (sampled).")
    retrain_every: int = Field(1, ge=1, le=200, description="Retrain the model every r rounds.")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Random seed (same seed, same result).")
    user_model: Literal["auto", "truth", "calibrated"] = Field(
        "auto",
        description="Who decides clicks and purchases: the demo shop's ground truth, or a model "
        "fitted on the data and calibrated to probabilities ('auto': truth when there is one).",
    )
    position_bias: Literal["auto", "log2", "power"] = Field(
        "auto",
        description="P(examine | rank r): 1/log2(r+1), or r^-eta ('auto': the ground truth's own "
        "r^-eta when it is used, else 1/log2(r+1)).",
    )
    eta: float = Field(0.8, ge=0.0, le=5.0, description="eta of the 'power' position bias.")
    bucket_cuts: tuple[float, ...] = Field(
        (0.8,), min_length=1, max_length=5, description="Cuts of the popularity buckets."
    )
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)

    @field_validator("bucket_cuts")
    @classmethod
    def _cuts(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < c < 1 for c in v) or list(v) != sorted(set(v)):
            raise ValueError("bucket cuts must be strictly increasing shares between 0 and 1")
        return v
