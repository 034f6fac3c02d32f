"""Durable file writes: the one way ltrec replaces a small file so a crash never leaves half of it.

A write goes to a temporary file in the same folder (same file system, so the rename is atomic),
is flushed to disk with ``fsync``, renamed over the target (``os.replace``) and the folder is
flushed too, so the rename itself survives a power cut. A reader sees the old file or the new
one, never a mix; a failed write removes its temporary file and leaves the old file as it was.
"""

from __future__ import annotations

import os
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


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path to write; on success it replaces ``path`` durably, on error it goes.

    Usage: ``with atomic_path(out) as tmp: frame.to_parquet(tmp)``. The temporary name starts
    with a dot and carries a random part, so two writers never share one and listings skip it.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
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
