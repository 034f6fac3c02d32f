"""AppTest of the Data page: upload -> preview -> dry run -> commit; bad files; privacy;
switching and deleting datasets. Plus the page helpers of ``ltrec.ui.data``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ltrec.errors import BadInputError
from ltrec.store import connect, dataset_path, list_datasets
from ltrec.store.importing import import_dataset
from ltrec.store.privacy import ENV_KEY, pseudonym
from ltrec.ui import data as ui
from tests.app.conftest import APP
from tests.store.test_import_bad import table_checksums

PAGE = "app_pages/data.py"
KEY = "page-test-key-0123456789abcdef"

GOOD = (
    b"timestamp,visitorid,event,itemid,transactionid\n"
    b"1433221332117,257597,view,355908,\n"
    b"1433224214164,992329,view,248676,\n"
    b"1433221999827,111016,view,318965,\n"
    b"1433221955914,483717,addtocart,253185,\n"
    b"1433221337106,951259,transaction,367447,4000\n"
    b"1433223236124,972639,view,22556,\n"
)

ORDERS = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    + "".join(
        f"5363{k:02d},8512{k % 7}A,MUG {k},{k % 3 + 1},12/01/2010 08:{k:02d},2.55,"
        f"{17850 + k % 5},United Kingdom\n"
        for k in range(40)
    )
    + "536999,85123A,MUG 1,2,12/02/2010 08:00,2.55,,United Kingdom\n"
    + "537000,85123A,MUG 1,2,12/02/2010 09:00,2.55,,United Kingdom\n"
).encode()


def _open() -> AppTest:
    # straight to the page (its url path is its file name): one script run, not the default
    # page's first
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _upload(at: AppTest, content: bytes, name: str = "events.csv", role: str = "events"):
    gen = at.session_state["_data_upload_gen"] if "_data_upload_gen" in at.session_state else 0
    at.file_uploader(key=f"data_up_{role}_{gen}").set_value((name, content, "text/csv")).run()
    assert not at.exception, at.exception
    return at


def _datasets_table(at: AppTest):
    """The datasets table (the audit log, for admins, is another table below it)."""
    return next(df.value for df in at.dataframe if "dataset" in df.value.columns)


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [i.value for i in at.info]
    parts += [s.value for s in at.success] + [w.value for w in at.warning]
    return "\n".join(str(p) for p in parts)


def _uploads_left() -> list[Path]:
    return list(ui.upload_dir().glob("upload-*"))


def test_page_is_listed_last_and_empty_state() -> None:
    src = Path(APP).read_text()
    assert src.index('"app_pages/data.py"') > src.index('"app_pages/feedback_loop.py"')
    at = _open()
    assert at.title[0].value == "Data"
    assert any("Upload an events file" in i.value for i in at.info)
    assert any("No datasets yet" in i.value for i in at.info)


def test_good_file_dry_run_then_commit(data_dir) -> None:
    at = _open()
    _upload(at, GOOD, "clicks.csv")
    assert at.dataframe, "preview missing"
    assert list(at.dataframe[0].value.columns)[:3] == ["timestamp", "visitorid", "event"]
    assert at.selectbox(key="data_preset").value == "events"  # guessed from the header
    assert at.selectbox(key="data_map_events_user_id").value == "visitorid"
    assert at.text_input(key="data_name").value == "clicks"
    assert at.checkbox(key="data_pseudo").disabled  # no key configured
    assert not at.button(key="data_dry").disabled
    at.button(key="data_dry").click().run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "Checked 6 rows: 6 events" in text and "nothing written yet" in text
    assert not dataset_path("clicks").exists()  # the dry run wrote nothing
    at.button(key="data_commit").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("Imported 6 events" in s.value for s in at.success)
    assert "clicks" in list_datasets()
    con = connect("clicks")
    try:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 6
    finally:
        con.close()
    # listed with its stats, and selectable as the active dataset
    table = _datasets_table(at)
    row = table[table["dataset"] == "clicks"].iloc[0]
    assert row["events"] == 6 and row["users"] == 6
    assert at.selectbox(key="data_pick").options == ["clicks"]
    assert not _uploads_left()  # temporary upload files removed after the commit
    assert not at.file_uploader[0].value  # the uploader is empty again
    at.button(key="data_open").click().run()
    assert at.session_state["dataset"] == "clicks"
    assert at.query_params["ds"] == "clicks"  # AppTest: one value is a str


def test_guest_orders_in_plain_words_and_rejects_download(data_dir) -> None:
    at = _open()
    _upload(at, ORDERS, "orders.csv")
    assert at.selectbox(key="data_preset").value == "orders"
    at.button(key="data_dry").click().run()
    text = _texts(at)
    assert "2 guest orders without a customer id were skipped." in text
    assert at.get("download_button"), "no rejects download"
    at.button(key="data_commit").click().run()
    assert not at.exception, at.exception
    assert "orders" in list_datasets()


#: (file name, content, the error's words, whether the file passes the whole-file checks and
#: is refused by the dry run instead)
BAD = [
    ("empty.csv", b"", "is empty", False),
    ("header.csv", b"timestamp,visitorid,event,itemid\n", "no data rows", True),
    # (Latin-1 is detected and read since issue 15; UTF-16 is still refused)
    (
        "utf16.csv",
        "timestamp,visitorid,event,itemid\n1,2,view,3\n".encode("utf-16"),
        "UTF-16",
        False,
    ),
    ("fake.parquet", GOOD, "not Parquet", False),
    ("book.csv", b"PK\x03\x04" + b"\x00" * 64, "zip archive", False),
    (
        "rejects.csv",
        b"timestamp,visitorid,event,itemid\n"
        + b"".join(b"1433221332117,%d,view,\n" % i for i in range(30))
        + b"1433221332117,1,view,5\n",
        "missing item_id",
        True,
    ),
]


@pytest.mark.parametrize(("name", "content", "message", "dry_run"), BAD, ids=[b[0] for b in BAD])
def test_bad_files_show_an_error_and_leave_the_store_unchanged(
    data_dir, name, content, message, dry_run
) -> None:
    good = data_dir / "seed.csv"
    good.write_bytes(GOOD)
    import_dataset("shop", good)
    before = table_checksums("shop")
    at = _open()
    _upload(at, content, name)
    assert _has(at, "text_input", "data_name") is dry_run
    if dry_run:  # the file passed the whole-file checks: the dry run refuses it
        at.text_input(key="data_name").set_value("shop").run()
        at.button(key="data_dry").click().run()
        assert not _has(at, "button", "data_commit")  # nothing to commit
    else:
        assert not _has(at, "button", "data_dry")
    assert not at.exception, at.exception
    assert at.error
    shown = "\n".join(e.value for e in at.error)
    assert message in shown, _texts(at)
    assert table_checksums("shop") == before


SEMI = GOOD.replace(b",", b";")


def test_semicolon_upload_is_detected_and_imports(data_dir) -> None:
    at = _open()
    assert at.selectbox(key="data_delim").value == "detect"
    _upload(at, SEMI, "semi.csv")
    at.text_input(key="data_name").set_value("semi").run()
    at.button(key="data_dry").click().run()
    assert not at.exception, at.exception
    at.button(key="data_commit").click().run()
    assert not at.exception, at.exception
    assert "semi" in list_datasets()
    con = connect("semi")
    try:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 6
    finally:
        con.close()


def test_a_chosen_delimiter_overrides_detection(data_dir) -> None:
    at = _open()
    at.selectbox(key="data_delim").set_value("comma ,").run()
    _upload(at, SEMI, "semi.csv")
    shown = "\n".join(e.value for e in at.error)
    assert "semicolon-separated" in shown, _texts(at)
    assert "semi" not in list_datasets()


def _has(at: AppTest, kind: str, key: str) -> bool:
    try:
        getattr(at, kind)(key=key)
    except KeyError:
        return False
    return True


def test_missing_required_column_asks_for_it(data_dir) -> None:
    at = _open()
    _upload(at, b"timestamp,visitorid,event\n1433221332117,1,view\n", "noitem.csv")
    at.selectbox(key="data_preset").set_value("events").run()
    assert [w.value for w in at.warning] == ["Choose the column for: item_id."]
    assert not _has(at, "button", "data_dry")


def test_pseudonymise_from_the_page(data_dir, monkeypatch) -> None:
    monkeypatch.setenv(ENV_KEY, KEY)
    at = _open()
    _upload(at, GOOD, "clicks.csv")
    assert not at.checkbox(key="data_pseudo").disabled
    at.checkbox(key="data_pseudo").check().run()
    at.button(key="data_dry").click().run()
    at.button(key="data_commit").click().run()
    assert not at.exception and not at.error
    con = connect("clicks")
    try:
        ids = {r[0] for r in con.execute("SELECT DISTINCT user_id FROM events").fetchall()}
    finally:
        con.close()
    assert "257597" not in ids and pseudonym("257597", KEY.encode()) in ids
    blob = dataset_path("clicks").read_bytes()
    assert b"257597" not in blob and KEY.encode() not in blob
    table = _datasets_table(at)
    assert bool(table[table["dataset"] == "clicks"]["pseudonymised"].iloc[0])


def test_settings_change_needs_a_new_check(data_dir) -> None:
    at = _open()
    _upload(at, GOOD, "clicks.csv")
    at.button(key="data_dry").click().run()
    assert _has(at, "button", "data_commit")
    at.text_input(key="data_name").set_value("other").run()
    assert not _has(at, "button", "data_commit")
    assert any("check the file again" in i.value for i in at.info)


def test_switch_and_delete_after_confirmation(data_dir) -> None:
    for n in ("alpha", "beta"):
        p = data_dir / f"{n}.csv"
        p.write_bytes(GOOD)
        import_dataset(n, p)
    at = _open()
    at.selectbox(key="data_pick").set_value("beta").run()
    at.button(key="data_switch").click().run()
    assert at.session_state["dataset"] == "beta"
    assert at.selectbox(key="data_pick").value == "beta"
    at.selectbox(key="data_del_pick").set_value("alpha").run()
    assert at.button(key="data_delete").disabled
    at.text_input(key="data_del_confirm").set_value("alph").run()
    assert at.button(key="data_delete").disabled
    at.text_input(key="data_del_confirm").set_value("alpha").run()
    at.button(key="data_delete").click().run()
    assert not at.exception, at.exception
    assert list_datasets() == ["beta"]
    assert any("Deleted 'alpha'" in s.value for s in at.success)


def test_cli_delete_needs_confirmation(data_dir, capsys) -> None:
    from ltrec.cli import main

    p = data_dir / "a.csv"
    p.write_bytes(GOOD)
    import_dataset("alpha", p)
    assert main(["delete", "alpha"]) == 2
    assert "--yes" in capsys.readouterr().err and list_datasets() == ["alpha"]
    assert main(["delete", "alpha", "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted": "alpha", "removed": ["alpha.duckdb"]}
    assert list_datasets() == []
    assert main(["delete", "alpha", "--yes"]) == 2  # not found


# ----------------------------------------------------------------------------- helpers


class _Upload(io.BytesIO):
    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name, self.size = name, len(data)


def test_save_upload_streams_and_enforces_the_limit(tmp_path) -> None:
    data = b"a,b\n" + b"1,2\n" * 300_000  # 1.2 MB
    path = ui.save_upload(_Upload(data, "x.csv"), max_mb=2, root=tmp_path)
    assert path.read_bytes() == data and path.suffix == ".csv"
    assert (path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(BadInputError, match="upload limit"):
        ui.save_upload(_Upload(data, "x.csv"), max_mb=1, root=tmp_path)
    sneaky = _Upload(data, "y.parquet")
    sneaky.size = 10  # a wrong declared size is caught while streaming
    with pytest.raises(BadInputError, match="upload limit"):
        ui.save_upload(sneaky, max_mb=1, root=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no partial file left


def test_plain_sentences() -> None:
    """Phrases are chosen by reject code, never by the reason's text."""
    assert ui.plain("missing user_id (guest order)", 12403, "guest_order") == (
        "12,403 guest orders without a customer id were skipped."
    )
    assert ui.plain("missing item_id", 1, "missing_item_id") == (
        "1 row without a product id was skipped."
    )
    unknown = ui.plain("unknown event type 'teleport'", 3, "unknown_event_type")
    assert "unknown event type 'teleport'" in unknown and "'Unknown event types'" in unknown
    assert ui.plain("something new", 2) == "2 rows rejected because of: something new were skipped."
    # the text alone does not pick a phrase
    assert ui.plain("missing item_id", 2) == (
        "2 rows rejected because of: missing item_id were skipped."
    )


def test_rejects_csv_is_formula_escaped(data_dir, tmp_path) -> None:
    f = tmp_path / "ev.csv"
    f.write_text(
        "user_id,item_id,event_type,ts\n"
        + "".join(f"u{k},i{k},view,2024-01-01\n" for k in range(30))
        + '=HYPERLINK("x"),i1,teleport,2024-01-01\n'
    )
    rep = import_dataset("x", f)
    assert rep.rejected == 1
    text = ui.rejects_csv(rep, data_dir).decode()
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    dry = import_dataset("x", f, dry_run=True)
    assert "'=HYPERLINK" in ui.rejects_csv(dry).decode()
    assert json.dumps(rep.to_dict())


# ----------------------------------------------------------------------------- the dataset profile


def test_dry_run_shows_what_the_data_holds(data_dir) -> None:
    """The dry run of an order-lines file: counts by event type (only those present), customers,
    products, time span and the profile, and the plain exposure sentence; no invented stage."""
    at = _open()
    _upload(at, ORDERS, "orders.csv")
    at.button(key="data_dry").click().run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "- Events by type: 40 purchases." in text
    assert "- 5 customers, 7 products; time span: 2010-12-01 to 2010-12-01." in text
    assert "- Funnel stages: purchase; exposure: not measured." in text
    assert "- Customer segments: country." in text
    assert "exposure (how often each item was shown) is not measured here" in text
    block = next(m.value for m in at.markdown if "Events by type" in m.value).splitlines()
    assert block[0] == "- Events by type: 40 purchases."  # no zero impressions, views, carts
    assert not dataset_path("orders").exists()


def test_profile_lines_of_a_full_funnel() -> None:
    from ltrec.store.profile import DatasetProfile

    p = DatasetProfile(
        event_counts={"impression": 9, "view": 5, "cart": 2, "purchase": 1},
        has_sessions=True,
        has_prices=False,
        has_categories=True,
        has_titles=True,
        has_brands=False,
        segment_columns=["region"],
        repeat_purchase_share=0.0,
        users=3,
        items=4,
        first_ts=None,
        last_ts=None,
    )
    lines = ui.profile_lines(p.to_dict())
    assert lines[0] == "Events by type: 9 impressions, 5 views, 2 carts, 1 purchases."
    assert lines[2] == "Funnel stages: impression → view → cart → purchase; exposure: impressions."
    assert lines[3] == "Has sessions, categories, titles; no prices, brands."
    assert not any("not measured" in x for x in lines)


REJECTS_10 = b"timestamp,visitorid,event,itemid\n" + b"".join(
    b"1433221332117,%d,view,%s\n" % (i, b"" if i == 0 else b"7") for i in range(10)
)


def test_too_many_rejects_hint_names_the_slider_not_a_cli_flag(data_dir) -> None:
    at = _open()
    _upload(at, REJECTS_10, "tenth.csv")
    at.button(key="data_dry").click().run()
    assert not at.exception, at.exception
    shown = "\n".join(e.value for e in at.error) + "\n".join(c.value for c in at.caption)
    assert "10.0% of the rows" in shown.replace("\\", "")  # data text may be md-escaped
    assert "--max-reject-share" not in shown
    assert any(
        c.value == "Fix the file, or move the slider 'Largest share of rejected rows that still "
        "imports' to 0.10 or more to import the valid rows and keep the rest as rejected rows."
        for c in at.caption
    )
    assert not _has(at, "button", "data_commit")
    # doing what the hint says imports the valid rows
    at.slider(key="data_max_reject").set_value(0.10).run()
    at.button(key="data_dry").click().run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="data_commit").click().run()
    assert not at.exception and "tenth" in list_datasets()


def test_reject_hint_beyond_the_slider() -> None:
    from ltrec.errors import TooManyRejectsError

    err = TooManyRejectsError("30 rows rejected: 30 missing item_id", 30 / 31, 0.05)
    assert ui.reject_hint(err).startswith("96.8% of the rows were rejected: more than this page")
    err = TooManyRejectsError("x", 0.123, 0.05)
    assert "to 0.13 or more" in ui.reject_hint(err)


def _picker(at: AppTest) -> list[str]:
    """The options of the sidebar's dataset picker."""
    return next(s.options for s in at.sidebar.selectbox if s.label == "Dataset")


def test_dataset_picker_follows_import_and_delete(data_dir) -> None:
    seed = data_dir / "seed.csv"
    seed.write_bytes(GOOD)
    import_dataset("alpha", seed)
    import_dataset("beta", seed)
    at = _open()
    assert _picker(at) == ["alpha", "beta"]
    # delete beta: gone from the sidebar picker and from the page's own pickers
    at.selectbox(key="data_del_pick").set_value("beta").run()
    at.text_input(key="data_del_confirm").set_value("beta").run()
    at.button(key="data_delete").click().run()
    assert not at.exception, at.exception
    assert _picker(at) == ["alpha"]
    assert at.selectbox(key="data_pick").options == ["alpha"]
    assert at.selectbox(key="data_del_pick").options == ["alpha"]
    # import a new dataset from the page: listed at once
    _upload(at, GOOD, "clicks.csv")
    at.button(key="data_dry").click().run()
    at.button(key="data_commit").click().run()
    assert not at.exception, at.exception
    assert _picker(at) == ["alpha", "clicks"]
    assert at.selectbox(key="data_pick").options == ["alpha", "clicks"]
    table = _datasets_table(at)
    assert sorted(table["dataset"]) == ["alpha", "clicks"]
