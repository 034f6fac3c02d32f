"""Background training jobs for the Model Lab page.

Training a model can take minutes; run in the page's own script thread it would hold that
browser session, and every rerun would start over. Instead :func:`start` runs
:func:`ltrec.models.train.train` in a daemon thread and records its progress in a process-wide
job table keyed by dataset, which every session's page polls (``st.fragment(run_every=...)``).
"Promote to production" (:func:`promote`) is a job of the same table: an all-data fit of the
chosen run (:func:`ltrec.app.services.promote`), marked as the dataset's production run.

One writer per dataset: a second request while a job on the same dataset runs is refused at once
with :class:`~ltrec.errors.TrainingBusyError` (a clear message, nothing started). The
registry's own training lock (held by ``train``) covers other processes (the CLI, a second app
server): a job that meets it fails with the same message and the registry is untouched.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ltrec.app import services
from ltrec.app.auth import Principal, Right
from ltrec.errors import LtrecError, TrainingBusyError
from ltrec.models.base import make_model
from ltrec.models.registry import run_manifest

Status = Literal["running", "done", "failed"]
Kind = Literal["train", "promote"]


@dataclass
class Job:
    """One training run in the background; fields are updated by its thread."""

    dataset: str
    model: str
    params: dict[str, Any]
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    done: float = 0.0
    message: str = "starting"
    status: Status = "running"
    run_id: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    note: str | None = None  # the run's data note (why it cannot beat popularity here)
    error: LtrecError | None = None
    kind: Kind = "train"  # "promote": an all-data fit of run ``source`` marked as production
    source: str | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def eta(self) -> float | None:
        """Seconds left, extrapolated from the progress so far (None until it means anything)."""
        if not self.running or self.done < 0.05:
            return None
        return self.elapsed * (1.0 - self.done) / self.done

    def progress(self, done: float, message: str) -> None:
        self.done = max(self.done, float(min(1.0, max(0.0, done))))
        self.message = message


_jobs: dict[str, Job] = {}  # dataset -> its latest job
_guard = threading.Lock()


def current(dataset: str) -> Job | None:
    """The latest job on ``dataset`` (running or finished), or None."""
    with _guard:
        return _jobs.get(dataset)


def _run(job: Job, who: Principal, k: int, data_dir: Path | str | None) -> None:
    try:
        if job.kind == "promote":
            out = services.promote(
                who, job.dataset, str(job.source), progress=job.progress, data_dir=data_dir
            )
            job.run_id = out["production"]
            job.metrics = out["source_metrics"]
        else:
            result = services.train(
                who,
                job.dataset,
                job.model,
                job.params,
                k=k,
                progress=job.progress,
                data_dir=data_dir,
            )
            job.run_id = result.run_id
            job.metrics = result.to_dict()["metrics"]
            job.note = result.to_dict().get("data_note")
        job.status = "done"
        job.message = f"saved run {job.run_id}"
        job.done = 1.0
    except LtrecError as err:
        job.error = err
        job.status = "failed"
    except Exception as err:  # noqa: BLE001 - a thread must not die silently: report it
        job.error = LtrecError(
            f"training failed: {err.__class__.__name__}: {err}",
            hint="check the parameters; the registry was not changed",
        )
        job.status = "failed"
    finally:
        job.finished = time.monotonic()


def start(
    dataset: str,
    model: str,
    params: Mapping[str, Any] | None = None,
    *,
    k: int = 10,
    data_dir: Path | str | None = None,
    principal: Principal,
) -> Job:
    """Start training ``model`` on ``dataset`` in a background thread; returns its job.

    ``principal`` must have the train right (checked here and again by the audited
    :func:`ltrec.app.services.train` in the thread).

    Raises:
        PermissionDenied: the principal may not train (nothing is started).
        TrainingBusyError: a job on this dataset is still running (nothing is started).
        ConfigError: bad params (checked before the thread starts).
    """
    services.check(principal, Right.TRAIN, "train", f"{model} on {dataset}", data_dir)
    make_model(model, params or {})  # bad params fail here, in the page, not in the thread
    return _start(Job(dataset, model, dict(params or {})), principal, k, data_dir)


def _start(job: Job, principal: Principal, k: int, data_dir: Path | str | None) -> Job:
    with _guard:
        prev = _jobs.get(job.dataset)
        if prev is not None and prev.running:
            raise TrainingBusyError(job.dataset)
        _jobs[job.dataset] = job
    threading.Thread(
        target=_run,
        args=(job, principal, k, data_dir),
        name=f"ltrec-{job.kind}-{job.dataset}",
        daemon=True,
    ).start()
    return job


def promote(
    dataset: str,
    run_id: str,
    *,
    data_dir: Path | str | None = None,
    principal: Principal,
) -> Job:
    """Start "Promote to production" of ``run_id`` in a background thread: fit its model and
    settings on all data (:func:`ltrec.app.services.promote`), then mark that run as the
    dataset's production run. One job per dataset, like :func:`start`.

    Raises:
        PermissionDenied: the principal may not train (nothing is started; logged as denied).
        TrainingBusyError: a job on this dataset is still running (nothing is started).
        RegistryError: an unknown run (checked before the thread starts).
    """
    services.check(principal, Right.TRAIN, "promote", f"run {run_id} of {dataset}", data_dir)
    manifest = run_manifest(dataset, run_id, data_dir)  # an unknown run fails here
    job = Job(dataset, str(manifest["model"]), {}, kind="promote", source=run_id)
    return _start(job, principal, 10, data_dir)


def wait(dataset: str, timeout: float = 60.0) -> Job | None:
    """Block until the dataset's job finishes (tests and scripts); returns it."""
    deadline = time.monotonic() + timeout
    job = current(dataset)
    while job is not None and job.running and time.monotonic() < deadline:
        time.sleep(0.05)
    return job


def clear() -> None:
    """Forget finished jobs (running ones stay: their threads still report into them)."""
    with _guard:
        for name in [n for n, j in _jobs.items() if not j.running]:
            del _jobs[name]
