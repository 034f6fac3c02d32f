"""Fixture stores for analytics tests, written through ``ltrec.store.writing`` + ``finalize``."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import ibis
import numpy as np
import pandas as pd
import pytest

from ltrec.analytics.backend import Store, open_store
from ltrec.store import writing
from ltrec.store.finalize import finalize
from ltrec.store.schema import create_schema

EVENT_COLS = ["user_id", "item_id", "event_type", "ts", "session_id", "quantity", "price", "source"]


def write_store(
    name: str,
    data_dir: Path,
    events: pd.DataFrame,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
) -> None:
    """Write a dataset from frames (events need user_id, item_id, event_type, ts)."""
    with writing(name, data_dir, replace=True) as con:
        fill(con, events, items, users)


def memory_store(
    events: pd.DataFrame, items: pd.DataFrame | None = None, users: pd.DataFrame | None = None
) -> Store:
    """The same tables in an in-memory DuckDB (for property tests: no file per example)."""
    con = duckdb.connect()
    create_schema(con)
    fill(con, events, items, users)
    return Store(ibis.duckdb.from_connection(con))


def fill(con, events: pd.DataFrame, items: pd.DataFrame | None, users: pd.DataFrame | None):
    """Insert frames into the canonical tables and finalize."""
    ev = events.copy()
    for c in EVENT_COLS:
        if c not in ev:
            ev[c] = None
    ev = ev[EVENT_COLS]
    con.register("ev_df", ev)
    con.execute("INSERT INTO events SELECT * FROM ev_df")
    if items is not None:
        it = items.copy()
        for c in (
            "title",
            "description",
            "category",
            "brand",
            "price",
            "in_stock",
            "created_at",
        ):
            if c not in it:
                it[c] = None
        con.register("it_df", it)
        con.execute(
            "INSERT INTO items SELECT item_id, title, description, category, brand, "
            "CAST(price AS DOUBLE), CAST(in_stock AS BOOLEAN), CAST(created_at AS TIMESTAMP)"
            " FROM it_df"
        )
    if users is not None:
        us = users.copy()
        extra = [c for c in us.columns if c != "user_id"]
        for c in extra:
            con.execute(f'ALTER TABLE users ADD COLUMN "{c}" VARCHAR')
        con.register("us_df", us.astype(str))
        con.execute("INSERT INTO users SELECT * FROM us_df")
    finalize(con)


def tiny_events(rows: list[tuple[str, str, str]], start: datetime | None = None) -> pd.DataFrame:
    """(user, item, event_type) rows, one hour apart."""
    t0 = start or datetime(2024, 1, 1)
    return pd.DataFrame(
        [(u, i, e, t0 + timedelta(hours=k)) for k, (u, i, e) in enumerate(rows)],
        columns=["user_id", "item_id", "event_type", "ts"],
    )


def synthetic_shop(
    users: int = 120, items: int = 60, sessions: int = 1500, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A small shop with Zipf popularity, categories, segments and a view->cart->purchase
    funnel, for tests that need realistic shapes (not exact values)."""
    rng = np.random.default_rng(seed)
    item_ids = [f"i{j:04d}" for j in range(items)]
    cats = ["Home > Kitchen", "Home > Garden", "Fashion > Shoes", "Toys"]
    item_df = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": [f"Item {j}" for j in range(items)],
            "category": [cats[j % len(cats)] for j in range(items)],
            "price": rng.lognormal(3, 0.5, items),
        }
    )
    user_ids = [f"u{j:04d}" for j in range(users)]
    user_df = pd.DataFrame(
        {
            "user_id": user_ids,
            "region": rng.choice(["north", "south", "east"], users),
            "device": rng.choice(["mobile", "desktop"], users, p=[0.7, 0.3]),
        }
    )
    weights = 1.0 / np.arange(1, items + 1) ** 1.1
    weights /= weights.sum()
    conv = rng.uniform(0.05, 0.6, items)
    rows = []
    t0 = datetime(2024, 1, 1)
    for s in range(sessions):
        u = user_ids[rng.integers(users)]
        ts = t0 + timedelta(minutes=int(rng.integers(0, 60 * 24 * 70)))
        shown = rng.choice(items, size=4, replace=False, p=weights)
        for j in shown:
            rows.append((u, item_ids[j], "impression", ts, f"s{s}"))
        j = shown[0]
        if rng.random() < 0.5:
            rows.append((u, item_ids[j], "view", ts + timedelta(seconds=5), f"s{s}"))
            if rng.random() < conv[j]:
                rows.append((u, item_ids[j], "cart", ts + timedelta(seconds=30), f"s{s}"))
                if rng.random() < 0.5:
                    rows.append((u, item_ids[j], "purchase", ts + timedelta(seconds=90), f"s{s}"))
    ev = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts", "session_id"])
    return ev, item_df, user_df


@pytest.fixture
def shop(data_dir: Path) -> Store:
    ev, it, us = synthetic_shop()
    write_store("shop", data_dir, ev, it, us)
    return open_store("shop", data_dir)


def orders_csv(customers: int = 30, lines: int = 600, seed: int = 7) -> str:
    """An order-lines file in the layout of the UCI Online Retail log (purchase lines only):
    Zipf-like stock codes, customers in three countries, some customers re-buying an item on
    a later invoice, guest lines without a customer. Ids are text as a shop writes them."""
    rng = np.random.default_rng(seed)
    stock = [f"8512{k:02d}A" for k in range(40)]
    weights = 1.0 / np.arange(1, len(stock) + 1) ** 1.2
    weights /= weights.sum()
    countries = ["United Kingdom", "France", "Germany"]
    rows = ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"]
    for n in range(lines):
        cust = 17850 + int(rng.integers(customers))
        code = stock[int(rng.choice(len(stock), p=weights))]
        day = 1 + n % 28
        hour = 8 + (n // 28) % 10
        rows.append(
            f"5363{n // 3:03d},{code},ITEM {code},{1 + n % 4},12/{day:02d}/2010 {hour:02d}:00,"
            f"2.55,{cust},{countries[cust % 3]}"
        )
    rows.append("539999,851200A,ITEM 851200A,1,12/28/2010 18:00,2.55,,United Kingdom")
    return "\n".join(rows) + "\n"


def orders_store(name: str, data_dir: Path, **kw: int) -> Path:
    """Import :func:`orders_csv` with the real importer (``orders`` preset); returns the file."""
    from ltrec.store.importing import import_dataset

    path = data_dir / f"{name}_orders.csv"
    path.write_text(orders_csv(**kw))
    import_dataset(name, events=path, preset="orders", data_dir=data_dir, max_reject_share=0.05)
    return path
