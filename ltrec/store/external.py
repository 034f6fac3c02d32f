"""Datasets on an external engine (Spark or any Ibis backend), defined in a TOML file.

A file ``data/<name>.toml`` defines the dataset ``<name>`` beside the DuckDB files. The
analytics pages read it through Ibis unchanged (the queries run on the engine); models train on
a seeded sample fetched through Arrow into a local DuckDB dataset ``<name>-sample``
(:func:`fetch_sample`). Nothing is written to the engine.

The format (every key but ``backend`` and ``tables.events`` is optional)::

    backend = "pyspark"            # an Ibis backend: pyspark, duckdb, postgres, bigquery, ...
    description = "Clickstream on the analytics cluster"

    [connection]                   # keyword arguments of ibis.<backend>.connect(...)
    # e.g. for duckdb: database = "/srv/shop.duckdb" and read_only = true

    [connection_env]               # connection arguments taken from environment variables,
    password = "SHOP_DB_PASSWORD"  # so secrets stay out of the file

    [spark]                        # pyspark only: the session to build (or reuse if running)
    master = "local[4]"            # or "spark://host:7077", "yarn", ...
    app_name = "ltrec"
    [spark.config]
    "spark.sql.shuffle.partitions" = "64"

    [tables]                       # canonical table = "table", "db.table" or "catalog.db.table"
    events = "shop.events"
    items = "shop.products"        # absent: items are the distinct item ids of the events
    users = "shop.customers"       # absent: users are the distinct user ids of the events
    # user_derived = "shop.user_segments"   (derived segments, if precomputed)

    [columns.events]               # renames, canonical column = source column
    user_id = "customer_id"
    ts = "event_time"

    [sample]                       # what fetch_sample takes for model training
    max_events = 2_000_000
    seed = 42

Confinement (a TOML is as trusted as the data directory it sits in, no more): every path it names
(``database`` of the file engines, ``[connection]`` keys ending in ``path``, ``dir``,
``directory``, ``file`` or ``folder``, ``[spark.config]`` keys ending in ``dir``, ``path`` or
``file``) resolves, relative to the data directory, to a place inside the data directory or one of
the folders in the ``external_dirs`` setting (``LTREC_EXTERNAL_DIRS``); symlinks are followed
before the check, and ltrec's own files (dataset stores, runs, simulations) are refused. Spark's
warehouse defaults into the data directory, so no file is created outside it. ``[connection_env]``
may not read ltrec's own ``LTREC_*`` settings and secrets, and no message ever shows an environment
value or a secret-looking connection value (``password``, ``token``, ``secret``, ``key``, ...):
engine errors are redacted. Unknown keys are errors: at the top level and in every section, in
``[columns.events]`` (canonical event columns only), and in ``[connection]`` for engines whose
``connect`` takes a fixed set of arguments.

Events are cast to the canonical types (DESIGN §2); ``event_type`` goes through the same alias
table as the importer (``pv`` -> view, ``addtocart`` -> cart, ...); missing optional columns
(session_id, quantity, price, source) are NULL. Items and users keep their extra columns as
attributes and segment dimensions. Table and column names are validated identifiers; values are
never formatted into SQL (Ibis builds every query).
"""

# The only SQL here runs on the local sample file: fixed table names and quote_ident'd columns.
# ruff: noqa: S608

from __future__ import annotations

import inspect
import os
import re
import time
import tomllib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from ltrec.config import get_settings
from ltrec.errors import BadInputError, ConfigError, DatasetNotFoundError
from ltrec.store.connect import (
    SUFFIX,
    TOML_SUFFIX,
    check_name,
    data_dir,
    list_datasets,
    write_meta,
    writing,
)
from ltrec.store.finalize import finalize
from ltrec.store.schema import EVENT_ALIASES, EVENT_COLUMNS, ITEM_COLUMNS, quote_ident

#: Canonical tables a TOML may map.
TABLES = ("events", "items", "users", "user_derived")
_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,127}$")
_COLUMN = re.compile(r"^[^\x00-\x1f]{1,128}$")
_BACKEND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
#: ``[connection]`` keys that hold a file or folder, whatever the engine.
_PATH_KEY = re.compile(r"(^|_)(path|dir|directory|file|folder|filename)$", re.IGNORECASE)
#: ``[spark.config]`` keys that hold a file or folder (``spark.sql.warehouse.dir``, ...).
_SPARK_PATH_KEY = re.compile(r"(\.|^)[A-Za-z]*(dir|directory|path|file)$", re.IGNORECASE)
#: Engines whose ``database`` argument is a local file.
_FILE_ENGINES = {"duckdb", "sqlite"}
#: Connection keys whose values are secrets (never shown in a message).
_SECRET_KEY = re.compile(r"pass|secret|token|key|credential|auth", re.IGNORECASE)
_IBIS_TYPES = {
    "VARCHAR": "string",
    "TIMESTAMP": "timestamp",
    "INTEGER": "int32",
    "DOUBLE": "float64",
    "BOOLEAN": "boolean",
}


class SparkConfig(BaseModel):
    """The Spark session of a ``pyspark`` dataset (reused when one is already running)."""

    model_config = ConfigDict(extra="forbid")

    master: str = Field("local[2]", min_length=1, max_length=500)
    app_name: str = Field("ltrec", min_length=1, max_length=200)
    config: dict[str, str | int | float | bool] = Field(default_factory=dict)


class SampleConfig(BaseModel):
    """How many events models train on, and the seed of the user sample."""

    model_config = ConfigDict(extra="forbid")

    max_events: int = Field(1_000_000, ge=100, le=200_000_000)
    seed: int = Field(42, ge=0, le=2**31 - 1)


class ExternalConfig(BaseModel):
    """The parsed TOML of an external dataset (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field(min_length=1, max_length=32)
    description: str = Field("", max_length=1000)
    connection: dict[str, Any] = Field(default_factory=dict)
    connection_env: dict[str, str] = Field(default_factory=dict)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    tables: dict[str, str]
    columns: dict[str, dict[str, str]] = Field(default_factory=dict)
    sample: SampleConfig = Field(default_factory=SampleConfig)
    #: The data directory the TOML was read from (paths are confined to it).
    _root: Path | None = PrivateAttr(default=None)

    @field_validator("connection_env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        for arg, var in env.items():
            if not _ENV_NAME.match(var):
                raise ValueError(f"connection_env.{arg}: {var!r} is not an environment name")
            if var.upper().startswith("LTREC_"):
                raise ValueError(
                    f"connection_env.{arg}: ${var} is one of ltrec's own settings or secrets; "
                    "an engine may only read variables meant for it"
                )
        return env

    @field_validator("backend")
    @classmethod
    def _backend(cls, name: str) -> str:
        known = backend_names()
        if not _BACKEND.match(name) or name not in known:
            raise ValueError(f"unknown Ibis backend {name!r}; installed: {', '.join(known)}")
        return name

    @field_validator("tables")
    @classmethod
    def _tables(cls, tables: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(tables) - set(TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; map some of {', '.join(TABLES)}")
        if "events" not in tables:
            raise ValueError("tables.events is required")
        for ref in tables.values():
            split_ref(ref)
        return tables

    @field_validator("columns")
    @classmethod
    def _columns(cls, columns: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for table, renames in columns.items():
            if table not in TABLES:
                raise ValueError(f"columns.{table}: not a canonical table")
            unknown = sorted(set(renames) - set(EVENT_COLUMNS)) if table == "events" else []
            if unknown:
                raise ValueError(
                    f"columns.events: unknown column(s) {', '.join(unknown)}; events have "
                    f"{', '.join(EVENT_COLUMNS)}"
                )
            for new, old in renames.items():
                if not _PART.match(new) or not _COLUMN.match(old):
                    raise ValueError(f"columns.{table}.{new} = {old!r}: not a plain column name")
        return columns


def backend_names() -> list[str]:
    """Installed Ibis backends (entry points)."""
    return sorted({e.name for e in entry_points(group="ibis.backends")})


def split_ref(ref: str) -> tuple[str, str | tuple[str, str] | None]:
    """``"db.table"`` -> ``("table", "db")``; ``"cat.db.table"`` -> ``("table", ("cat", "db"))``."""
    parts = ref.split(".")
    if not 1 <= len(parts) <= 3 or not all(_PART.match(p) for p in parts):
        raise ValueError(f"table reference {ref!r} must be table, db.table or catalog.db.table")
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2:
        return parts[1], parts[0]
    return parts[2], (parts[0], parts[1])


# ------------------------------------------------------------------------ files


def toml_path(name: str, data_dir_: Path | str | None = None) -> Path:
    return data_dir(data_dir_) / f"{check_name(name)}{TOML_SUFFIX}"


def list_external(data_dir_: Path | str | None = None) -> list[str]:
    """Names of the TOML-defined datasets (a DuckDB file of the same name takes precedence)."""
    root = data_dir(data_dir_)
    if not root.is_dir():
        return []
    local = set(list_datasets(root))
    names = []
    for p in root.glob(f"*{TOML_SUFFIX}"):
        name = p.name[: -len(TOML_SUFFIX)]
        if p.name.startswith(".") or name in local:
            continue
        try:
            check_name(name)
        except BadInputError:
            continue
        names.append(name)
    return sorted(names)


def is_external(name: str, data_dir_: Path | str | None = None) -> bool:
    try:
        return name in list_external(data_dir_)
    except BadInputError:
        return False


def config_version(name: str, data_dir_: Path | str | None = None) -> str:
    """Changes when the TOML file changes: a cache key (the engine's data may change too, so
    caches over external datasets should also expire)."""
    try:
        st = toml_path(name, data_dir_).stat()
    except FileNotFoundError:
        raise DatasetNotFoundError(name, list_external(data_dir_)) from None
    return f"ext-{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"


def load_config(name: str, data_dir_: Path | str | None = None) -> ExternalConfig:
    """Parse and validate ``data/<name>.toml``. Raises :class:`ConfigError` with the reason."""
    path = toml_path(name, data_dir_)
    if not path.is_file():
        raise DatasetNotFoundError(name, list_external(data_dir_))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name} is not valid TOML ({exc})") from None
    try:
        cfg = ExternalConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "file"
        raise ConfigError(
            f"{path.name}: {where}: {first['msg']}",
            hint="see the format in the ltrec.store.external docstring (README: external data)",
        ) from None
    return _confine(cfg, data_dir(data_dir_), path.name)


# ------------------------------------------------------------------------ confinement


def allowed_dirs(root: Path) -> list[Path]:
    """The folders a TOML may name paths in: the data directory and ``external_dirs``."""
    return [root.resolve(), *(Path(d).resolve() for d in get_settings().external_dirs)]


def confine_path(value: str, where: str, root: Path, *, shown: bool = True) -> str:
    """``value`` resolved (relative to the data directory, symlinks followed) if it lies in an
    allowed folder, else :class:`ConfigError`. ``shown=False``: the value came from the
    environment and is not repeated in the message."""
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ConfigError(f"{where} must be a path (text)")
    path = Path(value)
    resolved = (path if path.is_absolute() else root / path).resolve()
    allowed = allowed_dirs(root)
    if not any(resolved.is_relative_to(a) for a in allowed):
        what = f"{where} = {value!r}" if shown else where
        raise ConfigError(
            f"{what} points outside the data directory",
            hint="put the file in the data directory (paths are relative to it), or add its "
            "folder to the external_dirs setting (LTREC_EXTERNAL_DIRS='[\"/srv/folder\"]')",
        )
    return str(resolved)


def _not_ltrec_own(path: Path, where: str, root: Path) -> None:
    """An engine may not open ltrec's own files (a dataset store, runs, simulations, the audit
    log): it could write or lock them."""
    base = root.resolve()
    own = (path.parent == base and path.suffix in (SUFFIX, ".jsonl", ".toml", ".lock")) or any(
        path.is_relative_to(base / sub) for sub in ("models", "simulations")
    )
    if own:
        raise ConfigError(
            f"{where} is one of ltrec's own files",
            hint="point the engine at your own database file (e.g. in a sources/ folder)",
        )


def _is_path_arg(backend: str, key: str) -> bool:
    return bool(_PATH_KEY.search(key)) or (key == "database" and backend in _FILE_ENGINES)


def _confine(cfg: ExternalConfig, root: Path, file: str) -> ExternalConfig:
    """Check every path of ``cfg`` against the allowed folders; resolve them; default Spark's
    warehouse into the data directory; refuse connection keys the engine does not take."""
    conn = dict(cfg.connection)
    for key, value in conn.items():
        if _is_path_arg(cfg.backend, key) and not (key == "database" and value == ":memory:"):
            conn[key] = confine_path(value, f"{file}: connection.{key}", root)
            _not_ltrec_own(Path(conn[key]), f"{file}: connection.{key} = {value!r}", root)
    _check_connect_keys(cfg.backend, [*conn, *cfg.connection_env], file)
    spark = dict(cfg.spark.config)
    for key, value in spark.items():
        if _SPARK_PATH_KEY.search(key):
            spark[key] = confine_path(str(value), f"{file}: spark.config.{key}", root)
    spark.setdefault("spark.sql.warehouse.dir", str(root.resolve() / ".spark-warehouse"))
    out = cfg.model_copy(
        update={
            "connection": conn,
            "spark": cfg.spark.model_copy(update={"config": spark}),
        }
    )
    out._root = root
    return out


def _check_connect_keys(backend: str, keys: list[str], file: str) -> None:
    """Unknown connection keys are errors where the engine's ``connect`` has fixed arguments."""
    if backend == "pyspark" or not keys:
        return
    try:
        params = inspect.signature(getattr(ibis, backend).connect).parameters
    except Exception:  # noqa: BLE001 - a backend that cannot be imported is reported on connect
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # free-form engine options: the engine itself rejects unknown ones
    valid = [n for n in params if n != "self"]
    unknown = sorted(set(keys) - set(valid))
    if unknown:
        raise ConfigError(
            f"{file}: connection: unknown key(s) {', '.join(unknown)} for the {backend} engine",
            hint=f"valid keys: {', '.join(valid)}",
        )


def redact(text: str, cfg: ExternalConfig | None = None) -> str:
    """``text`` with every environment value an engine was given, every secret-looking
    connection value and every ``LTREC_*`` secret replaced by ``***``."""
    secrets: set[str] = set()
    if cfg is not None:
        secrets.update(os.environ.get(var, "") for var in cfg.connection_env.values())
        secrets.update(str(v) for k, v in cfg.connection.items() if _SECRET_KEY.search(k))
    secrets.update(
        v for k, v in os.environ.items() if k.startswith("LTREC_") and _SECRET_KEY.search(k)
    )
    for value in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


# ------------------------------------------------------------------------ connecting


def _spark_session(cfg: SparkConfig) -> Any:  # cfg.config holds the confined paths
    from pyspark.sql import SparkSession  # lazy: pyspark only for a Spark-backed dataset

    builder = SparkSession.builder.master(cfg.master).appName(cfg.app_name)
    for k, v in cfg.config.items():
        builder = builder.config(k, str(v).lower() if isinstance(v, bool) else str(v))
    return builder.getOrCreate()


def connect_backend(cfg: ExternalConfig) -> ibis.BaseBackend:
    """An Ibis backend for ``cfg`` (a Spark session is built or reused for ``pyspark``)."""
    kwargs = dict(cfg.connection)
    root = cfg._root if cfg._root is not None else data_dir()
    for arg, var in cfg.connection_env.items():
        value = os.environ.get(var)
        if value is None:
            raise ConfigError(
                f"connection argument {arg!r} comes from ${var}, which is not set",
                hint=f"export {var}=... before starting ltrec",
            )
        if _is_path_arg(cfg.backend, arg) and not (arg == "database" and value == ":memory:"):
            where = f"connection argument {arg!r} (from ${var})"
            value = confine_path(value, where, root, shown=False)
        kwargs[arg] = value
    try:
        if cfg.backend == "pyspark":
            return ibis.pyspark.connect(_spark_session(cfg.spark), **kwargs)
        return getattr(ibis, cfg.backend).connect(**kwargs)
    except (ImportError, ModuleNotFoundError) as exc:
        raise ConfigError(
            f"the Ibis {cfg.backend} backend cannot be loaded ({redact(str(exc), cfg)})",
            hint=f"pip install 'ibis-framework[{cfg.backend}]'",
        ) from None
    except Exception as exc:  # noqa: BLE001 - each engine raises its own connection errors
        raise ConfigError(
            f"cannot connect to the {cfg.backend} engine: {redact(_first_line(exc), cfg)[:300]}",
            hint="check the [connection] section of the dataset's TOML file",
        ) from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0] if lines else exc.__class__.__name__


@dataclass
class ExternalSource:
    """An Ibis backend seen through a TOML's table mapping: ``table(canonical name)``.

    This is what :class:`ltrec.analytics.backend.Store` wraps (it only calls ``table``).
    """

    name: str
    config: ExternalConfig
    backend: ibis.BaseBackend

    def _raw(self, canonical: str) -> ir.Table:
        table, database = split_ref(self.config.tables[canonical])
        try:
            t = self.backend.table(table, database=database)
        except Exception as exc:  # noqa: BLE001 - engine-specific "table not found"
            raise ConfigError(
                f"external dataset '{self.name}': table {self.config.tables[canonical]!r} "
                f"({canonical}) cannot be read: {redact(_first_line(exc), self.config)[:200]}",
                hint="check [tables] in the dataset's TOML file",
            ) from None
        renames = self.config.columns.get(canonical, {})
        missing = [old for old in renames.values() if old not in t.columns]
        if missing:
            raise ConfigError(
                f"external dataset '{self.name}': {canonical} has no column(s) "
                f"{', '.join(missing)}; columns are: {', '.join(t.columns[:30])}",
                hint=f"fix [columns.{canonical}] in the dataset's TOML file",
            )
        if renames:
            # canonical names replace source names; a source column already named like a
            # canonical target is dropped so the rename cannot collide
            clash = [n for n in renames if n in t.columns and n not in renames.values()]
            t = t.drop(*clash) if clash else t
            t = t.rename(renames)
        return t

    def table(self, name: str) -> ir.Table:
        if name == "events":
            return self._events()
        if name == "items":
            return self._items()
        if name == "users":
            return self._users()
        if name in self.config.tables:
            return self._raw(name)
        raise KeyError(f"table {name!r} is not mapped")

    def _events(self) -> ir.Table:
        t = self._raw("events")
        need = [c for c in ("user_id", "item_id", "event_type", "ts") if c not in t.columns]
        if need:
            raise ConfigError(
                f"external dataset '{self.name}': events lack {', '.join(need)}",
                hint='map them in [columns.events], e.g. user_id = "customer_id"',
            )
        cols = {}
        for col, typ in EVENT_COLUMNS.items():
            ityp = _IBIS_TYPES[typ]
            if col == "event_type":
                # not .strip(): ibis 12 on Spark strips the letter 'v' too ('pv' -> 'p')
                raw = t.event_type.cast("string").re_replace(r"^\s+|\s+$", "").lower()
                cols[col] = raw.substitute(EVENT_ALIASES, else_=raw)
            elif col in t.columns:
                cols[col] = t[col].cast(ityp)
            else:
                cols[col] = ibis.null(ityp)
        return t.select(**cols)

    def _items(self) -> ir.Table:
        if "items" not in self.config.tables:
            ev = self._events().select("item_id").distinct()
            return ev.mutate(
                **{c: ibis.null(_IBIS_TYPES[t]) for c, t in ITEM_COLUMNS.items() if c != "item_id"}
            )
        t = self._raw("items")
        if "item_id" not in t.columns:
            raise ConfigError(
                f"external dataset '{self.name}': items lack item_id",
                hint="map it in [columns.items]",
            )
        core = {
            c: (t[c].cast(_IBIS_TYPES[typ]) if c in t.columns else ibis.null(_IBIS_TYPES[typ]))
            for c, typ in ITEM_COLUMNS.items()
        }
        extra = {c: t[c] for c in t.columns if c not in core}
        return t.select(**core, **extra)

    def _users(self) -> ir.Table:
        if "users" not in self.config.tables:
            return self._events().select("user_id").distinct()
        t = self._raw("users")
        if "user_id" not in t.columns:
            raise ConfigError(
                f"external dataset '{self.name}': users lack user_id",
                hint="map it in [columns.users]",
            )
        return t.select(
            user_id=t.user_id.cast("string"), **{c: t[c] for c in t.columns if c != "user_id"}
        )


def open_external(name: str, data_dir_: Path | str | None = None) -> ExternalSource:
    """Connect to the engine of an external dataset. Wrap it as ``Store(open_external(...))``."""
    cfg = load_config(name, data_dir_)
    return ExternalSource(name, cfg, connect_backend(cfg))


# ------------------------------------------------------------------------ training sample


_BUCKETS = 1_000_000


def sample_name(name: str) -> str:
    """The local DuckDB dataset that holds an external dataset's training sample."""
    return check_name(f"{name[:57]}-sample")


@dataclass
class SampleReport:
    """What :func:`fetch_sample` fetched. ``to_dict`` keys are a public interface."""

    source: str
    dataset: str
    total_events: int
    total_users: int
    sampled_users: int
    events: int
    items: int
    users: int
    fraction: float
    seed: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def summary(self) -> str:
        return (
            f"Sampled {self.events:,} of {self.total_events:,} events "
            f"({self.sampled_users:,} of {self.total_users:,} users, seed {self.seed}) from "
            f"'{self.source}' into the local dataset '{self.dataset}' in {self.seconds:.1f}s."
        )


def fetch_sample(
    name: str,
    max_events: int | None = None,
    seed: int | None = None,
    data_dir_: Path | str | None = None,
    source: ExternalSource | None = None,
) -> SampleReport:
    """Copy a seeded sample of an external dataset into the DuckDB dataset ``<name>-sample``.

    Whole users are sampled: user ``u`` is in when ``|hash(u + "#" + seed)| mod 10^6`` (the
    engine's own hash) is below ``10^6 * max_events / total events``, so every sampled user
    keeps their full history, as models need; the result is capped at ``max_events`` events
    (ordered by user and time). Items and users are those the sampled events name. Everything
    travels through Arrow (``to_pyarrow``).
    """
    start = time.perf_counter()
    src = source or open_external(name, data_dir_)
    cfg = src.config.sample
    max_events = int(max_events or cfg.max_events)
    seed = int(cfg.seed if seed is None else seed)
    try:
        SampleConfig(max_events=max_events, seed=seed)  # bounds
    except ValidationError as exc:
        raise ConfigError(f"sample: {exc.errors()[0]['msg']}") from None
    ev = src.table("events")
    total = int(ev.count().to_pyarrow().as_py())
    all_users = ev.select("user_id").distinct()
    n_users = int(all_users.count().to_pyarrow().as_py())
    fraction = min(1.0, max_events / total) if total else 1.0
    if fraction < 1.0:
        # a seeded hash of the user id, not Table.sample: Spark has no seeded sample in Ibis,
        # and this keeps a user in or out of the sample whatever the partitioning
        bucket = (ev.user_id.concat(f"#{seed}").hash() % _BUCKETS).abs()
        ev = ev.filter(bucket < int(round(fraction * _BUCKETS)))
    ev = ev.order_by(["user_id", "ts", "item_id"]).limit(max_events)
    events = ev.to_pyarrow()
    keys = ibis.memtable(events.select(["item_id"]).group_by("item_id").aggregate([]))
    ukeys = ibis.memtable(events.select(["user_id"]).group_by("user_id").aggregate([]))
    ukeys_n = int(pc.count_distinct(events["user_id"]).as_py())
    items_t, users_t = src.table("items"), src.table("users")
    # the id lists go to the engine as in-memory tables (Arrow), never as SQL text
    items = items_t.semi_join(keys, items_t.item_id == keys.item_id).to_pyarrow()
    users = users_t.semi_join(ukeys, users_t.user_id == ukeys.user_id).to_pyarrow()
    out = sample_name(name)
    with writing(out, data_dir_, replace=True) as con:
        con.register("_s_events", events)
        con.execute("INSERT INTO events BY NAME SELECT * FROM _s_events")
        for table, arrow in (("items", items), ("users", users)):
            con.register(f"_s_{table}", arrow)
            have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
            # extra columns (attributes, segments) keep the engine's types
            for col, typ, *_ in con.execute(f"DESCRIBE SELECT * FROM _s_{table}").fetchall():
                if col not in have:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {quote_ident(col)} {typ}")
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _s_{table}")
        write_meta(
            con,
            {
                "source": f"external:{name}",
                "source_backend": src.config.backend,
                "sample_total_events": total,
                "sample_total_users": n_users,
                "sample_fraction": fraction,
                "sample_seed": seed,
                "sample_events": events.num_rows,
            },
        )
        finalize(con)
    return SampleReport(
        source=name,
        dataset=out,
        total_events=total,
        total_users=n_users,
        sampled_users=ukeys_n,
        events=events.num_rows,
        items=items.num_rows,
        users=users.num_rows,
        fraction=fraction,
        seed=seed,
        seconds=time.perf_counter() - start,
    )


def spark_frame(source: ExternalSource, expr: ir.Table) -> Any:
    """An Ibis expression of a ``pyspark`` dataset as a Spark DataFrame (nothing collected):
    for the Spark jobs that Ibis cannot express (MLlib, ``applyInPandas``)."""
    if source.config.backend != "pyspark":
        raise BadInputError(
            f"external dataset '{source.name}' runs on {source.config.backend}, not Spark",
            hint="--engine spark trains and exports datasets whose TOML says backend = "
            '"pyspark"; fetch a sample (`ltrec sample NAME`) to train others locally',
        )
    backend: Any = source.backend
    backend._run_pre_execute_hooks(expr)  # registers in-memory tables (id lists) on Spark
    return backend._session.sql(backend.compile(expr))


__all__ = [
    "SUFFIX",
    "ExternalConfig",
    "ExternalSource",
    "SampleReport",
    "config_version",
    "fetch_sample",
    "is_external",
    "list_external",
    "load_config",
    "open_external",
    "sample_name",
    "spark_frame",
    "toml_path",
]
