"""`export` streams: batch by batch into one file, the same file a single write of every row
gives (RecSession.export; DESIGN §11, issue 19: bounded memory at 10M events)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ltrec.analytics.export import escape_cell
from ltrec.app.pipeline import _TEXT_COLUMNS, EXPORT_COLUMNS, RecSession


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> RecSession:
    """A small demo shop's item-kNN run, re-ranked by a tail boost (so reasons vary)."""
    from ltrec.models.train import train
    from ltrec.synth.demo import DemoConfig, build_demo

    root = tmp_path_factory.mktemp("export_shop")
    build_demo(DemoConfig(users=150, items=90, events=6000, seed=5), data_dir=root)
    run = train("demo", "itemknn", n_boot=0, data_dir=root).run_id
    return RecSession.open("demo", run, {"strategy": "tail_boost", "beta": 1.0}, data_dir=root)


def _whole(session: RecSession, k: int) -> pd.DataFrame:
    """Every row in one frame (what export wrote before it streamed)."""
    return session.table(k, batch_size=10_000)


def test_batched_csv_equals_one_write(session: RecSession, tmp_path: Path) -> None:
    out = tmp_path / "lists.csv"
    summary = session.export(out, k=5, batch_size=7)  # 150 users: 22 batches, the last short
    whole = _whole(session, 5).copy()
    for col in _TEXT_COLUMNS:
        whole[col] = whole[col].astype(object).map(escape_cell)
    before = tmp_path / "before.csv"
    whole.to_csv(before, index=False)
    assert out.read_bytes() == before.read_bytes()
    assert summary["rows"] == len(whole) == session.data.n_users * 5
    assert summary["users"] == session.data.n_users


def test_batched_parquet_equals_one_write(session: RecSession, tmp_path: Path) -> None:
    out = tmp_path / "lists.parquet"
    summary = session.export(out, k=5, batch_size=7)
    got = pd.read_parquet(out)
    assert list(got.columns) == EXPORT_COLUMNS
    pd.testing.assert_frame_equal(got, _whole(session, 5))
    assert summary["rows"] == len(got) and summary["format"] == "parquet"


def test_no_user_gives_a_header_only_file(session: RecSession, tmp_path: Path) -> None:
    from ltrec.app.pipeline import _write_csv, _write_parquet

    assert _write_csv(tmp_path / "e.csv", iter([])) == 0
    assert (tmp_path / "e.csv").read_text().strip() == ",".join(EXPORT_COLUMNS)
    assert _write_parquet(tmp_path / "e.parquet", iter([])) == 0
    assert list(pd.read_parquet(tmp_path / "e.parquet").columns) == EXPORT_COLUMNS
