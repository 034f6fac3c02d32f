"""The canonical tables of a dataset file (DESIGN §2). Defined once; everything else reads these."""

from __future__ import annotations

import re

from ltrec.config import EVENT_TYPES

SCHEMA_VERSION = 1

#: Columns of ``events`` with their DuckDB types, in table order.
EVENT_COLUMNS: dict[str, str] = {
    "user_id": "VARCHAR",
    "item_id": "VARCHAR",
    "event_type": "VARCHAR",
    "ts": "TIMESTAMP",
    "session_id": "VARCHAR",
    "quantity": "INTEGER",
    "price": "DOUBLE",
    "source": "VARCHAR",
}
REQUIRED_EVENT_FIELDS = ("user_id", "item_id", "event_type", "ts")

#: Core columns of ``items``; any other column of an items file is kept as an attribute.
ITEM_COLUMNS: dict[str, str] = {
    "item_id": "VARCHAR",
    "title": "VARCHAR",
    "description": "VARCHAR",
    "category": "VARCHAR",
    "brand": "VARCHAR",
    "price": "DOUBLE",
    "in_stock": "BOOLEAN",
    "created_at": "TIMESTAMP",
}

#: Core column of ``users``; every other column is a segment dimension.
USER_COLUMNS: dict[str, str] = {"user_id": "VARCHAR"}

#: Event-type aliases mapped to canonical types (DESIGN §2); matched case-insensitively.
EVENT_ALIASES: dict[str, str] = {
    **{t: t for t in EVENT_TYPES},
    "impressions": "impression",
    "imp": "impression",
    "shown": "impression",
    "pv": "view",
    "click": "view",
    "detail": "view",
    "views": "view",
    "pageview": "view",
    "page_view": "view",
    "addtocart": "cart",
    "add_to_cart": "cart",
    "add-to-cart": "cart",
    "addtobasket": "cart",
    "carts": "cart",
    "buy": "purchase",
    "transaction": "purchase",
    "order": "purchase",
    "purchases": "purchase",
    "sale": "purchase",
}

# items and users carry no PRIMARY KEY: the importer keeps ids unique itself (a file's later
# duplicates are rejects, appends upsert by anti-join), and maintaining the index cost more than
# the rest of a 10M-event import (3 s of 15 s at 2M rows). Files made before keep theirs.
_DDL = f"""
CREATE TABLE IF NOT EXISTS events (
    {", ".join(f"{c} {t}" for c, t in EVENT_COLUMNS.items())}
);
CREATE TABLE IF NOT EXISTS items (
    item_id VARCHAR,
    {", ".join(f"{c} {t}" for c, t in ITEM_COLUMNS.items() if c != "item_id")}
);
CREATE TABLE IF NOT EXISTS users (user_id VARCHAR);
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS rejects (
    import_id VARCHAR,
    source_file VARCHAR,
    line BIGINT,
    reason VARCHAR,
    raw VARCHAR,
    code VARCHAR
);
"""


def create_schema(con) -> None:  # con: duckdb.DuckDBPyConnection
    """Create the canonical tables if they are missing (idempotent)."""
    con.execute(_DDL)
    # files made before the reject codes: code (ltrec.store.importing.codes) is NULL there
    con.execute("ALTER TABLE rejects ADD COLUMN IF NOT EXISTS code VARCHAR")
    con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB SQL; safe for any string (embedded quotes doubled)."""
    if "\x00" in name:
        raise ValueError("identifier contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def safe_column_name(name: str) -> str:
    """Turn an arbitrary header into a plain attribute column name (letters, digits, _)."""
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", name.strip()).strip("_").lower() or "col"
    if cleaned[0].isdigit():
        cleaned = "c_" + cleaned
    return cleaned[:63]


def is_plain_ident(name: str) -> bool:
    return bool(_IDENT.match(name))
