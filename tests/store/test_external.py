"""TOML-defined external datasets: parsing, the table mapping, analytics parity, the sample.

The DuckDB backend stands in for "any Ibis backend" here (a second DuckDB file with its own
table and column names); the same dataset on a local Spark session is in
``tests/spark/test_external_spark.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ltrec.analytics import longtail, segments
from ltrec.analytics.backend import Store, open_store
from ltrec.analytics.stats import store_stats
from ltrec.errors import ConfigError, DatasetNotFoundError
from ltrec.store import connect, list_datasets, read_meta
from ltrec.store.external import (
    config_version,
    fetch_sample,
    is_external,
    list_external,
    load_config,
    open_external,
    redact,
    sample_name,
)
from tests.analytics.conftest import synthetic_shop, write_store


def _source_frames(seed: int = 5):
    """A shop in a foreign layout: other table and column names, aliased event types."""
    ev, it, us = synthetic_shop(users=60, items=40, sessions=500, seed=seed)
    alias = {"view": "pv", "cart": "addtocart", "purchase": "buy", "impression": "impression"}
    clicks = pd.DataFrame(
        {
            "customer": ev["user_id"],
            "sku": ev["item_id"],
            "action": ev["event_type"].map(alias),
            "at": ev["ts"],
            "visit": ev["session_id"],
        }
    )
    products = it.rename(columns={"item_id": "sku", "title": "name"})
    customers = us.rename(columns={"user_id": "customer"})
    return (ev, it, us), (clicks, products, customers)


def _write_source(path: Path, clicks, products, customers) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA shop")
    for name, df in (("clicks", clicks), ("products", products), ("customers", customers)):
        con.register("df", df)
        con.execute(f"CREATE TABLE shop.{name} AS SELECT * FROM df")  # noqa: S608 - fixed names
        con.unregister("df")
    con.close()


#: The foreign column names of :func:`_source_frames`' tables, mapped to ltrec's (every backend).
COLUMNS_TOML = """
[columns.events]
user_id = "customer"
item_id = "sku"
event_type = "action"
ts = "at"
session_id = "visit"

[columns.items]
item_id = "sku"
title = "name"

[columns.users]
user_id = "customer"
"""

TOML = (
    """
backend = "duckdb"
description = "the shop's warehouse"

[connection]
database = "{db}"
read_only = true

[tables]
events = "shop.clicks"
items = "shop.products"
users = "shop.customers"
"""
    + COLUMNS_TOML
    + """
[sample]
max_events = 400
seed = 7
"""
)


@pytest.fixture(scope="session")
def _external_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse and the native store, written once per worker; each test gets copies."""
    root = tmp_path_factory.mktemp("external-template")
    native, foreign = _source_frames()
    _write_source(root / "warehouse.duckdb", *foreign)
    write_store("native", root, *native)
    return root


@pytest.fixture
def external(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _external_files):
    # the warehouse lies outside the data directory, in a folder the setting allows
    monkeypatch.setenv("LTREC_EXTERNAL_DIRS", json.dumps([str(tmp_path)]))
    db = tmp_path / "warehouse.duckdb"
    shutil.copyfile(_external_files / "warehouse.duckdb", db)
    (data_dir / "wh.toml").write_text(TOML.format(db=db))
    shutil.copyfile(_external_files / "native.duckdb", data_dir / "native.duckdb")
    return "wh"


def _same(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> None:
    a = a.sort_values(keys).reset_index(drop=True)
    b = b.sort_values(keys).reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    for c in a.columns:
        if pd.api.types.is_numeric_dtype(a[c]) and not pd.api.types.is_bool_dtype(a[c]):
            np.testing.assert_allclose(a[c].to_numpy(float), b[c].to_numpy(float), equal_nan=True)
        else:
            assert a[c].astype(str).tolist() == b[c].astype(str).tolist(), c


def test_listed_beside_duckdb_datasets(external, data_dir) -> None:
    assert list_external() == ["wh"] and is_external("wh") and not is_external("native")
    assert "wh" not in list_datasets()  # connect() consumers never see it
    v = config_version("wh")
    assert v.startswith("ext-")
    # a DuckDB file of the same name wins; a stray TOML with a bad name is ignored
    (data_dir / "bad name.toml").write_text("backend = 'duckdb'")
    assert list_external() == ["wh"]
    with pytest.raises(DatasetNotFoundError):
        load_config("nope")


def test_analytics_match_the_native_store(external) -> None:
    ext = Store(open_external("wh"))
    nat = open_store("native")
    _same(longtail.bucket_table(ext).frame, longtail.bucket_table(nat).frame, ["bucket"])
    _same(longtail.tail_trend(ext).frame, longtail.tail_trend(nat).frame, ["week"])
    a, b = store_stats(ext, "x").to_dict(), store_stats(nat, "x").to_dict()
    assert a.pop("events") == b.pop("events")
    assert a.pop("bucket_cuts") == b.pop("bucket_cuts")
    assert a.pop("profile") == b.pop("profile")  # the dataset profile: same on both engines
    assert a == pytest.approx(b)
    assert "region" in segments.segment_dimensions(ext)
    assert not ext.has("user_derived")  # not mapped: derived segments are not offered


def test_without_items_and_users_tables(external, data_dir) -> None:
    cfg = (data_dir / "wh.toml").read_text()
    cfg = cfg.replace('items = "shop.products"\n', "").replace('users = "shop.customers"\n', "")
    cfg = cfg.split("[columns.items]")[0]
    (data_dir / "ev_only.toml").write_text(cfg)
    store = Store(open_external("ev_only"))
    assert store.items().count().execute() == 40
    assert longtail.bucket_table(store).frame["items"].sum() == 40


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: s.replace('"duckdb"', '"nosuchengine"'), "unknown Ibis backend"),
        (lambda s: s.replace('events = "shop.clicks"', 'events = "shop.clicks; DROP"'), "table"),
        (lambda s: s.replace('events = "shop.clicks"', 'evnts = "shop.clicks"'), "unknown table"),
        (lambda s: s.replace("[sample]", "[sampel]"), "sampel"),
        (lambda s: s + "\n[[", "not valid TOML"),
    ],
    ids=["backend", "ref", "table-name", "extra-key", "toml"],
)
def test_bad_toml_is_a_clear_config_error(external, data_dir, edit, match) -> None:
    path = data_dir / "wh.toml"
    path.write_text(edit(path.read_text()))
    with pytest.raises(ConfigError, match=match):
        open_external("wh")


def test_missing_source_column_and_table(external, data_dir) -> None:
    path = data_dir / "wh.toml"
    path.write_text(path.read_text().replace('ts = "at"', 'ts = "when"'))
    with pytest.raises(ConfigError, match="no column"):
        Store(open_external("wh")).events().count().execute()
    path.write_text(path.read_text().replace("shop.clicks", "shop.nothing"))
    with pytest.raises(ConfigError, match="cannot be read"):
        open_external("wh").table("events")


def test_connection_env_secret(external, data_dir, monkeypatch) -> None:
    path = data_dir / "wh.toml"
    text = path.read_text()
    db = text.split('database = "')[1].split('"')[0]
    text = text.replace(f'database = "{db}"\n', "") + '\n[connection_env]\ndatabase = "WH_DB"\n'
    path.write_text(text)
    monkeypatch.delenv("WH_DB", raising=False)
    with pytest.raises(ConfigError, match="WH_DB"):
        open_external("wh")
    monkeypatch.setenv("WH_DB", db)
    assert Store(open_external("wh")).events().count().execute() > 0


def test_fetch_sample_makes_a_local_dataset(external) -> None:
    rep = fetch_sample("wh")
    assert rep.dataset == sample_name("wh") == "wh-sample"
    assert 0 < rep.events <= 400 < rep.total_events
    assert rep.sampled_users < rep.total_users
    json.dumps(rep.to_dict())
    assert f"{rep.events:,} of {rep.total_events:,} events" in rep.summary()
    con = connect("wh-sample")
    try:
        meta = read_meta(con)
        n_ev, n_users = con.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM events"
        ).fetchone()
        types = set(r[0] for r in con.execute("SELECT DISTINCT event_type FROM events").fetchall())
        regions = con.execute("SELECT count(region) FROM users").fetchone()[0]
        titles = con.execute("SELECT count(title) FROM items").fetchone()[0]
        derived = con.execute("SELECT count(*) FROM user_derived").fetchone()[0]
    finally:
        con.close()
    assert n_ev == rep.events and n_users == rep.sampled_users
    assert types <= {"impression", "view", "cart", "purchase"}  # aliases mapped
    assert regions == rep.users > 0 and titles == rep.items > 0 and derived >= n_users
    assert meta["source"] == "external:wh" and int(meta["sample_events"]) == rep.events
    # seeded: the same sample again
    again = fetch_sample("wh")
    assert (again.events, again.sampled_users) == (rep.events, rep.sampled_users)
    # whole users: every sampled user has all their events
    full = Store(open_external("wh")).events().to_pandas()
    con = connect("wh-sample")
    try:
        per = con.execute("SELECT user_id, count(*) FROM events GROUP BY 1").fetchall()
    finally:
        con.close()
    counts = full.groupby("user_id").size()
    truncated = [u for u, n in per if counts[u] != n]
    assert len(truncated) <= 1  # only the cap may cut the last user


def test_cli_datasets_and_sample(external, capsys) -> None:
    from ltrec.cli import main

    assert main(["datasets", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["datasets"] == ["native"] and out["external"] == {"wh": "duckdb"}
    assert main(["datasets"]) == 0
    assert "wh (external: duckdb)" in capsys.readouterr().out
    assert main(["sample", "wh", "--events", "10"]) == 2  # below the bound: exit 2
    capsys.readouterr()
    assert main(["sample", "wh", "--events", "300", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["dataset"] == "wh-sample" and 0 < rep["events"] <= 300
    assert main(["sample", "native"]) == 2  # not an external dataset


def test_cli_stats_on_an_external_dataset(external, capsys) -> None:
    from ltrec.cli import main

    assert main(["stats", "wh", "--json"]) == 0
    ext = json.loads(capsys.readouterr().out)
    assert main(["stats", "native", "--json"]) == 0
    nat = json.loads(capsys.readouterr().out)
    assert ext["events"] == nat["events"]
    assert ext["gini_exposure"] == pytest.approx(nat["gini_exposure"])


PAGES = [
    "app_pages/long_tail.py",
    "app_pages/data.py",
    # the rest import the model stack: slower, still run in CI
    *(
        pytest.param(p, marks=pytest.mark.slow)
        for p in (
            "app_pages/overview.py",
            "app_pages/segments.py",
            "app_pages/model_lab.py",
            "app_pages/rerank_studio.py",
            "app_pages/feedback_loop.py",
        )
    ),
]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_an_external_dataset(external, page) -> None:
    """Analytics pages render from the engine; model pages say how to get a local sample."""
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP

    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["ds"] = "wh"
    # opened at the page itself: one script run, not the default page's first
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.session_state["dataset"] == "wh"
    if page in ("app_pages/overview.py", "app_pages/long_tail.py", "app_pages/segments.py"):
        assert not at.error and at.get("plotly_chart")
    elif page == "app_pages/data.py":
        table = at.dataframe[-1].value
        assert table.set_index("dataset").loc["wh", "kind"] == "external (duckdb)"
        at.selectbox(key="data_pick").set_value("wh").run()
        at.number_input(key="data_sample_n").set_value(300).run()
        at.button(key="data_sample").click().run()
        assert not at.exception and not at.error
        msg = " ".join(s.value for s in at.success)
        assert "Sampled" in msg and "into the local dataset 'wh-sample'" in msg
        assert "wh-sample" in list_datasets()
    else:
        shown = " ".join([i.value for i in at.info] + [e.value for e in at.error])
        if page == "app_pages/rerank_studio.py":  # the Studio names what it lacks
            assert "dataset 'wh' lives on an external engine; this page needs a local copy" in shown
        else:  # the model pages say how to get the local sample
            assert "Fetch one on the Data page (it becomes the dataset 'wh-sample')" in shown


# ---------------------------------------------------------------------------- confinement


def _with_db(data_dir: Path, value: str, extra: str = "") -> None:
    text = (data_dir / "wh.toml").read_text()
    db = text.split('database = "')[1].split('"')[0]
    (data_dir / "wh.toml").write_text(text.replace(db, value) + extra)


@pytest.mark.parametrize("where", ["absolute", "relative", "symlink", "root-home"])
def test_a_path_outside_the_allowed_folders_is_refused(external, data_dir, tmp_path, where):
    elsewhere = tmp_path.parent / f"elsewhere-{where}"
    elsewhere.mkdir()
    target = elsewhere / "new.duckdb"
    up = "../" * len(data_dir.relative_to(elsewhere.parent).parts)  # relative to the data dir
    value = {
        "absolute": str(target),
        "relative": f"{up}{elsewhere.name}/new.duckdb",
        "symlink": "link/new.duckdb",  # a folder inside the data dir that links outside
        "root-home": "/root/new.duckdb",
    }[where]
    if where == "symlink":
        (data_dir / "link").symlink_to(elsewhere)
    _with_db(data_dir, value)
    with pytest.raises(ConfigError) as info:
        open_external("wh")
    assert str(info.value).splitlines()[0] == (
        f"wh.toml: connection.database = {value!r} points outside the data directory"
    )
    assert "LTREC_EXTERNAL_DIRS" in str(info.value)
    assert not target.exists() and not Path("/root/new.duckdb").exists()  # nothing created


def test_a_relative_path_resolves_inside_the_data_directory(external, data_dir, tmp_path):
    (data_dir / "sources").mkdir()
    shutil.copyfile(tmp_path / "warehouse.duckdb", data_dir / "sources" / "wh.duckdb")
    _with_db(data_dir, "sources/wh.duckdb")
    cfg = load_config("wh")
    assert cfg.connection["database"] == str((data_dir / "sources" / "wh.duckdb").resolve())
    assert Store(open_external("wh")).events().count().execute() > 0


def test_without_the_allow_list_the_warehouse_is_refused(external, monkeypatch):
    monkeypatch.delenv("LTREC_EXTERNAL_DIRS")
    with pytest.raises(ConfigError, match="points outside the data directory"):
        load_config("wh")


def test_an_environment_path_outside_is_refused_without_showing_it(
    external, data_dir, monkeypatch
):
    text = (data_dir / "wh.toml").read_text()
    db = text.split('database = "')[1].split('"')[0]
    text = text.replace(f'database = "{db}"\n', "") + '\n[connection_env]\ndatabase = "WH_DB"\n'
    (data_dir / "wh.toml").write_text(text)
    monkeypatch.setenv("WH_DB", "/var/tmp/private-place/x.duckdb")
    with pytest.raises(ConfigError) as info:
        open_external("wh")
    msg = str(info.value)
    assert msg.splitlines()[0] == (
        "connection argument 'database' (from $WH_DB) points outside the data directory"
    )
    assert "private-place" not in msg and not Path("/var/tmp/private-place").exists()


def test_ltrec_secrets_cannot_be_read_by_an_engine(external, data_dir, monkeypatch):
    monkeypatch.setenv("LTREC_HMAC_KEY", "k3y-material-that-must-not-leak")
    path = data_dir / "wh.toml"
    path.write_text(path.read_text() + '\n[connection_env]\ntemp_directory = "LTREC_HMAC_KEY"\n')
    with pytest.raises(ConfigError) as info:
        open_external("wh")
    msg = str(info.value)
    assert msg.splitlines()[0] == (
        "wh.toml: connection_env: Value error, connection_env.temp_directory: $LTREC_HMAC_KEY is "
        "one of ltrec's own settings or secrets; an engine may only read variables meant for it"
    )
    assert "k3y-material" not in msg


def test_engine_errors_never_show_environment_values(external, data_dir, monkeypatch):
    # DuckDB echoes a bad option value in its error; a value from the environment is redacted.
    monkeypatch.setenv("WH_THREADS", "hunter2-not-a-number")
    monkeypatch.setenv("LTREC_HMAC_KEY", "another-secret-value")
    path = data_dir / "wh.toml"
    path.write_text(path.read_text() + '\n[connection_env]\nthreads = "WH_THREADS"\n')
    with pytest.raises(ConfigError) as info:
        open_external("wh")
    msg = str(info.value)
    assert msg.startswith("cannot connect to the duckdb engine: ")
    assert "hunter2" not in msg and "***" in msg
    assert "another-secret-value" not in redact("x another-secret-value y")


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("\n[spark]\nmaster = 'local'\ncolour = 'red'\n", "spark.colour: Extra inputs"),
        ("\n[sample]\nmax_events = 500\nseeed = 1\n", "sample.seeed: Extra inputs"),
        ("\nbackends = 'duckdb'\n", "backends: Extra inputs"),
    ],
    ids=["spark", "sample", "top"],
)
def test_unknown_keys_are_errors(external, data_dir, extra, match):
    path = data_dir / "wh.toml"
    text = path.read_text()
    if extra.startswith("\n[sample]"):
        text = text.split("[sample]")[0]
    path.write_text(text + extra)
    with pytest.raises(ConfigError, match=match):
        load_config("wh")


def test_unknown_event_column_and_connection_key(external, data_dir):
    path = data_dir / "wh.toml"
    text = path.read_text()
    path.write_text(text.replace('ts = "at"', 'ts = "at"\ntimestmp = "at"'))
    with pytest.raises(ConfigError, match="columns.events: unknown column.s. timestmp"):
        load_config("wh")
    (data_dir / "lite.toml").write_text(
        'backend = "sqlite"\n[connection]\ndatabase = "src.db"\npasword = "x"\n'
        '[tables]\nevents = "clicks"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config("lite")
    assert str(info.value).splitlines() == [
        "lite.toml: connection: unknown key(s) pasword for the sqlite engine",
        "valid keys: database, type_map",
    ]
    assert not (data_dir / "src.db").exists()


def test_spark_warehouse_and_dirs_stay_in_the_data_directory(data_dir, tmp_path):
    (data_dir / "sp.toml").write_text(
        'backend = "pyspark"\n[spark.config]\n"spark.local.dir" = "spark-tmp"\n'
        '[tables]\nevents = "clicks"\n'
    )
    cfg = load_config("sp")
    root = data_dir.resolve()
    assert cfg.spark.config == {
        "spark.local.dir": str(root / "spark-tmp"),
        "spark.sql.warehouse.dir": str(root / ".spark-warehouse"),
    }
    (data_dir / "sp.toml").write_text(
        'backend = "pyspark"\n[spark.config]\n"spark.eventLog.dir" = "/tmp/events"\n'
        '[tables]\nevents = "clicks"\n'
    )
    with pytest.raises(ConfigError, match="spark.config.spark.eventLog.dir = '/tmp/events' poi"):
        load_config("sp")


@pytest.mark.parametrize("own", ["native.duckdb", "models/native/x.duckdb", "wh.toml"])
def test_an_engine_may_not_open_ltrec_own_files(external, data_dir, own):
    before = (data_dir / "native.duckdb").read_bytes()
    _with_db(data_dir, own)
    with pytest.raises(ConfigError) as info:
        open_external("wh")
    assert str(info.value).splitlines()[0] == (
        f"wh.toml: connection.database = {own!r} is one of ltrec's own files"
    )
    assert (data_dir / "native.duckdb").read_bytes() == before


def test_a_command_needing_the_store_says_the_dataset_is_external(external, capsys) -> None:
    from ltrec.cli import main

    assert main(["train", "wh", "--model", "popularity", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["message"] == (
        "dataset 'wh' is an external dataset (read in place from wh.toml); this needs a local store"
    )
    assert err["hint"].startswith("make a local sample with `ltrec sample wh` and use 'wh-sample'")
    assert main(["train", "nope", "--model", "popularity", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["message"] == "dataset 'nope' not found (datasets: native)"


def test_split_settings_of_an_external_dataset_start_from_the_engine_defaults(external) -> None:
    # the engine split (evaluation/engine_split.py) uses default_split({}): --split overrides it
    from ltrec.cli.models import _split_config
    from ltrec.evaluation import default_split

    got = _split_config("wh", None, ["test_share=0.1"])
    assert got == default_split({}, test_share=0.1)
