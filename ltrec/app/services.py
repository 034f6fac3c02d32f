"""The write actions, each checked against the acting principal's rights and audited.

Pages, ``ltrec.ui`` and the CLI call these instead of the store, registry and simulation
functions, so a right is enforced on the server whatever the browser sends: a button a role
cannot see, a forged widget value or a URL all end here and are refused with
:class:`~ltrec.app.auth.PermissionDenied`. Every call appends one audit entry (``ok``,
``error`` with the message, or ``denied``); a dry-run import writes nothing and is not logged.

Every CLI group imports this module, so each action imports its implementation itself
(``# lazy:``): ``ltrec --help`` loads neither duckdb nor the model stack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ltrec.app import audit
from ltrec.app.auth import PermissionDenied, Principal, Right, require
from ltrec.errors import LtrecError
from ltrec.progress import Progress

T = TypeVar("T")


def _audited(
    principal: Principal,
    right: Right,
    action: str,
    target: str,
    fn: Callable[[], T],
    *,
    data_dir: Path | str | None,
    details: Mapping[str, Any] | None = None,
    summary: Callable[[T], str] | None = None,
    log_ok: bool = True,
) -> T:
    def log(outcome: audit.Outcome, message: str) -> None:
        audit.append(
            principal.email,
            principal.role.value,
            action,
            target,
            outcome,
            message,
            dict(details or {}),
            data_dir=data_dir,
        )

    try:
        require(principal, right)
    except PermissionDenied as err:
        log("denied", err.message)
        raise
    try:
        result = fn()
    except LtrecError as err:
        log("error", err.message)
        raise
    except Exception as err:  # logged as it is, then raised for the caller's own handling
        log("error", f"{err.__class__.__name__}: {err}")
        raise
    if log_ok:
        log("ok", summary(result) if summary is not None else "")
    return result


def check(
    principal: Principal,
    right: Right,
    action: str,
    target: str,
    data_dir: Path | str | None = None,
) -> None:
    """Refuse early, before a background job starts (the job's own call checks again and
    logs its outcome); a refusal is logged as ``denied``."""
    _audited(principal, right, action, target, lambda: None, data_dir=data_dir, log_ok=False)


# ------------------------------------------------------------------------------ data


def import_dataset(
    principal: Principal,
    name: str,
    *,
    dry_run: bool = False,
    data_dir: Path | str | None = None,
    **kwargs: Any,
) -> Any:
    """:func:`ltrec.store.importing.worker.run_import` for an admin (a dry run too: it reads the
    whole file, which only importers may make the server do)."""
    # in a worker process with memory and time limits: a hostile file cannot flood the server
    # lazy: the importer (duckdb, pyarrow) stays off the CLI start-up
    from ltrec.store.importing.worker import run_import as _import

    def run() -> Any:
        return _import(name, dry_run=dry_run, data_dir=data_dir, **kwargs)

    if dry_run:
        require(principal, Right.IMPORT)
        return run()
    files = {k: str(kwargs[k]) for k in ("events", "items", "users") if kwargs.get(k)}
    labels = kwargs.get("labels") or {}
    shown = {k: str(labels.get(k, Path(v).name)) for k, v in files.items()}
    return _audited(
        principal,
        Right.IMPORT,
        "import",
        f"dataset {name}",
        run,
        data_dir=data_dir,
        details={"files": shown, "replace": bool(kwargs.get("replace", False))},
        summary=lambda rep: rep.summary(),
    )


def build_demo(
    principal: Principal,
    config: Any = None,
    data_dir: Path | str | None = None,
    progress: Progress | None = None,
) -> Any:
    """Generate the demo shop (it replaces the dataset of its name, so it is an import)."""
    # lazy: the demo generator (duckdb) stays off the CLI start-up
    from ltrec.synth.demo import build_demo as _build

    name = getattr(config, "name", None) or "demo"
    return _audited(
        principal,
        Right.IMPORT,
        "import (demo shop)",
        f"dataset {name}",
        lambda: _build(config, data_dir=data_dir, progress=progress),
        data_dir=data_dir,
        summary=lambda rep: rep.summary(),
    )


def import_vectors(
    principal: Principal,
    name: str,
    file: Path | str,
    *args: Any,
    data_dir: Path | str | None = None,
    **kwargs: Any,
) -> Any:
    """Item vectors from a file into a dataset (``ltrec import-vectors``)."""
    # lazy: the vector importer (duckdb) stays off the CLI start-up
    from ltrec.store.vectors import import_vectors as _import

    return _audited(
        principal,
        Right.IMPORT,
        "import vectors",
        f"dataset {name}",
        lambda: _import(name, file, *args, data_dir=data_dir, **kwargs),
        data_dir=data_dir,
        details={"file": Path(file).name},
        summary=lambda rep: rep.summary(),
    )


def fetch_sample(
    principal: Principal,
    name: str,
    max_events: int | None = None,
    seed: int | None = None,
    data_dir: Path | str | None = None,
) -> Any:
    """Copy a training sample of an external dataset into the local store (an import)."""
    # lazy: external datasets (ibis) stay off the CLI start-up
    from ltrec.store.external import fetch_sample as _fetch

    return _audited(
        principal,
        Right.IMPORT,
        "fetch sample",
        f"dataset {name}",
        lambda: _fetch(name, max_events, seed, data_dir),
        data_dir=data_dir,
        details={"max_events": max_events, "seed": seed},
        summary=lambda rep: rep.summary(),
    )


def delete_dataset(principal: Principal, name: str, data_dir: Path | str | None = None) -> Any:
    """Delete a dataset (and what :func:`ltrec.store.delete_dataset` removes with it)."""
    # lazy: the store (duckdb) stays off the CLI start-up
    from ltrec.app.live_events import dropping_log
    from ltrec.store import delete_dataset as _delete  # lazy: duckdb, off the CLI start-up

    def run() -> Any:
        with dropping_log(name, data_dir):  # the API's event log goes with the dataset
            return _delete(name, data_dir)

    return _audited(
        principal, Right.DELETE, "delete dataset", f"dataset {name}", run, data_dir=data_dir
    )


def delete_run(
    principal: Principal, dataset: str, run_id: str, data_dir: Path | str | None = None
) -> None:
    # lazy: the run registry (duckdb) stays off the CLI start-up
    from ltrec.models.registry import delete_run as _delete

    _audited(
        principal,
        Right.DELETE,
        "delete run",
        f"run {run_id} of {dataset}",
        lambda: _delete(dataset, run_id, data_dir),
        data_dir=data_dir,
    )


# ------------------------------------------------------------------------------ models


def train(
    principal: Principal,
    dataset: str,
    model: str,
    params: Mapping[str, Any] | None = None,
    *,
    data_dir: Path | str | None = None,
    **kwargs: Any,
) -> Any:
    """:func:`ltrec.models.train.train` for an analyst; the audit entry names the saved run."""
    # lazy: training (duckdb, model stack) stays off the CLI start-up
    from ltrec.models.train import train as _train

    return _audited(
        principal,
        Right.TRAIN,
        "train",
        f"{model} on {dataset}",
        lambda: _train(dataset, model, params, data_dir=data_dir, **kwargs),
        data_dir=data_dir,
        details={"params": dict(params or {})},
        summary=lambda res: f"saved run {res.run_id}",
    )


def train_all_data(
    principal: Principal,
    dataset: str,
    model: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    data_dir: Path | str | None = None,
    **kwargs: Any,
) -> Any:
    """:func:`ltrec.models.train.train_all_data` (a fit on every event) for an analyst."""
    # lazy: training (duckdb, model stack) stays off the CLI start-up
    from ltrec.models.train import train_all_data as _train

    source = kwargs.get("from_run")
    return _audited(
        principal,
        Right.TRAIN,
        "train on all data",
        f"{model or 'model'} of run {source} on {dataset}" if source else f"{model} on {dataset}",
        lambda: _train(dataset, model, params, data_dir=data_dir, **kwargs),
        data_dir=data_dir,
        details={"params": dict(params or {}), "from_run": source},
        summary=lambda res: f"saved run {res.run_id}",
    )


def promote(
    principal: Principal,
    dataset: str,
    run_id: str,
    *,
    params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    data_dir: Path | str | None = None,
) -> dict[str, Any]:
    """Make a production run of ``run_id`` (the analyst right: it trains): fit the run's model
    and settings on every event, then mark the new run as the dataset's production run. An
    all-data run is marked as it is (no refit). Nothing is marked when the fit fails.

    Returns the ``ltrec promote --json`` object.
    """
    # lazy: the run registry (duckdb) stays off the CLI start-up
    from ltrec.models import registry
    from ltrec.models.train import source_headline, train_all_data  # lazy: model stack, as above

    def run() -> dict[str, Any]:
        previous = registry.production_run(dataset, data_dir)
        manifest = registry.run_manifest(dataset, run_id, data_dir)
        if registry.is_all_data(manifest) and not params:
            production, trained, seconds = run_id, False, None
        else:
            fit = train_all_data(
                dataset, None, params, from_run=run_id, progress=progress, data_dir=data_dir
            )
            production, trained, seconds = fit.run_id, True, round(fit.train_seconds, 3)
            manifest = fit.run.manifest
        registry.promote(dataset, production, data_dir)
        return {
            "dataset": dataset,
            "run_id": production,
            "production": production,
            "from_run": manifest.get("from_run"),
            "model": manifest.get("model"),
            "trained": trained,
            "train_seconds": seconds,
            "data_import_id": manifest.get("data_import_id"),
            "previous": previous,
            "source_metrics": source_headline(manifest),
        }

    return _audited(
        principal,
        Right.TRAIN,
        "promote",
        f"run {run_id} of {dataset}",
        run,
        data_dir=data_dir,
        details={"params": dict(params or {})},
        summary=lambda out: f"production run {out['production']}",
    )


def set_active_model(
    principal: Principal,
    dataset: str,
    run_id: str | None,
    apply: Callable[[str, str | None], None],
    data_dir: Path | str | None = None,
) -> None:
    """Choose the active model (``None``: none) through ``apply(dataset, run_id)``, which
    records it where the caller keeps it (the app: the session and its URL)."""
    _audited(
        principal,
        Right.SET_ACTIVE_MODEL,
        "set active model",
        f"{dataset}: {run_id or 'none'}",
        lambda: apply(dataset, run_id),
        data_dir=data_dir,
    )


def simulate(
    principal: Principal,
    dataset: str,
    policies: Sequence[Any],
    config: Any = None,
    *,
    data_dir: Path | str | None = None,
    **kwargs: Any,
) -> Any:
    # lazy: the simulator (duckdb, models) stays off the CLI start-up
    from ltrec.simulation import simulate as _simulate

    return _audited(
        principal,
        Right.SIMULATE,
        "simulate",
        f"dataset {dataset}",
        lambda: _simulate(dataset, policies, config, data_dir=data_dir, **kwargs),
        data_dir=data_dir,
        details={"policies": len(policies)},
        summary=lambda res: f"saved simulation {res.sim_id}" if res.sim_id else "not saved",
    )


# ------------------------------------------------------------------------------ exports


def export_lists(
    principal: Principal,
    dataset: str,
    run_id: str,
    out: Path | str,
    config: Any = None,
    *,
    data_dir: Path | str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Every user's list of a run to a file (``ltrec export``): ``k``, ``batch_size`` and
    ``allow_stale`` in ``kwargs``; ``engine="spark"``: scored and re-ranked on Spark
    (:func:`ltrec.app.spark_export.export_spark`, Parquet)."""
    # lazy: the pipeline (models, re-rankers) stays off the CLI start-up
    from ltrec.app.pipeline import RecSession

    stale_ok = bool(kwargs.pop("allow_stale", False))
    engine = kwargs.pop("engine", "local")

    def _export() -> dict[str, Any]:
        if engine == "spark":
            # lazy: the Spark export loads only for --engine spark
            from ltrec.app.spark_export import export_spark

            return export_spark(
                dataset, run_id, out, config, data_dir=data_dir, allow_stale=stale_ok, **kwargs
            )
        session = RecSession.open(
            dataset, run_id, config, data_dir=data_dir, allow_stale=stale_ok
        )
        return session.export(out, **kwargs)

    return _audited(
        principal,
        Right.EXPORT,
        "export",
        f"lists of run {run_id} of {dataset}",
        _export,
        data_dir=data_dir,
        details={"out": str(out)},
    )


def export(
    principal: Principal,
    what: str,
    produce: Callable[[], T],
    data_dir: Path | str | None = None,
) -> T:
    """An export the app builds in memory (e.g. the Studio's every-user lists): ``produce``
    runs only when ``principal`` may export."""
    return _audited(principal, Right.EXPORT, "export", what, produce, data_dir=data_dir)


def audit_log(principal: Principal, data_dir: Path | str | None = None) -> Any:
    """The audit log as a table, newest first (admins only)."""
    require(principal, Right.AUDIT)
    return audit.frame(data_dir)
