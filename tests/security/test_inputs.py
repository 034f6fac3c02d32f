"""Hostile inputs without a browser: crafted dataset and column names cannot change SQL, a changed
model file is refused, CSV exports are formula-escaped, the Streamlit config is locked down."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltrec.analytics.export import to_csv
from ltrec.cli import main
from ltrec.models.registry import MODEL_DIR, list_runs
from ltrec.store import connect, list_datasets

REPO = Path(__file__).resolve().parents[2]
EVIL_NAMES = [
    "x; DROP TABLE events",
    "x'; DROP TABLE events; --",
    'x"; DROP TABLE events; --',
    "../../etc/passwd",
    "demo/../x",
    "x\n",
    "",
]
EVIL_COLUMN = 'item_id"; DROP TABLE events; --'


def cli(data: Path, *args: str) -> int:
    return main(["--data-dir", str(data), *args])


def events_csv(path: Path, item_col: str = "item_id", rows: int = 60) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", item_col, "event_type", "timestamp"])
        for i in range(rows):
            w.writerow([f"u{i % 7}", f"i{i % 11}", "view", f"2025-01-{1 + i % 28:02d}T10:00:00"])
    return path


@pytest.fixture(scope="module")
def _store_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dataset to attack, imported once per module (each import runs a worker process)."""
    root = tmp_path_factory.mktemp("inputs")
    assert cli(root / "data", "import", "shop", "--events", str(events_csv(root / "e.csv"))) == 0
    return root / "data"


@pytest.fixture
def store(data_dir: Path, _store_built: Path) -> Path:
    """A dataset ``shop`` to attack (60 events): a fresh copy for each test (tests write)."""
    shutil.copytree(_store_built, data_dir, dirs_exist_ok=True)
    return data_dir


def event_count(data: Path, name: str = "shop") -> int:
    con = connect(name, data)
    try:
        return con.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("name", EVIL_NAMES)
@pytest.mark.parametrize("command", ["import", "stats", "train", "runs"])
def test_crafted_dataset_names_are_refused(store, tmp_path, capsys, name, command) -> None:
    args = {
        "import": ["import", name, "--events", str(tmp_path / "e.csv")],
        "stats": ["stats", name],
        "train": ["train", name, "--model", "popularity"],
        "runs": ["runs", name],
    }[command]
    assert cli(store, *args) == 2
    err = capsys.readouterr().err
    assert "invalid dataset name" in err
    # nothing was created or touched
    assert list_datasets(store) == ["shop"]
    assert event_count(store) == 60


def test_crafted_column_name_is_data_not_sql(store, tmp_path, capsys) -> None:
    """A column named like an injection is matched as a quoted identifier: the import succeeds,
    the values land where they belong, and the other dataset is untouched."""
    src = events_csv(tmp_path / "evil.csv", item_col=EVIL_COLUMN, rows=30)
    code = cli(store, "import", "evil", "--events", str(src), "--map", f"item_id={EVIL_COLUMN}")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert event_count(store) == 60  # the other dataset is untouched
    con = connect("evil", store)
    try:
        items = {r[0] for r in con.execute("SELECT DISTINCT item_id FROM events").fetchall()}
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 30
    finally:
        con.close()
    assert items == {f"i{i}" for i in range(11)}


def test_unmapped_crafted_column_is_reported_not_run(store, tmp_path, capsys) -> None:
    """Without ``--map`` the required item_id column is missing: a clear exit 2, no SQL."""
    src = events_csv(tmp_path / "evil.csv", item_col=EVIL_COLUMN, rows=30)
    assert cli(store, "import", "evil2", "--events", str(src)) == 2
    assert "item_id" in capsys.readouterr().err
    assert "evil2" not in list_datasets(store)
    assert event_count(store) == 60


def test_a_changed_model_file_is_refused(store, capsys) -> None:
    assert cli(store, "train", "shop", "--model", "popularity") == 0
    run = list_runs("shop", store)[-1]
    state = next((run.path / MODEL_DIR).glob("*.npz"))
    raw = bytearray(state.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte, same size
    state.write_bytes(bytes(raw))
    capsys.readouterr()
    code = cli(store, "recommend", "shop", "--run", run.run_id, "--user", "u1")
    err = capsys.readouterr().err
    assert code != 0
    assert "does not match its checksum" in err and state.name in err
    assert "Traceback" not in err


def test_csv_export_escapes_formulas() -> None:
    frame = pd.DataFrame(
        {
            "title": ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "ok"],
            "n": [1, -2, 3, 4, 5, 6],
            "=col": ["a", "b", "c", "d", "e", "f"],
        }
    )
    rows = list(csv.reader(io.StringIO(to_csv(frame).decode())))
    assert rows[0] == ["title", "n", "'=col"]
    titles = [r[0] for r in rows[1:]]
    assert titles == ["'" + t for t in frame["title"][:-1]] + ["ok"]
    assert [r[1] for r in rows[1:]] == ["1", "-2", "3", "4", "5", "6"]  # numbers stay numbers


def test_csv_export_of_categoricals_and_missing() -> None:
    frame = pd.DataFrame({"c": pd.Categorical(["=1+1", "b"]), "x": [np.nan, "@a"]})
    body = to_csv(frame).decode()
    assert "'=1+1" in body and "'@a" in body


def test_streamlit_config_keeps_xsrf_on_and_errors_hidden() -> None:
    cfg = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["enableXsrfProtection"] is True
    assert cfg["client"]["showErrorDetails"] == "none"
    assert cfg["server"].get("enableCORS", True) is True  # not switched off
    # and Streamlit itself reads them so from the repository root
    probe = (
        "import streamlit.config as c; c.get_config_options(force_reparse=True); "
        "print(c.get_option('server.enableXsrfProtection'), "
        "c.get_option('client.showErrorDetails'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "none"]


@pytest.mark.parametrize("run_id", ["abc\n", "../x", ".hidden", "a/b"])
def test_crafted_run_ids_are_refused(run_id) -> None:
    from ltrec.errors import RegistryError
    from ltrec.models.registry import check_run_id

    with pytest.raises(RegistryError):
        check_run_id(run_id)
