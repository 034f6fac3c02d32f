"""ltrec.ids: the one id rule, a test per rule, and its SQL form agreeing with its Python form."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltrec.errors import BadIdError, BadInputError
from ltrec.ids import MAX_ID_CHARS, clean_id, id_sql


@pytest.mark.parametrize(
    ("raw", "want"),
    [("00123", "00123"), ("SKU-7 Blue", "SKU-7 Blue"), ("é-ü", "é-ü"), (17850, "17850")],
)
def test_an_id_is_its_text_as_written(raw: str | int, want: str) -> None:
    """Never cast: leading zeros, case, inner spaces and accents stay; a number is its text."""
    assert clean_id(raw, "item_id") == want


@pytest.mark.parametrize(
    "pad", [" ", "\t", "\r\n", "\x0b", "\x0c", "\u00a0", "\u2009", "\u3000", " \t\u202f "]
)
def test_edge_whitespace_is_trimmed(pad: str) -> None:
    assert clean_id(f"{pad}A 1{pad}", "item_id") == "A 1"


@pytest.mark.parametrize("raw", ["", "   ", "null", "NULL", " None ", "nan", "NaN", None])
def test_the_null_tokens_are_a_missing_id(raw: str | None) -> None:
    with pytest.raises(BadIdError, match="^missing user_id$") as err:
        clean_id(raw, "user_id")
    assert err.value.field == "user_id"
    assert isinstance(err.value, BadInputError)  # the CLI's exit 2, the API's 422


@pytest.mark.parametrize("ctl", [chr(c) for c in (*range(0, 9), 0x0E, 0x1C, 0x1F, 0x7F)])
def test_a_control_character_inside_is_rejected(ctl: str) -> None:
    with pytest.raises(BadIdError, match="^control character in item_id$"):
        clean_id(f"A{ctl}1", "item_id")


def test_a_control_character_at_an_edge_that_is_not_whitespace_is_rejected() -> None:
    """\\x1c-\\x1f count as whitespace for Python's str.strip, not for the rule."""
    with pytest.raises(BadIdError, match="^control character in item_id$"):
        clean_id("\x1cA1", "item_id")


def test_the_length_bound_counts_the_trimmed_id() -> None:
    assert clean_id("u" * MAX_ID_CHARS + "  ", "user_id") == "u" * MAX_ID_CHARS
    with pytest.raises(BadIdError, match=f"^user_id is {MAX_ID_CHARS + 1} characters long; at"):
        clean_id("u" * (MAX_ID_CHARS + 1), "user_id")


_con = duckdb.connect()
_SPACES = [" ", "\t", "\n", "\x0b", "\xa0", "\u1680", "\u2000", "\u2028", "\u205f", "\u3000"]
_texts = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["", "null", " NaN ", "none", "00123", "\x00", "a\x7fb", "\x85x", "\x1c"]),
    st.tuples(st.sampled_from(_SPACES), st.text(max_size=6), st.sampled_from(_SPACES)).map(
        "".join
    ),
)


@settings(max_examples=400, deadline=None)
@given(_texts)
def test_the_sql_form_gives_the_same_id(raw: str) -> None:
    """What the importer stores (:func:`id_sql`) is what an API request is matched by."""
    stored = _con.execute(f"SELECT {id_sql('$v')}", {"v": raw}).fetchone()[0]
    try:
        want: str | None = clean_id(raw)
    except BadIdError as err:
        want = None if err.message.startswith("missing") else "\x00"
    assert stored == want
