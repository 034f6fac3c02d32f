"""Map a file's columns to ltrec's fields: presets, ``--map`` overrides, event values.

A file's header is matched against the preset's layout (:mod:`.presets`); ``--map`` pairs are
routed to the file they name and override the preset's candidates. The result, :class:`Bound`,
says which column (by position: ``c0..cN``) holds each key and how each canonical field is
derived, as SQL over those columns. Event values are mapped to ltrec's event types through
``EVENT_ALIASES``.
"""

# SQL here is assembled from this module's own fragments: file columns are referred to by
# position (c0..cN), never by name.
# ruff: noqa: S608

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ltrec.config import EVENT_TYPES
from ltrec.errors import BadInputError, ColumnNotFoundError
from ltrec.store.importing.presets import Layout, Preset, match_columns, norm_header
from ltrec.store.importing.read import SourceFile
from ltrec.store.schema import EVENT_ALIASES, EVENT_COLUMNS, ITEM_COLUMNS


def sql_str(s: str) -> str:
    """Double single quotes in one of *our* constant strings (reasons written in this package)."""
    return s.replace("'", "''")


#: Event-type aliases as a SQL MAP literal (our constants; a lookup per row is cheaper than a
#: join against an alias table). ``map[key]`` is NULL for an unknown key.
_ALIAS_MAP = (
    "MAP {" + ", ".join(f"'{sql_str(k.lower())}': '{v}'" for k, v in EVENT_ALIASES.items()) + "}"
)


#: The target of ``--event-map VALUE=drop``: those rows are left out, neither imported nor
#: rejected (counted in the report's ``dropped_event_types``).
DROP = "drop"


def resolve_event_map(preset: Preset, given: dict[str, str] | None) -> dict[str, str]:
    """Event value -> event type (or :data:`DROP`): the preset's ``event_defaults``, overridden
    by ``given`` (``--event-map``). Values match case-insensitively, trimmed; a target may be
    an event type or one of its aliases (``buy``). Raises :class:`BadInputError` for a target
    that is neither, or an empty value."""
    out: dict[str, str] = {}
    for pairs in (preset.event_defaults, given or {}):
        for value, target in pairs.items():
            v, t = value.strip().lower(), target.strip().lower()
            if not v:
                raise BadInputError(
                    f"--event-map {value}={target}: the event value is empty",
                    hint="write VALUE=TYPE, e.g. --event-map fav=cart",
                )
            t = t if t == DROP else EVENT_ALIASES.get(t, "")
            if not t:
                raise BadInputError(
                    f"--event-map {value}={target}: {target!r} is not an event type",
                    hint=f"map it to one of: {', '.join(EVENT_TYPES)}, or {DROP} to leave those "
                    "rows out",
                )
            out[v] = t
    return out


def event_type_expr(
    raw: str, event_map: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """SQL mapping the VARCHAR event value ``raw`` to an event type (:data:`DROP` for a value
    mapped to drop, NULL when unknown), and its bound parameters (the mapped values)."""
    event_map = event_map or {}
    # exact spellings first: lower(trim()) on every row cost a tenth of the import
    exact = " ".join(
        f"WHEN '{sql_str(k)}' THEN '{v}'"
        for k, v in EVENT_ALIASES.items()
        if k.islower() and k not in event_map
    )
    folded = f"lower(trim({raw}))"
    params = {f"event_value_{i}": v for i, v in enumerate(event_map)}
    # targets are our constants (checked by resolve_event_map); the values are parameters
    mapped = " ".join(f"WHEN ${p} THEN '{event_map[v]}'" for p, v in params.items())
    other = (
        f"CASE {folded} {mapped} ELSE {_ALIAS_MAP}[{folded}] END"
        if mapped
        else (f"{_ALIAS_MAP}[{folded}]")
    )
    return f"CASE {raw} {exact} ELSE {other} END", params


def render(template: str, cols: dict[str, int], prefix: str = "s.") -> str:
    """Replace ``{key}`` with the key's VARCHAR column (``s.c3``), or NULL when unmapped."""

    def sub(m: re.Match[str]) -> str:
        idx = cols.get(m.group(1))
        return f"{prefix}c{idx}" if idx is not None else "CAST(NULL AS VARCHAR)"

    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, template)


@dataclass
class Bound:
    """A file's keys resolved to column positions."""

    src: SourceFile
    cols: dict[str, int]  # key -> column index
    exprs: dict[str, str]  # canonical field -> template over keys
    mapping: dict[str, str]  # key -> column name (for the report)

    def expr(self, fieldname: str, prefix: str = "s.") -> str | None:
        if fieldname in self.exprs:
            return render(self.exprs[fieldname], self.cols, prefix)
        if fieldname in self.cols:
            return f"{prefix}c{self.cols[fieldname]}"
        return None


def find_column(src: SourceFile, column: str) -> int | None:
    for i, c in enumerate(src.columns):
        if c == column:
            return i
    for i, c in enumerate(src.columns):
        if norm_header(c) == norm_header(column) and norm_header(column):
            return i
    return None


def bind(src: SourceFile, layout: Layout, overrides: dict[str, str], strict: set[str]) -> Bound:
    """Resolve ``layout`` keys (plus ``overrides``: key -> column) against ``src``'s header.

    Keys in ``strict`` must be found when overridden; others fall back to the preset's
    candidates. A mapped canonical field replaces the preset's derivation of that field.
    """
    found = match_columns(layout, src.columns)
    cols = {k: src.columns.index(c) for k, c in found.items()}
    exprs = dict(layout.exprs)
    for key, column in overrides.items():
        idx = find_column(src, column)
        if idx is None:
            if key in strict:
                raise ColumnNotFoundError(column, key, src.columns)
            continue
        cols[key] = idx
        exprs.pop(key, None)
    for key in layout.required:
        if key not in cols:
            expected = layout.keys.get(key, (key,))[0]
            err = ColumnNotFoundError(expected, key, src.columns)
            err.args = (f"{src.label}: {err.args[0]}",)
            raise err
    return Bound(src, cols, exprs, {k: src.columns[i] for k, i in cols.items()})


def map_fields(preset: Preset) -> dict[str, set[str]]:
    """The fields ``--map`` may target in each file under ``preset``: the preset's keys for that
    file and the canonical columns of its table."""
    return {
        "events": set(preset.events.keys) | set(EVENT_COLUMNS),
        "items": set(preset.items.keys) | set(ITEM_COLUMNS),
        "users": set(preset.users.keys) | {"user_id"},
    }


def split_mapping(
    mapping: dict[str, str], preset: Preset, roles: Iterable[str] = ("events", "items", "users")
) -> dict[str, tuple[dict[str, str], set[str]]]:
    """Route ``--map`` pairs to the files given (``roles``): ``items.title=name`` targets one
    file; a plain key goes to the events file when the events layout (or the events table) has
    it, and to the items / users file too when that file has the field. Returns role ->
    (overrides, strict keys).

    A pair that no given file can take is an error listing the fields each given file has,
    never a silent no-op: ``category=`` with only an events file, ``items.title=`` without an
    items file, a misspelt field.
    """
    given = [r for r in ("events", "items", "users") if r in set(roles)]
    out: dict[str, tuple[dict[str, str], set[str]]] = {r: ({}, set()) for r in given}
    valid = map_fields(preset)

    def fields_hint() -> str:
        per_file = "; ".join(f"{r} file: {', '.join(sorted(valid[r]))}" for r in given)
        return f"fields ({preset.name} preset) - {per_file}; items.FIELD or users.FIELD targets one"

    for key, column in mapping.items():
        role, dot, sub = key.partition(".")
        if dot and role in valid:
            if role not in out:
                raise BadInputError(
                    f"--map {key}=...: no {role} file is given",
                    hint=f"pass --{role} FILE, or map a field of the files given; {fields_hint()}",
                )
            if sub not in valid[role]:
                raise BadInputError(
                    f"--map {key}=...: the {role} file has no field {sub!r}", hint=fields_hint()
                )
            out[role][0][sub] = column
            out[role][1].add(sub)
            continue
        targets = [r for r in given if key in valid[r]]
        if not targets:
            elsewhere = [r for r in valid if key in valid[r] and r not in out]
            if elsewhere:
                raise BadInputError(
                    f"--map {key}=...: {key!r} is not a field of the "
                    f"{' or '.join(given)} file{'s' if len(given) > 1 else ''} "
                    f"(it is one of the {elsewhere[0]} file's)",
                    hint=f"pass --{elsewhere[0]} FILE to map it there; {fields_hint()}",
                )
            raise BadInputError(f"--map {key}=...: unknown field {key!r}", hint=fields_hint())
        for r in targets:
            out[r][0][key] = column
        # strict (the column must exist) in the first file that takes it; the others only
        # when they have the column
        out[targets[0]][1].add(key)
    return out


def keys_bound(template: str, b: Bound) -> bool:
    keys = re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", template)
    return all(k in b.cols for k in keys)
