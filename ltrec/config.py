"""Settings, read from the environment (``LTREC_*``) each time they are asked for.

Column names and defaults that more than one module uses are defined here, once.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ltrec.errors import ConfigError

#: Canonical event types, in funnel order.
EVENT_TYPES: tuple[str, ...] = ("impression", "view", "cart", "purchase")

#: Default interaction weights by event type (DESIGN §4).
EVENT_WEIGHTS: dict[str, float] = {"impression": 0.0, "view": 1.0, "cart": 3.0, "purchase": 5.0}

#: The largest share of an import's rows (events, items, users or item vectors) that may be
#: rejected with the rest still imported; above it nothing is written (exit 2). The default of
#: ``LTREC_MAX_REJECT_SHARE`` and so of the CLI's ``--max-reject-share`` and the Data page.
MAX_REJECT_SHARE: float = 0.05

#: The accuracy a re-ranking setting may cost by default: at most 5% of the base order's NDCG@K
#: (``ltrec tune --max-loss`` and the Studio's recommended setting).
MAX_LOSS: float = 0.05


class ConfigBase(BaseModel):
    """The base of every ltrec config (model, split, strategy, encoder, import, demo, simulation,
    analytics views): an unknown key is an error, never silently ignored (a misspelt ``--set``,
    preset or JSON setting fails loudly), and a config is frozen (hashable, so it keys caches,
    and unchanged once a run or manifest recorded it). A config that its caller fills in step
    by step (the importer's) sets ``model_config = ConfigDict(frozen=False)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    max_upload_mb: int = Field(
        200,
        ge=1,
        le=100_000,
        description="Largest upload in MB: the Data page's widget and the server's own limit "
        "(Streamlit's server.maxUploadSize follows it).",
    )
    address: str = Field(
        "127.0.0.1",
        min_length=1,
        description="The address `./run.sh` serves on. Anything but a loopback address needs "
        "sign-in configured (README: Team sign-in) or allow_anonymous.",
    )
    allow_anonymous: bool = Field(
        False,
        description="Serve a non-local address without sign-in: everyone is the local admin. "
        "Warned on every start.",
    )
    roles_file: Path | None = Field(
        None, description="Who has which role once sign-in is on; default <data_dir>/roles.toml."
    )
    max_reject_share: float = Field(
        MAX_REJECT_SHARE, ge=0.0, le=1.0, description="Rejected rows an import tolerates."
    )
    lock_wait_s: float = Field(
        10.0,
        ge=0.0,
        le=3600.0,
        description="Seconds a write (import, delete, cache) waits for another writer of the "
        "same dataset before failing with 'busy, try again'.",
    )
    import_max_memory_mb: int = Field(
        2048,
        ge=256,
        le=1_048_576,
        description="Memory limit (MB) of the process an import runs in (CLI and Data page): "
        "a file that needs more ends with a clear error and the store unchanged.",
    )
    import_timeout_s: float = Field(
        1800.0,
        ge=1.0,
        le=7 * 86_400.0,
        description="Seconds an import may run before its process is stopped (store unchanged).",
    )
    duckdb_memory_limit_mb: int | None = Field(
        None,
        ge=64,
        description="DuckDB's memory_limit for import connections (None: DuckDB's default, 80% "
        "of RAM). The import worker sets it below its own memory limit, so DuckDB spills.",
    )
    duckdb_temp_dir: Path | None = Field(
        None, description="Where DuckDB spills (None: DuckDB's default beside the database)."
    )
    duckdb_threads: int | None = Field(None, ge=1, le=1024, description="DuckDB's threads.")
    app_duckdb_memory_mb: int = Field(
        512,
        ge=64,
        le=1_048_576,
        description="DuckDB's memory_limit for the app's read connection (one per dataset per "
        "server process): past it, aggregations spill to a temp folder instead of growing the "
        "server (DuckDB's default is 80% of RAM). Spills go to LTREC_DUCKDB_TEMP_DIR, else a "
        "per-process folder under the system temp dir.",
    )
    ann_min_items: int = Field(
        200_000,
        ge=0,
        le=10**9,
        description="Catalogues with at least this many items get an approximate nearest-"
        "neighbour index at training (inner-product models: ALS, two-tower), used for their "
        "candidate retrieval (ltrec.models.ann); 0: never, every list exact.",
    )
    external_dirs: tuple[Path, ...] = Field(
        (),
        description="Folders besides the data directory that external-engine TOML files may "
        'name paths in (JSON list, e.g. LTREC_EXTERNAL_DIRS=\'["/srv/warehouse"]\').',
    )
    # --engine spark (train, export; README: Spark). Read only when a command starts Spark.
    spark_master: str = Field(
        "local[*]",
        min_length=1,
        max_length=500,
        description="Where `--engine spark` runs: local[N] (N cores of this machine), "
        "spark://host:7077, yarn, k8s://... (a running session is reused as it is).",
    )
    spark_driver_memory: str | None = Field(
        None,
        pattern=r"^[0-9]{1,6}[kmgt]?$",
        description="spark.driver.memory, e.g. 4g: the driver collects the factors and the "
        "interaction matrix of the run (None: Spark's default, 1g).",
    )
    spark_config: dict[str, str] = Field(
        default_factory=dict,
        description='More Spark settings (JSON object), e.g. LTREC_SPARK_CONFIG=\'{"spark.'
        'executor.memory": "8g", "spark.sql.shuffle.partitions": "400"}\'.',
    )

    @field_validator("bucket_cuts")
    @classmethod
    def _cuts_increasing(cls, cuts: tuple[float, ...]) -> tuple[float, ...]:
        if not cuts or any(not 0 < c < 1 for c in cuts) or list(cuts) != sorted(set(cuts)):
            raise ValueError("bucket cuts must be strictly increasing shares between 0 and 1")
        return cuts

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def roles_path(self) -> Path:
        return self.roles_file if self.roles_file is not None else self.data_dir / "roles.toml"

    @property
    def audit_path(self) -> Path:
        return self.data_dir / "audit.jsonl"


def duckdb_config(
    settings: Settings | None = None,
) -> dict[str, str | bool | int | float | list[str]]:
    """DuckDB connection settings from the ``duckdb_*`` settings (empty when none is set); the
    value type is the one ``duckdb.connect(config=...)`` declares (the values are all text)."""
    s = settings or get_settings()
    cfg: dict[str, str | bool | int | float | list[str]] = {}
    if s.duckdb_memory_limit_mb is not None:
        cfg["memory_limit"] = f"{s.duckdb_memory_limit_mb}MB"
    if s.duckdb_temp_dir is not None:
        cfg["temp_directory"] = str(s.duckdb_temp_dir)
    if s.duckdb_threads is not None:
        cfg["threads"] = str(s.duckdb_threads)
    return cfg


#: Settings built per snapshot of the ``LTREC_*`` environment (building them is 0.4 ms of
#: pydantic-settings work on a quiet core, 25 ms on a busy one, and a page asks ~40 times per
#: run: measured in benchmarks/bench_pages.py); bounded.
_SETTINGS: dict[tuple[tuple[str, str], ...], Settings] = {}
_SETTINGS_MAX = 16


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, as it is now (a changed ``LTREC_*`` variable gives new
    settings at once, so tests can change the env); each call returns its own copy.

    Raises:
        ConfigError: an ``LTREC_*`` variable holds a value out of its bounds or of the wrong
            type, named with the variable and the rule it breaks.
    """



    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("LTREC_")))
    if not overrides and key in _SETTINGS:
        return _SETTINGS[key].model_copy()
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]  # overrides are checked by pydantic at run time
        if not overrides:
            if len(_SETTINGS) >= _SETTINGS_MAX:
                _SETTINGS.clear()
            _SETTINGS[key] = settings
            return settings.model_copy()
        return settings
    except ValidationError as err:
        first = err.errors()[0]
        name = "LTREC_" + str(first["loc"][0]).upper() if first["loc"] else "an LTREC_ variable"
        raise ConfigError(
            f"{name} is not usable: {first['msg']} (got {first.get('input')!r})",
            hint=f"fix or unset {name} in the environment",
        ) from None
