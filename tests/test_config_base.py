"""ltrec.config.ConfigBase: every config refuses an unknown key; the frozen ones refuse a change."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ltrec.analytics.conversion import GemsConfig
from ltrec.analytics.popularity import BucketConfig, PopularityConfig
from ltrec.config import ConfigBase
from ltrec.errors import ConfigError
from ltrec.evaluation.classification import ClassificationConfig
from ltrec.evaluation.split import SplitConfig
from ltrec.features.text import EncoderConfig
from ltrec.models.base import ModelConfig
from ltrec.rerank.rules import RulesConfig
from ltrec.rerank.strategies import TailBoostConfig
from ltrec.simulation.config import CalibrationConfig, PolicyConfig, SimulationConfig
from ltrec.store.importing.read import ReadConfig
from ltrec.store.importing.report import ImportConfig
from ltrec.synth.demo import DemoConfig

FROZEN = [
    GemsConfig,
    BucketConfig,
    PopularityConfig,
    ClassificationConfig,
    SplitConfig,
    EncoderConfig,
    ModelConfig,
    RulesConfig,
    TailBoostConfig,
    CalibrationConfig,
    PolicyConfig,
    SimulationConfig,
    DemoConfig,
]
#: Filled in step by step by the importer.
MUTABLE = [ImportConfig, ReadConfig]


@pytest.mark.parametrize(
    "cls", [c for c in FROZEN + MUTABLE if c is not DemoConfig], ids=lambda c: c.__name__
)
def test_an_unknown_key_is_refused(cls: type[ConfigBase]) -> None:
    assert issubclass(cls, ConfigBase)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        cls.model_validate({"no_such_key": 1})


def test_the_demo_config_says_so_as_bad_input() -> None:
    """``ltrec demo`` turns the validation error into a ConfigError (exit 2)."""
    with pytest.raises(ConfigError, match="no_such_key: Extra inputs are not permitted"):
        DemoConfig.model_validate({"no_such_key": 1})


@pytest.mark.parametrize("cls", FROZEN, ids=lambda c: c.__name__)
def test_a_frozen_config_refuses_a_change(cls: type[ConfigBase]) -> None:
    cfg = cls.model_construct()
    name = next(iter(cls.model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(cfg, name, None)


@pytest.mark.parametrize("cls", MUTABLE, ids=lambda c: c.__name__)
def test_the_importers_configs_take_a_change(cls: type[ConfigBase]) -> None:
    cfg = cls()
    name = next(iter(cls.model_fields))
    setattr(cfg, name, getattr(cfg, name))
    assert cfg == cls()
