"""Browser-suite benchmark: wall time of the whole real-browser suite (one server, one Chromium)
and the server's memory with ten concurrent sessions.

Runs ``pytest tests/e2e tests/security -m e2e`` (the suite builds its own demo shop in a
temporary data dir), times it, and reads the concurrency test's report
(``test-artifacts/concurrency.json``: server RSS from /proc at start, peak and end of the
ten-user run). Prints a table and writes ``benchmarks/results/e2e.json``.

    .venv/bin/python benchmarks/bench_e2e.py [--users-seconds 75]

The figures depend on the machine's load: the CI box shares two cores with other work.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "e2e.json"
REPORT = REPO / "test-artifacts" / "concurrency.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users-seconds", type=float, default=75.0, help="ten-user run length")
    args = ap.parse_args()
    REPORT.unlink(missing_ok=True)
    env = {**os.environ, "LTREC_E2E_USERS_S": str(args.users_seconds)}
    cmd = [sys.executable, "-m", "pytest", "tests/e2e", "tests/security", "-m", "e2e", "-q"]
    cmd += ["-p", "no:cacheprovider"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    conc = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    rss = conc.get("server_rss_mb", {})
    result = {
        "suite_wall_s": round(wall, 1),
        "suite_result": summary,
        "suite_ok": proc.returncode == 0,
        "users": conc.get("users"),
        "users_seconds": conc.get("duration_s"),
        "flows_done": conc.get("flows_done"),
        "server_rss_start_mb": rss.get("start"),
        "server_rss_peak_mb": rss.get("peak"),
        "server_rss_end_mb": rss.get("end"),
        "server_rss_growth_mb": rss.get("growth"),
        "cpus": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 1),
        "python": platform.python_version(),
        "note": "shared machine: other work loads the cores while this runs",
    }
    rows = [
        ("browser suite wall time", f"{wall:,.0f} s ({summary})"),
        (
            f"server RSS, {conc.get('users', '?')} sessions",
            f"start {rss.get('start', '?')} MiB, peak {rss.get('peak', '?')} MiB, "
            f"end {rss.get('end', '?')} MiB",
        ),
        ("flows done by the users", str(conc.get("flows_done", "?"))),
        ("load average (1 min) at the end", f"{result['load_avg_1m_at_end']} on {os.cpu_count()}"),
    ]
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a:<{width}}  {b}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"-> {OUT.relative_to(REPO)}")
    if proc.returncode != 0:
        print(proc.stdout[-3000:], file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
