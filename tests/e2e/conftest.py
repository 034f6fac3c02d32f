"""Real-browser fixtures: a `streamlit run app.py` server on a free port over a fresh demo shop
in a temporary data dir, and Debian's Chromium driven by Playwright.

Screenshots of every page land in ``test-artifacts/screenshots/`` (git-ignored; CI keeps them).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Streamlit logs these on a machine with no network; they are not app errors.
BENIGN_CONSOLE = ("favicon", "net::ERR_", "Failed to load resource")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    data_dir: Path
    log: Path

    def rss_mb(self) -> float:
        """Resident memory of the server process, from /proc."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def start_server(data_dir: Path, log: Path) -> Server:
    port = _free_port()
    env = {**os.environ, "LTREC_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    out = log.open("w")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read() == b"ok":
                    return Server(url, proc, data_dir, log)
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not become healthy within 120 s")


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo shop, built once for the browser suite through the real CLI."""
    path = tmp_path_factory.mktemp("e2e-data")
    env = {**os.environ, "LTREC_DATA_DIR": str(path)}
    subprocess.run(
        [sys.executable, "-m", "ltrec.cli", "demo", "--users", "400", "--items", "300",
         "--events", "40000", "--seed", "7"],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def server(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(demo_dir, tmp_path_factory.mktemp("logs") / "streamlit.log")
    yield srv
    srv.proc.terminate()
    try:
        srv.proc.wait(10)
    except subprocess.TimeoutExpired:
        srv.proc.kill()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run ./test.sh, which installs it")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Watched:
    """A page plus every console error and uncaught exception it produced."""

    page: object
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser) -> Iterator[Watched]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    watched = Watched(pg)

    def on_console(msg) -> None:
        if msg.type == "error" and not any(b in msg.text for b in BENIGN_CONSOLE):
            watched.errors.append(msg.text)

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    yield watched
    ctx.close()


def settle(pg, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script for the current page."""
    # Every page starts with st.title, so an h1 in the main area means the script has run.
    pg.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout)
    pg.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"]')
                 && document.querySelectorAll('[data-testid="stSkeleton"]').length === 0""",
        timeout=timeout,
    )
    pg.wait_for_timeout(300)  # the last delta is painted after the status widget goes


def assert_clean(watched: Watched, name: str) -> None:
    """No Streamlit exception box and no console errors; keep a screenshot either way."""
    pg = watched.page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    exceptions = pg.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()
    assert watched.errors == [], watched.errors
