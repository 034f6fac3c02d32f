"""What A/B arms cost the API: latency with and without arm assignment + exposure logging.

Run: ``.venv/bin/python benchmarks/bench_arms.py [--seconds 1.5] [--clients 1,16]
[--segments 8]``; writes ``benchmarks/results/arms.json``; about three minutes on two shared cores.

One demo shop (3,000 users, 1,500 items, 100k events) and one ALS run (all data), in a
temporary data directory copied once per mode, each copy served by a real ``ltrec serve``
subprocess, all up at once; the load rotates between them in short segments (``--segments``
per mode and client count, the order rotated each time), so a change in the shared machine's
load hits every mode alike:

* **plain**: ``--rerank '{"strategy": "tail_boost", "beta": 0.3}'``: no experiment (the floor);
* **arms**: ``--arm a=<the same setting> --arm b=<the same setting>``: an A/A experiment, so the
  lists cost the same and the difference is the assignment (a salted SHA-256 per request) and
  the exposure log: one impression per item, written to the write-ahead file and fsynced
  before the answer (concurrent lists share an fsync: group commit), and moved into the store
  by the flusher (default every 5 s; each move copies the store file);
* **arms_flush60**: the same with ``--flush-every 60``: what the store writes cost.

Load: ``bench_api.load`` (closed loop, keep-alive connections, one ``GET
/v1/recommendations/{user}?k=10`` per request, training users at random) with 1 client (each
list waits for its own fsync) and with 16 (fsyncs shared). Reported per mode and client count:
p50 / p99 latency and requests/s over all segments, and each mode's ratios to plain (the
floor); the HTTP floor (``GET /health``), the lists per fsync of the arms server, and the
in-process parts of an arm list (the list, the assignment, the append + fsync of its
impressions). The two cores are shared with other work: the load average is recorded; the
ratios are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from bench_api import _client, cli, free_port, load  # noqa: E402

RESULTS = HERE / "results" / "arms.json"
SETTING = '{"strategy": "tail_boost", "beta": 0.3}'
MODES = {
    "plain": ("--rerank", SETTING),
    "arms": ("--arm", f"a={SETTING}", "--arm", f"b={SETTING}"),
    # the same, its flusher moving the log into the store every 60 s instead of 5 (each move
    # copies the store file): what the store writes cost the lists
    "arms_flush60": ("--arm", f"a={SETTING}", "--arm", f"b={SETTING}", "--flush-every", "60"),
}
K = 10


def measure(
    port: int, key: str, paths: list[str], clients: int, seconds: float, warmup: float = 0.0
) -> dict:
    """``bench_api.load`` keeping every latency (ms) and counting the warm-up's lists too."""
    import asyncio

    import uvloop

    async def run(secs: float) -> tuple[list[float], int, float]:
        lat: list[float] = []
        t0 = time.perf_counter()
        errs = await asyncio.gather(
            *(_client(port, key, paths, n * 97, t0 + secs, lat) for n in range(clients))
        )
        return lat, sum(errs), time.perf_counter() - t0

    warm, _, _ = uvloop.run(run(warmup)) if warmup else ([], 0, 0.0)
    lat, errors, elapsed = uvloop.run(run(seconds))
    return {
        "latencies_ms": np.asarray(lat) * 1000,
        "requests": len(lat),
        "lists_with_warmup": len(lat) + len(warm),
        "errors": errors,
        "requests_per_s": round(len(lat) / elapsed, 1),
    }


class Served:
    def __init__(self, root: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LTREC_DATA_DIR": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
        cmd = [sys.executable, "-m", "ltrec.cli", "serve", "shop", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*cmd, *args], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"ltrec serve failed: {self.proc.stderr.read()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("ltrec serve did not start")
            time.sleep(0.3)

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/health", timeout=10).json()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def in_process(root: Path, run_id: str, run: Any, users: np.ndarray) -> dict[str, Any]:
    """Where an arm list's extra time goes, without HTTP (medians over many repeats): the
    list itself (``RecSession.recommend``), the assignment, and writing its ten impressions to
    a write-ahead log with its fsync, one list at a time (no group commit to share it)."""
    from datetime import datetime

    from ltrec.app.live_events import EXPOSURE, Event, EventLog
    from ltrec.app.live_experiments import Experiment, assign
    from ltrec.app.pipeline import RecSession

    session = RecSession.open("shop", run_id, SETTING, data_dir=root)
    ids = [str(run.user_ids[u]) for u in users[:300]]
    exp = Experiment("exp-bench", "shop", {"a": {}, "b": {}}, (0.5, 0.5), "0" * 16, "now")

    def median_ms(fn: Any, n: int) -> float:
        t = []
        for i in range(n):
            t0 = time.perf_counter()
            fn(i)
            t.append(time.perf_counter() - t0)
        return round(1000 * float(np.median(t)), 4)

    recommend = median_ms(lambda i: session.recommend(ids[i % len(ids)], K), 300)
    assign_ms = median_ms(lambda i: assign(ids[i % len(ids)], exp), 3000)
    (root / "wal").mkdir()
    log = EventLog("walbench", root / "wal")
    now = datetime.now()
    lst = [
        Event(
            "u",
            f"i{p}",
            "impression",
            now,
            source=EXPOSURE,
            experiment=exp.id,
            arm="a",
            position=p,
            request_id="r" * 32,
        )  # fmt: skip
        for p in range(1, K + 1)
    ]
    try:
        append = median_ms(lambda i: log.append(lst), 200)
    finally:
        log.close()
    return {
        "recommend_ms": recommend,
        "assign_ms": assign_ms,
        "exposure_append_fsync_ms": append,
        "note": "medians; the append is one list's 10 impressions and its own fsync",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.5, help="one segment of load")
    ap.add_argument("--clients", default="1,16")
    ap.add_argument("--segments", type=int, default=8, help="alternating segments per mode")
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    from ltrec.models.registry import load_run
    from ltrec.serve import keys

    out: dict[str, Any] = {
        "cores": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "command": "python benchmarks/bench_arms.py " + " ".join(sys.argv[1:]),
        "setting": json.loads(SETTING),
        "k": K,
    }
    lat: dict[tuple[str, int], list[np.ndarray]] = {}
    rps: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-arms-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        cli(root, "demo", "--name", "shop", "--users", "3000", "--items", "1500",
            "--events", "100000")  # fmt: skip
        trained = json.loads(
            cli(
                root,
                "train",
                "shop",
                "--model",
                "als",
                "--all-data",
                "--set",
                "iterations=5",
                "--json",
            )  # fmt: skip
        )
        out["setup_seconds"] = round(time.perf_counter() - t0, 1)
        run = load_run("shop", trained["run_id"], root)
        reader, _ = keys.create("bench-reader", "reader", data_dir=root)
        rng = np.random.default_rng(0)
        users = rng.integers(0, len(run.user_ids), 4000)
        paths = [
            f"/v1/recommendations/{urllib.parse.quote(str(run.user_ids[u]), safe='')}?k={K}"
            for u in users
        ]
        # a copy of the shop per mode, one server each, all up at once, so the load of the
        # shared machine falls on every mode alike (one server per data directory and dataset)
        servers = {}
        for mode, flags in MODES.items():
            where = root / f"copy-{mode}"
            shutil.copytree(root, where, ignore=shutil.ignore_patterns("copy-*", "api"))
            servers[mode] = Served(where, *flags)
        auth = dict.fromkeys(MODES, reader)  # (the key file was copied too)
        try:
            for mode, srv in servers.items():  # warm-up: first lists, page cache, JIT-free paths
                measure(srv.port, auth[mode], paths, 4, 2.0)
            before = servers["arms"].health()["events"]["fsyncs"]
            lists = 0
            for c in clients:
                for seg in range(args.segments):
                    order = list(MODES)[seg % len(MODES) :] + list(MODES)[: seg % len(MODES)]
                    for mode in order:
                        got = measure(servers[mode].port, auth[mode], paths, c, args.seconds)
                        assert got["errors"] == 0, got
                        lat.setdefault((mode, c), []).append(got.pop("latencies_ms"))
                        rps.setdefault((mode, c), []).append(got["requests_per_s"])
                        if mode == "arms":
                            lists += got["requests"]
                    print(f"{c} client(s), segment {seg + 1}/{args.segments}", flush=True)
            time.sleep(0.5)  # the last answers' fsyncs are counted before they are sent
            n = servers["arms"].health()["events"]["fsyncs"] - before
            out["exposure_fsyncs"] = {
                "lists": lists, "fsyncs": n, "lists_per_fsync": round(lists / max(n, 1), 2)
            }  # fmt: skip
            out["http_floor"] = load(servers["plain"].port, reader, ["/health"], 16, 3.0)
        finally:
            for srv in servers.values():
                srv.stop()
        out["in_process"] = in_process(root, trained["run_id"], run, users)
    table: dict[str, Any] = {}
    for c in clients:
        row: dict[str, Any] = {}
        for mode in MODES:
            a = np.concatenate(lat[(mode, c)])
            row[mode] = {
                "requests": int(a.size),
                "p50_ms": round(float(np.percentile(a, 50)), 2),
                "p99_ms": round(float(np.percentile(a, 99)), 2),
                "requests_per_s": round(float(np.mean(rps[(mode, c)])), 1),
            }
        base = row["plain"]
        for mode in list(MODES)[1:]:
            m = row[mode]
            row[f"{mode}_to_plain"] = {
                "p50_ratio": round(m["p50_ms"] / base["p50_ms"], 2),
                "p99_ratio": round(m["p99_ms"] / base["p99_ms"], 2),
                "throughput_ratio": round(m["requests_per_s"] / base["requests_per_s"], 2),
                "p50_overhead_ms": round(m["p50_ms"] - base["p50_ms"], 2),
            }
        table[f"{c}_clients"] = row
    out["latency"] = table
    out["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
