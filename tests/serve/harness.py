"""A real ``ltrec serve`` (uvicorn in a subprocess) over a small demo shop built by the real CLI.

:func:`build_shop`: a data directory with the demo shop (300 users, 200 items), an
item-kNN run and a popularity run (built by the CLI's ``main`` in this process: the shop is
setup, not under test), and one reader and one writer key. :class:`Server` starts
``python -m ltrec.cli serve`` on a free port and waits for ``/health``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ltrec.cli import main
from ltrec.serve import keys

REPO = Path(__file__).resolve().parents[2]


def cli(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "LTREC_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "ltrec.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Shop:
    data_dir: Path
    knn_run: str
    pop_run: str
    reader: str
    writer: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.reader}"}


def cli_in_process(data_dir: Path, *args: str) -> Any:
    """``ltrec ARGS --json`` called in this process (setup only: no child's start-up to pay),
    its printed JSON parsed; a non-zero exit fails with what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--data-dir", str(data_dir), "--json"])
    assert code == 0, out.getvalue() + err.getvalue()
    return json.loads(out.getvalue())


def build_shop(root: Path) -> Shop:
    cli_in_process(root, "demo", "--users", "300", "--items", "200", "--events", "5000")
    pop = cli_in_process(root, "train", "demo", "--model", "popularity")
    knn = cli_in_process(root, "train", "demo", "--model", "itemknn")
    reader, _ = keys.create("test-reader", "reader", data_dir=root)
    writer, _ = keys.create("test-writer", "writer", data_dir=root)
    return Shop(root, knn["run_id"], pop["run_id"], reader, writer)


class Server:
    """``ltrec serve`` in a subprocess; :meth:`stop` (SIGTERM) or :meth:`kill` (SIGKILL)."""

    def __init__(self, data_dir: Path, *args: str, name: str = "demo") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LTREC_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.log = data_dir / f"serve-{self.port}.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ltrec.cli", "serve", name, "--port", str(self.port), *args],
            env=env,
            cwd=REPO,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"ltrec serve exited {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"ltrec serve did not come up: {self.output()}")
            time.sleep(0.2)
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text()

    def get(self, path: str, key: str | None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.client.get(path, headers=headers, **kw)

    def post(self, path: str, key: str | None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.client.post(path, headers={**headers, **kw.pop("headers", {})}, **kw)

    def health(self) -> dict[str, Any]:
        return self.client.get("/health").json()

    def wait_flushed(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.health()["events"]["pending"]:
            assert time.monotonic() < deadline, self.health()
            time.sleep(0.1)

    def stop(self) -> int:
        """SIGTERM; returns the exit status (uvicorn ends by re-raising the signal: -15)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self._close()
        return int(self.proc.returncode)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)
        self._close()

    def _close(self) -> None:
        if hasattr(self, "client"):
            self.client.close()
        self._out.close()
