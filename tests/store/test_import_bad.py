"""The bad-input corpus (tests/store/bad_inputs/manifest.json): every file gives a clear error or
rejects with their reason, the store is unchanged when the import is refused (checksum of every
table), and a good import afterwards still works."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from ltrec.errors import BadInputError, TooManyRejectsError
from ltrec.store import connect, dataset_path, file_version
from ltrec.store.importing import import_dataset
from ltrec.store.importing.codes import RejectCode

CORPUS = Path(__file__).parent / "bad_inputs"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())["cases"]

GOOD_EVENTS = (
    "user_id,item_id,event_type,ts,price\n"
    "u1,10,view,2024-01-02 10:00:00,1.5\n"
    "u2,11,purchase,2024-01-03 11:00:00,2.5\n"
    "u3,10,cart,2024-01-04 12:00:00,\n"
)


def table_checksums(name: str) -> dict[str, tuple[int, str]]:
    """Every table of a dataset -> (row count, md5 over its sorted rows and column names)."""
    con = connect(name)
    try:
        tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
        out = {}
        for t in tables:
            q = '"' + t.replace('"', '""') + '"'
            cols = [r[0] for r in con.execute(f"DESCRIBE {q}").fetchall()]
            sql = "SELECT count(*), md5(coalesce(string_agg(h, '|' ORDER BY h), '')) FROM "
            sql += f"(SELECT md5(CAST(x AS VARCHAR)) AS h FROM {q} x)"  # noqa: S608 - quoted name
            n, digest = con.execute(sql).fetchone()
            out[t] = (n, hashlib.md5((digest + repr(cols)).encode()).hexdigest())
        return out
    finally:
        con.close()


def _generate(tmp: Path) -> dict[str, Path]:
    """The binary cases, written at test time rather than committed."""
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        files[name] = tmp / name
        files[name].write_bytes(data)

    header = b"timestamp,visitorid,event,itemid,transactionid\n"
    put("invalid_utf8.csv", header + b"1433221332117,Jos\xe9,view,10,\n")
    good = b"".join(b"1433221332%03d,%d,view,%d,\n" % (i % 1000, i, i) for i in range(40_000))
    # past the bytes the encoding is sniffed from (the first MiB and the last 64 KiB)
    put("invalid_utf8_late.csv", header + good + b"1433221332117,caf\xe9,view,10,\n" + good)
    put("utf16.csv", "timestamp,visitorid,event,itemid\n1,2,view,3\n".encode("utf-16"))
    put("fake.parquet", header + b"1433221332117,1,view,10,\n")
    put("truncated.parquet", b"PAR1" + b"\x00garbage" * 20)
    bomb = gzip.compress(header + b"0" * (64 * 2**20), compresslevel=9)  # ~64 KiB -> 64 MiB
    put("bomb.csv.gz", bomb)
    put("zipped.csv", b"PK\x03\x04" + b"\x00" * 64)
    return files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("corpus")
    files = {p.name: p for p in CORPUS.iterdir() if p.name != "manifest.json"}
    files.update(_generate(tmp))
    good = tmp / "good_events.csv"
    good.write_text(GOOD_EVENTS)
    files["good_events.csv"] = good
    return files


@pytest.fixture(scope="module")
def base_store(tmp_path_factory: pytest.TempPathFactory, corpus: dict[str, Path]) -> Path:
    """A small dataset built once; each case starts from a copy of its file."""
    root = tmp_path_factory.mktemp("base")
    import_dataset("shop", events=corpus["good_events.csv"], data_dir=root)
    return dataset_path("shop", root)


def test_manifest_covers_the_corpus(corpus):
    listed = {c["file"] for c in MANIFEST}
    assert len(listed) >= 20
    assert listed <= set(corpus), listed - set(corpus)
    committed = {p.name for p in CORPUS.iterdir() if p.name != "manifest.json"}
    assert committed <= listed, committed - listed


def _run(case: dict, corpus: dict[str, Path], **kw):
    role = case.get("role", "events")
    files = {"events": corpus["good_events.csv"]} if role != "events" else {}
    files[role] = corpus[case["file"]]
    return import_dataset("shop", preset=case.get("preset"), mapping=case.get("map"), **files, **kw)


@pytest.mark.parametrize("case", MANIFEST, ids=[c["file"] for c in MANIFEST])
def test_bad_input(case, corpus, base_store, data_dir):
    shutil.copyfile(base_store, dataset_path("shop"))
    before, version = table_checksums("shop"), file_version("shop")

    if "error" in case:
        with pytest.raises(BadInputError) as exc:
            _run(case, corpus)
        assert not isinstance(exc.value, TooManyRejectsError)
        fragments = case["error"] if isinstance(case["error"], list) else [case["error"]]
        for fragment in fragments:
            assert fragment in str(exc.value), str(exc.value)
        assert table_checksums("shop") == before and file_version("shop") == version
    elif "reasons" in case:
        with pytest.raises(TooManyRejectsError) as exc:
            _run(case, corpus)
        report = exc.value.report
        assert "--max-reject-share" in str(exc.value)
        for reason in case["reasons"]:
            assert reason in report.rejects_by_reason, report.rejects_by_reason
        assert set(case["codes"]) == set(report.rejects_by_code), report.rejects_by_code
        assert all(RejectCode(c) for c in report.reason_codes.values())
        assert table_checksums("shop") == before and file_version("shop") == version
        # accepted on request: valid rows land, every reject is stored with its reason
        report = _run(case, corpus, max_reject_share=1.0)
        con = connect("shop")
        stored = con.execute(
            "SELECT reason, code, count(*) FROM rejects WHERE import_id = ? GROUP BY 1, 2",
            [report.import_id],
        ).fetchall()
        con.close()
        assert {r: n for r, _, n in stored} == report.rejects_by_reason
        assert {r: c for r, c, _ in stored} == report.reason_codes
        assert all(s["line"] >= 2 and s["reason"] for s in report.sample_rejects)
    else:
        report = _run(case, corpus)
        assert report.committed and report.rejected == 0
        _check(case.get("check"), report)

    # the store still takes a good import afterwards
    n = connect("shop").execute("SELECT count(*) FROM events").fetchone()[0]
    import_dataset("shop", events=corpus["good_events.csv"])
    assert connect("shop").execute("SELECT count(*) FROM events").fetchone()[0] == n + 3


def _check(check: str | None, report) -> None:
    con = connect("shop")
    try:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        assert {"events", "items", "users", "meta", "rejects"} <= tables
        if check == "formula":
            titles = dict(con.execute("SELECT item_id, title FROM items").fetchall())
            assert titles["10"] == '=HYPERLINK("http://evil.example","click")'
            assert titles["11"] == "@SUM(1+1)"
            brands = dict(con.execute("SELECT item_id, brand FROM items").fetchall())
            assert brands["10"] == "+cmd|' /C calc'!A0" and brands["11"] == "-2+3"
        elif check == "sniffed":  # delimiter detected per file (issue 15 section 3)
            rows = {"semicolon.csv": 2, "tab_separated.csv": 1}[report.files["events"]]
            assert report.rows_loaded["events"] == rows
            assert report.mapping["item_id"] == "itemid"
        elif check == "latin1":  # not UTF-8 at the start: read as Latin-1
            assert con.execute(
                "SELECT count(*) FROM users WHERE user_id = 'Jos\u00e9'"
            ).fetchone() == (1,)
            assert con.execute(
                "SELECT count(*) FROM events WHERE user_id = 'Jos\u00e9'"
            ).fetchone()[0] == 1
        elif check == "literal_name":  # a glob-like name is read literally, never expanded
            assert report.files == {"events": "named[1]*?.csv"} and report.rows_read == 1
            assert con.execute("SELECT count(*) FROM events WHERE user_id = 'u1'").fetchone()[0]
        elif check == "sql_attribute":
            cols = [r[0] for r in con.execute("DESCRIBE items").fetchall()]
            assert "x_drop_table_items" in cols, cols
            assert con.execute("SELECT count(*) FROM items WHERE title = 'Knife'").fetchone()[0]
        else:  # the crafted item column was mapped and read as data
            assert report.mapping["item_id"] == 'item_id"; DROP TABLE events; --'
            got = con.execute(
                "SELECT item_id FROM events WHERE ts > '2015-01-01' ORDER BY 1"
            ).fetchall()
            assert ("10",) in got and ("11",) in got
    finally:
        con.close()


def test_gzip_csv_is_read(tmp_path, data_dir):
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(GOOD_EVENTS.encode()))
    report = import_dataset("gz", events=path)
    assert report.formats["events"] == "csv.gz" and report.rows_loaded["events"] == 3


def test_real_parquet_named_csv_is_read_by_content(tmp_path, data_dir):
    src = tmp_path / "good.csv"
    src.write_text(GOOD_EVENTS)
    out = tmp_path / "events.csv"  # Parquet content, CSV name
    con = duckdb.connect()
    con.read_csv(str(src), all_varchar=True).write_parquet(str(out))
    con.close()
    report = import_dataset("pq", events=out)
    assert report.formats["events"] == "parquet" and report.rows_loaded["events"] == 3
