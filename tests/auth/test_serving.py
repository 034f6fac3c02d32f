"""Local by default: the real run path (``./run.sh`` -> Makefile ``run``) and app.py itself refuse
a non-local address without sign-in; ``LTREC_ALLOW_ANONYMOUS=1`` serves it with a warning."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from ltrec.charts.text import markdown_message
from tests.conftest import REPO
from tests.e2e.harness import free_port

APP = str(REPO / "app.py")
REFUSAL = "ltrec: refusing to serve 0.0.0.0 without sign-in"
SETTING = "an [auth] section in .streamlit/secrets.toml"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LTREC_")}
    return {**env, "LTREC_DATA_DIR": str(data_dir), **extra}


def test_run_sh_refuses_a_public_address_without_sign_in(data_dir: Path) -> None:
    port = free_port()
    proc = subprocess.run(
        ["./run.sh", f"PORT={port}"],
        cwd=REPO,
        env=_env(data_dir, LTREC_ADDRESS="0.0.0.0"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert REFUSAL in proc.stderr
    assert SETTING in proc.stderr and "LTREC_ALLOW_ANONYMOUS=1" in proc.stderr
    assert "streamlit run" not in proc.stdout + proc.stderr  # never started
    assert list(data_dir.iterdir()) == []  # refused before the demo shop was built


def test_run_sh_allow_anonymous_serves_with_a_warning(data_dir: Path) -> None:
    port = free_port()
    (data_dir / "demo.duckdb").touch()  # `make demo` skips the build when the file is there
    log = data_dir.parent / f"run-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["./run.sh", f"PORT={port}"],
            cwd=REPO,
            env=_env(data_dir, LTREC_ADDRESS="0.0.0.0", LTREC_ALLOW_ANONYMOUS="1"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # run.sh -> make -> streamlit: stopped as one group
        )
    try:
        deadline = time.monotonic() + 300
        healthy = False
        while time.monotonic() < deadline and proc.poll() is None and not healthy:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    healthy = True
            except OSError:
                time.sleep(0.5)
        assert healthy, log.read_text()[-3000:]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    text = log.read_text()
    assert "WARNING: serving 0.0.0.0 WITHOUT sign-in (LTREC_ALLOW_ANONYMOUS=1)" in text
    assert "0.0.0.0" in text


def _app(address: str) -> AppTest:
    old = st_config.get_option("server.address")
    st_config.set_option("server.address", address)
    try:
        return AppTest.from_file(APP, default_timeout=120).run()
    finally:
        st_config.set_option("server.address", old)


def test_app_refuses_a_public_address_itself(monkeypatch) -> None:
    """`streamlit run app.py --server.address 0.0.0.0` (no run.sh): the app shows only why."""
    monkeypatch.delenv("LTREC_ALLOW_ANONYMOUS", raising=False)
    at = _app("0.0.0.0")
    assert [t.value for t in at.title] == ["ltrec is not serving this address"]
    shown = [e.value for e in at.error]  # as markdown that shows exactly the message
    assert shown == [
        markdown_message(
            "refusing to serve 0.0.0.0 without sign-in: anyone who could reach the port could "
            "import and delete data"
        )
    ]
    assert markdown_message(SETTING) in at.caption[0].value
    assert not at.exception
    monkeypatch.setenv("LTREC_ALLOW_ANONYMOUS", "1")
    at = _app("0.0.0.0")
    assert at.sidebar.warning[0].value.startswith("WARNING: serving 0.0.0.0 WITHOUT sign-in")
    assert not at.error


def test_app_local_user_has_every_right() -> None:
    at = _app("127.0.0.1")
    assert not at.error and not at.exception
    assert "Local use: **local user** (admin, every right)" in [c.value for c in at.sidebar.caption]
    assert st_config.get_option("server.maxUploadSize") == 200  # follows LTREC_MAX_UPLOAD_MB


def test_run_flags_follow_the_settings(data_dir: Path) -> None:
    """What `./run.sh` passes to `streamlit run`: the address and the server's upload limit."""
    cmd = [sys.executable, "-m", "ltrec.app.serving"]
    out = subprocess.run(
        cmd, cwd=REPO, env=_env(data_dir, LTREC_MAX_UPLOAD_MB="7"), capture_output=True, text=True
    )
    assert (out.returncode, out.stdout, out.stderr) == (
        0,
        "--server.address 127.0.0.1 --server.maxUploadSize 7\n",
        "",
    )
    out = subprocess.run(
        cmd,
        cwd=REPO,
        env=_env(data_dir, LTREC_ADDRESS="0.0.0.0", LTREC_ALLOW_ANONYMOUS="1"),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0
    assert out.stdout == "--server.address 0.0.0.0 --server.maxUploadSize 200\n"
    assert out.stderr.startswith("WARNING: serving 0.0.0.0 WITHOUT sign-in")
    out = subprocess.run(
        cmd, cwd=REPO, env=_env(data_dir, LTREC_MAX_UPLOAD_MB="0"), capture_output=True, text=True
    )
    assert (out.returncode, out.stderr) == (  # the variable is named, with its rule
        2,
        "ltrec: LTREC_MAX_UPLOAD_MB is not usable: Input should be greater than or equal to 1 "
        "(got '0')\nfix or unset LTREC_MAX_UPLOAD_MB in the environment\n",
    )
