"""kill -9 an import and a training run at seeded random moments: nothing is ever half written.

Import: the store is written into a private copy and swapped in with ``os.replace``, so after a
SIGKILL at any moment the dataset holds exactly the old tables or exactly the new ones (compared
by per-table checksums with the before and after states of an uninterrupted reference import).
Training: the registry writes a run into ``.tmp-*`` and renames it into place, so a kill during
the save leaves no listed partial run; the next training cleans the stale folder.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ltrec.models.registry import list_runs, load_run, runs_dir
from ltrec.store import connect, list_datasets

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

TABLES = ("events", "items", "users")
IMPORT_SEEDS = (0, 1, 2, 3, 4)
TRAIN_SEEDS = (0, 1, 2)


def cli(data_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "LTREC_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "ltrec.cli", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_ok(data_dir: Path, *args: str) -> str:
    proc = cli(data_dir, *args)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return out


def checksums(name: str, data_dir: Path) -> dict[str, tuple[int, int]]:
    """Per table: (rows, order-independent sum of row hashes)."""
    con = connect(name, data_dir)
    try:
        out = {}
        for t in TABLES:
            sql = f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {t} AS t"  # noqa: S608
            n, h = con.execute(sql).fetchone()  # (fixed table names, no user input)
            out[t] = (int(n), int(h))
        return out
    finally:
        con.close()


def write_events(path: Path, rows: int, seed: int, users: int = 3000, items: int = 2000) -> None:
    rng = random.Random(seed)
    kinds = ["view"] * 8 + ["cart", "purchase"]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "event_type", "timestamp"])
        for i in range(rows):
            day = 1 + i % 28
            w.writerow(
                [
                    f"u{rng.randrange(users)}",
                    f"i{int(rng.paretovariate(1.2)) % items}",
                    rng.choice(kinds),
                    f"2025-03-{day:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}",
                ]
            )


def temp_stores(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob(".shop.*.tmp.duckdb*"))


def wait_for(paths, proc: subprocess.Popen, timeout: float = 300.0) -> bool:
    """Poll (1 ms) until ``paths()`` is non-empty; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if paths():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.001)
    raise AssertionError("timed out waiting for the writer")


def test_import_killed_at_random_points(tmp_path: Path) -> None:
    data = tmp_path / "data"
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    write_events(small, 5_000, seed=1)
    write_events(big, 300_000, seed=2)
    run_ok(data, "import", "shop", "--events", str(small))
    before = checksums("shop", data)
    snapshot = tmp_path / "before.duckdb"
    shutil.copyfile(data / "shop.duckdb", snapshot)

    # the reference: the same import uninterrupted; time its write phase (temp file to exit)
    ref = cli(data, "import", "shop", "--events", str(big))
    assert wait_for(lambda: temp_stores(data), ref)
    t0 = time.monotonic()
    out, _ = ref.communicate(timeout=600)
    write_s = time.monotonic() - t0
    assert ref.returncode == 0, out
    after = checksums("shop", data)
    assert after["events"][0] > before["events"][0]

    outcomes = []
    for seed in IMPORT_SEEDS:
        shutil.copyfile(snapshot, data / "shop.duckdb")
        old_inode = (data / "shop.duckdb").stat().st_ino
        rng = random.Random(seed)
        delay = rng.uniform(0, write_s * 1.15)  # a few land after the swap
        proc = cli(data, "import", "shop", "--events", str(big))
        started = wait_for(lambda: temp_stores(data), proc)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert started, "the import finished before it wrote anything"

        assert list_datasets(data) == ["shop"]  # a left-over temp file is never listed
        # os.replace swaps a new file (inode) in: before it the store is exactly the old
        # tables, after it exactly the new ones; never anything in between
        swapped = (data / "shop.duckdb").stat().st_ino != old_inode
        got = checksums("shop", data)
        assert got == (after if swapped else before), f"seed {seed}: half-written store {got}"
        outcomes.append("after" if swapped else "before")
        print(f"seed {seed}: killed {delay:.2f} s into a {write_s:.2f} s write -> {outcomes[-1]}")
    assert "before" in outcomes  # at least one kill landed inside the write

    # the next import works (and clears the dead writers' temp files)
    shutil.copyfile(snapshot, data / "shop.duckdb")
    run_ok(data, "import", "shop", "--events", str(big))
    assert checksums("shop", data) == after
    assert temp_stores(data) == []
    assert "events" in run_ok(data, "stats", "shop")


def test_training_killed_during_the_save(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_ok(data, "demo", "--users", "1500", "--items", "2500", "--events", "60000", "--seed", "3")
    # a complete run to keep: the kills must never damage it
    run_ok(data, "train", "demo", "--model", "popularity")
    keep = [r.run_id for r in list_runs("demo", data)]
    folder = runs_dir("demo", data)

    def temps() -> list[Path]:
        return [p for p in folder.iterdir() if p.name.startswith(".tmp-")]

    landed = []
    for seed in TRAIN_SEEDS:
        for stale in temps():  # one dead save per round, so each round's folder is its own
            shutil.rmtree(stale)
        rng = random.Random(seed)
        delay = 0.0 if seed == 0 else rng.uniform(0, 0.3)
        # EASE on 2,500 items saves a 2,500 x 2,500 matrix: the save takes a while
        proc = cli(data, "train", "demo", "--model", "ease")
        assert wait_for(temps, proc), "training finished without a temporary run folder"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        left = temps()
        landed.append("in the save" if left else "after the rename")
        print(f"seed {seed}: killed {delay * 1000:.0f} ms into the save -> {landed[-1]}")

        runs = list_runs("demo", data)
        assert all(not r.run_id.startswith(".") for r in runs)
        assert set(keep) <= {r.run_id for r in runs}
        for r in runs:  # every listed run is complete: its checksums verify and it loads
            load_run("demo", r.run_id, data)
    assert "in the save" in landed

    # the next training works and sweeps the dead save's folder away
    run_ok(data, "train", "demo", "--model", "popularity")
    assert temps() == []
    # listed: the kept run, each killed run that was renamed into place, and the new one
    assert len(list_runs("demo", data)) == len(keep) + landed.count("after the rename") + 1
