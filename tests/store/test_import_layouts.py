"""Layouts that used to need hand work (issue 15 section 3): the behaviour log with and without a
header, headerless files named by ``--columns``, a dialect sniffed per file (delimiter, quote,
encoding) with per-file overrides, mixed CRLF/LF line ends, a UTF-8 BOM, Latin-1 text, and a
5,000-column header longer than 64 KiB."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrec.cli import main
from ltrec.errors import BadInputError
from ltrec.store import connect, dataset_path
from ltrec.store.importing import ImportConfig, import_dataset, sniff
from ltrec.store.importing.read import FileOptions, ReadConfig, read_config
from tests.store.test_import_bad import table_checksums

BEHAVIOUR_ROWS = [
    ("1", "2268318", "2520377", "pv", "1511544070"),
    ("1", "2333346", "2520771", "pv", "1511561733"),
    ("1", "2576651", "149192", "fav", "1511572885"),
    ("1", "2576651", "149192", "cart", "1511572886"),
    ("2", "2576651", "149192", "buy", "1511572900"),
    ("2", "3830808", "4181361", "pv", "1511593493"),
]
BEHAVIOUR_HEADER = "user_id,item_id,category_id,behavior_type,timestamp"


def _behaviour(header: bool) -> str:
    lines = [",".join(r) for r in BEHAVIOUR_ROWS]
    return "\n".join(([BEHAVIOUR_HEADER] if header else []) + lines) + "\n"


def _rows(name: str, sql: str) -> list[tuple]:
    con = connect(name)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _check_behaviour(report) -> None:
    assert report.preset == "behaviour" and report.preset_guessed
    assert report.ts_formats == {"events.ts": "unix_s"}
    # fav is dropped by the preset's documented default: left out, not a reject
    assert report.rows_loaded["events"] == 5 and report.rejected == 0
    assert report.dropped_event_types == {"fav": 1}
    got = _rows("shop", "SELECT user_id, item_id, event_type, ts FROM events ORDER BY ts")
    assert got[0] == ("1", "2268318", "view", datetime(2017, 11, 24, 17, 21, 10))
    assert [r[2] for r in got] == ["view", "view", "cart", "purchase", "view"]
    cats = dict(_rows("shop", "SELECT item_id, category FROM items"))
    assert cats == {"2268318": "2520377", "2333346": "2520771", "2576651": "149192",
                    "3830808": "4181361"}  # fmt: skip


@pytest.mark.parametrize("header", [True, False], ids=["header", "no-header"])
def test_behaviour_log_imports_with_no_flags(tmp_path, header):
    path = tmp_path / "UserBehavior.csv"
    path.write_text(_behaviour(header))
    src = sniff(path, "events")
    assert src.header is header
    assert src.columns == BEHAVIOUR_HEADER.split(",")
    _check_behaviour(import_dataset("shop", events=path))


def test_behaviour_log_with_no_header_and_columns(tmp_path, capsys):
    path = tmp_path / "behaviour.csv"
    path.write_text(_behaviour(False))
    argv = ["import", "shop", "--events", str(path), "--no-header", "--columns", BEHAVIOUR_HEADER]
    assert main([*argv, "--json"]) == 0
    assert '"preset": "behaviour"' in capsys.readouterr().out
    assert _rows("shop", "SELECT count(*) FROM events") == [(5,)]


def test_fav_mapped_to_cart_on_request(tmp_path):
    path = tmp_path / "behaviour.csv"
    path.write_text(_behaviour(True))
    report = import_dataset("shop", events=path, config=ImportConfig(event_map={"fav": "cart"}))
    assert report.rows_loaded["events"] == 6 and report.dropped_event_types == {}
    assert _rows("shop", "SELECT count(*) FROM events WHERE event_type = 'cart'") == [(2,)]


def test_headerless_file_named_by_columns_keeps_line_numbers(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("u1,i1,view,2024-01-02\nu2,,view,2024-01-03\nu3,i3,cart,2024-01-04\n")
    cfg = ImportConfig(read=read_config(columns=["user_id,item_id,event_type,ts"]))
    report = import_dataset("shop", events=path, config=cfg, max_reject_share=1.0)
    assert report.preset == "canonical" and report.rows_loaded["events"] == 2
    assert report.rejects_by_reason == {"missing item_id": 1}
    # the first line is data: the bad row is line 2 of the file
    assert [(s["line"], s["raw"]) for s in report.sample_rejects] == [(2, "u2,,view,2024-01-03")]


def test_headerless_malformed_line_number(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(
        "u1,i1,view,2024-01-02\nu2,i2,view\nu3,i3,cart,2024-01-04\nu4,,view,2024-01-05\n"
    )
    cfg = ImportConfig(read=read_config(columns=["user_id,item_id,event_type,ts"]))
    report = import_dataset("shop", events=path, config=cfg, max_reject_share=1.0)
    lines = sorted((s["line"], s["reason"]) for s in report.sample_rejects)
    assert lines == [(2, "malformed row (too few columns)"), (4, "missing item_id")]


def test_headerless_unknown_shape_needs_columns(tmp_path, capsys, data_dir):
    path = tmp_path / "numbers.csv"
    path.write_text("1,2,3,1511544070\n4,5,6,1511544071\n")
    import_dataset("shop", events=_canonical(tmp_path))
    before = table_checksums("shop")
    assert main(["import", "shop", "--events", str(path)]) == 2
    err = capsys.readouterr().err
    assert "numbers.csv: has no header: its first line is data (1,2,3,1511544070)" in err
    assert "--no-header --columns a,b,c" in err
    assert main(["import", "shop", "--events", str(path), "--no-header"]) == 2
    err = capsys.readouterr().err
    assert "has no header, and its columns could not be recognised from the data" in err
    assert main(["import", "shop", "--events", str(path), "--columns", "a,b"]) == 2
    assert "--columns names 2 columns, but the first line has 4 fields" in capsys.readouterr().err
    assert table_checksums("shop") == before


def _canonical(tmp_path: Path) -> Path:
    path = tmp_path / "good.csv"
    path.write_text("user_id,item_id,event_type,ts\nu1,i1,view,2024-01-02\nu2,i2,cart,2024-01-03\n")
    return path


def test_dialect_sniffed_per_file(tmp_path):
    events = tmp_path / "events.csv"  # comma, UTF-8 with a BOM, CRLF
    events.write_bytes(
        b"\xef\xbb\xbfuser_id,item_id,event_type,ts\r\nu1,i1,view,2024-01-02\r\n"
        b"u2,i2,purchase,2024-01-03\r\n"
    )
    items = tmp_path / "items.csv"  # semicolon, Latin-1
    items.write_bytes("item_id;title;category\ni1;Caf\xe9 cr\xe8me;Drinks\ni2;Na\xefve;Food\n"
                      .encode("latin-1"))  # fmt: skip
    users = tmp_path / "users.tsv"  # tab, single quotes
    users.write_text("user_id\tregion\n'u1'\t'North, East'\n'u2'\t'South'\n")
    srcs = {r: sniff(p, r) for r, p in (("events", events), ("items", items), ("users", users))}
    assert [(s.delimiter, s.quote, s.encoding) for s in srcs.values()] == [
        (",", '"', "utf-8"),
        (";", '"', "latin-1"),
        ("\t", "'", "utf-8"),
    ]
    assert srcs["events"].columns[0] == "user_id"  # BOM gone
    report = import_dataset("shop", events=events, items=items, users=users)
    assert report.rejected == 0 and report.rows_loaded["events"] == 2
    assert report.to_dict()["dialects"]["items"] == {
        "delimiter": ";",
        "quote": '"',
        "encoding": "latin-1",
        "header": True,
        "notes": ["Latin-1 text (detected: not valid UTF-8)", "semicolon-separated (detected)"],
    }
    titles = dict(_rows("shop", "SELECT item_id, title FROM items"))
    assert titles == {"i1": "Café crème", "i2": "Naïve"}
    regions = dict(_rows("shop", "SELECT user_id, region FROM users"))
    assert regions == {"u1": "North, East", "u2": "South"}


@pytest.mark.parametrize(
    ("body", "quote"),
    [
        ("u1,'a, b',view,2024-01-02\n", "'"),  # minimal quoting: the wrapped value holds a comma
        ("'u1','a',view,2024-01-02\n", '"'),  # one plain text value: the ' are part of the ids
        ("'u1','a','view','2024-01-02'\n'u2','b','cart','2024-01-03'\n", "'"),  # quote-all
        ("u1,'0',view,2024-01-02\nu2,b,cart,2024-01-03\n", '"'),  # an id written '0'
    ],
)
def test_single_quotes_are_a_dialect_only_when_a_writer_put_them(tmp_path, body, quote):
    path = tmp_path / "e.csv"
    path.write_text("user_id,item_id,event_type,ts\n" + body)
    assert sniff(path, "events").quote == quote


def test_delimiter_override_per_file_and_for_all(tmp_path, capsys):
    events = tmp_path / "events.csv"
    events.write_text("user_id;item_id;event_type;ts\nu1;i1;view;2024-01-02\n")
    items = tmp_path / "items.csv"
    items.write_text("item_id,title\ni1,Knife\n")
    base = ["import", "shop", "--events", str(events), "--items", str(items)]
    assert main([*base, "--delimiter", "events=;"]) == 0
    assert _rows("shop", "SELECT title FROM items") == [("Knife",)]
    # a bare --delimiter is for every file: the comma items file is explained
    assert main([*base, "--delimiter", ";", "--replace"]) == 2
    err = capsys.readouterr().err
    assert "items.csv: looks comma-separated (',')" in err
    assert "--delimiter ROLE=',' for one file" in err
    assert main([*base, "--delimiter", "events=ab"]) == 2
    assert "--delimiter must be one character (or 'tab'), got 'ab'" in capsys.readouterr().err


def test_mixed_line_ends_and_quoted_newline(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        b"user_id,item_id,event_type,ts,source\r\nu1,i1,view,2024-01-02,web\n"
        b'u2,i2,cart,2024-01-03,"app\r\nv2"\r\nu3,i3,view,2024-01-04,web\n'
    )
    src = sniff(path, "events")
    assert not src.strict and "mixed CRLF/LF line ends" in src.notes
    report = import_dataset("shop", events=path)
    assert report.rows_loaded["events"] == 3 and report.rejected == 0
    got = _rows("shop", "SELECT user_id, source FROM events ORDER BY user_id")
    assert got == [("u1", "web"), ("u2", "app\r\nv2"), ("u3", "web")]


def test_latin1_detected_forced_and_refused(tmp_path, capsys):
    path = tmp_path / "latin.csv"
    path.write_bytes(
        "user_id,item_id,event_type,ts\nJos\xe9,i1,view,2024-01-02\n".encode("latin-1")
    )
    assert import_dataset("a", events=path).rows_loaded["events"] == 1
    assert _rows("a", "SELECT user_id FROM events") == [("José",)]
    gz = tmp_path / "latin.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert main(["import", "b", "--events", str(gz), "--encoding", "latin1"]) == 0
    assert _rows("b", "SELECT user_id FROM events") == [("José",)]
    assert main(["import", "c", "--events", str(path), "--encoding", "utf-8"]) == 2
    err = capsys.readouterr().err
    assert "latin.csv: is not valid UTF-8 (byte 0xe9 on line 2)" in err
    assert "pass --encoding latin-1" in err
    assert not dataset_path("c").exists()
    assert main(["import", "c", "--events", str(path), "--encoding", "cp1252"]) == 2
    assert "unsupported encoding 'cp1252'" in capsys.readouterr().err


def test_wide_header_over_64_kib_is_read_whole(tmp_path):
    ncols = 5000
    names = ["user_id", "item_id", "event_type", "ts"] + [
        f"attribute_column_number_{j:05d}" for j in range(ncols - 4)
    ]
    path = tmp_path / "wide.csv"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(names)
    for i in range(30):
        w.writerow([f"u{i}", f"i{i % 7}", "view", f"2024-01-{1 + i % 28:02d}"] + [i] * (ncols - 4))
    path.write_text(buf.getvalue())
    assert len(names[-1]) * ncols > 64 * 1024
    src = sniff(path, "events")
    assert len(src.columns) == ncols and src.columns[-1] == names[-1]
    report = import_dataset("shop", events=path)
    assert report.rows_loaded["events"] == 30 and report.rejected == 0
    assert len(report.dropped_columns["events"]) == ncols - 4


def test_header_longer_than_the_limit_is_refused(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("user_id," + "x" * (200 * 1024))
    cfg = ReadConfig(max_header_bytes=64 * 1024)
    with pytest.raises(BadInputError) as exc:
        sniff(path, "events", cfg)
    assert str(exc.value).startswith("long.csv: has a first line longer than 65,536 bytes")


def test_read_config_from_flags():
    cfg = read_config(
        delimiter=["tab", "items=;"],
        encoding=["users=ISO-8859-1"],
        columns=["users=user_id,region"],
    )
    assert cfg.delimiter == "\t" and cfg.encoding is None
    assert cfg.for_file("items") == FileOptions(delimiter=";")
    assert cfg.for_file("events") == FileOptions(delimiter="\t")
    assert cfg.for_file("users") == FileOptions(
        delimiter="\t", encoding="latin-1", columns=("user_id", "region"), no_header=True
    )
    with pytest.raises(BadInputError, match="--delimiter is given twice for every file"):
        read_config(delimiter=[",", ";"])
    with pytest.raises(BadInputError, match="'orders' is not a file"):
        read_config(encoding=["orders=latin-1"])


_ID = st.text(alphabet="abcxyz0123456789 .-é", min_size=1, max_size=8).filter(
    lambda s: s.strip() == s
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    delim=st.sampled_from([",", ";", "\t", "|"]),
    width=st.integers(2, 6),
    rows=st.lists(st.lists(_ID, min_size=6, max_size=6), min_size=1, max_size=8),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    crlf=st.booleans(),
)
def test_sniffed_dialect_reads_back_what_was_written(tmp_path, delim, width, rows, quoting, crlf):
    """Whatever delimiter and quoting a file was written with, sniffing finds the header."""
    header = [f"col_{j}" for j in range(width)]
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim, quoting=quoting, lineterminator="\r\n" if crlf else "\n")
    w.writerow(header)
    for r in rows:
        w.writerow(r[:width])
    path = tmp_path / "f.csv"
    path.write_text(buf.getvalue(), newline="")
    src = sniff(path, "items")
    assert src.delimiter == delim and src.columns == header and src.header
