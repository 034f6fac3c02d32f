"""Pseudonymous user ids: a keyed HMAC of every user id, applied at import (DESIGN §2).

With ``ltrec import --pseudonymize`` (or the Data page's checkbox) every user id of the events
and users files is replaced, before anything is stored, by

    pseudonym(u) = "u_" + hex(HMAC-SHA256(key, utf8(u)))[:24]

(RFC 2104 HMAC; 24 hex characters = 96 bits, so two of 10 million users collide with
probability about n^2 / 2^97 < 1e-15). The same id gives the same pseudonym under one key, so
later imports with the same key join up; without the key the mapping cannot be recomputed or
reversed (unlike a plain hash, which anyone can recompute for a guessed id).

The key comes from the caller (the Data page reads ``st.secrets``) or the environment variable
``LTREC_HMAC_KEY``; it must be at least :data:`MIN_KEY_BYTES` bytes. It is never written into
the store, its meta, a manifest or a log: the store keeps only ``pseudonymized =
hmac-sha256`` and a *key check value* (the HMAC of a fixed label, 12 hex characters), so an
append with a different key, or a raw import into a pseudonymised dataset, is refused instead
of silently splitting every user in two.

Speed: hashing runs as a vectorised DuckDB Python UDF over Arrow arrays on the *distinct* ids
only, then one join rewrites the staged rows, so a log with many events per user hashes each
user once. Values are never formatted into SQL.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping

import duckdb
import pyarrow as pa

from ltrec.errors import BadInputError
from ltrec.store.connect import scalar
from ltrec.store.schema import quote_ident

# SQL below names only quote_ident-quoted tables and columns of the caller (never values).
# ruff: noqa: S608

#: Environment variable holding the key.
ENV_KEY = "LTREC_HMAC_KEY"
#: Prefix of every pseudonym (so a pseudonymised id is recognisable as one).
PREFIX = "u_"
#: Hex characters kept of the 64-character HMAC-SHA256.
HEX_CHARS = 24
#: Shortest key accepted (128 bits if random).
MIN_KEY_BYTES = 16
#: Meta keys written by a pseudonymised import.
META_FLAG, META_CHECK = "pseudonymized", "pseudonym_key_check"
METHOD = "hmac-sha256"
_CHECK_LABEL = b"ltrec pseudonym key check v1"
_UDF = "ltrec_pseudonym"


class MissingKeyError(BadInputError):
    """Pseudonymisation was asked for but no key is configured."""

    def __init__(self) -> None:
        super().__init__(
            "pseudonymising user ids needs a secret key, and none is set; nothing was imported",
            hint=f"set the environment variable {ENV_KEY} (at least {MIN_KEY_BYTES} characters, "
            "e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`), or "
            f"{ENV_KEY} in .streamlit/secrets.toml for the app; keep it: the same key gives "
            "the same pseudonyms in later imports",
        )


def resolve_key(key: str | bytes | None = None, env: Mapping[str, str] | None = None) -> bytes:
    """The key as bytes: ``key`` if given, else ``$LTREC_HMAC_KEY``. Raises if absent or short."""
    if key is None or key == "" or key == b"":
        key = (os.environ if env is None else env).get(ENV_KEY) or None
    if key is None:
        raise MissingKeyError()
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if len(raw) < MIN_KEY_BYTES:
        raise BadInputError(
            f"the pseudonymisation key is too short ({len(raw)} bytes; at least "
            f"{MIN_KEY_BYTES} needed); nothing was imported",
            hint="use a long random key, e.g. `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`",
        )
    return raw


def pseudonym(user_id: str, key: bytes) -> str:
    """``u_`` + the first 24 hex characters of HMAC-SHA256(key, user_id)."""
    return PREFIX + hmac.digest(key, user_id.encode("utf-8"), hashlib.sha256).hex()[:HEX_CHARS]


def key_check(key: bytes) -> str:
    """A short value that identifies the key without revealing it (stored in meta)."""
    return hmac.digest(key, _CHECK_LABEL, hashlib.sha256).hex()[:12]


def pseudonymize_array(values: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """Pseudonyms of an Arrow string array (nulls stay null)."""
    digest, sha = hmac.digest, hashlib.sha256
    n = HEX_CHARS
    out = [
        None if v is None else PREFIX + digest(key, v.encode("utf-8"), sha).hex()[:n]
        for v in values.to_pylist()
    ]
    return pa.array(out, type=pa.string())


def register(con: duckdb.DuckDBPyConnection, key: bytes) -> str:
    """Register the keyed pseudonym function on ``con`` (the key lives only in this closure).

    Returns the SQL function name. DuckDB calls it with Arrow batches (vectorised).
    """
    # registering needs no pending result on the connection (duckdb 2.0): finish the last one
    con.execute("SELECT 1").fetchall()
    try:
        con.remove_function(_UDF)
    except duckdb.Error:
        pass
    # duckdb 2.0's stub has no overload for an Arrow UDF with these (documented) options
    con.create_function(  # type: ignore[call-overload]  # see above
        _UDF,
        lambda col: pseudonymize_array(col, key),
        [duckdb.sqltype("VARCHAR")],
        duckdb.sqltype("VARCHAR"),
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    return _UDF


def pseudonymize_columns(
    con: duckdb.DuckDBPyConnection, key: bytes, columns: Iterable[tuple[str, str]]
) -> int:
    """Replace every value of each ``(table, column)`` by its pseudonym, in place.

    The distinct ids of all the columns are hashed once (the UDF over Arrow), then each table
    is rebuilt with a join, in its old row order (the importer's staged events number their
    rows by rowid). Meant for the importer's temporary staging tables, so raw ids never reach
    the dataset file. Returns the number of distinct ids hashed.
    """
    cols = [(quote_ident(t), quote_ident(c)) for t, c in columns]
    if not cols:
        return 0
    fn = register(con, key)
    ids = " UNION ".join(f"SELECT {c} AS u FROM {t} WHERE {c} IS NOT NULL" for t, c in cols)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ltrec_pseudo AS "
        f"SELECT u, {fn}(u) AS p FROM (SELECT DISTINCT u FROM ({ids}))"
    )
    for t, c in cols:
        # rebuilt rather than UPDATEd: a join into a new table is ~10x faster on millions of rows
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {t} AS SELECT s.* REPLACE (m.p AS {c}) "
            f"FROM {t} s LEFT JOIN _ltrec_pseudo m ON s.{c} = m.u ORDER BY s.rowid"
        ).fetchall()
    n = scalar(con.execute("SELECT count(*) FROM _ltrec_pseudo"))
    con.execute("DROP TABLE _ltrec_pseudo").fetchall()
    con.remove_function(fn)
    return int(n)


def check_compatible(meta: Mapping[str, str], has_events: bool, key: bytes | None) -> None:
    """Refuse mixing raw and pseudonymised ids (or two keys) in one dataset.

    Args:
        meta: the existing dataset's meta.
        has_events: whether it already holds events (an empty dataset takes either).
        key: the key of this import, or None for a raw import.
    """
    stored = meta.get(META_CHECK)
    if not has_events and stored is None:
        return
    if key is None and stored is not None:
        raise BadInputError(
            "this dataset holds pseudonymised user ids; importing raw ids into it would split "
            "every returning user in two. Nothing was imported.",
            hint="import with --pseudonymize (same key), or into a new dataset",
        )
    if key is not None and stored is None:
        raise BadInputError(
            "this dataset holds raw user ids; adding pseudonymised ones would split every "
            "returning user in two. Nothing was imported.",
            hint="re-import everything with --pseudonymize --replace, or use a new dataset",
        )
    if key is not None and stored is not None and key_check(key) != stored:
        raise BadInputError(
            "this dataset was pseudonymised with a different key; nothing was imported",
            hint=f"set {ENV_KEY} to the key of the earlier imports, or use a new dataset",
        )
