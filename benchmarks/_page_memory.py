"""App-server memory per page: every page's first render in one browser session (issue 19 §1).

:func:`measure_pages` starts the real app (``streamlit run app.py`` on 127.0.0.1, where sign-in
is off: one local user with every right) over a data dir, opens the default page in Debian's
Chromium (as the e2e suite does), then clicks through the sidebar to every page of app.py's
``PAGES`` in the same browser session, so caches and session state build up as they would for
a user. While a page renders, a thread samples the resident memory of the server's process tree
(the server and any child it started) every 50 ms; ``peak_rss_mb`` is the highest sample from
the click to the page being settled (script done, charts drawn), ``rss_after_mb`` the tree's
RSS a moment after. The Model Lab and the Rerank Studio show the dataset's active run: train
one first (``ltrec train NAME --model popularity``).

    LTREC_DATA_DIR=/tmp/P/data .venv/bin/python benchmarks/_page_memory.py demo10m \
        [--data-dir DIR] [--pages "Overview,Long Tail"]

prints a table and writes ``benchmarks/results/page_memory.json``. ``benchmarks/bench_growth.py``
calls :func:`measure_pages` per event count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Sampling period of the RSS thread (a page's peak lasts longer than this: frames of seconds).
SAMPLE_S = 0.05
#: How long a page may take to settle on a big dataset on two shared cores.
PAGE_TIMEOUT_MS = 900_000
#: Settled pages are given this long before ``rss_after_mb`` (frees and late fragments).
AFTER_S = 1.0


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MiB (0 for processes gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:  # a child that ended between listing and reading
            pass
    return total / 2**20


class Sampler:
    """A thread that keeps the peak of :func:`tree_rss_mb` since the last :meth:`reset`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            rss = tree_rss_mb(self.pid)
            with self._lock:
                self.peak = max(self.peak, rss)
            self._stop.wait(SAMPLE_S)

    def reset(self) -> None:
        with self._lock:
            self.peak = tree_rss_mb(self.pid)

    def read_peak(self) -> float:
        with self._lock:
            return max(self.peak, tree_rss_mb(self.pid))


#: Settled, or stopped on an exception (a page that fails has no title to wait for).
DONE = """() => {
  const settled = (%s)();
  const app = document.querySelector('[data-testid="stApp"]');
  const idle = app && app.getAttribute('data-test-script-state') === 'notRunning';
  return settled || (idle && !!document.querySelector('[data-testid="stException"]'));
}"""


def _settle(pg: Any) -> None:
    from tests.e2e.harness import SETTLED

    done = DONE % SETTLED
    pg.wait_for_function(done, timeout=PAGE_TIMEOUT_MS, polling=100)
    pg.wait_for_timeout(250)  # plotly lays out once more after its first SVG
    pg.wait_for_function(done, timeout=PAGE_TIMEOUT_MS, polling=100)


def _problems(pg: Any) -> list[str]:
    boxes = pg.locator('[data-testid="stException"]')
    return [boxes.nth(i).inner_text()[:300] for i in range(boxes.count())]


def measure_pages(
    data_dir: Path | str, dataset: str, pages: list[str] | None = None
) -> list[dict[str, Any]]:
    """Visit every page (or the titles in ``pages``, in app.py's order) of the app served over
    ``data_dir`` with ``dataset`` chosen, in one browser session; one dict per page: ``page``
    (its title), ``first_render_s`` (click to settled), ``peak_rss_mb`` (the server tree's peak
    during the render), ``rss_after_mb`` (after it). A page that shows an exception box raises
    RuntimeError: its memory would not be the page's."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.harness import CHROMIUM, CHROMIUM_ARGS, RUN_COUNTER, app_pages, start_server

    data_dir = Path(data_dir)
    every = app_pages()
    wanted = [t for t, _ in every] if pages is None else list(pages)
    unknown = sorted(set(wanted) - {t for t, _ in every})
    if unknown:
        raise ValueError(f"unknown pages {unknown}; app.py has {[t for t, _ in every]}")
    log = data_dir / "page_memory.streamlit.log"
    server = start_server(data_dir, log, env={"LTREC_DATASET": dataset})
    out: list[dict[str, Any]] = []
    try:
        with Sampler(server.proc.pid) as sampler, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            ctx.add_init_script(RUN_COUNTER)
            pg = ctx.new_page()
            pg.set_default_timeout(PAGE_TIMEOUT_MS)
            default = next(t for t, path in every if path == "")
            # the default page opens with the app; the others by a sidebar click (one session)
            for title, _ in every:
                if title not in wanted and title != default:
                    continue
                sampler.reset()
                t0 = time.perf_counter()
                if title == default:
                    pg.goto(f"{server.url}/?ds={dataset}", wait_until="domcontentloaded")
                else:
                    nav = pg.locator('[data-testid="stSidebarNav"] a', has_text=title)
                    nav.first.click()
                    pg.wait_for_function(
                        "t => { const h = document.querySelector('[data-testid=\"stMain\"] h1');"
                        " return (h && h.innerText.trim().startsWith(t))"
                        " || !!document.querySelector('[data-testid=\"stException\"]'); }",
                        arg=title,
                        timeout=PAGE_TIMEOUT_MS,
                        polling=100,
                    )
                _settle(pg)
                first = time.perf_counter() - t0
                peak = sampler.read_peak()
                time.sleep(AFTER_S)
                peak = max(peak, sampler.read_peak())
                problems = _problems(pg)
                if problems:
                    raise RuntimeError(f"{title} shows an exception: {problems[0]}")
                if title in wanted:
                    out.append(
                        {
                            "page": title,
                            "first_render_s": round(first, 2),
                            "peak_rss_mb": round(peak, 1),
                            "rss_after_mb": round(tree_rss_mb(server.proc.pid), 1),
                        }
                    )
            browser.close()
    finally:
        server.stop()
    return out


def main() -> None:
    # a stopped benchmark (timeout, kill) still stops its server: `finally` runs on SystemExit
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", help="the dataset to show (it needs a trained run)")
    ap.add_argument("--data-dir", type=Path, default=None, help="default: $LTREC_DATA_DIR")
    ap.add_argument("--pages", default=None, help="comma-separated page titles (default: all)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/page_memory.json")
    args = ap.parse_args()
    data_dir = args.data_dir or Path(os.environ.get("LTREC_DATA_DIR", REPO / "data"))
    pages = [t.strip() for t in args.pages.split(",")] if args.pages else None
    rows = measure_pages(data_dir, args.dataset, pages)

    import duckdb

    with duckdb.connect(str(data_dir / f"{args.dataset}.duckdb"), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM events").fetchone()
    n_events = int(row[0]) if row else 0
    print(f"{args.dataset}: {n_events:,} events; server tree RSS per page (MiB)")
    print(f"{'page':<16}{'first render s':>15}{'peak RSS':>10}{'RSS after':>11}")
    for r in rows:
        print(f"{r['page']:<16}{r['first_render_s']:>15.1f}{r['peak_rss_mb']:>10.0f}"
              f"{r['rss_after_mb']:>11.0f}")  # fmt: skip
    print(f"max peak {max(r['peak_rss_mb'] for r in rows):.0f} MiB")
    result = {
        "dataset": args.dataset,
        "events": n_events,
        "pages": rows,
        "max_peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
        "note": "one browser session, pages in app.py's order; RSS of the server's process tree",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
