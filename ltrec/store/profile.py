"""The dataset profile: what a dataset really holds, so pages never invent what it lacks.

A real shop's log may be purchase lines only (orders, a grocery log), views and purchases, or
the full impression -> view -> cart -> purchase funnel. :class:`DatasetProfile` says which: the
event types present with their counts, whether there are sessions, prices, categories, titles,
brands and user segment columns, how often purchases repeat, the time span and the size. It is
computed by aggregates in the engine (never a whole table in pandas: datasets reach 10M events),
stored as JSON in ``meta`` (key ``profile``) by :func:`ltrec.store.finalize.finalize` on every
write that changes data, and read back with :func:`read_profile`.

Derived, defined here once:

- ``exposure_event``: ``impression`` when the data has impressions, else ``view``, else None:
  purchase-only data does not measure exposure (how often an item was shown), and pages say so
  (:attr:`DatasetProfile.exposure_note`) and show purchase concentration (distinct buyers per
  item) instead.
- ``funnel_stages``: the present stages in funnel order; a conversion rate needs both of its
  events (:meth:`DatasetProfile.rate_available`).
- ``repeat_purchase_share``: share of purchased (user, item) pairs bought on more than one
  occasion (distinct timestamps: two lines of one order are one occasion); None without
  purchases. ``has_repeat_purchases`` when it is at least :data:`REPEAT_MIN_SHARE`.

The aggregates run as plain SQL on a DuckDB file and as the same aggregates in Ibis on an
external engine's tables (:mod:`ltrec.store.external`); a test checks both agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, computed_field

from ltrec.config import EVENT_TYPES
from ltrec.definitions import exposure_event
from ltrec.store.connect import write_meta
from ltrec.store.schema import quote_ident

#: Bump when a field is added or a definition changes: older stored profiles are recomputed.
PROFILE_VERSION = 1
META_KEY = "profile"
#: Below this share of repeated (user, item) purchase pairs, repeats are treated as noise.
REPEAT_MIN_SHARE = 0.01
#: Meta key of the dataset's repeat-purchase flag (see :func:`is_repeat_domain`).
REPEAT_DOMAIN_KEY = "repeat_domain"
#: Conversion rates by name: (trials event, successes event).
RATE_EVENTS: dict[str, tuple[str, str]] = {
    "view_cart": ("view", "cart"),
    "cart_purchase": ("cart", "purchase"),
    "view_purchase": ("view", "purchase"),
}
ExposureEvent = Literal["impression", "view"]


def is_repeat_domain(meta: Mapping[str, str] | None) -> bool:
    """Whether a dataset is a repeat-purchase domain (groceries): buying an item again is the
    common case, so evaluation keeps seen items as targets, models may recommend them and blend
    in the user's own purchase frequency (:class:`~ltrec.models.base.RepeatConfig`).

    The one definition that training, evaluation, the Studio, export, the API and the simulator
    read: ``meta[repeat_domain] == "true"``, written at import by the preset
    (``ImportPreset.repeat_domain``, the ``completejourney`` grocery). It is a declaration about
    the shop, not a measurement: :attr:`DatasetProfile.repeat_purchase_share` measures how often
    purchases repeat (``has_repeat_purchases`` from 1%, the demo shop 0.7%), and a fashion
    shop whose customers re-buy 2% of their items is still not a grocery.

    Args:
        meta: the dataset's ``meta`` table as a dict (:func:`ltrec.store.read_meta`).
    """
    return (meta or {}).get(REPEAT_DOMAIN_KEY, "").lower() == "true"


class DatasetProfile(BaseModel):
    """What one dataset holds (see the module docstring).

    Attributes:
        event_counts: events per type, only the types present (count > 0), in funnel order.
        has_sessions: some events carry a session id.
        has_prices: some events or items carry a price.
        has_categories, has_titles, has_brands: some items carry one.
        segment_columns: ``users`` columns (besides ``user_id``) with at least one value.
        repeat_purchase_share: share of purchased (user, item) pairs bought on more than one
            occasion; None without purchases.
        users, items: distinct users / catalogue items (their tables and the events together).
        first_ts, last_ts: time span of the events (None without events).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = PROFILE_VERSION
    event_counts: dict[str, int]
    has_sessions: bool
    has_prices: bool
    has_categories: bool
    has_titles: bool
    has_brands: bool
    segment_columns: list[str]
    repeat_purchase_share: float | None
    users: int
    items: int
    first_ts: datetime | None
    last_ts: datetime | None

    def has(self, event: str) -> bool:
        """Whether the data has any event of type ``event``."""
        return self.event_counts.get(event, 0) > 0

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorator over @property (pydantic's documented ignore)
    @property
    def events(self) -> int:
        return sum(self.event_counts.values())

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorator over @property (pydantic's documented ignore)
    @property
    def has_impressions(self) -> bool:
        return self.has("impression")

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorator over @property (pydantic's documented ignore)
    @property
    def has_views(self) -> bool:
        return self.has("view")

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorator over @property (pydantic's documented ignore)
    @property
    def has_carts(self) -> bool:
        return self.has("cart")

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorator over @property (pydantic's documented ignore)
    @property
    def has_purchases(self) -> bool:
        return self.has("purchase")

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorator over @property (pydantic's documented ignore)
    @property
    def has_repeat_purchases(self) -> bool:
        share = self.repeat_purchase_share
        return share is not None and share >= REPEAT_MIN_SHARE

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorator over @property (pydantic's documented ignore)
    @property
    def has_segments(self) -> bool:
        return bool(self.segment_columns)

    def optional_columns(self) -> dict[str, bool]:
        """Which optional columns the data has, by plain name (the one list pages and CLI show)."""
        return {
            "sessions": self.has_sessions,
            "prices": self.has_prices,
            "categories": self.has_categories,
            "titles": self.has_titles,
            "brands": self.has_brands,
        }

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorator over @property (pydantic's documented ignore)
    @property
    def exposure_event(self) -> ExposureEvent | None:
        """``impression`` when present, else ``view``, else None (exposure not measured):
        :func:`ltrec.definitions.exposure_event`."""
        return exposure_event(t for t in EVENT_TYPES if self.has(t))  # type: ignore[return-value]  # one of EVENT_TYPES' exposure events or None

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorator over @property (pydantic's documented ignore)
    @property
    def funnel_stages(self) -> list[str]:
        """The event types present, in funnel order (impression, view, cart, purchase)."""
        return [t for t in EVENT_TYPES if self.has(t)]

    @computed_field  # type: ignore[prop-decorator]  # mypy cannot type a decorator over @property (pydantic's documented ignore)
    @property
    def rates(self) -> list[str]:
        """Conversion rates the data can measure (both of their events present)."""
        return [r for r in RATE_EVENTS if self.rate_available(r)]

    def rate_available(self, rate: str) -> bool:
        """A rate (``view_cart``, ``cart_purchase``, ``view_purchase``) needs both events."""
        trials, successes = RATE_EVENTS[rate]
        return self.has(trials) and self.has(successes)

    @property
    def has_conversion(self) -> bool:
        """Exposure and a view -> purchase rate: what hidden gems need."""
        return self.exposure_event is not None and self.rate_available("view_purchase")

    @property
    def exposure_note(self) -> str | None:
        """The one plain sentence a page shows when exposure is not measured (else None)."""
        if self.exposure_event is not None:
            return None
        return (
            "This data has no impressions or page views, so exposure (how often each item "
            "was shown) is not measured here; purchase concentration (distinct buyers per "
            "item) is shown instead."
        )

    def to_json(self) -> str:
        return self.model_dump_json()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (timestamps as ISO strings), the ``profile`` of ``ltrec stats``."""
        return json.loads(self.model_dump_json())


#: Items columns the profile looks at (``price`` counts any value, the others non-blank text).
ITEM_FLAGS = ("category", "title", "brand", "price")


def compute_profile(
    source: duckdb.DuckDBPyConnection | Any, users: int | None = None
) -> DatasetProfile:
    """Profile the canonical tables of a DuckDB connection or an Ibis backend by aggregates.

    Five small queries whatever the size: events (counts by type, sessions, prices, span),
    repeat purchases, items columns, users columns, distinct users and items. A DuckDB
    connection runs them as plain SQL (no Ibis import or compile on every import: about 2 s
    per process); any other engine (an external dataset, Spark) runs the same aggregates as Ibis
    expressions. A test checks that both give the same profile.

    Args:
        users: the number of distinct users when the caller already counted them (finalize:
            the rows of ``user_derived``, the same set), saving the largest of the queries.
    """
    if isinstance(source, duckdb.DuckDBPyConnection):
        return _build(_sql_raw(source, users))
    raw_con = getattr(source, "con", None)
    if isinstance(raw_con, duckdb.DuckDBPyConnection):  # Ibis over DuckDB: the fast path
        return _build(_sql_raw(raw_con, users))
    return _build(_ibis_raw(source))


def _build(raw: dict[str, Any]) -> DatasetProfile:
    counts = {t: int(raw[f"n_{t}"] or 0) for t in EVENT_TYPES}
    return DatasetProfile(
        event_counts={t: n for t, n in counts.items() if n > 0},
        has_sessions=int(raw["sessions"] or 0) > 0,
        has_prices=int(raw["prices"] or 0) > 0 or raw["item_price"],
        has_categories=raw["item_category"],
        has_titles=raw["item_title"],
        has_brands=raw["item_brand"],
        segment_columns=raw["segments"],
        repeat_purchase_share=raw["repeat"],
        users=int(raw["users"]),
        items=int(raw["items"]),
        first_ts=_ts(raw["first"]),
        last_ts=_ts(raw["last"]),
    )


def _nonblank_sql(col: str) -> str:
    q = quote_ident(col)
    return f"count(CASE WHEN {q} IS NOT NULL AND length(CAST({q} AS VARCHAR)) > 0 THEN 1 END)"


def _sql_raw(con: duckdb.DuckDBPyConnection, users: int | None = None) -> dict[str, Any]:
    def one(sql: str, params: list[Any] | None = None) -> dict[str, Any]:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        (row,) = cur.fetchall()  # fetchall: DuckDB 2 blocks a connection with a pending result
        return dict(zip(names, row, strict=True))

    def columns(table: str) -> list[str]:
        cur = con.execute(f"SELECT * FROM {table} LIMIT 0")  # noqa: S608 - fixed names
        names = [d[0] for d in cur.description]
        cur.fetchall()
        return names

    per_type = ", ".join(
        f"count(CASE WHEN event_type = '{t}' THEN 1 END) AS n_{t}" for t in EVENT_TYPES
    )
    raw = one(
        f"SELECT {per_type}, {_nonblank_sql('session_id')} AS sessions, count(price) AS prices, "  # noqa: S608 - fixed names
        "min(ts) AS first, max(ts) AS last FROM events"
    )
    raw["repeat"] = None
    if raw["n_purchase"]:
        r = one(
            "SELECT count(*) AS pairs, count(CASE WHEN n > 1 THEN 1 END) AS repeats FROM ("
            "SELECT user_id, item_id, count(DISTINCT ts) AS n FROM events "
            "WHERE event_type = 'purchase' GROUP BY user_id, item_id)"
        )
        raw["repeat"] = r["repeats"] / r["pairs"] if r["pairs"] else None
    present = [c for c in ITEM_FLAGS if c in columns("items")]
    flags = (
        one(
            "SELECT "  # noqa: S608 - column names quoted
            + ", ".join(
                f"count({quote_ident(c)}) AS {c}" if c == "price" else f"{_nonblank_sql(c)} AS {c}"
                for c in present
            )
            + " FROM items"
        )
        if present
        else {}
    )
    for c in ITEM_FLAGS:
        raw[f"item_{c}"] = bool(flags.get(c))
    seg_cols = [c for c in columns("users") if c != "user_id"]
    raw["segments"] = []
    if seg_cols:
        have = one(
            "SELECT "  # noqa: S608 - column names quoted
            + ", ".join(f"{_nonblank_sql(c)} AS c{j}" for j, c in enumerate(seg_cols))
            + " FROM users"
        )
        raw["segments"] = [c for j, c in enumerate(seg_cols) if have[f"c{j}"]]
    raw["users"] = (
        users
        if users is not None
        else one(
            "SELECT count(*) AS n FROM (SELECT CAST(user_id AS VARCHAR) FROM users "
            "UNION SELECT user_id FROM events)"
        )["n"]
    )
    raw["items"] = one(
        "SELECT count(*) AS n FROM (SELECT CAST(item_id AS VARCHAR) FROM items "
        "UNION SELECT item_id FROM events)"
    )["n"]
    return raw


def _nonblank(col: Any) -> Any:
    return col.notnull() & (col.cast("string").length() > 0)


def _ibis_raw(backend: Any) -> dict[str, Any]:
    ev = backend.table("events")
    raw = (
        ev.aggregate(
            **{f"n_{t}": ev.count(where=ev.event_type == t) for t in EVENT_TYPES},
            sessions=ev.count(where=_nonblank(ev.session_id)),
            prices=ev.count(where=ev.price.notnull()),
            first=ev.ts.min(),
            last=ev.ts.max(),
        )
        .to_pandas()
        .iloc[0]
        .to_dict()
    )
    raw["repeat"] = None
    if int(raw["n_purchase"] or 0):
        pur = ev.filter(ev.event_type == "purchase")
        pairs = pur.group_by(["user_id", "item_id"]).agg(n=pur.ts.nunique())
        r = pairs.aggregate(pairs=pairs.count(), repeats=pairs.count(where=pairs.n > 1))
        r = r.to_pandas().iloc[0]
        raw["repeat"] = float(r["repeats"]) / float(r["pairs"]) if int(r["pairs"]) else None

    it = backend.table("items")
    present = [c for c in ITEM_FLAGS if c in it.columns]
    flags = (
        it.aggregate(
            **{
                c: it[c].notnull().any() if c == "price" else _nonblank(it[c]).any()
                for c in present
            }
        )
        .to_pandas()
        .iloc[0]
        .to_dict()
        if present
        else {}
    )
    for c in ITEM_FLAGS:
        raw[f"item_{c}"] = bool(flags.get(c))

    us = backend.table("users")
    seg_cols = [c for c in us.columns if c != "user_id"]
    raw["segments"] = []
    if seg_cols:
        u_row = us.aggregate(
            **{f"c{j}": _nonblank(us[c]).any() for j, c in enumerate(seg_cols)}
        ).to_pandas()
        raw["segments"] = [c for j, c in enumerate(seg_cols) if bool(u_row[f"c{j}"].iloc[0])]

    users = us.select(k=us.user_id.cast("string")).union(
        ev.select(k=ev.user_id.cast("string")), distinct=True
    )
    items = it.select(k=it.item_id.cast("string")).union(
        ev.select(k=ev.item_id.cast("string")), distinct=True
    )
    raw["users"] = int(users.count().to_pandas())
    raw["items"] = int(items.count().to_pandas())
    return raw


def _ts(value: Any) -> datetime | None:
    import pandas as pd  # lazy: keeps pandas off the CLI start-up

    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()


def write_profile(con: duckdb.DuckDBPyConnection, users: int | None = None) -> DatasetProfile:
    """Compute the profile of a connection being written and store it in ``meta``
    (``users``: see :func:`compute_profile`)."""
    profile = compute_profile(con, users)
    write_meta(con, {META_KEY: profile.to_json()})
    return profile


def _parse(text: object) -> DatasetProfile | None:
    try:
        profile = DatasetProfile.model_validate_json(str(text))
    except ValueError:
        return None
    return profile if profile.version == PROFILE_VERSION else None


def _stored(source: Any) -> DatasetProfile | None:
    """The profile stored in ``meta`` if it is there and of this version, else None."""
    if isinstance(source, duckdb.DuckDBPyConnection):
        rows = source.execute("SELECT value FROM meta WHERE key = ?", [META_KEY]).fetchall()
        return _parse(rows[0][0]) if rows else None
    try:
        meta = source.table("meta")
        rows = meta.filter(meta.key == META_KEY).select("value").to_pandas()
    except Exception:  # noqa: BLE001 - an engine without a meta table (external): compute
        return None
    return None if rows.empty else _parse(rows["value"].iloc[0])


def _read_only(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute(
        "SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return bool(rows[0][0]) if rows else True


def read_profile(source: duckdb.DuckDBPyConnection | Any) -> DatasetProfile:
    """The profile of a store: a DuckDB connection (or cursor), or an Ibis backend (or
    anything with ``table(name)``, such as an external dataset's source).

    Stored profiles are returned as they are. A file written before profiles existed (or with
    an older profile version) is profiled on the fly; on a writable DuckDB connection the result
    is also stored in ``meta``, on a read-only one (the app's) nothing is written.
    """
    raw = getattr(source, "con", None)
    con = source if isinstance(source, duckdb.DuckDBPyConnection) else raw
    if isinstance(con, duckdb.DuckDBPyConnection):
        profile = _stored(con)
        if profile is None:
            profile = compute_profile(con)
            if not _read_only(con):
                write_meta(con, {META_KEY: profile.to_json()})
        return profile
    return _stored(source) or compute_profile(source)
