"""Settings, read from the environment (``LTREC_*``) each time they are asked for.

Column names and defaults that more than one module uses are defined here, once.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Canonical event types, in funnel order.
EVENT_TYPES: tuple[str, ...] = ("impression", "view", "cart", "purchase")

#: Default interaction weights by event type (DESIGN §4).
EVENT_WEIGHTS: dict[str, float] = {"impression": 0.0, "view": 1.0, "cart": 3.0, "purchase": 5.0}


class Settings(BaseSettings):
    """Everything a deployment may change. Env: ``LTREC_DATA_DIR``, ``LTREC_DATASET``, ..."""

    model_config = SettingsConfigDict(env_prefix="LTREC_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Holds every dataset and model.")
    dataset: str = Field("demo", description="The dataset the app opens first.")
    bucket_cuts: tuple[float, ...] = Field(
        (0.8,), description="Cumulative interaction shares that cut head / mid / tail."
    )
    k: int = Field(10, ge=1, le=1000, description="Default list length.")
    seed: int = Field(42, description="Default random seed.")
    small_cell_k: int = Field(
        10, ge=1, description="Segment cells with fewer users are suppressed."
    )
    max_upload_mb: int = Field(500, ge=1, description="Largest upload the Data page accepts.")
    max_reject_share: float = Field(0.05, ge=0.0, le=1.0)

    @field_validator("bucket_cuts")
    @classmethod
    def _cuts_increasing(cls, cuts: tuple[float, ...]) -> tuple[float, ...]:
        if not cuts or any(not 0 < c < 1 for c in cuts) or list(cuts) != sorted(set(cuts)):
            raise ValueError("bucket cuts must be strictly increasing shares between 0 and 1")
        return cuts

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def get_settings(**overrides: object) -> Settings:
    """Fresh settings from the environment (not cached, so tests can change the env)."""
    return Settings(**overrides)  # type: ignore[arg-type]
