"""The real-browser harness: one `streamlit run app.py` server and one Debian Chromium per test
process (each xdist worker), shared by ``tests/e2e`` and ``tests/security`` (both conftests use
:func:`shared`).

* The server runs over a fresh data dir holding a small demo shop (``demo``) and a hostile
  catalogue (``xss``: HTML/JS and spreadsheet formulas in titles and categories), both built
  through the real CLI; a popularity run is trained on each so the model pages have something.
  The data is built once per run and copied to each worker (:func:`cached_data`).
* :func:`settle` waits for Streamlit to finish the script run (``stApp``'s
  ``data-test-script-state``, the attribute Streamlit's own e2e suite waits on), for skeletons to
  go and for every plotly chart to draw its SVG. :func:`act` wraps a user action: it counts the
  script runs the action starts (a MutationObserver installed in every page) and then settles.
* :func:`assert_clean` checks a page has no ``stException`` box and no console errors, and keeps
  a full-height screenshot in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import atexit
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
#: Generous: the CI box runs the suite on two shared cores.
TIMEOUT_MS = 180_000
#: A dropdown that has not opened is clicked again: after 2 s first (on a quiet machine a list
#: opens at once; a click that lands while the widget is re-rendered opens nothing), then after
#: twice as long each time, up to 20 s on a busy machine (:func:`retry_waits`).
FIRST_OPEN_MS, OPEN_MS = 2_000, 20_000

#: Hostile catalogue strings (the ``xss`` dataset): shown as text, never run or evaluated.
EVIL_HREF = "https://evil.example/"
EVIL_LINK = f'<a href="{EVIL_HREF}">x</a>'
XSS_TITLES = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", EVIL_LINK)
FORMULA_TITLE = '=HYPERLINK("http://evil.example","click")'
XSS_CATEGORY = "<b onmouseover=alert(2)>Tools</b>"
#: A second hostile category, a brand, a segment value, an item and a user id (``xss``).
XSS_CATEGORY_LINK = f'<a href="{EVIL_HREF}">Kitchen</a>'
XSS_BRAND = f'<a href="{EVIL_HREF}">brand</a><img src=x onerror=alert(3)>'
XSS_SEGMENT = f'<script>alert(4)</script><a href="{EVIL_HREF}">gold</a>'
XSS_ITEM_ID = "<img src=x onerror=alert(5)>"
XSS_USER_ID = f'<a href="{EVIL_HREF}">u</a>'


# ---------------------------------------------------------------------------- console filter


def benign(text: str, url: str, origin: str) -> bool:
    """Console errors that are artefacts of the test machine, not of the app (exactly these).

    * A deep link such as ``/long_tail`` makes Streamlit's frontend probe
      ``/long_tail/_stcore/health`` and ``/long_tail/_stcore/host-config`` before it finds the
      base path: two 404s, then it connects.
    * ``page_icon=":material/..."`` loads the favicon SVG from fonts.gstatic.com, which the
      offline test machine cannot resolve.
    """
    probe = re.fullmatch(
        re.escape(origin) + r"/[A-Za-z0-9_-]+/_stcore/(health|host-config)", url.split("?")[0]
    )
    if probe and "404" in text:
        return True
    return url.startswith("https://fonts.gstatic.com/") and "net::ERR_" in text


# ---------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB, from /proc (nan once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    data_dir: Path
    log: Path

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def ltrec(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real CLI (``python -m ltrec.cli``) over ``data_dir``."""
    env = {**os.environ, "LTREC_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "ltrec.cli", *args],
        check=check,
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )


def start_server(
    data_dir: Path,
    log: Path,
    *,
    cwd: Path = REPO,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    """``streamlit run app.py`` on 127.0.0.1. ``cwd`` is where Streamlit reads
    ``.streamlit/config.toml`` and ``secrets.toml`` (the sign-in test uses its own folder)."""
    port = port or free_port()
    env = {
        **os.environ,
        "LTREC_DATA_DIR": str(data_dir),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **(env or {}),
    }
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    out = log.open("w")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
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
    raise RuntimeError("streamlit did not become healthy within 180 s")


def xss_item(i: int) -> str:
    """Item ``i``'s id in the ``xss`` dataset (item 3, a head item, has an HTML id)."""
    return XSS_ITEM_ID if i == 3 else f"i{i}"


def xss_user(u: int) -> str:
    """User ``u``'s id in the ``xss`` dataset (user 0 has an HTML id)."""
    return XSS_USER_ID if u == 0 else f"u{u}"


def write_xss_files(folder: Path) -> tuple[Path, Path, Path]:
    """Events, items and users CSVs whose titles, categories, brands, a segment and ids are
    HTML/JS or a formula."""
    import csv

    folder.mkdir(parents=True, exist_ok=True)
    hostile = [*XSS_TITLES, FORMULA_TITLE]
    cats = ("Garden", XSS_CATEGORY, XSS_CATEGORY_LINK)
    items = folder / "items.csv"
    with items.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "title", "category", "brand", "price"])
        for i in range(40):
            title = hostile[i] if i < len(hostile) else f"plain item {i}"
            brand = XSS_BRAND if i % 2 else "Acme"
            w.writerow([xss_item(i), title, cats[i % 3], brand, 10 + i])
    users = folder / "users.csv"
    with users.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "tier"])
        for u in range(60):  # 30 users per tier: no cell of the Segments page is suppressed
            w.writerow([xss_user(u), XSS_SEGMENT if u % 2 else "silver"])
    events = folder / "events.csv"
    with events.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "event_type", "timestamp"])
        n = 0
        for u in range(60):
            for j in range(8):
                # every user views the hostile items (so they are head items that every table
                # and list shows) and a spread of the others; some views become purchases
                item = xss_item(j if j < len(hostile) else (u * 7 + j * 3) % 40)
                day = 1 + (u + j) % 27
                user = xss_user(u)
                w.writerow([user, item, "view", f"2025-02-{day:02d}T10:{j:02d}:00"])
                if (u + j) % 3 == 0:
                    w.writerow([user, item, "purchase", f"2025-02-{day:02d}T11:{j:02d}:00"])
                n += 1
    return events, items, users


@dataclass
class Shared:
    server: Server
    browser: Any
    playwright: Any
    setup_s: float
    #: The built data as it was before any test ran (copy it; never write to it).
    template: Path
    closed: bool = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.browser.close()
            self.playwright.stop()
        finally:
            self.server.stop()


_shared: Shared | None = None
_lock = threading.Lock()


def build_data(root: Path) -> Path:
    """The suite's data dir: demo shop + hostile catalogue, each with a popularity run."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    ltrec(data, "demo", "--users", "400", "--items", "300", "--events", "40000", "--seed", "7")
    events, items, users = write_xss_files(root / "xss-src")
    files = ["--events", str(events), "--items", str(items), "--users", str(users)]
    ltrec(data, "import", "xss", *files)
    for name in ("demo", "xss"):
        ltrec(data, "train", name, "--model", "popularity")
    return data


def cached_data(root: Path, cache: Path | None) -> Path:
    """:func:`build_data` once per test run, shared by the xdist workers: the first one builds
    into ``cache`` (under a file lock), each copies it into ``root`` (its server writes there).
    ``cache=None`` (one process): built in ``root / "template"``. The untouched build stays in
    ``cache / "data"`` (:attr:`Shared.template`): other servers copy it instead of building."""
    import fcntl
    import shutil

    cache = cache or root / "template"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (cache / "built").exists():
            build_data(cache)
            (cache / "built").touch()
    shutil.copytree(cache / "data", root / "data")
    return root / "data"


def shared(root: Path, cache: Path | None = None) -> Shared:
    """The session's server and browser, started on first use (``root``: a temp folder;
    ``cache``: where the workers of one run share the built data, see :func:`cached_data`)."""
    global _shared
    with _lock:
        if _shared is None or _shared.closed:
            from playwright.sync_api import sync_playwright

            if not Path(CHROMIUM).exists():
                raise RuntimeError("Debian's chromium is missing: run ./test.sh, which installs it")
            t0 = time.monotonic()
            data = cached_data(root, cache)
            template = (cache or root / "template") / "data"
            server = start_server(data, root / "streamlit.log")
            pw = sync_playwright().start()
            try:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            except BaseException:
                pw.stop()
                server.stop()
                raise
            _shared = Shared(server, browser, pw, time.monotonic() - t0, template)
            atexit.register(server.stop)  # a crashed session still stops its server
        return _shared


def close_shared() -> None:
    global _shared
    with _lock:
        if _shared is not None:
            _shared.close()
            _shared = None


# ---------------------------------------------------------------------------- pages


#: Counts script runs: every transition of stApp's script state into running/rerunRequested.
RUN_COUNTER = """
(() => {
  window.__ltrecRuns = 0;
  const seen = new WeakMap();
  const obs = new MutationObserver((records) => {
    for (const r of records) {
      const s = r.target.getAttribute && r.target.getAttribute('data-test-script-state');
      if ((s === 'running' || s === 'rerunRequested') && seen.get(r.target) !== s) {
        window.__ltrecRuns += 1;
      }
      if (s) seen.set(r.target, s);
    }
  });
  obs.observe(document, {subtree: true, attributes: true,
                         attributeFilter: ['data-test-script-state']});
})();
"""

SETTLED = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  if (app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stSkeleton"]')) return false;
  if (!document.querySelector('[data-testid="stMain"] h1')) return false;
  for (const c of document.querySelectorAll('[data-testid="stPlotlyChart"]')) {
    if (!c.querySelector('.main-svg')) return false;
  }
  return true;
}"""


@dataclass
class Watched:
    """A page plus every console error and uncaught exception it produced."""

    page: Any
    origin: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def watch(ctx: Any, origin: str) -> Watched:
    """A new page in ``ctx`` that records console errors, page errors and dialogs."""
    ctx.add_init_script(RUN_COUNTER)
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    watched = Watched(pg, origin)

    def on_console(msg: Any) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        if not benign(msg.text, url, origin):
            watched.errors.append(f"{msg.text} ({url})" if url else msg.text)

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: watched.errors.append(f"pageerror: {exc}"))
    pg.on("dialog", on_dialog)
    return watched


def retry_waits(
    total_ms: int, first_ms: int = FIRST_OPEN_MS, cap_ms: int = OPEN_MS
) -> Iterator[int]:
    """The timeouts of a retried step: ``first_ms``, then twice as long each time up to
    ``cap_ms``, while their sum stays under ``total_ms``."""
    wait, spent = first_ms, 0
    while spent + wait < total_ms:
        yield wait
        spent += wait
        wait = min(2 * wait, cap_ms)


def settle(pg: Any, timeout: float = TIMEOUT_MS) -> None:
    """Wait until Streamlit has run the script and the page (charts included) is drawn."""
    pg.wait_for_function(SETTLED, timeout=timeout, polling=100)
    pg.wait_for_timeout(250)  # plotly lays out once more after its first SVG
    pg.wait_for_function(SETTLED, timeout=timeout, polling=100)


def runs(pg: Any) -> int:
    return int(pg.evaluate("window.__ltrecRuns || 0"))


def act(pg: Any, action: Callable[[], Any], timeout: float = TIMEOUT_MS) -> None:
    """Do a user action, wait for the script run it triggers to start, then settle."""
    before = runs(pg)
    action()
    try:
        pg.wait_for_function(f"(window.__ltrecRuns || 0) > {before}", timeout=15_000)
    except Exception:  # noqa: BLE001 - an action that reran nothing; settle still checks
        pass
    settle(pg, timeout)


def goto(watched: Watched, path: str = "", query: str = "") -> None:
    url = f"{watched.origin}/{path}" + (f"?{query}" if query else "")
    watched.page.goto(url, wait_until="domcontentloaded")
    settle(watched.page)


def main_text(pg: Any) -> str:
    return pg.locator('[data-testid="stMain"]').inner_text()


def chart_svg(pg: Any, key: str | None = None, nth: int = 0) -> str:
    """The drawn SVG of a plotly chart (by its element key, else the nth chart)."""
    sel = f'.st-key-{key} [data-testid="stPlotlyChart"]' if key else '[data-testid="stPlotlyChart"]'
    chart = pg.locator(sel).nth(0 if key else nth)
    return chart.evaluate(
        "c => Array.from(c.querySelectorAll('.main-svg')).map(s => s.innerHTML).join('')"
    )


def screenshot(pg: Any, name: str) -> Path:
    """A screenshot of the whole page: the viewport grows to the main area's height first
    (Streamlit scrolls inside stMain, so a plain full-page shot would stop at the fold)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = pg.viewport_size or {"width": 1400, "height": 1000}
    height = pg.evaluate(
        """() => { const m = document.querySelector('[data-testid="stMain"]');
                   return m ? m.scrollHeight : document.body.scrollHeight; }"""
    )
    tall = max(size["height"], min(int(height) + 40, 8000))
    try:
        if tall > size["height"]:
            pg.set_viewport_size({"width": size["width"], "height": tall})
            pg.wait_for_timeout(400)
            pg.wait_for_function(SETTLED, timeout=TIMEOUT_MS, polling=100)
        pg.screenshot(path=str(path), full_page=True)
    finally:
        pg.set_viewport_size(size)
    return path


def assert_clean(watched: Watched, name: str) -> None:
    """No Streamlit exception box, no console errors, no dialogs; keep a screenshot either way."""
    pg = watched.page
    screenshot(pg, name)
    exceptions = pg.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()
    assert watched.errors == [], watched.errors
    assert watched.dialogs == [], watched.dialogs


def app_pages() -> list[tuple[str, str]]:
    """``(title, url path)`` of every page in app.py's ``PAGES`` (the default page is ``""``)."""
    src = (REPO / "app.py").read_text()
    out = []
    for m in re.finditer(r'st\.Page\(\s*"app_pages/([A-Za-z0-9_]+)\.py"[^)]*?title="([^"]+)"', src):
        stem, title = m.group(1), m.group(2)
        default = "default=True" in src[m.start() : src.find(")", m.end()) + 1]
        out.append((title, "" if default else re.sub(r"^\d+_", "", stem)))
    return out
