"""Hostile imports, timed and weighed (issue 16: the gzip and the Parquet cases each end in
<= 5 s with peak memory <= 1 GB, in the importing process and in the app process).

Each case writes one hostile file (:mod:`tests.security.hostile_files`; not timed), then runs
the import exactly as the CLI and the Data page do, through
:func:`ltrec.store.importing.worker.run_import`, in a fresh runner process so every figure is
that case's own:

* ``seconds``: wall time of ``run_import`` until its error (or report) is back;
* ``worker_mb``: the import worker's peak RSS (``getrusage(RUSAGE_CHILDREN)`` in the runner);
* ``caller_mb``: the peak RSS of the process that called ``run_import`` (``VmHWM``): what
  the Streamlit server's script thread adds when a user uploads;
* ``app_mb`` / ``health_ms``: a real ``streamlit run app.py`` serving the same data directory,
  sampled every 50 ms during the case (peak RSS) and asked ``/_stcore/health`` every 100 ms
  (slowest answer).

Usage: ``python benchmarks/bench_security.py [--quick]`` (``--quick``: smaller bombs). Prints a
table and writes ``benchmarks/results/security.json``. Other jobs share the CPU cores:
treat the seconds as indicative.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.harness import start_server  # noqa: E402
from tests.security import hostile_files as hf  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LIMIT_S, LIMIT_MB = 5.0, 1024.0


def cases(quick: bool) -> list[tuple[str, str, str, Callable[[Path], Path], dict]]:
    """(group, name, file name, writer, run_import extras)."""
    big = 256 if quick else 1024
    relaxed = {
        "relaxed": True,  # reader guards at their bounds: the worker's limit must stop it
        "max_memory_mb": 1024,
    }
    return [
        ("gzip", f"bomb {big} MiB, 1 member", "bomb.csv.gz", lambda p: hf.gzip_bomb(p, big), {}),
        (
            "gzip",
            "200,000 empty members",
            "members.csv.gz",
            lambda p: hf.gzip_members_bomb(p, 200_000),
            {},
        ),
        (
            "gzip",
            f"one {big // 2} MiB line",
            "line.csv.gz",
            lambda p: hf.gzip_long_line(p, big // 2),
            {},
        ),
        ("gzip", "trailing garbage", "garbage.csv.gz", hf.gzip_trailing_garbage, {}),
        ("gzip", "bad CRC", "crc.csv.gz", hf.gzip_bad_crc, {}),
        ("gzip", "truncated", "cut.csv.gz", hf.gzip_truncated, {}),
        ("gzip", "zero padding (accepted)", "padded.csv.gz", hf.gzip_zero_padding, {}),
        ("gzip", "empty", "empty.csv.gz", hf.gzip_empty, {}),
        (
            "parquet",
            "dictionary 10 MiB x 1,000",
            "dict.parquet",
            hf.parquet_dictionary_bomb,
            {},
        ),
        (
            "parquet",
            "dictionary 1 MiB x 5,000",
            "dict1.parquet",
            lambda p: hf.parquet_dictionary_bomb(p, 1, 5000),
            {},
        ),
        ("parquet", "50M rows in 150 KB", "rows.parquet", hf.parquet_many_rows, {}),
        ("parquet", "NUL in a column name", "nul.parquet", hf.parquet_nul_column, {}),
        ("parquet", "truncated", "cut.parquet", hf.parquet_truncated, {}),
        (
            "parquet",
            "100 MiB x 10 past relaxed guards",
            "big.parquet",
            lambda p: hf.parquet_dictionary_bomb(p, 100, 10, pad_kib=256),
            relaxed,
        ),
    ]


# ----------------------------------------------------------------------------- one case


def run_one(path: str, data: str, extras: str) -> None:
    """The runner: one import through the worker; prints its figures as JSON."""
    from ltrec.errors import LtrecError
    from ltrec.store.importing import ImportConfig, ReadConfig
    from ltrec.store.importing.worker import run_import

    kw = json.loads(extras)
    if kw.pop("relaxed", False):
        kw["config"] = ImportConfig(
            read=ReadConfig(
                max_value_bytes=2**28,
                max_gzip_ratio=10_000.0,
                max_uncompressed_bytes=2**40,
                max_rows_per_byte=1e6,
            )
        )
    with open("/proc/self/clear_refs", "w") as fh:  # start VmHWM here: imports are not the case
        fh.write("5")
    t = time.perf_counter()
    try:
        rep = run_import("shop", path, data_dir=data, **kw)
        outcome = f"imported {rep.rows_loaded.get('events', 0)} events"
    except LtrecError as err:
        outcome = f"exit {err.exit_code}: {err.message}"
    seconds = time.perf_counter() - t
    hwm = next(
        int(line.split()[1]) / 1024
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "outcome": outcome[:160],
                "worker_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
                "caller_mb": round(hwm),
            }
        )
    )


# ----------------------------------------------------------------------------- all cases


def show(fig: dict) -> dict:
    """Judge one case against the limits and print its row."""
    fig["ok"] = (
        fig["seconds"] <= LIMIT_S
        and max(fig["worker_mb"], fig["caller_mb"], fig["app_mb"]) <= LIMIT_MB
    )
    print(
        f"{fig['group']:8} {fig['case']:34} {fig['file_bytes']:>11,} B {fig['seconds']:6.2f} s "
        f"worker {fig['worker_mb']:5} MB caller {fig['caller_mb']:4} MB "
        f"app {fig['app_mb']:4} MB health {fig['health_ms']:5} ms "
        f"{'ok ' if fig['ok'] else 'OVER'} {fig['outcome'][:70]}",
        flush=True,
    )
    return fig


class Watch:
    """Samples the app server's RSS and health latency while a case runs."""

    def __init__(self, server) -> None:
        self.server, self.stop = server, threading.Event()
        self.rss: list[float] = []
        self.health: list[float] = []

    def __enter__(self) -> Watch:
        def rss() -> None:
            while not self.stop.wait(0.05):
                self.rss.append(self.server.rss_mb())

        def health() -> None:
            while not self.stop.wait(0.1):
                t = time.perf_counter()
                try:
                    with urllib.request.urlopen(f"{self.server.url}/_stcore/health", timeout=5):
                        self.health.append((time.perf_counter() - t) * 1000)
                except OSError:
                    self.health.append(float("inf"))

        self.threads = [threading.Thread(target=f, daemon=True) for f in (rss, health)]
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for th in self.threads:
            th.join()


def upload_cases(server, files: Path, quick: bool) -> list[dict]:
    """Through the Data page in Chromium: the app process itself reads the upload (the
    in-process guards refuse it while previewing). ``seconds``: upload to settled page."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.harness import CHROMIUM, CHROMIUM_ARGS, act, goto, main_text, settle, watch

    big = 256 if quick else 1024
    chosen = [
        ("gzip", f"page: bomb {big} MiB", "up-bomb.csv.gz", lambda p: hf.gzip_bomb(p, big)),
        ("parquet", "page: dictionary 10 MiB x 1,000", "up-dict.parquet",
         hf.parquet_dictionary_bomb),  # fmt: skip
    ]
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            other = watch(browser.new_context(), server.url)  # another user, open throughout
            goto(other, "", "ds=shop")
            admin = watch(browser.new_context(), server.url)
            for group, name, file, write in chosen:
                path = write(files / file)
                goto(admin, "data")
                box = admin.page.locator('[data-testid="stFileUploader"]').first
                with Watch(server) as w:
                    t = time.perf_counter()
                    pick = box.locator('input[type="file"]')
                    act(admin.page, lambda: pick.set_input_files(str(path)))  # noqa: B023
                    settle(admin.page)
                    seconds = time.perf_counter() - t
                text = main_text(admin.page)
                refused = "refused" in text or "limited to" in text
                rows.append(
                    {
                        "group": group,
                        "case": name,
                        "file_bytes": path.stat().st_size,
                        "seconds": round(seconds, 2),
                        "outcome": "refused on the page" if refused else "NOT refused",
                        "worker_mb": 0,
                        "caller_mb": round(max(w.rss or [server.rss_mb()])),
                        "app_mb": round(max(w.rss or [server.rss_mb()])),
                        "health_ms": round(max(w.health or [0.0])),
                    }
                )
                remove = box.locator('[data-testid="stFileChipDeleteBtn"]')
                act(admin.page, remove.click)
                path.unlink()
        finally:
            browser.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="256 MiB gzip bombs instead of 1 GiB")
    ap.add_argument("--one", nargs=3, metavar=("FILE", "DATA", "EXTRAS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        run_one(*args.one)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-security-") as tmp:
        root = Path(tmp)
        data, files = root / "data", root / "files"
        data.mkdir()
        files.mkdir()
        from ltrec.store.importing import import_dataset

        import_dataset("shop", hf.good_csv(files / "good.csv"), data_dir=data)
        server = start_server(data, root / "streamlit.log")
        try:
            # one user session first, so the app has imported its pages as in real use
            rows += [show(fig) for fig in upload_cases(server, files, args.quick)]
            idle = server.rss_mb()
            for group, name, file, write, extras in cases(args.quick):
                path = write(files / file)
                size = path.stat().st_size
                with Watch(server) as w:
                    cmd = [__file__, "--one", str(path), str(data), json.dumps(extras)]
                    out = subprocess.run(
                        [sys.executable, *cmd],
                        capture_output=True,
                        text=True,
                        cwd=REPO,
                        check=True,
                    )
                fig = json.loads(out.stdout.strip().splitlines()[-1])
                fig.update(
                    # past the reader's guards (relaxed): the worker's own limit, beyond the target
                    target=not extras.get("relaxed"),
                    group=group,
                    case=name,
                    file_bytes=size,
                    app_mb=round(max(w.rss or [idle])),
                    health_ms=round(max(w.health or [0.0])),
                )
                rows.append(show(fig))
                path.unlink()
        finally:
            server.stop()
    RESULTS.mkdir(exist_ok=True)
    out_path = RESULTS / "security.json"
    out_path.write_text(
        json.dumps(
            {"limit_s": LIMIT_S, "limit_mb": LIMIT_MB, "quick": args.quick, "cases": rows},
            indent=2,
        )
    )
    target = [r for r in rows if r.get("target", True)]
    bad = [r["case"] for r in target if not r["ok"]]
    within = f"{len(target) - len(bad)}/{len(target)} target cases within {LIMIT_S:g} s and "
    within += f"{LIMIT_MB:g} MB"
    print(f"{within}; wrote {out_path}")
    if bad:
        print("over the limits: " + "; ".join(bad))


if __name__ == "__main__":
    main()
