"""The importer's per-row SQL fast paths agree with their plain definitions."""

from __future__ import annotations

import unicodedata

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltrec.ids import NULL_IDS, id_sql
from ltrec.store.importing.map import event_type_expr, resolve_event_map
from ltrec.store.importing.presets import get_preset
from ltrec.store.importing.validate import (
    _UNIX_LIMIT_US,
    _UNIX_SCALE,
    _strip,
    ts_expr,
)
from ltrec.store.schema import EVENT_ALIASES

_con = duckdb.connect()
_con.execute("SET TimeZone = 'UTC'")

#: Spaces DuckDB's trim strips (the Unicode space separators) and a tab, which it keeps.
_EDGES = [" ", "\xa0", "\u1680", "\u2000", "\u2009", "\u202f", "\u205f", "\u3000", "\t"]
ids = st.one_of(
    st.sampled_from(["", " ", "null", "NULL", " None ", "nan", "NaN", "nul", "nulls", "12", "é"]),
    st.text(max_size=8),
    st.tuples(
        st.sampled_from(["", *_EDGES]), st.text(max_size=8), st.sampled_from(["", *_EDGES])
    ).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(ids)
def test_strip_is_trim(raw: str) -> None:
    """The conditional trim gives DuckDB's trim on every value."""
    got, want = _con.execute(f"SELECT {_strip('$v')}, trim($v)", {"v": raw}).fetchone()
    assert got == want


def _id_definition(raw: str) -> str | None:
    """The id rule in plain Python: edge whitespace (ASCII space, tab, line ends, form feeds,
    the Unicode separators) trimmed; the null tokens are NULL; a control character inside makes
    the id the control marker (a reject)."""
    space = set(" \t\n\r\x0b\x0c")

    def is_space(c: str) -> bool:
        return c in space or unicodedata.category(c) in ("Zs", "Zl", "Zp")

    chars = list(raw)
    while chars and is_space(chars[0]):
        chars.pop(0)
    while chars and is_space(chars[-1]):
        chars.pop()
    t = "".join(chars)
    if t.lower() in NULL_IDS:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in t):
        return "\x00"
    return t


_CONTROLS = ["\x00", "\x01", "\t", "\n", "\r", "\x1f", "\x7f"]
id_texts = st.one_of(
    ids,
    st.tuples(st.text(max_size=4), st.sampled_from(_CONTROLS), st.text(max_size=4)).map("".join),
    st.sampled_from(["00123", " 00123 ", "\t17850\r\n", "17850", "a\x00b", "\x00", "\x7f"]),
)


@settings(max_examples=400, deadline=None)
@given(id_texts)
def test_id_matches_definition(raw: str) -> None:
    """An id is the text as written, edge whitespace trimmed (leading zeros stay), NULL for the
    null tokens (case-insensitive), the control marker when a control character is inside."""
    got = _con.execute(f"SELECT {id_sql('$v')}", {"v": raw}).fetchone()[0]
    assert got == _id_definition(raw)


@pytest.mark.parametrize("fmt", ["unix_s", "unix_ms", "unix_us"])
@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.integers(min_value=0, max_value=2 * 10**12),
    )
)
def test_unix_integers_exact_or_rejected(fmt: str, n: int) -> None:
    """Integers take the BIGINT path: the exact instant, or beyond year ~255,000 a clamped or
    NULL value (a reject), never an overflow error that would fail the whole import."""
    scale = _UNIX_SCALE[fmt]
    expr = ts_expr(fmt, "trim($v)", "unused")
    micros = n * scale
    if abs(micros) <= _UNIX_LIMIT_US:  # the exact instant (BIGINT arithmetic, no rounding)
        check = f"SELECT {expr} = make_timestamp($m::BIGINT)"
    elif micros > 0:  # far future: NULL or clamped, a reject either way, never an error
        check = f"SELECT coalesce({expr} > TIMESTAMP '3000-01-01', true)"
    else:
        check = f"SELECT coalesce({expr} < TIMESTAMP '1000-01-01', true)"
    params = {"v": str(n), **({"m": micros} if "$m" in check else {})}
    assert _con.execute(check, params).fetchone()[0] is True


_VALUES = ["view", "View", " pv ", "fav", "FAV", "wishlist", "buy", "", "zoom", "addtocart"]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["fav", "wishlist", "pv", "zoom", "view"]),
        st.sampled_from(["view", "cart", "purchase", "impression", "buy", "drop"]),
        max_size=4,
    ),
    st.one_of(st.sampled_from(_VALUES), st.text(max_size=6)),
)
def test_event_type_expr_matches_definition(given_map: dict[str, str], raw: str) -> None:
    """An event value maps by --event-map first (case-insensitive, trimmed), then by the
    aliases; unknown is NULL. The exact-spelling fast path never changes the answer."""
    preset = get_preset("canonical")
    event_map = resolve_event_map(preset, given_map)
    sql, params = event_type_expr("$v", event_map)
    got = _con.execute(f"SELECT {sql}", {"v": raw, **params}).fetchone()[0]
    folded = _con.execute("SELECT lower(trim($v))", {"v": raw}).fetchone()[0]
    want = event_map.get(folded, EVENT_ALIASES.get(folded))
    assert got == want
