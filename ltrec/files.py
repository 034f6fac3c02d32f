"""Durable writes: the one way ltrec replaces a file or a folder so a crash never leaves half of it.

A write goes to a temporary path in the same folder (same file system, so the rename is atomic),
every file under it is flushed to disk with ``fsync`` (then each folder, for its list of names),
it is renamed over the target (``os.replace``) and the parent folder is flushed too, so the
rename itself survives a power cut. A reader sees the old file or the new one, never a mix; a
failed write removes its temporary path and leaves the old file as it was.

:func:`atomic_path` is that protocol; every writer uses it (stores, model runs, simulation
results, exports, API keys, the event log, the production mark). :func:`atomic_write` is the
short form for bytes or text.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_path(path: Path | str) -> None:
    """Flush a file's or a folder's entry to disk (a folder: its list of names)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path | str) -> None:
    """Flush a file, or every file under a folder and then each folder (deepest first)."""
    path = Path(path)
    if not path.is_dir():
        fsync_path(path)
        return
    for folder, _, names in os.walk(path, topdown=False):
        for name in names:
            fsync_path(os.path.join(folder, name))
        fsync_path(folder)


def discard(path: Path | str) -> None:
    """Remove a temporary file or folder if it is there (never follows a link into a folder)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path | str, *, tmp: Path | str | None = None) -> Iterator[Path]:
    """A temporary path to write (a file or a folder); on success it replaces ``path`` durably,
    on error it is removed and ``path`` is left as it was.

    Usage: ``with atomic_path(out) as tmp: frame.to_parquet(tmp)``. The default temporary name
    starts with a dot and carries a random part, so two writers never share one and listings
    skip it. ``tmp``: a caller's own temporary name (in the same folder as ``path``), for
    writers that sweep what a dead writer left by a name pattern (stores, model runs).
    A folder replaces only a missing ``path`` (or an empty folder): callers check first.
    """
    path = Path(path)
    if tmp is None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp = Path(tmp)
    if tmp.absolute().parent != path.absolute().parent:  # another folder may be another disk
        raise ValueError(f"temporary path {tmp} is not in the folder of {path}")
    try:
        yield tmp
        fsync_tree(tmp)
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    fsync_path(path.parent)


def atomic_write(path: Path | str, data: bytes | str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) atomically and durably.

    ``mode``: the new file's permissions (0o600 for secrets such as API key hashes).
    """
    body = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as fh:
            fh.write(body)
