"""ltrec.files: the one durable write. A failed write leaves the old file and no temporary."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ltrec.files import atomic_path, atomic_write


class Crash(Exception):
    """Raised by a writer half-way through, as a bug or a full disk would."""


def test_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "mark.json"
    target.write_text("old")
    atomic_write(target, '{"run": "new"}')
    assert target.read_text() == '{"run": "new"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mark.json"]


def test_a_crash_mid_write_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "keys.json"
    target.write_text("old contents")
    with pytest.raises(Crash), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise Crash
    assert target.read_text() == "old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json"]


def test_a_crash_mid_write_of_a_folder_leaves_no_folder(tmp_path: Path) -> None:
    target = tmp_path / "run-1"
    with pytest.raises(Crash), atomic_path(target, tmp=tmp_path / ".tmp-run-1") as tmp:
        tmp.mkdir()
        (tmp / "model").mkdir()
        (tmp / "model" / "state.npz").write_bytes(b"\0" * 10)
        raise Crash
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_renamed_into_place_whole(tmp_path: Path) -> None:
    target = tmp_path / "sim-1"
    with atomic_path(target, tmp=tmp_path / ".tmp-sim-1") as tmp:
        tmp.mkdir()
        (tmp / "sub").mkdir()
        (tmp / "sub" / "rounds.parquet").write_bytes(b"PAR1")
        (tmp / "simulation.json").write_text("{}")
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "simulation.json",
        "sub",
        "sub/rounds.parquet",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["sim-1"]


def test_a_temporary_in_another_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    with (
        pytest.raises(ValueError, match="is not in the folder of"),
        atomic_path(tmp_path / "out.csv", tmp=tmp_path / "other" / ".out.csv.tmp"),
    ):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]


def test_the_mode_is_the_new_files_permissions(tmp_path: Path) -> None:
    target = tmp_path / "api_keys.json"
    atomic_write(target, b"secret", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() == b"secret"
