"""Run an import in a child process with a memory and a time limit (DESIGN §11, issue 16 §4).

A hostile or simply huge file (a gzip or Parquet bomb, a 500 MB line) must never freeze or flood
the process that asked for the import: the Streamlit server answering every other user, or the
CLI. :func:`run_import` takes :func:`~ltrec.store.importing.import_dataset`'s arguments and runs
the whole import (read, validate, and the atomic commit) in ``python -m
ltrec.store.importing.worker``:

* **Memory**: the child sets ``RLIMIT_DATA`` (heap and every private writable mapping: what a
  decompressed string or a DuckDB buffer occupies) to ``LTREC_IMPORT_MAX_MEMORY_MB`` (default
  2048) before it reads anything, and DuckDB is given a ``memory_limit`` below it (DuckDB ignores
  rlimits: its default is 80% of RAM) and a private ``temp_directory``, so large sorts spill to
  disk instead of failing.
* **Time**: the parent kills the child's process group after ``LTREC_IMPORT_TIMEOUT_S``.
* **Atomicity**: the commit is :func:`~ltrec.store.connect.writing`'s copy + rename under the
  dataset's lock, so a child killed at any point leaves the store as it was; the parent then
  removes what the child left (its ``.<name>.<pid>.*.tmp.duckdb`` copy and WAL, and the private
  folder DuckDB spilled into). If the caller itself dies, its worker stops at its next message
  (the pipe is gone) and rolls back, its CPU time is capped (``RLIMIT_CPU``: the time limit on
  every core), and the next import sweeps the orphaned folder.
* **Data, not objects**: the request goes to the child's stdin and the progress, report or error
  come back as JSON lines on its stdout (nothing is unpickled). Errors keep their class
  (:class:`~ltrec.errors.LtrecError` subclasses, so the CLI's exit code 2 holds) and message;
  :class:`~ltrec.errors.TooManyRejectsError` keeps its report.

A child that ran out of memory (``MemoryError``, DuckDB's out-of-memory error, or death by a
signal under the limit) or out of time ends in :class:`ImportLimitError` (exit 2) naming the
setting to raise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import importlib
import json
import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import ltrec
from ltrec.config import MAX_REJECT_SHARE, get_settings
from ltrec.errors import BadInputError, LtrecError
from ltrec.progress import Progress
from ltrec.store.connect import check_name
from ltrec.store.connect import data_dir as resolve_data_dir
from ltrec.store.importing import import_dataset
from ltrec.store.importing.report import ImportConfig, ImportReport

#: DuckDB's memory_limit as a share of the child's limit: the interpreter, Arrow buffers and
#: DuckDB's own overshoot past its limit share the rest.
DUCKDB_SHARE = 0.45
#: Signals a process dies of when an allocation fails under an rlimit (C++ abort, a failed
#: mmap touched, or the kernel's OOM killer).
MEMORY_SIGNALS = (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS)
_PACKAGE_ROOT = str(Path(ltrec.__file__).resolve().parents[1])
#: Prefix of a worker's private folder in the temporary directory (its cwd and DuckDB spill).
WORK_PREFIX = "ltrec-import-"


class ImportLimitError(BadInputError):
    """The import's process passed its memory or time limit and was stopped; the store is as
    it was before."""

    def __init__(self, message: str, *, hint: str, limit: str) -> None:
        super().__init__(message, hint=hint)
        self.limit = limit  # "memory" or "time"


class ImportCrashedError(LtrecError):
    """The import's process failed for a reason of its own (a bug): the store is unchanged."""


def memory_error(mb: int) -> ImportLimitError:
    return ImportLimitError(
        f"the import needed more than {mb:,} MB of memory and was stopped; nothing was "
        "imported and the store is unchanged",
        hint=f"a file that expands this much is refused; if it is genuine, raise "
        f"LTREC_IMPORT_MAX_MEMORY_MB (now {mb}) or split the file",
        limit="memory",
    )


def time_error(seconds: float) -> ImportLimitError:
    return ImportLimitError(
        f"the import took longer than {seconds:g} s and was stopped; nothing was imported and "
        "the store is unchanged",
        hint=f"if the file is genuine, raise LTREC_IMPORT_TIMEOUT_S (now {seconds:g}) or split "
        "the file",
        limit="time",
    )


# ---------------------------------------------------------------------------- the parent


def run_import(
    name: str,
    events: Path | str,
    items: Path | str | None = None,
    users: Path | str | None = None,
    preset: str | None = None,
    mapping: dict[str, str] | None = None,
    replace: bool = False,
    max_reject_share: float = MAX_REJECT_SHARE,
    dry_run: bool = False,
    data_dir: Path | str | None = None,
    *,
    config: ImportConfig | None = None,
    labels: dict[str, str] | None = None,
    progress: Progress | None = None,
    pseudonymize: bool = False,
    hmac_key: str | bytes | None = None,
    max_memory_mb: int | None = None,
    timeout_s: float | None = None,
) -> ImportReport:
    """:func:`~ltrec.store.importing.import_dataset` in a child process with limits.

    Same arguments and result; ``progress`` is called in the caller's thread. ``max_memory_mb``
    and ``timeout_s`` default to the ``import_max_memory_mb`` / ``import_timeout_s`` settings.

    Raises:
        ImportLimitError: the child passed its memory or time limit (exit 2).
        LtrecError: whatever the import raised in the child, with its class and message.
        ImportCrashedError: the child failed in an unforeseen way.
    """
    check_name(name)
    settings = get_settings()
    mb = int(max_memory_mb or settings.import_max_memory_mb)
    limit_s = float(timeout_s or settings.import_timeout_s)
    root = resolve_data_dir(data_dir).resolve()

    def path(p: Path | str | None) -> str | None:
        return None if p is None else os.path.abspath(p)

    request = {
        "memory_mb": mb,
        "timeout_s": limit_s,
        "kwargs": {
            "name": name,
            "events": path(events),
            "items": path(items),
            "users": path(users),
            "preset": preset,
            "mapping": mapping,
            "replace": replace,
            "max_reject_share": max_reject_share,
            "dry_run": dry_run,
            "data_dir": str(root),
            "labels": labels,
            "pseudonymize": pseudonymize,
        },
        "config": None if config is None else config.model_dump(mode="json"),
        # the key travels on the pipe, never in argv or the environment
        "hmac_key": hmac_key.hex() if isinstance(hmac_key, bytes) else hmac_key,
        "hmac_key_bytes": isinstance(hmac_key, bytes),
    }
    _sweep(limit_s)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))  # the child's cwd and spill folder
    env = {
        **os.environ,
        "LTREC_DUCKDB_MEMORY_LIMIT_MB": str(max(64, int(mb * DUCKDB_SHARE))),
        "LTREC_DUCKDB_TEMP_DIR": str(work / "duckdb"),
        "MALLOC_ARENA_MAX": "2",  # glibc's per-thread arenas would count against the limit
        "PYTHONPATH": os.pathsep.join(
            p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p
        ),
    }
    stderr = (work / "stderr.txt").open("w+b")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ltrec.store.importing.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        cwd=work,
        env=env,
        start_new_session=True,  # its own process group: a kill reaches anything it started
    )
    try:
        return _talk(proc, request, limit_s, mb, progress, stderr)
    finally:
        _stop(proc)
        stderr.close()
        for left in root.glob(f".{name}.{proc.pid}.*"):  # a killed child's copy, WAL, spill
            if left.is_dir():
                shutil.rmtree(left, ignore_errors=True)
            else:
                left.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def _sweep(limit_s: float) -> None:
    """Remove worker folders older than the time limit: left by a caller that was killed itself
    (its worker stops at its next message, on the broken pipe, and rolls back)."""
    cutoff = time.time() - limit_s - 60
    for old in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*"):
        with contextlib.suppress(OSError):
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)


def _talk(
    proc: subprocess.Popen,
    request: dict[str, Any],
    limit_s: float,
    mb: int,
    progress: Progress | None,
    stderr: IO[bytes],
) -> ImportReport:
    assert proc.stdin is not None and proc.stdout is not None
    deadline = time.monotonic() + limit_s
    lines: queue.Queue[bytes | None] = queue.Queue()

    def read(out: IO[bytes]) -> None:
        for line in out:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, args=(proc.stdout,), daemon=True).start()
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(json.dumps(request).encode())
        proc.stdin.close()
    final: dict[str, Any] | None = None
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise time_error(limit_s) from None
        if line is None:
            break
        msg = json.loads(line)
        if "progress" in msg:
            if progress is not None:
                progress(*msg["progress"])
        else:
            final = msg
    try:
        code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise time_error(limit_s) from None
    if final is not None and "report" in final:
        return _report(final["report"])
    if final is not None and "error" in final:
        raise _rebuild(final["error"])
    if (final is not None and final.get("limit") == "memory") or -code in MEMORY_SIGNALS:
        raise memory_error(mb)
    stderr.seek(0)
    tail = stderr.read()[-2000:].decode(errors="replace").strip()
    crash = (final or {}).get("crash") or f"exit code {code}"
    raise ImportCrashedError(
        f"the import failed unexpectedly ({crash}); the store is unchanged",
        hint=tail.splitlines()[-1] if tail else None,
    )


def _stop(proc: subprocess.Popen) -> None:
    """Kill the child's process group if it still runs (a time limit, or the caller stopped:
    e.g. a Streamlit rerun raised in the progress callback), and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for f in (proc.stdin, proc.stdout):
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()


def _report(data: Mapping[str, Any]) -> ImportReport:
    names = {f.name for f in dataclasses.fields(ImportReport)}
    return ImportReport(**{k: v for k, v in data.items() if k in names})


def _rebuild(info: Mapping[str, Any]) -> LtrecError:
    """The child's error as the same class with the same message (attributes that are plain
    data kept, a report rebuilt)."""
    cls: type[LtrecError] = BadInputError if info.get("exit_code") == 2 else LtrecError
    module, qualname = str(info.get("module", "")), str(info.get("qualname", ""))
    if module == "ltrec" or module.startswith("ltrec."):
        found = getattr(importlib.import_module(module), qualname, None)
        if isinstance(found, type) and issubclass(found, LtrecError):
            cls = found
    err = cls.__new__(cls)
    LtrecError.__init__(err, str(info["message"]), hint=info.get("hint"))
    for key, value in (info.get("attrs") or {}).items():
        setattr(err, key, value)
    if info.get("report") is not None:
        err.report = _report(info["report"])  # type: ignore[attr-defined]  # the error classes that carry a report (TooManyRejectsError)
    return err


# ---------------------------------------------------------------------------- the child


def _plain(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _describe(err: LtrecError) -> dict[str, Any]:
    attrs = {
        k: v
        for k, v in vars(err).items()
        if k not in ("message", "hint", "report") and not k.startswith("_") and _plain(v)
    }
    report = getattr(err, "report", None)
    return {
        "module": type(err).__module__,
        "qualname": type(err).__qualname__,
        "exit_code": err.exit_code,
        "message": err.message,
        "hint": err.hint,
        "attrs": attrs,
        "report": dataclasses.asdict(report) if isinstance(report, ImportReport) else None,
    }


def _out_of_memory(exc: BaseException) -> bool:
    """A failed allocation anywhere in the chain (Python's, or DuckDB's own error)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MemoryError):
            return True
        # Under RLIMIT_DATA an allocation can fail outside Python's allocator too: mapping a
        # module's file (OSError ENOMEM), a C extension's unchecked malloc (SystemError "error
        # return without exception set"), a thread's stack. Seen with 8 imports at once at 256 MB.
        if isinstance(seen, OSError) and seen.errno == errno.ENOMEM:
            return True
        if isinstance(seen, SystemError) and "without exception set" in str(seen):
            return True
        if isinstance(seen, RuntimeError) and "can't start new thread" in str(seen):
            return True
        if type(seen).__name__ == "OutOfMemoryException" or "Out of Memory" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _child() -> int:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # a stray print goes to stderr: the pipe carries only messages
    request = json.loads(sys.stdin.read())
    limit = int(request["memory_mb"]) << 20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    # a backstop for a worker whose caller died (nobody left to kill it at the time limit): CPU
    # seconds of every core for that long, which a live caller's wall-clock kill always precedes
    cpu = int(float(request.get("timeout_s", 3600)) * (os.cpu_count() or 1)) + 60
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))

    def send(**msg: Any) -> None:
        proto.write(json.dumps(msg, default=str) + "\n")

    try:
        kwargs = dict(request["kwargs"])
        key = request.get("hmac_key")
        if key is not None and request.get("hmac_key_bytes"):
            key = bytes.fromhex(key)
        config = request.get("config")
        report = import_dataset(
            **kwargs,
            config=None if config is None else ImportConfig.model_validate(config),
            hmac_key=key,
            progress=lambda done, message: send(progress=[done, message]),
        )
        send(report=dataclasses.asdict(report))
    except BaseException as exc:  # noqa: BLE001 - every outcome goes back as data
        if _out_of_memory(exc):
            send(limit="memory")
        elif isinstance(exc, LtrecError):
            send(error=_describe(exc))
        else:
            send(crash=f"{type(exc).__name__}: {str(exc)[:300]}")

            traceback.print_exc()
    proto.close()
    return 0


if __name__ == "__main__":
    sys.exit(_child())
