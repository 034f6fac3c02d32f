"""Dataset files: naming, read-only connections, and the one way to write.

DuckDB lets one process write a file *or* many processes read it, not both. The app keeps
read-only connections open, so a writer (import, demo build, training that stores embeddings)
never writes the live file: :func:`writing` copies it to a temporary file beside it, hands out
a connection to the copy, and on success renames the copy over the original (``os.replace`` is
atomic on POSIX). A crash at any point leaves the old file untouched; readers holding the old
file keep a consistent snapshot and pick up the new one when its :func:`file_version` changes.
One writer per dataset at a time, enforced with an advisory file lock; a second writer waits up
to ``lock_wait_s`` (setting ``LTREC_LOCK_WAIT_S``) and then fails with "busy, try again" (exit 2).

Two ids in ``meta``: ``import_id`` changes on every successful write (cache keys), while
``data_import_id`` changes only when the data itself changes (import, append, replace, demo,
external sample). A text-embedding cache write keeps ``data_import_id``, so saved model runs
(which record it) stay fresh; :func:`ltrec.models.registry.run_staleness` compares the two.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ltrec.config import duckdb_config, get_settings
from ltrec.errors import (
    BadInputError,
    DatasetNotFoundError,
    StoreBusyError,
    StoreCorruptError,
    TrainingBusyError,
)
from ltrec.files import atomic_path, fsync_path
from ltrec.store.schema import create_schema, quote_ident

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SUFFIX = ".duckdb"
#: An external dataset's definition (``store/external.py``): ``<data dir>/<name>.toml``.
TOML_SUFFIX = ".toml"


def check_name(name: str) -> str:
    """Validate a dataset name: 1-64 letters, digits, '_' or '-'; first a letter or digit."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadInputError(
            f"invalid dataset name {name!r}",
            hint="use 1-64 letters, digits, '_' or '-', starting with a letter or digit",
        )
    return name


def data_dir(path: Path | str | None = None) -> Path:
    return Path(path) if path is not None else get_settings().data_dir


def dataset_path(name: str, data_dir_: Path | str | None = None) -> Path:
    return data_dir(data_dir_) / f"{check_name(name)}{SUFFIX}"


def list_datasets(data_dir_: Path | str | None = None) -> list[str]:
    """Names of the datasets in the data directory, sorted."""
    root = data_dir(data_dir_)
    if not root.is_dir():
        return []
    names = [p.name[: -len(SUFFIX)] for p in root.glob(f"*{SUFFIX}") if not p.name.startswith(".")]
    return sorted(n for n in names if _NAME.fullmatch(n))


def not_found(name: str, data_dir_: Path | str | None = None) -> DatasetNotFoundError:
    """The error for a dataset without a local store; it says when ``name`` is an external
    dataset (a TOML, read in place by its engine), which a command needing the store cannot
    read (the file name is checked here, not parsed: that would import the engines)."""
    root = data_dir(data_dir_)
    external = (root / f"{name}{TOML_SUFFIX}").is_file()
    return DatasetNotFoundError(name, list_datasets(root), external=external)


def exists(name: str, data_dir_: Path | str | None = None) -> bool:
    return dataset_path(name, data_dir_).is_file()


def file_version(name: str, data_dir_: Path | str | None = None) -> str:
    """Changes whenever the dataset file is replaced: a cheap cache key for readers."""
    path = dataset_path(name, data_dir_)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise not_found(name, data_dir_) from None
    return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"


#: Catalog name under which a dataset file is attached in a read connection.
CATALOG = "ds"
_CATALOG_SQL = quote_ident(CATALOG)  # the attach alias as SQL (USE cannot take a parameter)


def connect(name: str, data_dir_: Path | str | None = None) -> duckdb.DuckDBPyConnection:
    """Open a dataset read-only. Raises :class:`DatasetNotFoundError` or :class:`StoreCorruptError`.

    The file is ATTACHed to a private in-memory database rather than opened with
    ``duckdb.connect(path)``: DuckDB caches database instances by path within a process, so a
    plain connect after an atomic swap could hand back the old file's instance. Use
    :func:`cursor` (not ``con.cursor()``) for a per-thread cursor: it re-selects the catalog.
    """
    path = dataset_path(name, data_dir_)
    if not path.is_file():
        raise not_found(name, data_dir_)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH ? AS {_CATALOG_SQL} (READ_ONLY)", [str(path)])
        con.execute(f"USE {_CATALOG_SQL}")
        con.execute("SELECT 1 FROM meta LIMIT 1")
    except duckdb.Error as exc:
        con.close()
        raise StoreCorruptError(
            f"dataset '{name}' cannot be opened as an ltrec store ({exc.__class__.__name__})",
            hint=f"re-import it, or delete {path}",
        ) from exc
    return con


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A new cursor on a :func:`connect` connection, for use from one thread."""
    cur = con.cursor()
    cur.execute(f"USE {_CATALOG_SQL}")
    return cur


def read_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM meta").fetchall())


def one_row(cursor: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The one row an aggregate query returns (``count(*)``, ``max``)."""
    row = cursor.fetchone()
    assert row is not None, "an aggregate query returns one row"
    return row


def scalar(cursor: duckdb.DuckDBPyConnection) -> Any:
    """The first value of the one row an aggregate query returns (``count(*)``, ``max``)."""
    return one_row(cursor)[0]


def write_meta(con: duckdb.DuckDBPyConnection, values: dict[str, object]) -> None:
    con.executemany(
        "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()]
    )


@contextlib.contextmanager
def file_lock(path: Path, wait: float, busy: Callable[[], Exception]) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path``; raise ``busy()`` after ``wait`` seconds.

    The lock belongs to the open file, so it dies with the process (a ``kill -9`` frees it).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy() from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# A dataset's model runs live in models/<dataset>/ (ltrec.models.registry); its training lock
# is there too, and a delete takes it, so both are defined here, below the registry.
def runs_dir(dataset: str, data_dir: Path | str | None = None) -> Path:
    root = Path(data_dir) if data_dir is not None else get_settings().data_dir
    return root / "models" / check_name(dataset)


_held: dict[str, int] = {}  # lock path -> thread id holding it (re-entrant in that thread)
_held_guard = threading.Lock()


@contextlib.contextmanager
def training_lock(
    dataset: str,
    data_dir: Path | str | None = None,
    wait: float = 0.0,
    busy: Callable[[], Exception] | None = None,
) -> Iterator[None]:
    """Hold the dataset's training lock, or raise ``busy()`` (default
    :class:`~ltrec.errors.TrainingBusyError`) after ``wait`` seconds.

    Re-entrant within one thread (``save_run`` inside ``train``); another thread or process is
    refused, because flock locks belong to the open file, not the process.
    """
    folder = runs_dir(dataset, data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = str(folder / ".train.lock")
    me = threading.get_ident()
    with _held_guard:
        if _held.get(path) == me:
            mine = True
        else:
            mine = False
    if mine:
        yield
        return
    with file_lock(Path(path), wait, busy or (lambda: TrainingBusyError(dataset))):
        with _held_guard:
            _held[path] = me
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(path, None)


def lock_wait(wait: float | None = None) -> float:
    """Seconds a writer waits for the lock: ``wait``, else the ``lock_wait_s`` setting."""
    return float(get_settings().lock_wait_s if wait is None else wait)


def _lock(name: str, root: Path, wait: float | None) -> contextlib.AbstractContextManager[None]:
    seconds = lock_wait(wait)
    return file_lock(root / f".{name}.lock", seconds, lambda: StoreBusyError(name, seconds))


def data_import_id(name: str, data_dir_: Path | str | None = None) -> str | None:
    """The dataset's ``meta.data_import_id`` (None for a store written before it existed)."""
    con = connect(name, data_dir_)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'data_import_id'").fetchone()
    finally:
        con.close()
    return None if row is None else str(row[0])


def _remove(path: Path) -> None:
    for p in (path, Path(str(path) + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


@contextlib.contextmanager
def writing(
    name: str,
    data_dir_: Path | str | None = None,
    *,
    replace: bool = False,
    wait: float | None = None,
    data_changed: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Write a dataset atomically: yield a connection to a private copy, swap it in on success.

    Args:
        name: dataset name (validated).
        replace: start from an empty store instead of a copy of the current one.
        wait: seconds to wait for another writer before raising :class:`StoreBusyError`
            (None: the ``lock_wait_s`` setting).
        data_changed: False for writes that only cache derived values (text embeddings): they
            keep ``meta.data_import_id``, so model runs trained on the data stay fresh.

    If the body raises, or the process dies, the dataset is exactly as it was before.
    Every successful write stamps ``meta.import_id`` (a new UUID) and ``meta.updated_at``; a
    write with ``data_changed`` also sets ``meta.data_import_id`` to that UUID.
    """
    root = data_dir(data_dir_)
    path = dataset_path(name, root)
    with _lock(name, root, wait):
        for stale in root.glob(f".{name}.*.tmp{SUFFIX}*"):  # left by a writer that died
            stale.unlink(missing_ok=True)
        _sweep(name, root)  # and what a crashed delete left
        tmp = root / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{SUFFIX}"
        existed = path.exists()
        with atomic_path(path, tmp=tmp):
            if existed and not replace:
                shutil.copyfile(path, tmp)
            con = duckdb.connect(str(tmp), config=duckdb_config())  # an import worker's limits
            try:
                create_schema(con)
                yield con
                stamp, now = uuid.uuid4().hex, datetime.now(UTC).isoformat(timespec="seconds")
                meta: dict[str, object] = {"name": name, "import_id": stamp, "updated_at": now}
                if data_changed or replace:
                    change = "appended" if existed and not replace else "replaced"
                    meta.update(
                        data_import_id=stamp,
                        data_changed_at=now,
                        data_change=change if existed else "created",
                    )
                write_meta(con, meta)
                con.execute("CHECKPOINT")
                con.close()
            except BaseException:
                with contextlib.suppress(Exception):
                    con.close()
                _remove(tmp)  # and its WAL, which atomic_path does not know of
                raise


def ensure_data_import_id(name: str, data_dir_: Path | str | None = None) -> None:
    """Give a store written before ``data_import_id`` existed one, leaving its data as it is.

    Training calls it (once per such store) so a run trained on an old store records an id and
    is fresh; runs trained before stay stale ("predates import tracking").
    """
    with writing(name, data_dir_, data_changed=False) as con:
        have = con.execute("SELECT 1 FROM meta WHERE key = 'data_import_id'").fetchone()
        if have is None:  # checked under the writer lock: an import may have set it meanwhile
            write_meta(con, {"data_import_id": uuid.uuid4().hex, "data_change": "tracked"})


def _sidecars(name: str, root: Path) -> list[Path]:
    """Folders that belong to a dataset: its model runs and its saved simulations."""
    return [root / "models" / name, root / "simulations" / name]


def delete_dataset(
    name: str, data_dir_: Path | str | None = None, *, wait: float | None = None
) -> list[str]:
    """Remove a dataset with its model runs and saved simulations; returns what was removed.

    Order, so that a crash never leaves a half-deleted dataset that looks alive: under the
    training lock and the writer lock, the dataset file is first renamed to a hidden name (the
    commit point: from then on the dataset is gone for every reader, atomically), then its runs
    and simulations folders are renamed to hidden trash names and removed, and last the hidden
    file. Deleting runs first would risk a crash leaving a live dataset whose runs vanished.
    A crash after the commit point leaves at most orphaned runs (listed as stale: "dataset
    deleted") and hidden trash; running the delete again finishes the job (a dataset that is
    gone but still has runs or simulations is not an error then), and the next delete or write
    sweeps the trash.

    Raises:
        DatasetNotFoundError: no such dataset and nothing left of one.
        StoreBusyError: an import, delete or training holds the dataset past ``wait`` seconds.
    """
    root = data_dir(data_dir_)
    path = dataset_path(name, root)
    leftovers = [p for p in _sidecars(name, root) if p.is_dir()]  # before the training lock
    seconds = lock_wait(wait)
    if not path.exists() and not leftovers:
        with _lock(name, root, seconds):
            _sweep(name, root)  # trash of a delete killed after moving the folders away
        raise DatasetNotFoundError(name, list_datasets(root))
    removed: list[str] = []
    with training_lock(name, root, wait=seconds, busy=lambda: StoreBusyError(name, seconds)):
        with _lock(name, root, seconds):
            token = uuid.uuid4().hex[:8]
            if path.exists():
                gone = root / f".{name}.{token}.deleted{SUFFIX}"
                wal = Path(f"{path}.wal")
                if wal.exists():  # a WAL left by a crashed writer goes with its file
                    os.replace(wal, Path(f"{gone}.wal"))
                os.replace(path, gone)  # the commit point
                fsync_path(root)
                removed.append(path.name)
            for folder in _sidecars(name, root):
                if folder.is_dir():  # (the training lock itself may have made models/<name>)
                    trash = folder.parent / f".deleted.{name}.{token}"
                    os.replace(folder, trash)
                    if folder in leftovers:
                        removed.append(f"{folder.parent.name}/{name}/")
            _sweep(name, root)
    return removed


def _sweep(name: str, root: Path) -> None:
    """Remove what a delete of ``name`` renamed away (also what a crashed delete left)."""
    for p in root.glob(f".{name}.*.deleted{SUFFIX}*"):
        p.unlink(missing_ok=True)
    for parent in (root / "models", root / "simulations"):
        for trash in parent.glob(f".deleted.{name}.*"):
            shutil.rmtree(trash, ignore_errors=True)
