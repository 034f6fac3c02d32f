"""The audit log: one JSON line per write (who, what, when, outcome) in ``<data_dir>/audit.jsonl``.

Append-only and crash-safe by construction:

* each entry is one ``os.write`` of one complete line to a file opened with ``O_APPEND``, under an
  exclusive ``flock`` (the app and the CLI may write at once), then ``fsync``;
* a crash can at worst leave a torn last line (a partial write). Readers skip it (a line that is
  not complete JSON ending in a newline is not an entry) and the next writer cuts it off before
  appending, so earlier entries are never touched and the log never holds a torn line in the
  middle.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ltrec.config import get_settings

Outcome = Literal["ok", "error", "denied"]

#: Column order of the table and of the CSV download.
COLUMNS = ("ts", "who", "role", "action", "target", "outcome", "message")
#: Longest message kept (an error's text; the log is for people, not a dump).
MAX_MESSAGE = 2000


@dataclass(frozen=True)
class Entry:
    ts: str
    who: str
    role: str
    action: str
    target: str
    outcome: Outcome
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def audit_path(data_dir: Path | str | None = None) -> Path:
    return Path(data_dir) / "audit.jsonl" if data_dir is not None else get_settings().audit_path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def cut_torn_tail(fd: int) -> None:
    """Truncate a partial last line (left by a crash mid-append) back to the last newline."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    pos, block = size, 65536
    while pos > 0:
        start = max(0, pos - block)
        chunk = os.pread(fd, pos - start, start)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            os.ftruncate(fd, start + nl + 1)
            return
        pos = start
    os.ftruncate(fd, 0)


def append(
    who: str,
    role: str,
    action: str,
    target: str,
    outcome: Outcome,
    message: str = "",
    details: dict[str, Any] | None = None,
    *,
    data_dir: Path | str | None = None,
) -> Entry:
    """Append one entry durably (fsynced before returning) and return it."""
    entry = Entry(
        ts=datetime.now(UTC).isoformat(timespec="milliseconds"),
        who=who,
        role=role,
        action=action,
        target=target,
        outcome=outcome,
        message=message[:MAX_MESSAGE],
        details=dict(details or {}),
    )
    line = (json.dumps(asdict(entry), ensure_ascii=False, default=str) + "\n").encode("utf-8")
    with _locked(audit_path(data_dir)) as fd:
        cut_torn_tail(fd)
        written = 0
        while written < len(line):  # a short write continues where it stopped
            written += os.write(fd, line[written:])
        os.fsync(fd)
    return entry


def read(data_dir: Path | str | None = None) -> list[Entry]:
    """Every complete entry, oldest first (a torn last line is skipped, never an error)."""
    path = audit_path(data_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for line in raw.split(b"\n")[:-1]:  # the part after the last newline is not an entry
        try:
            obj = json.loads(line)
            out.append(Entry(**obj))
        except (ValueError, TypeError):
            continue  # not ours: a torn line cut short by a crash before the next append
    return out


def frame(data_dir: Path | str | None = None) -> Any:
    """The log as a DataFrame (newest first) with :data:`COLUMNS`."""
    import pandas as pd  # lazy: keeps pandas off the CLI start-up (only reading the log needs it)

    rows = [asdict(e) for e in reversed(read(data_dir))]
    return pd.DataFrame(rows, columns=[*COLUMNS, "details"])[list(COLUMNS)]
