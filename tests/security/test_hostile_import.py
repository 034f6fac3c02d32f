"""Hostile imports (issue 16 §4): gzip and Parquet bombs, damaged archives, absurd CSVs, hostile
ids, and the import worker's memory and time limits.

Every case attacks the dataset ``shop`` of one data directory that a real ``streamlit run
app.py`` serves (:func:`tests.e2e.harness.start_server`), and asserts one exact outcome: the exit
code (2) and the message, every file of the data directory byte for byte as before (the audit
log aside: it records the refusal), no temporary file left (the workers' private folders live in
a test-owned TMPDIR, and the data directory holds no ``.*.tmp*``), and the server answering
``/_stcore/health`` within 2 s throughout (polled every 0.25 s while the case runs).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from ltrec.cli import main
from ltrec.errors import BadInputError, ColumnNotFoundError, TooManyRejectsError
from ltrec.store.importing import ImportConfig, ReadConfig, import_dataset
from ltrec.store.importing.worker import ImportLimitError, memory_error, run_import, time_error
from tests.e2e.harness import Server, start_server
from tests.security import hostile_files as hf

pytestmark = [pytest.mark.slow]

#: Guards of the in-process reader relaxed to their bounds, so a bomb reaches the worker's
#: process limits (the second line of defence).
RELAXED = ImportConfig(
    read=ReadConfig(
        max_value_bytes=2**28,
        max_gzip_ratio=10_000.0,
        max_uncompressed_bytes=2**40,
        max_rows_per_byte=1e6,
    )
)


@dataclass
class Arena:
    root: Path
    data: Path
    tmp: Path
    files: Path
    server: Server


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    root = tmp_path_factory.mktemp("hostile")
    data, tmp, files = root / "data", root / "tmp", root / "files"
    for d in (data, tmp, files):
        d.mkdir()
    good = hf.good_csv(files / "good.csv")
    assert main(["--data-dir", str(data), "import", "shop", "--events", str(good)]) == 0
    server = start_server(data, root / "streamlit.log")
    try:
        yield Arena(root, data, tmp, files, server)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def private_tmp(arena: Arena, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers make their folders here, so "nothing left" is checked on a folder we own."""
    monkeypatch.setattr(tempfile, "tempdir", str(arena.tmp))


def leftovers(arena: Arena) -> list[str]:
    left = [str(p) for p in arena.tmp.iterdir()]
    return left + [str(p) for p in arena.data.rglob(".*tmp*")]


@contextlib.contextmanager
def unchanged(arena: Arena) -> Iterator[None]:
    """The store byte for byte as before, nothing left behind, the server answering."""
    before = hf.snapshot(arena.data)
    with hf.health(arena.server.url) as polls:
        yield
    assert hf.snapshot(arena.data) == before
    assert leftovers(arena) == []
    assert polls and all(polls), polls


def cli_import(
    arena: Arena, capsys, path: Path, *extra: str, name: str = "shop"
) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--data-dir", str(arena.data), "import", name, "--events", str(path), *extra])
    return code, capsys.readouterr().err


# ----------------------------------------------------------------------------- refused files

#: (writer, file name, what the message says): each file is refused as a whole, exit 2.
REFUSED: list[tuple[Callable[[Path], Path], str, str]] = [
    (lambda p: hf.gzip_bomb(p, mib=64), "bomb.csv.gz", "refused as a likely decompression bomb"),
    (
        lambda p: hf.gzip_members_bomb(p, members=20_000),
        "members.csv.gz",
        "gzip members from",
    ),
    (lambda p: hf.gzip_long_line(p, mib=64), "line.csv.gz", "refused as a likely decompression"),
    (hf.gzip_trailing_garbage, "garbage.csv.gz", "is a damaged gzip file (trailing garbage"),
    (hf.gzip_bad_crc, "crc.csv.gz", "is a damaged gzip file (bad CRC"),
    (hf.gzip_truncated, "cut.csv.gz", "is a truncated gzip file"),
    (hf.gzip_empty, "empty.csv.gz", "is empty once decompressed"),
    (hf.parquet_dictionary_bomb, "dict.parquet", "values are limited to 1.0 MiB"),
    (
        lambda p: hf.parquet_dictionary_bomb(p, value_mib=1, rows=5000),
        "dict1.parquet",
        "refused as a likely decompression bomb",
    ),
    (hf.parquet_many_rows, "rows.parquet", "rows per byte); refused as a likely decompression"),
    (hf.parquet_nul_column, "nul.parquet", "has a control character in its name"),
    (hf.parquet_truncated, "cut.parquet", "starts like Parquet but cannot be read"),
    (hf.not_parquet, "fake.parquet", "is named like a Parquet file but is not Parquet"),
    (hf.many_columns, "wide.csv", "has 25,004 columns; at most 20,000 are read"),
    (hf.endless_header, "header.csv", "has a first line longer than 8.0 MiB"),
    (hf.nul_bytes, "nul.csv", "looks binary (it contains NUL bytes)"),
    (hf.utf16, "utf16.csv", "is UTF-16 encoded"),
    (hf.zip_disguised, "zip.csv", "is a zip archive"),
]


@pytest.mark.parametrize(
    ("write", "file", "says"), REFUSED, ids=[f for _, f, _ in REFUSED]
)
def test_hostile_file_is_refused(arena, capsys, write, file, says) -> None:
    path = write(arena.files / file)
    with unchanged(arena):
        code, err = cli_import(arena, capsys, path)
    assert code == 2, err
    assert err.startswith(f"error: {file}: "), err
    assert says in err
    assert "Traceback" not in err and "internal error" not in err


#: (writer, file name, the reject summary): the rows are read, all rejected, exit 2.
REJECTED: list[tuple[Callable[[Path], Path], str, str]] = [
    (hf.control_char_ids, "ctrl.csv", "50 rows rejected: 50 control character in user_id"),
    (hf.unterminated_quote, "quote.csv", "1 row rejected: 1 malformed row"),
]


@pytest.mark.parametrize(("write", "file", "says"), REJECTED, ids=[f for _, f, _ in REJECTED])
def test_hostile_rows_are_rejected_and_nothing_lands(arena, capsys, write, file, says) -> None:
    path = write(arena.files / file)
    with unchanged(arena):
        code, err = cli_import(arena, capsys, path)
    assert code == 2, err
    assert err.startswith(f"error: {says}"), err
    assert "Nothing was imported." in err


def test_zero_padding_after_the_last_gzip_member_is_accepted(arena, capsys) -> None:
    """As ``gzip -d`` does (tape blocks): the rows import, into a dataset of their own."""
    path = hf.gzip_zero_padding(arena.files / "padded.csv.gz")
    code, err = cli_import(arena, capsys, path, name="padded")
    assert code == 0, err
    con = duckdb.connect(str(arena.data / "padded.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 10
    finally:
        con.close()
    assert leftovers(arena) == []


def test_nested_quoting_is_read_as_text(arena, capsys) -> None:
    """200,000 doubled quotes in one field are one value of 200,000 quote characters."""
    path = hf.nested_quotes(arena.files / "nested.csv", depth=200_000)
    code, err = cli_import(arena, capsys, path, name="nested")
    assert code == 0, err
    con = duckdb.connect(str(arena.data / "nested.duckdb"), read_only=True)
    try:
        ids = con.execute("SELECT item_id FROM events ORDER BY length(item_id) DESC").fetchall()
    finally:
        con.close()
    assert ids[0][0] == '"' * 200_000
    assert len(ids) == 51


def test_hostile_ids_are_stored_exactly_as_written(arena, capsys) -> None:
    path = hf.hostile_ids(arena.files / "ids.csv")
    code, err = cli_import(arena, capsys, path, name="ids")
    assert code == 0, err
    con = duckdb.connect(str(arena.data / "ids.duckdb"), read_only=True)
    try:
        users = {r[0] for r in con.execute("SELECT user_id FROM events").fetchall()}
        items = {r[0] for r in con.execute("SELECT item_id FROM items").fetchall()}
    finally:
        con.close()
    assert users == set(hf.HOSTILE_IDS)
    assert items == set(hf.HOSTILE_IDS)


# ----------------------------------------------------------------------------- the worker


def test_a_bomb_past_the_reader_guards_is_stopped_by_the_memory_limit(arena) -> None:
    """Guards relaxed to their bounds: a Parquet file whose dictionary repeats a 100 MiB string
    ten times (a gigabyte of text, ~5,000x its size) meets the worker's 512 MB limit."""
    path = hf.parquet_dictionary_bomb(arena.files / "big.parquet", 100, rows=10, pad_kib=256)
    with unchanged(arena), pytest.raises(ImportLimitError) as exc:
        run_import("shop", path, data_dir=arena.data, config=RELAXED, max_memory_mb=512)
    assert exc.value.limit == "memory"
    assert exc.value.message == memory_error(512).message
    assert exc.value.exit_code == 2
    assert "LTREC_IMPORT_MAX_MEMORY_MB (now 512)" in exc.value.hint


def test_a_memory_limit_below_what_an_import_needs_is_a_clear_error(
    arena, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("LTREC_IMPORT_MAX_MEMORY_MB", "256")
    with unchanged(arena):
        code, err = cli_import(arena, capsys, arena.files / "good.csv")
    assert code == 2
    assert err == f"error: {memory_error(256)}\n"


def test_an_import_past_the_time_limit_is_stopped(arena, capsys, monkeypatch) -> None:
    path = hf.big_csv_gz(arena.files / "big.csv.gz", rows=300_000)
    monkeypatch.setenv("LTREC_IMPORT_TIMEOUT_S", "1")
    with unchanged(arena):
        code, err = cli_import(arena, capsys, path)
    assert code == 2
    assert err == f"error: {time_error(1.0)}\n"


def test_a_worker_killed_during_the_commit_leaves_the_store_as_it_was(arena) -> None:
    """The caller stops mid-commit (as a Streamlit rerun does, from the progress callback):
    the child is killed inside ``writing`` and its copy of the dataset is removed."""
    path = hf.big_csv_gz(arena.files / "commit.csv.gz", rows=100_000)
    seen: list[str] = []

    class Stop(Exception):
        pass

    def progress(done: float, message: str) -> None:
        seen.append(message)
        if message == "writing":
            raise Stop

    with unchanged(arena), pytest.raises(Stop):
        run_import("shop", path, data_dir=arena.data, progress=progress)
    assert seen[-1] == "writing"


def test_errors_come_back_with_their_class_and_message(arena) -> None:
    path = hf.good_csv(arena.files / "cols.csv")
    mapping = {"item_id": '<a href="x">"; DROP TABLE events; --'}
    with pytest.raises(ColumnNotFoundError) as here:
        import_dataset("shop", path, mapping=mapping, data_dir=arena.data, dry_run=True)
    with unchanged(arena), pytest.raises(ColumnNotFoundError) as there:
        run_import("shop", path, mapping=mapping, data_dir=arena.data)
    assert str(there.value) == str(here.value)
    assert (there.value.column, there.value.field) == (here.value.column, here.value.field)


def test_too_many_rejects_keeps_its_report(arena) -> None:
    path = hf.control_char_ids(arena.files / "ctrl2.csv")
    with unchanged(arena), pytest.raises(TooManyRejectsError) as exc:
        run_import("shop", path, data_dir=arena.data)
    assert exc.value.report.rejects_by_reason == {"control character in user_id": 50}
    assert exc.value.report.committed is False
    assert isinstance(exc.value, BadInputError)


def test_the_worker_imports_what_the_importer_imports(arena) -> None:
    """A good file through the worker: the same report as in process (dry run), committed."""
    path = hf.good_csv(arena.files / "same.csv", rows=200)
    here = import_dataset("same", path, data_dir=arena.data, dry_run=True)
    there = run_import("same", path, data_dir=arena.data, dry_run=True)
    assert there.rows_loaded == here.rows_loaded
    assert there.rejects_by_reason == here.rejects_by_reason
    done = run_import("same", path, data_dir=arena.data)
    assert done.committed and done.rows_loaded == here.rows_loaded
    assert leftovers(arena) == []


def test_folders_of_dead_workers_are_swept(arena) -> None:
    """A caller killed itself (a server crash) leaves its worker's folder: the next import
    removes folders older than the time limit, and leaves a live one alone."""
    import os

    from ltrec.store.importing.worker import WORK_PREFIX

    stale, live = arena.tmp / f"{WORK_PREFIX}dead", arena.tmp / f"{WORK_PREFIX}live"
    for d in (stale, live):
        (d / "duckdb").mkdir(parents=True)
    os.utime(stale, (0, 0))
    run_import("swept", hf.good_csv(arena.files / "sweep.csv"), data_dir=arena.data, timeout_s=60)
    assert sorted(p.name for p in arena.tmp.iterdir()) == [live.name]
    for p in sorted(live.rglob("*"), reverse=True):
        p.rmdir()
    live.rmdir()


@pytest.mark.parametrize(
    "exc",
    [
        MemoryError(),
        OSError(12, "Cannot allocate memory", "/venv/site-packages/pandas/core/window"),
        SystemError("error return without exception set"),
        RuntimeError("can't start new thread"),
    ],
    ids=["memory-error", "enomem-mapping-a-module", "unchecked-malloc", "thread-stack"],
)
def test_every_face_of_a_failed_allocation_is_the_memory_limit(exc: BaseException) -> None:
    """What eight imports at once under 256 MB raised in the child (seen in a loaded CI run):
    each is the memory limit (exit 2 with its hint), never "failed unexpectedly" (exit 1)."""
    from ltrec.store.importing.worker import _out_of_memory

    wrapped = ValueError("while reading")
    wrapped.__cause__ = exc
    assert (_out_of_memory(exc), _out_of_memory(wrapped)) == (True, True)


@pytest.mark.parametrize(
    "exc",
    [OSError(2, "No such file"), SystemError("bad call"), RuntimeError("boom"), ValueError()],
    ids=["enoent", "other-system-error", "runtime", "value"],
)
def test_other_failures_are_not_taken_for_the_memory_limit(exc: BaseException) -> None:
    from ltrec.store.importing.worker import _out_of_memory

    assert _out_of_memory(exc) is False


def test_an_unusable_limit_setting_is_named(arena, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LTREC_IMPORT_MAX_MEMORY_MB", "230")
    with unchanged(arena):
        code, err = cli_import(arena, capsys, arena.files / "good.csv")
    assert code == 2
    assert err == (
        "error: LTREC_IMPORT_MAX_MEMORY_MB is not usable: Input should be greater than or equal "
        "to 256 (got '230')\nfix or unset LTREC_IMPORT_MAX_MEMORY_MB in the environment\n"
    )
