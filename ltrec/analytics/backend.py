"""The store seen through Ibis: one set of table expressions for DuckDB, Spark or any backend.

Every analytics function takes an :class:`Store` (an Ibis backend that holds the canonical
tables ``events``, ``items``, ``users`` and the derived ``user_derived``) and a :class:`Scope`
(date range and category filter). Nothing below this module knows which engine runs the
queries: DuckDB by default (:func:`open_store`), Spark via ``Store(ibis.pyspark.connect(spark))``,
or any other Ibis backend that holds tables with the canonical names and columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ltrec.config import EVENT_TYPES
from ltrec.errors import BadInputError
from ltrec.store import connect, cursor
from ltrec.store.profile import DatasetProfile, read_profile

#: Event types that count as an interaction with an item (an impression is not one).
INTERACTIONS: tuple[str, ...] = ("view", "cart", "purchase")
#: Separator of category paths (``Home > Kitchen > Knives``).
CATEGORY_SEP = " > "
#: What a missing category or segment value is shown as.
UNKNOWN = "(unknown)"


class Scope(BaseModel):
    """Which slice of the data a query looks at.

    Attributes:
        start: first day included (events with ``ts >= start``), or None for all.
        end: last day included (events with ``ts < end + 1 day``), or None for all.
        category: keep only items whose top-level category equals this, or None for all.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: date | None = None
    end: date | None = None
    category: str | None = Field(None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _ordered(self) -> Scope:
        if self.start and self.end and self.start > self.end:
            raise ValueError("the start date must not be after the end date")
        return self

    def key(self) -> tuple[str, str, str]:
        """A hashable, stable cache key."""
        return (str(self.start or ""), str(self.end or ""), self.category or "")


@dataclass
class Store:
    """An Ibis backend holding the canonical tables of one dataset."""

    backend: ibis.BaseBackend
    _names: set[str] | None = field(default=None, repr=False)
    _profile: DatasetProfile | None = field(default=None, repr=False)

    def profile(self) -> DatasetProfile:
        """The dataset profile (:mod:`ltrec.store.profile`): which events, columns and segments
        the data really has, and so what counts as exposure. Read once per Store."""
        if self._profile is None:
            self._profile = read_profile(self.backend)
        return self._profile

    def has(self, table: str) -> bool:
        """Whether the backend holds ``table``.

        Probes the table rather than calling ``list_tables()``: with duckdb 2.0, ibis 12's
        ``list_tables`` calls a removed DuckDB method (``fetch_arrow_table``).
        """
        if self._names is None:
            self._names = set()
        if table not in self._names:
            try:
                self.backend.table(table)
            except Exception:  # noqa: BLE001 - each engine raises its own "not found"
                return False
            self._names.add(table)
        return True

    def table(self, name: str) -> ir.Table:
        return self.backend.table(name)

    # ------------------------------------------------------------------ scoped views

    def items(self, scope: Scope = Scope()) -> ir.Table:
        """The catalogue: every item of ``items`` plus any item that only occurs in events.

        Columns: ``item_id``, ``category`` (top level, ``(unknown)`` when missing), ``title``.
        """
        it = self.table("items")
        ev_ids = self.table("events").select("item_id").distinct()
        orphans = ev_ids.anti_join(it, "item_id").select(
            item_id=ev_ids.item_id.cast("string"),
            category=ibis.null("string"),
            title=ibis.null("string"),
        )
        cat = it.select(
            item_id=it.item_id.cast("string"), category=it.category, title=it.title
        ).union(orphans)
        # Not .strip(): ibis 12 compiles it on Spark to TRIM(' \t\n\r\v\f' FROM x), which Spark
        # reads as also trimming the letters v and f ("Golf" -> "Gol").
        top = cat.category.split(CATEGORY_SEP)[0].re_replace(r"^\s+|\s+$", "")
        cat = cat.mutate(category=ibis.coalesce(top.nullif(""), ibis.literal(UNKNOWN)))
        if scope.category is not None:
            cat = cat.filter(cat.category == scope.category)
        return cat

    def events(self, scope: Scope = Scope()) -> ir.Table:
        """Events in the scope's date range, on items in its category."""
        ev = self.table("events")
        if scope.start is not None:
            ev = ev.filter(ev.ts >= datetime.combine(scope.start, time()))
        if scope.end is not None:
            nxt = datetime.combine(scope.end, time()) + _DAY
            ev = ev.filter(ev.ts < nxt)
        if scope.category is not None:
            ev = ev.semi_join(self.items(scope), "item_id")
        return ev

    def users(self) -> ir.Table:
        """Every user: the ``users`` table plus any user that only occurs in events."""
        us = self.table("users")
        ev_ids = self.table("events").select("user_id").distinct()
        return us.select(user_id=us.user_id.cast("string")).union(
            ev_ids.select(user_id=ev_ids.user_id.cast("string")), distinct=True
        )


_DAY = datetime(2000, 1, 2) - datetime(2000, 1, 1)


def check_event(event: str, allowed: tuple[str, ...] = EVENT_TYPES) -> str:
    if event not in allowed:
        raise BadInputError(
            f"unknown event type {event!r}", hint=f"use one of: {', '.join(allowed)}"
        )
    return event


def open_store(name: str, data_dir: Path | str | None = None) -> Store:
    """A :class:`Store` over a dataset: its DuckDB file, opened read-only, or, for a dataset
    defined in ``<data_dir>/<name>.toml`` (:mod:`ltrec.store.external`), its engine."""
    # lazy: store.external imports pyarrow (~0.9 s), kept off `import ltrec.analytics`
    from ltrec.store import external

    if external.is_external(name, data_dir):
        return Store(external.open_external(name, data_dir))
    con = connect(name, data_dir)
    return Store(ibis.duckdb.from_connection(cursor(con)))


def from_cursor(cur: object) -> Store:
    """A :class:`Store` over an open DuckDB cursor (see ``ltrec.store.cursor``)."""
    return Store(ibis.duckdb.from_connection(cur))
