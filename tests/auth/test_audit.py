"""The audit log survives crashes: a writer killed (SIGKILL) mid-append leaves every earlier entry
readable, the torn line is skipped, and the next append cuts it off."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from ltrec.app import audit
from tests.conftest import REPO


def _spawn(code: str, data_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env={**os.environ, "LTREC_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        text=True,
    )


def _lines(data_dir: Path) -> list[bytes]:
    return (data_dir / "audit.jsonl").read_bytes().split(b"\n")


def test_entries_round_trip(data_dir: Path) -> None:
    assert audit.read(data_dir) == []
    first = audit.append("ana@example.com", "admin", "import", "dataset shop", "ok", "1 row")
    second = audit.append(
        "bo@example.com", "viewer", "delete dataset", "dataset shop", "denied", "no", {"x": 1}
    )
    assert audit.read(data_dir) == [first, second]  # the default path is the data dir's
    assert (data_dir / "audit.jsonl").stat().st_mode & 0o777 == 0o600
    frame = audit.frame(data_dir)
    assert list(frame["who"]) == ["bo@example.com", "ana@example.com"]  # newest first
    long = audit.append("a", "admin", "import", "t", "error", "x" * 10_000)
    assert len(long.message) == audit.MAX_MESSAGE


def test_sigkill_mid_append_leaves_a_readable_log(data_dir: Path) -> None:
    kept = [audit.append("ana@example.com", "admin", "train", f"run {i}", "ok") for i in range(3)]
    # The child writes half of its line, then hangs (as if the machine died there) and is
    # killed with SIGKILL while it holds the lock.
    child = _spawn(
        """
        import os, sys, time
        from ltrec.app import audit
        real = os.write
        def half(fd, data):
            n = real(fd, data[: len(data) // 2])
            print("torn", flush=True)
            time.sleep(600)
            return n
        audit.os.write = half
        audit.append("eve@example.com", "admin", "delete dataset", "dataset shop", "ok")
        """,
        data_dir,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "torn"
    child.send_signal(signal.SIGKILL)
    assert child.wait(30) == -signal.SIGKILL
    raw = (data_dir / "audit.jsonl").read_bytes()
    assert not raw.endswith(b"\n")  # the torn half line is on disk
    assert audit.read(data_dir) == kept  # ... and skipped: earlier entries intact
    after = audit.append("ana@example.com", "admin", "train", "run 3", "ok")
    assert audit.read(data_dir) == [*kept, after]
    lines = _lines(data_dir)
    assert lines[-1] == b""  # ends with a newline, and no torn line remains anywhere
    assert [json.loads(line)["target"] for line in lines[:-1]] == [
        "run 0",
        "run 1",
        "run 2",
        "run 3",
    ]


def test_sigkill_during_a_stream_of_appends(data_dir: Path) -> None:
    child = _spawn(
        """
        from ltrec.app import audit
        i = 0
        while True:
            pad = {"pad": "y" * 50_000}
            audit.append("bo@example.com", "analyst", "export", f"n{i}", "ok", "", pad)
            i += 1
        """,
        data_dir,
    )
    path = data_dir / "audit.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not path.exists() or path.stat().st_size < 2_000_000):
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    complete = _lines(data_dir)[:-1]
    entries = audit.read(data_dir)
    assert len(complete) >= 30
    assert [e.target for e in entries] == [f"n{i}" for i in range(len(complete))]
    audit.append("bo@example.com", "analyst", "export", "last", "ok")
    assert [e.target for e in audit.read(data_dir)][-1] == "last"
    assert all(json.loads(line) for line in _lines(data_dir)[:-1])


def test_two_processes_append_without_mixing(data_dir: Path) -> None:
    code = """
        import sys
        from ltrec.app import audit
        for i in range(200):
            audit.append(sys.argv[0], "admin", "import", str(i), "ok", "", {"pad": "z" * 5000})
        """
    kids = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code).replace("sys.argv[0]", repr(who))],
            cwd=REPO,
            env={**os.environ, "LTREC_DATA_DIR": str(data_dir)},
        )
        for who in ("p1", "p2")
    ]
    assert [k.wait(120) for k in kids] == [0, 0]
    entries = audit.read(data_dir)
    assert len(entries) == 400 == len(_lines(data_dir)) - 1
    for who in ("p1", "p2"):
        assert [e.target for e in entries if e.who == who] == [str(i) for i in range(200)]
