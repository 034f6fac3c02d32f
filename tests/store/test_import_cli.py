"""`ltrec import` end to end through ltrec.cli.main (issue 15 sections 1, 4 and 5): an order-lines
file's customer 17850 is found by `recommend`, unknown event types and `--event-map`, `--map`
targets that no given file has, file names that look like globs, and `--json` errors."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from ltrec.cli import main
from ltrec.store import connect, list_datasets

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def _orders(path: Path) -> Path:
    """Order lines in the public retail layout: 30 customers (17850 first) x 4 invoices of 3
    lines over 12 days, plus a guest line (blank CustomerID) on every invoice of customer 0."""
    lines = [HEADER]
    for c in range(30):
        customer = 17850 + c
        for inv in range(4):
            invoice = 536365 + c * 10 + inv
            day, hour = 1 + (c + inv * 3) % 12, 8 + inv
            for j in range(3):
                code = f"2{(c * 7 + inv * 5 + j * 11) % 40:04d}"
                when = f"12/{day}/2010 {hour}:{10 + j:02d}"
                lines.append(f"{invoice},{code},ITEM {code},{j + 1},{when},2.55,{customer},UK\n")
            if c == 0:
                lines.append(f"{invoice},20001,GUEST ITEM,1,12/{day}/2010 {hour}:30,1.0,,UK\n")
    path.write_text("".join(lines))
    return path


def _json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> dict:
    got = main([*argv, "--json"])
    out = capsys.readouterr()
    assert got == code, out.err
    return json.loads(out.out)


def test_orders_customer_17850_is_recommended_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the same lines as Parquet with a float CustomerID (what pandas writes for a column with
    # blanks): the id must still be '17850'
    csv_path = _orders(tmp_path / "orders.csv")
    pq_path = tmp_path / "orders.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * REPLACE (CAST(CustomerID AS DOUBLE) AS CustomerID) FROM "  # noqa: S608
        f"read_csv('{csv_path}', all_varchar=true)) TO '{pq_path}' (FORMAT parquet)"
    )
    con.close()
    for name, path in (("orders", csv_path), ("orders_pq", pq_path)):
        report = _json(capsys, "import", name, "--events", str(path))
        assert report["preset"] == "orders"
        assert report["rejects_by_code"] == {"guest_order": 4}
        conn = connect(name)
        users = {r[0] for r in conn.execute("SELECT DISTINCT user_id FROM events").fetchall()}
        conn.close()
        assert "17850" in users and "17850.0" not in users and len(users) == 30

        run = _json(capsys, "train", name, "--model", "popularity")["run_id"]
        rec = _json(capsys, "recommend", name, "--run", run, "--user", "17850", "--k", "3")
        assert rec["known_user"] is True and len(rec["items"]) == 3
        assert main(["recommend", name, "--run", run, "--user", "17850"]) == 0
        assert "top 10 for user 17850" in capsys.readouterr().out


EVENTS = (
    "user_id,item_id,event_type,ts\n"
    "u1,i1,view,2024-01-01 10:00:00\n"
    "u1,i2,fav,2024-01-01 11:00:00\n"
    "u2,i1,FAV,2024-01-01 12:00:00\n"
    "u2,i3,wishlist,2024-01-01 13:00:00\n"
    "u3,i2,purchase,2024-01-01 14:00:00\n"
)


def test_unknown_event_types_listed_then_mapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    # the dry run lists each unmapped value with its count, refused at the default share
    err = _json(capsys, "import", "shop", "--events", str(path), "--dry-run", code=2)["error"]
    assert err["type"] == "TooManyRejectsError"
    assert err["report"]["unknown_event_types"] == {"fav": 1, "FAV": 1, "wishlist": 1}
    assert err["report"]["rejects_by_reason"] == {
        "unknown event type 'FAV'": 1,
        "unknown event type 'fav'": 1,
        "unknown event type 'wishlist'": 1,
    }
    assert set(err["report"]["reason_codes"].values()) == {"unknown_event_type"}
    assert "--event-map" in err["hint"] and "'fav' (1 row)" in err["hint"]
    # plain text: the hint names the flag
    assert main(["import", "shop", "--events", str(path), "--max-reject-share", "1"]) == 0
    out = capsys.readouterr().out
    assert "unknown event type 'fav'" in out and "--event-map VALUE=TYPE" in out
    assert "(e.g. --event-map FAV=cart)" in out  # the first value as the file writes it

    # mapped (case-insensitively) to cart, or dropped: nothing rejected
    rep = _json(
        capsys,
        "import",
        "mapped",
        "--events",
        str(path),
        "--event-map",
        "fav=cart",
        "--event-map",
        "wishlist=drop",
    )
    assert rep["rejected"] == 0 and rep["rows_loaded"]["events"] == 4
    assert rep["dropped_event_types"] == {"wishlist": 1}
    assert rep["event_map"] == {"fav": "cart", "wishlist": "drop"}
    con = connect("mapped")
    types = dict(con.execute("SELECT event_type, count(*) FROM events GROUP BY 1").fetchall())
    con.close()
    assert types == {"view": 1, "cart": 2, "purchase": 1}
    # a=b,c=d in one flag, an alias as the target
    rep = _json(
        capsys, "import", "pairs", "--events", str(path), "--event-map", "fav=buy,wishlist=drop"
    )
    assert rep["event_map"] == {"fav": "purchase", "wishlist": "drop"} and rep["rejected"] == 0


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("fav=wish", "--event-map fav=wish: 'wish' is not an event type"),
        ("fav", "--event-map expects VALUE=TYPE, got 'fav'"),
        ("=cart", "--event-map expects VALUE=TYPE, got '=cart'"),
    ],
)
def test_bad_event_map_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, message: str
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    err = _json(capsys, "import", "shop", "--events", str(path), "--event-map", flag, code=2)
    assert err["error"]["message"] == message
    assert list_datasets() == []


@pytest.mark.parametrize(
    ("pair", "message", "hint_part"),
    [
        (
            "category=cat",
            "--map category=...: 'category' is not a field of the events file "
            "(it is one of the items file's)",
            "pass --items FILE",
        ),
        ("items.title=name", "--map items.title=...: no items file is given", "--items FILE"),
        ("colour=c", "--map colour=...: unknown field 'colour'", "events file: event_type,"),
        (
            "events.colour=c",
            "--map events.colour=...: the events file has no field 'colour'",
            "item_id, price, quantity, session_id, source, ts, user_id",
        ),
    ],
)
def test_map_to_a_field_no_given_file_has_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pair: str, message: str, hint_part: str
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    err = _json(capsys, "import", "shop", "--events", str(path), "--map", pair, code=2)["error"]
    assert err["type"] == "BadInputError" and err["message"] == message
    assert hint_part in err["hint"]
    assert list_datasets() == []


def test_map_category_lands_with_an_items_file(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    events = tmp_path / "events.csv"
    events.write_text(
        EVENTS.replace("fav", "view").replace("FAV", "view").replace("wishlist", "cart")
    )
    items = tmp_path / "items.csv"
    items.write_text("item_id,kind\ni1,shoes\ni2,hats\n")
    rep = _json(
        capsys,
        "import",
        "shop",
        "--events",
        str(events),
        "--items",
        str(items),
        "--map",
        "category=kind",
    )
    assert rep["mapping"]["items.category"] == "kind"
    con = connect("shop")
    got = dict(
        con.execute("SELECT item_id, category FROM items WHERE category IS NOT NULL").fetchall()
    )
    con.close()
    assert got == {"i1": "shoes", "i2": "hats"}


@pytest.mark.parametrize("name", ["sales[1].csv", "sales*.csv", "sales?.csv", "sales{1}.csv"])
def test_file_names_with_glob_characters_are_read_literally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Beside the file are ones its name would match as a glob (sales1.csv, salesX.csv): only
    the named file is read, and reports name it as it is."""
    good = "user_id,item_id,event_type,ts\n"
    (tmp_path / name).write_text(good + "u1,i1,view,2024-01-01 10:00:00\n")
    for other in ("sales1.csv", "salesX.csv"):
        (tmp_path / other).write_text(
            good + "".join(f"z{k},i{k},view,2024-01-02 10:00:00\n" for k in range(5))
        )
    rep = _json(capsys, "import", "shop", "--events", str(tmp_path / name))
    assert rep["rows_read"] == 1 and rep["files"] == {"events": name}
    con = connect("shop")
    users = con.execute("SELECT user_id FROM events").fetchall()
    source = con.execute("SELECT value FROM meta WHERE key = 'source_files'").fetchone()[0]
    con.close()
    assert users == [("u1",)] and json.loads(source) == {"events": name}


def test_json_errors_for_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json with exit 2 prints one JSON object on stdout, from main's one handler: a usage
    error, a missing file, an unknown dataset."""
    usage = _json(capsys, "import", "shop", code=2)["error"]
    assert usage == {
        "type": "UsageError",
        "message": "the following arguments are required: --events",
        "hint": "see ltrec --help, or ltrec COMMAND --help",
        "exit_code": 2,
    }
    missing = _json(capsys, "import", "shop", "--events", str(tmp_path / "nope.csv"), code=2)
    assert missing["error"]["type"] == "BadInputError"
    assert missing["error"]["message"].startswith("nope.csv: file not found")
    stats = _json(capsys, "stats", "nosuch", code=2)["error"]
    assert stats["type"] == "DatasetNotFoundError"
    assert stats["message"] == "dataset 'nosuch' not found (datasets: none yet)"
    # without --json a usage error reads as argparse writes it, on stderr only
    assert main(["import", "shop"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "ltrec: error: the following arguments are required" in out.err


def test_event_map_on_a_preset_without_an_event_column_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "536365,85123A,MUG,6,12/1/2010 8:26,2.55,17850,UK\n")
    err = _json(capsys, "import", "o", "--events", str(path), "--event-map", "fav=cart", code=2)
    assert err["error"]["message"] == (
        "--event-map: the orders preset reads no event column (every row is a purchase)"
    )
    assert list_datasets() == []
