"""Growth of ltrec's cost with the data: time and peak memory per CLI command and per page at
1M, 3M, 10M and 30M events, with the fitted growth exponent (issue 19 §2).

For each size, ``ltrec demo --events N`` builds a shop in a fresh data dir, then every command
runs in its own process, one at a time: ``stats``, ``train`` (popularity, item-kNN, EASE, ALS),
``evaluate``, ``recommend`` (one user), ``export`` (every user, Parquet), ``opportunities`` and
``report``; then, when ``benchmarks/_page_memory.py`` is there, every page's first render in one
browser session (:func:`measure_pages`). A thread samples the resident memory of the command's
whole process tree every 50 ms (``peak_rss_mb``: the highest sample; the process is stopped
above ``--max-rss-mb`` and the row says so).

The floor, measured in the same run on the same store: a bare DuckDB ``COUNT(*)`` and a
``GROUP BY user_id, item_id`` over the events in a fresh Python process (``floor``); every
row's ``x_floor_time`` / ``x_floor_rss`` are its ratios to it. The growth exponent of a row is
the least-squares slope of log(time) (and log(peak RSS)) against log(events) over the sizes: 1
is linear, below 1 sub-linear (fixed costs dominate), above 1 super-linear.

Usage::

    .venv/bin/python benchmarks/bench_growth.py [--sizes 1e6,3e6,1e7] [--parts commands,pages]
        [--commands stats,train-popularity] [--root /tmp/ltrec-growth] [--max-rss-mb 8000]

prints a markdown table and writes ``benchmarks/results/growth.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks._page_memory import tree_rss_mb  # noqa: E402  (one RSS sampler for both)

RESULTS = REPO / "benchmarks" / "results" / "growth.json"
DATASET = "growth"
SAMPLE_S = 0.05
#: Every command row, in run order (``train-*`` rows train the model named after the dash).
COMMANDS = (
    "demo",
    "floor",
    "stats",
    "train-popularity",
    "train-itemknn",
    "train-ease",
    "train-als",
    "evaluate",
    "recommend",
    "export",
    "opportunities",
    "report",
)
PARTS = ("commands", "pages")

_FLOOR = """
import sys, time, duckdb
con = duckdb.connect()
con.execute("ATTACH ? AS ds (READ_ONLY)", [sys.argv[1]])
t0 = time.perf_counter()
n = con.execute("SELECT count(*) FROM ds.events").fetchone()[0]
pairs = con.execute(
    "SELECT count(*) FROM (SELECT user_id, item_id, count(*) FROM ds.events GROUP BY ALL)"
).fetchone()[0]
print(n, pairs, time.perf_counter() - t0)
"""




def measure(cmd: list[str], env: dict[str, str], max_rss_mb: float, timeout: float) -> dict:
    """Run ``cmd``; wall seconds, peak RSS of its process tree, exit code, stdout tail."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = [0.0]
    killed: list[str] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = tree_rss_mb(proc.pid)
            peak[0] = max(peak[0], rss)
            if rss > max_rss_mb and not killed:
                killed.append(f"stopped above {max_rss_mb:.0f} MB")
                proc.kill()
            if time.perf_counter() - t0 > timeout and not killed:
                killed.append(f"stopped after {timeout:.0f} s")
                proc.kill()
            done.wait(SAMPLE_S)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    thread.join()
    return {
        "seconds": round(wall, 3),
        "peak_rss_mb": round(peak[0], 1),
        "rc": proc.returncode,
        "note": killed[0] if killed else None,
        "stdout": out[-4000:],
        "stderr": err[-1500:],
    }


def _json(stdout: str) -> dict:
    try:
        return json.loads(stdout)
    except ValueError:
        return {}


def run_commands(
    n: int, data: Path, names: list[str], max_rss_mb: float, timeout: float
) -> list[dict]:
    """Every command row at ``n`` events, in a fresh data dir."""
    ltrec = [sys.executable, "-m", "ltrec.cli"]
    env = {**os.environ, "LTREC_DATA_DIR": str(data)}
    rows: list[dict] = []
    store = data / f"{DATASET}.duckdb"
    runs: dict[str, str] = {}
    user = None

    def row(name: str, cmd: list[str]) -> dict:
        res = measure(cmd, env, max_rss_mb, timeout)
        res = {"command": name, "events": n, **res}
        rows.append(res)
        ok = "ok" if res["rc"] == 0 else f"rc={res['rc']} {res['note'] or ''}"
        print(
            f"  {name:<18} {res['seconds']:>8.1f} s {res['peak_rss_mb']:>8.0f} MB  {ok}",
            flush=True,
        )
        return res

    for name in names:
        if name == "demo":
            if data.exists():
                shutil.rmtree(data)
            data.mkdir(parents=True)
            res = row(name, [*ltrec, "demo", "--name", DATASET, "--events", str(n), "--json"])
            if res["rc"] != 0:
                raise SystemExit(f"demo failed at {n:,} events: {res['stderr']}")
            res["events_built"] = _json(res["stdout"]).get("events_total")
        elif name == "floor":
            res = row(name, [sys.executable, "-c", _FLOOR, str(store)])
            parts = res["stdout"].split()
            if len(parts) == 3:
                res["query_seconds"] = float(parts[2])
                res["pairs"] = int(parts[1])
        elif name == "stats":
            row(name, [*ltrec, "stats", DATASET, "--json"])
        elif name.startswith("train-"):
            model = name.split("-", 1)[1]
            res = row(name, [*ltrec, "train", DATASET, "--model", model, "--json"])
            if res["rc"] == 0:
                runs[model] = _json(res["stdout"]).get("run_id", "")
            else:
                res["error"] = (_json(res["stdout"]).get("error") or {}).get("message")
        elif name in ("evaluate", "recommend", "export", "report"):
            run = runs.get("itemknn") or runs.get("popularity")
            if run is None:
                print(f"  {name:<18} skipped: no run trained in this session", flush=True)
                continue
            if name == "evaluate":
                res = row(name, [*ltrec, "evaluate", DATASET, "--run", run, "--json"])
            elif name == "recommend":
                if user is None:
                    user = _first_user(store)
                res = row(name, [*ltrec, "recommend", DATASET, "--run", run, "--user", user,
                                 "--json"])  # fmt: skip
            elif name == "export":
                out = data / "lists.parquet"
                res = row(name, [*ltrec, "export", DATASET, "--run", run, "--out", str(out),
                                 "--json"])  # fmt: skip
                out.unlink(missing_ok=True)
            else:
                out = data / "report.html"
                res = row(name, [*ltrec, "report", DATASET, "--run", run, "--out", str(out),
                                 "--json"])  # fmt: skip
            res["run"] = run
        elif name == "opportunities":
            row(name, [*ltrec, "opportunities", DATASET, "--json"])
    for r in rows:  # keep the file small: the outputs were for the run ids
        r.pop("stdout", None)
        if r["rc"] == 0:
            r.pop("stderr", None)
    return rows


def _first_user(store: Path) -> str:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS ds (READ_ONLY)", [str(store)])
        return str(con.execute("SELECT min(user_id) FROM ds.users").fetchone()[0])
    finally:
        con.close()


def run_pages(n: int, data: Path) -> list[dict]:
    """Every page's first render (:func:`measure_pages` of ``benchmarks/_page_memory.py``), if
    it is there."""
    try:
        from benchmarks._page_memory import measure_pages
    except ImportError as err:
        print(f"  pages skipped: {err}", flush=True)
        return []
    rows = []
    for r in measure_pages(data, DATASET):
        rows.append(
            {
                "page": r["page"],
                "events": n,
                "seconds": r.get("first_render_s"),
                "peak_rss_mb": r.get("peak_rss_mb"),
                "rss_after_mb": r.get("rss_after_mb"),
            }
        )
        print(f"  page {r['page']:<22} {r.get('first_render_s')} s {r.get('peak_rss_mb')} MB")
    return rows


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) on log(x) (None with fewer than two usable points)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return round(sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx, 3)


def summarise(rows: list[dict], key: str) -> list[dict]:
    """One entry per command (or page): per size time/RSS/ratios, and the fitted exponents."""
    floors = {r["events"]: r for r in rows if r.get(key) == "floor"}
    names = list(dict.fromkeys(r[key] for r in rows))
    out = []
    for name in names:
        mine = sorted((r for r in rows if r[key] == name), key=lambda r: r["events"])
        ok = [r for r in mine if r.get("rc", 0) == 0 and r.get("seconds")]
        sizes = [float(r["events"]) for r in ok]
        entry: dict[str, Any] = {
            key: name,
            "time_exponent": slope(sizes, [float(r["seconds"]) for r in ok]),
            "rss_exponent": slope(sizes, [float(r["peak_rss_mb"]) for r in ok]),
            "by_size": {},
        }
        for r in mine:
            f = floors.get(r["events"])
            cell = {
                "seconds": r.get("seconds"),
                "peak_rss_mb": r.get("peak_rss_mb"),
                "rc": r.get("rc", 0),
                "note": r.get("note") or r.get("error"),
            }
            if f and f.get("seconds") and r.get("seconds"):
                cell["x_floor_time"] = round(r["seconds"] / f["seconds"], 2)
                cell["x_floor_rss"] = round(r["peak_rss_mb"] / f["peak_rss_mb"], 2)
            entry["by_size"][str(r["events"])] = cell
        out.append(entry)
    return out


def _fmt_size(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"


def table(summary: list[dict], key: str, sizes: list[int]) -> str:
    head = [key, *[f"{_fmt_size(n)} s / MB" for n in sizes], "exp time", "exp RSS"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in summary:
        cells = [str(e[key])]
        for n in sizes:
            c = e["by_size"].get(str(n))
            if c is None:
                cells.append("-")
            elif c["rc"] != 0:
                cells.append(f"refused/failed ({c['note'] or 'rc ' + str(c['rc'])})"[:60])
            else:
                cells.append(f"{c['seconds']:.1f} / {c['peak_rss_mb']:.0f}")
        cells += [str(e["time_exponent"]), str(e["rss_exponent"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1e6,3e6,1e7,3e7", help="event counts, comma separated")
    ap.add_argument("--parts", default="commands,pages", help=f"of {','.join(PARTS)}")
    ap.add_argument("--commands", default=",".join(COMMANDS), help="command rows to run")
    ap.add_argument("--root", type=Path, default=Path("/tmp/ltrec-growth"), help="data dirs")
    ap.add_argument("--max-rss-mb", type=float, default=8000.0, help="stop a command above it")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per command")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--keep", action="store_true", help="keep the data dirs")
    ap.add_argument(
        "--add",
        type=Path,
        help="an earlier growth.json whose rows (the command or page at a size not measured "
        "now) join this table",
    )
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    names = [c.strip() for c in args.commands.split(",") if c.strip()]
    bad = [p for p in parts if p not in PARTS] + [c for c in names if c not in COMMANDS]
    if bad:
        raise SystemExit(f"unknown parts/commands: {bad}")
    if "pages" in parts and "demo" not in names and "commands" not in parts:
        names = ["demo"]
    if "demo" not in names:
        names = ["demo", *names]
    commands: list[dict] = []
    pages: list[dict] = []
    if args.add is not None:  # rows of an earlier run that this run does not measure again
        raw = json.loads(args.add.read_text())["raw"]
        redo = set(names) if "commands" in parts else {"demo"}
        commands += [
            r for r in raw["commands"] if r["events"] not in sizes or r["command"] not in redo
        ]
        pages += [r for r in raw["pages"] if r["events"] not in sizes or "pages" not in parts]
    for n in sizes:
        print(f"{n:,} events", flush=True)
        data = args.root / f"n{n}"
        if "commands" in parts:
            commands += run_commands(n, data, names, args.max_rss_mb, args.timeout)
        else:
            commands += run_commands(n, data, ["demo"], args.max_rss_mb, args.timeout)
        if "pages" in parts:
            pages += run_pages(n, data)
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
        write(args.out, commands, pages)  # after every size: a long run keeps what it measured
    all_sizes = sorted({r["events"] for r in commands})
    result = write(args.out, commands, pages)
    print()
    print(table(result["commands"], "command", all_sizes))
    if result["pages"]:
        print()
        print(table(result["pages"], "page", all_sizes))
    print(f"\nwrote {args.out}")


def write(out: Path, commands: list[dict], pages: list[dict]) -> dict:
    """The summary of the rows so far, written to ``out``."""
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "sizes": sorted({r["events"] for r in commands}),
        "floor": "a bare DuckDB COUNT(*) + GROUP BY user_id, item_id over the events, in a "
        "fresh Python process (row 'floor')",
        "commands": summarise(commands, "command"),
        "pages": summarise(pages, "page") if pages else [],
        "raw": {"commands": commands, "pages": pages},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
