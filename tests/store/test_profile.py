"""The dataset profile (:mod:`ltrec.store.profile`): hand-built fixtures checked against pandas,
stored in ``meta`` by every write, read back (or computed without writing on read-only files),
and hypothesis properties of the derived fields."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrec.config import EVENT_TYPES
from ltrec.store import connect, dataset_path, read_meta
from ltrec.store.importing import import_dataset
from ltrec.store.profile import (
    META_KEY,
    REPEAT_MIN_SHARE,
    DatasetProfile,
    _build,
    _ibis_raw,
    compute_profile,
    read_profile,
)
from ltrec.store.schema import create_schema
from tests.analytics.conftest import fill, orders_store, synthetic_shop, write_store


def _stored(name: str, root: Path) -> DatasetProfile:
    con = connect(name, root)
    try:
        return DatasetProfile.model_validate_json(read_meta(con)[META_KEY])
    finally:
        con.close()


def _repeat_share(ev: pd.DataFrame) -> float:
    buys = ev[ev["event_type"] == "purchase"]
    times = buys.groupby(["user_id", "item_id"])["ts"].nunique()
    return float((times > 1).mean())


def test_demo_like_shop_with_every_event(data_dir: Path) -> None:
    ev, it, us = synthetic_shop()
    write_store("shop", data_dir, ev, it, us)
    p = _stored("shop", data_dir)
    want = ev["event_type"].value_counts()
    assert p.event_counts == {t: int(want[t]) for t in EVENT_TYPES}
    assert list(p.event_counts) == list(EVENT_TYPES)  # funnel order
    assert p.funnel_stages == ["impression", "view", "cart", "purchase"]
    assert p.exposure_event == "impression" and p.exposure_note is None
    assert p.rates == ["view_cart", "cart_purchase", "view_purchase"] and p.has_conversion
    assert (p.has_sessions, p.has_prices, p.has_categories, p.has_titles, p.has_brands) == (
        True,
        True,
        True,
        True,
        False,
    )
    assert p.segment_columns == ["region", "device"]
    assert p.users == 120 and p.items == 60
    assert p.first_ts == ev["ts"].min().to_pydatetime()
    assert p.last_ts == ev["ts"].max().to_pydatetime()
    assert p.repeat_purchase_share == pytest.approx(_repeat_share(ev))


def test_purchase_only_orders_through_the_importer(data_dir: Path) -> None:
    path = orders_store("shop", data_dir)
    p = _stored("shop", data_dir)
    raw = pd.read_csv(path, dtype=str)
    lines = raw.dropna(subset=["CustomerID"])  # a guest line is a reject
    assert p.event_counts == {"purchase": len(lines)}
    assert p.funnel_stages == ["purchase"] and p.rates == []
    assert not (p.has_impressions or p.has_views or p.has_carts)
    assert p.exposure_event is None and not p.has_conversion
    assert "not measured" in (p.exposure_note or "")
    assert p.has_sessions and p.has_prices and p.has_titles  # InvoiceNo, UnitPrice, Description
    assert not p.has_categories and not p.has_brands
    assert p.segment_columns == ["country"]
    assert p.users == lines["CustomerID"].nunique()
    # repeat: the same customer and stock code on invoices at different times
    ts = pd.to_datetime(lines["InvoiceDate"], format="%m/%d/%Y %H:%M")
    pairs = lines.assign(ts=ts).groupby(["CustomerID", "StockCode"])["ts"].nunique()
    assert p.repeat_purchase_share == pytest.approx(float((pairs > 1).mean()))
    assert p.has_repeat_purchases == (p.repeat_purchase_share >= REPEAT_MIN_SHARE)
    assert p.has_repeat_purchases


def test_views_and_purchases_only(data_dir: Path) -> None:
    t0 = datetime(2024, 3, 1)
    rows = [
        ("u1", "a", "view", t0),
        ("u1", "a", "purchase", t0 + timedelta(minutes=1)),
        ("u2", "b", "view", t0 + timedelta(hours=1)),
        ("u2", "a", "view", t0 + timedelta(hours=2)),
    ]
    ev = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts"])
    write_store("vp", data_dir, ev)
    p = _stored("vp", data_dir)
    assert p.event_counts == {"view": 3, "purchase": 1}
    assert p.funnel_stages == ["view", "purchase"]
    assert p.exposure_event == "view" and p.rates == ["view_purchase"] and p.has_conversion
    assert not p.rate_available("view_cart") and not p.rate_available("cart_purchase")
    assert p.repeat_purchase_share == 0.0 and not p.has_repeat_purchases
    assert not (p.has_sessions or p.has_prices or p.has_categories or p.has_titles)
    assert p.segment_columns == [] and p.users == 2 and p.items == 2


@pytest.mark.parametrize("kind", ["shop", "orders"])
def test_sql_and_ibis_paths_agree(data_dir: Path, kind: str) -> None:
    """DuckDB files are profiled in plain SQL, external engines through Ibis: same result."""
    if kind == "shop":
        write_store("x", data_dir, *synthetic_shop())
    else:
        orders_store("x", data_dir)
    con = connect("x", data_dir)
    try:
        sql = compute_profile(con)
        via_ibis = _build(_ibis_raw(ibis.duckdb.from_connection(con)))
    finally:
        con.close()
    assert sql == via_ibis and sql == _stored("x", data_dir)


def test_empty_dataset(data_dir: Path) -> None:
    write_store("blank", data_dir, pd.DataFrame(columns=["user_id", "item_id", "event_type", "ts"]))
    p = _stored("blank", data_dir)
    assert p.event_counts == {} and p.funnel_stages == [] and p.exposure_event is None
    assert p.repeat_purchase_share is None and p.first_ts is None and p.users == 0
    assert p.to_dict()["first_ts"] is None


def test_every_import_recomputes_it(data_dir: Path) -> None:
    orders_store("shop", data_dir)
    assert _stored("shop", data_dir).exposure_event is None
    more = data_dir / "views.csv"
    more.write_text("user_id,item_id,event_type,ts\n17850,851200A,view,2010-12-29 10:00\n")
    import_dataset("shop", events=more, preset="canonical", data_dir=data_dir)
    p = _stored("shop", data_dir)
    assert p.exposure_event == "view" and p.funnel_stages == ["view", "purchase"]
    assert p.event_counts["view"] == 1


def test_older_file_without_profile(data_dir: Path) -> None:
    """A file written before profiles existed: read-only readers compute it and write nothing;
    a writable connection computes it once and stores it."""
    orders_store("shop", data_dir)
    want = _stored("shop", data_dir)
    raw = duckdb.connect(str(dataset_path("shop", data_dir)))
    raw.execute("DELETE FROM meta WHERE key = ?", [META_KEY])
    raw.close()
    ro = connect("shop", data_dir)
    try:
        assert read_profile(ro) == want
        assert META_KEY not in read_meta(ro)
    finally:
        ro.close()
    rw = duckdb.connect(str(dataset_path("shop", data_dir)))
    try:
        assert read_profile(rw) == want
        assert DatasetProfile.model_validate_json(read_meta(rw)[META_KEY]) == want
    finally:
        rw.close()


def test_an_older_profile_version_is_recomputed(data_dir: Path) -> None:
    orders_store("shop", data_dir)
    raw = duckdb.connect(str(dataset_path("shop", data_dir)))
    raw.execute(
        "UPDATE meta SET value = ? WHERE key = ?",
        ['{"version": 0, "event_counts": {"view": 5}}', META_KEY],
    )
    raw.close()
    ro = connect("shop", data_dir)
    try:
        assert read_profile(ro).event_counts == {"purchase": 600}
    finally:
        ro.close()


# ----------------------------------------------------------------------------- properties

event = st.tuples(
    st.sampled_from(["u1", "u2", "u3", "007"]),
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(EVENT_TYPES),
    st.integers(0, 5),  # hour: repeats at the same hour are one occasion
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, max_size=30))
def test_profile_matches_pandas(rows: list[tuple[str, str, str, int]]) -> None:
    t0 = datetime(2024, 1, 1)
    ev = pd.DataFrame(
        [(u, i, e, t0 + timedelta(hours=h)) for u, i, e, h in rows],
        columns=["user_id", "item_id", "event_type", "ts"],
    )
    con = duckdb.connect()
    create_schema(con)
    fill(con, ev, None, None)
    p = compute_profile(con)
    assert read_profile(con) == p  # finalize stored the same profile
    # the Ibis path (external engines) computes the same profile as the SQL path
    assert _build(_ibis_raw(ibis.duckdb.from_connection(con))) == p
    con.close()
    counts = ev["event_type"].value_counts()
    assert p.event_counts == {t: int(counts[t]) for t in EVENT_TYPES if t in counts}
    assert p.funnel_stages == [t for t in EVENT_TYPES if t in counts]
    present = set(p.funnel_stages)
    want_exp = "impression" if "impression" in present else ("view" if "view" in present else None)
    assert p.exposure_event == want_exp
    for rate in p.rates:
        a, b = rate.split("_")
        assert a in present and b in present
    assert p.users == ev["user_id"].nunique() and p.items == ev["item_id"].nunique()
    if "purchase" in present:
        assert p.repeat_purchase_share == pytest.approx(_repeat_share(ev))
        assert 0.0 <= p.repeat_purchase_share <= 1.0
    else:
        assert p.repeat_purchase_share is None and not p.has_repeat_purchases
    assert DatasetProfile.model_validate_json(p.to_json()) == p
