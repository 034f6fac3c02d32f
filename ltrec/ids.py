"""User and item ids: the one rule, as the shop wrote them (DESIGN §2).

An id is text exactly as written, never cast (leading zeros stay). Whitespace at its edges is
trimmed: ASCII space, tab, line ends, form feeds and the Unicode space separators (NBSP,
U+3000, ...), as spreadsheets and exports pad ids. ``''``, ``null``, ``none`` and ``nan`` (any
case; how exports write "no id") mean a missing id. A control character left inside (C0 or
DEL, NUL included) makes the id a reject: it is never a real id, and it would break the CSV
and the page that show it. A request's id is at most :data:`MAX_ID_CHARS` characters.

The importer applies the rule in SQL to millions of rows at once (:func:`id_sql`); the API and
the live event log to the ids of one request (:func:`clean_id`, and :func:`id_sql` for event
batches). ``tests/test_ids.py`` checks that both forms give the same answer.
"""

from __future__ import annotations

import re

from ltrec.errors import BadIdError

#: The longest id a request may carry (a file's ids are bounded by its line size instead).
MAX_ID_CHARS = 256
#: Strings that mean "no id" in exports (pandas NaN, SQL NULL), compared lower-cased.
NULL_IDS = ("", "null", "none", "nan")
#: What :func:`id_sql` yields for an id holding a control character. A lone NUL cannot be a real
#: id (it is a control character itself), and comparing to it is cheaper than a second regex.
CONTROL_ID = "chr(0)"
CONTROL_ID_TEXT = "\x00"

#: Edge whitespace in RE2 (DuckDB): ``\s`` is ``[\t\n\f\r ]``; vertical tab and ``\p{Z}`` added.
_SPACE_SQL = r"[\s\x0b\p{Z}]"
#: Control characters (C0 and DEL, NUL included), RE2 and Python alike.
_CONTROL = r"[\x00-\x1f\x7f]"
#: The same edge whitespace in Python: ``\s`` there would also strip \x1c-\x1f (controls: a
#: reject) and \x85, so the Unicode separators (categories Zs, Zl, Zp) are listed.
_SPACE = "\t\n\x0b\x0c\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_EDGES = re.compile(f"^[{_SPACE}]+|[{_SPACE}]+$")
_CONTROL_RE = re.compile(_CONTROL)


def id_sql(expr: str) -> str:
    """SQL (DuckDB) for the id rule over the text ``expr``: the trimmed id; NULL for a missing
    one; :data:`CONTROL_ID` for one with a control character (the caller rejects it)."""
    nulls = ", ".join(f"'{v}'" for v in NULL_IDS)  # fixed constants of this module
    longest = max(len(v) for v in NULL_IDS)
    t = f"regexp_replace({expr}, '^{_SPACE_SQL}+|{_SPACE_SQL}+$', '', 'g')"
    # The common id (longer than the null tokens, printable ASCII without an edge space) is
    # taken as is: one cheap regex instead of trimming and lower-casing every value.
    return (
        f"CASE WHEN strlen({expr}) > {longest} AND NOT (prefix({expr}, ' ') OR "
        f"suffix({expr}, ' ')) AND regexp_full_match({expr}, '[ -~]+') THEN {expr} "
        f"WHEN lower({t}) IN ({nulls}) THEN NULL "
        f"WHEN regexp_matches({t}, '{_CONTROL}') THEN {CONTROL_ID} ELSE {t} END"
    )


def clean_id(value: str | int | None, field: str = "id") -> str:
    """One id by the rule: the trimmed text, or :class:`BadIdError` naming ``field`` when it is
    missing, holds a control character or is longer than :data:`MAX_ID_CHARS`.

    An int (a JSON number) is its decimal text; None is a missing id.
    """
    text = "" if value is None else _EDGES.sub("", str(value))
    if text.lower() in NULL_IDS:
        raise BadIdError(f"missing {field}", field)
    if _CONTROL_RE.search(text):
        raise BadIdError(f"control character in {field}", field)
    if len(text) > MAX_ID_CHARS:
        raise BadIdError(f"{field} is {len(text):,} characters long; at most {MAX_ID_CHARS}", field)
    return text
