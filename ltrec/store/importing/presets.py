"""Named column layouts for common input files, and guessing one from a header.

A preset says, for each file it reads (events, items, users), which *keys* it needs and which
header names may hold each key (matched case-insensitively, ignoring spaces and punctuation), and
how the canonical fields are derived from those keys. Keys that share a name with a canonical
field (``user_id``, ``title`` ...) are overridden by ``--map user_id=<column>``; other keys
(``rating``, ``sales_value`` ...) are overridden the same way (``--map rating=stars``).

Derivations are small SQL templates written here, in code: ``{key}`` stands for the VARCHAR
value of that key's column. User column names never enter SQL (the importer refers to file
columns by position); user values are never formatted into SQL.

Choices worth knowing (documented for the README):

* ``events``: ``transactionid`` becomes ``session_id``, so a purchase's order id groups its lines
  the way a basket does.
* ``orders``: every line is a ``purchase``; ``InvoiceNo`` becomes ``session_id``; lines whose
  invoice starts with ``C`` are cancellations and lines with a quantity <= 0 are not purchases:
  both are rejects with that reason; a line without ``CustomerID`` is a guest order, rejected as
  ``missing user_id (guest order)``. ``Description`` becomes the item title (the first one seen
  per stock code) and ``Country`` a user segment (the latest one per customer).
* ``ratings``: every rating is a ``view``; a rating >= ``rating_purchase_min`` (4 on a 1-5
  scale) is also a ``purchase`` at the same time, so "liked" behaves like "bought" in the funnel
  and in models that weight purchases. The rating value itself is not stored.
* ``completejourney``: every transaction row is a ``purchase``; ``basket_id`` -> session,
  ``sales_value / quantity`` -> unit price, ``store_id`` -> ``source`` as ``store:<id>``. Items:
  title from product type, brand and package size; category the path ``department >
  product_category > product_type``; the other product columns stay as attributes. Users: every
  demographics column is a segment.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from ltrec.errors import BadInputError
from ltrec.store.importing.codes import RejectCode


@functools.lru_cache(maxsize=1 << 16)  # a 5,000-column header is matched against every preset
def norm_header(name: str) -> str:
    """Header names compare by letters and digits only: ``Customer ID`` == ``customerid``."""
    return re.sub(r"[^0-9a-z]+", "", name.lower())


class Layout(BaseModel):
    """The keys one file of a preset reads, and the header names that may hold each.

    Attributes:
        keys: key -> candidate header names, first match wins.
        required: keys that must be found (or mapped) or the import stops.
        exprs: canonical field -> SQL template over ``{key}`` placeholders; a canonical field
            without an entry is the key of the same name (if the layout has it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    required: tuple[str, ...] = ()
    exprs: dict[str, str] = Field(default_factory=dict)


class Preset(BaseModel):
    """A named input layout (see the module docstring for each preset's choices).

    Attributes:
        event_type: a constant event type for every row (order lines, purchase logs), or None to
            read the ``event_type`` key through ``EVENT_ALIASES``.
        missing_user_reason: the reject reason of a row without a user id.
        missing_user_code: its reject code.
        rejects: (code, reason, SQL condition over keys) checked after the ids, in order.
        also_purchase: SQL condition over keys; a valid row matching it also yields a purchase
            event (ratings).
        event_items / event_users: item / user fields taken from the events file itself
            (field -> template), e.g. the order line's description as the item title.
        repeat_domain: buying the same item again is normal (groceries): evaluation keeps seen
            items as targets and models may recommend them (``meta.repeat_domain``).
        event_defaults: event value -> event type (or ``drop``) for values no alias maps, e.g.
            a behaviour log's ``fav``; ``--event-map`` overrides each (documented in the README).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    events: Layout
    items: Layout = Layout()
    users: Layout = Layout()
    event_type: str | None = None
    missing_user_reason: str = "missing user_id"
    missing_user_code: RejectCode = RejectCode.MISSING_USER_ID
    rejects: tuple[tuple[RejectCode, str, str], ...] = ()
    also_purchase: str | None = None
    event_items: dict[str, str] = Field(default_factory=dict)
    event_users: dict[str, str] = Field(default_factory=dict)
    repeat_domain: bool = False
    event_defaults: dict[str, str] = Field(default_factory=dict)


#: Default minimum rating that also counts as a purchase (ratings preset, 1-5 scale).
RATING_PURCHASE_MIN = 4.0

_ITEMS_CANONICAL = Layout(
    keys={
        "item_id": ("item_id", "itemid", "product_id", "productid", "sku", "item", "id"),
        "title": ("title", "name", "product_name", "item_name"),
        "description": ("description", "desc"),
        "category": ("category", "category_path", "categoryid", "category_id"),
        "brand": ("brand",),
        "price": ("price", "unit_price", "unitprice"),
        "in_stock": ("in_stock", "instock", "available", "availability"),
        "created_at": ("created_at", "created", "launch_date", "added_at"),
    },
    required=("item_id",),
)
_USERS_CANONICAL = Layout(
    keys={"user_id": ("user_id", "userid", "visitorid", "customer_id", "customerid", "user")},
    required=("user_id",),
)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="canonical",
            description="ltrec's own column names: user_id,item_id,event_type,ts,...",
            events=Layout(
                keys={
                    "user_id": ("user_id",),
                    "item_id": ("item_id",),
                    "event_type": ("event_type",),
                    "ts": ("ts",),
                    "session_id": ("session_id",),
                    "quantity": ("quantity",),
                    "price": ("price",),
                    "source": ("source",),
                },
                required=("user_id", "item_id", "event_type", "ts"),
            ),
            items=_ITEMS_CANONICAL,
            users=_USERS_CANONICAL,
        ),
        Preset(
            name="events",
            description="event logs: timestamp,visitorid,event,itemid,transactionid",
            events=Layout(
                keys={
                    "user_id": (
                        "visitorid",
                        "visitor_id",
                        "user_id",
                        "userid",
                        "user",
                        "customer_id",
                        "customerid",
                        "client_id",
                    ),
                    "item_id": (
                        "itemid",
                        "item_id",
                        "product_id",
                        "productid",
                        "sku",
                        "item",
                        "product",
                    ),
                    "event_type": (
                        "event",
                        "event_type",
                        "eventtype",
                        "type",
                        "action",
                        "event_name",
                    ),
                    "ts": (
                        "timestamp",
                        "ts",
                        "time",
                        "event_time",
                        "datetime",
                        "date",
                        "event_timestamp",
                        "created_at",
                    ),
                    "session_id": (
                        "transactionid",
                        "transaction_id",
                        "session_id",
                        "sessionid",
                        "session",
                        "order_id",
                    ),
                    "quantity": ("quantity", "qty"),
                    "price": ("price", "unit_price", "unitprice"),
                    "source": ("source", "channel"),
                },
                required=("user_id", "item_id", "event_type", "ts"),
            ),
            items=_ITEMS_CANONICAL,
            users=_USERS_CANONICAL,
        ),
        Preset(
            name="orders",
            description=(
                "order lines: InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,"
                "CustomerID,Country (each line a purchase)"
            ),
            events=Layout(
                keys={
                    "session_id": ("InvoiceNo", "Invoice", "invoice_no", "order_id", "OrderID"),
                    "item_id": ("StockCode", "stock_code", "sku", "product_id"),
                    "title": ("Description", "product_name"),
                    "quantity": ("Quantity", "qty"),
                    "ts": ("InvoiceDate", "invoice_date", "order_date", "date"),
                    "price": ("UnitPrice", "Price", "unit_price"),
                    "user_id": ("CustomerID", "Customer ID", "customer_id", "customer"),
                    "country": ("Country",),
                },
                required=("session_id", "item_id", "quantity", "ts", "user_id"),
            ),
            items=_ITEMS_CANONICAL,
            users=_USERS_CANONICAL,
            event_type="purchase",
            missing_user_reason="missing user_id (guest order)",
            missing_user_code=RejectCode.GUEST_ORDER,
            rejects=(
                (RejectCode.CANCELLATION, "cancellation", "upper(ltrim({session_id})) LIKE 'C%'"),
            ),
            event_items={"title": "{title}"},
            event_users={"country": "{country}"},
        ),
        Preset(
            name="ratings",
            description=(
                "rating logs: user,item,rating,timestamp (a view; >= 4 of 5 also a purchase)"
            ),
            events=Layout(
                keys={
                    "user_id": ("user", "user_id", "userid", "reviewer_id", "reviewerid"),
                    "item_id": (
                        "item",
                        "item_id",
                        "itemid",
                        "movieid",
                        "movie_id",
                        "product_id",
                        "asin",
                        "isbn",
                    ),
                    "rating": ("rating", "score", "stars", "overall"),
                    "ts": ("timestamp", "ts", "time", "date", "unixreviewtime"),
                },
                required=("user_id", "item_id", "rating", "ts"),
            ),
            items=_ITEMS_CANONICAL,
            users=_USERS_CANONICAL,
            event_type="view",
            rejects=(
                (RejectCode.MISSING_RATING, "missing rating", "nullif(trim({rating}), '') IS NULL"),
                (
                    RejectCode.UNPARSEABLE_RATING,
                    "unparseable rating",
                    "NOT coalesce(isfinite(TRY_CAST(trim({rating}) AS DOUBLE)), false)",
                ),
            ),
            also_purchase="TRY_CAST(trim({rating}) AS DOUBLE) >= $rating_purchase_min",
        ),
        Preset(
            name="behaviour",
            description=(
                "behaviour logs: user_id,item_id,category_id,behavior_type,timestamp (pv, cart, "
                "fav, buy; unix seconds), with or without a header"
            ),
            events=Layout(
                keys={
                    "user_id": ("user_id", "userid", "user"),
                    "item_id": ("item_id", "itemid", "item"),
                    "category": ("category_id", "categoryid", "category"),
                    "event_type": ("behavior_type", "behaviour_type", "behavior", "behaviour"),
                    "ts": ("timestamp", "ts", "time"),
                },
                required=("user_id", "item_id", "event_type", "ts"),
            ),
            items=_ITEMS_CANONICAL,
            users=_USERS_CANONICAL,
            event_items={"category": "{category}"},
            # a favourite is neither a view nor a cart add in ltrec's funnel, and the log has
            # the item's pv already: dropping keeps the cart stage meaning "added to cart"
            event_defaults={"fav": "drop"},
        ),
        Preset(
            name="completejourney",
            description="84.51 Complete Journey: transactions, products, demographics",
            repeat_domain=True,  # groceries: most purchases are re-purchases
            events=Layout(
                keys={
                    "user_id": ("household_id",),
                    "item_id": ("product_id",),
                    "ts": ("transaction_timestamp",),
                    "session_id": ("basket_id",),
                    "quantity": ("quantity",),
                    "sales_value": ("sales_value",),
                    "store_id": ("store_id",),
                },
                required=("user_id", "item_id", "ts", "quantity", "sales_value"),
                exprs={
                    # a unit price; quantity 0 is rejected before this matters
                    "price": "CAST(TRY_CAST(trim({sales_value}) AS DOUBLE)"
                    " / nullif(TRY_CAST(trim({quantity}) AS DOUBLE), 0) AS VARCHAR)",
                    "source": "'store:' || nullif(trim({store_id}), '')",
                },
            ),
            items=Layout(
                keys={
                    "item_id": ("product_id",),
                    "brand": ("brand",),
                    "department": ("department",),
                    "product_category": ("product_category",),
                    "product_type": ("product_type",),
                    "package_size": ("package_size",),
                },
                required=("item_id",),
                exprs={
                    "title": "nullif(concat_ws(' ', nullif(trim({product_type}), ''),"
                    " nullif(trim({brand}), ''),"
                    " regexp_replace(trim({package_size}), '\\s+', ' ', 'g')), '')",
                    "category": "nullif(concat_ws(' > ', nullif(trim({department}), ''),"
                    " nullif(trim({product_category}), ''), nullif(trim({product_type}), '')),"
                    " '')",
                },
            ),
            users=Layout(keys={"user_id": ("household_id",)}, required=("user_id",)),
            event_type="purchase",
        ),
    )
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise BadInputError(
            f"unknown preset {name!r}", hint=f"use one of: {', '.join(PRESETS)}"
        ) from None


def match_columns(layout: Layout, columns: Iterable[str]) -> dict[str, str]:
    """Key -> the first header column that matches one of its candidates."""
    by_norm: dict[str, str] = {}
    for col in columns:
        by_norm.setdefault(norm_header(col), col)
    found: dict[str, str] = {}
    for key, candidates in layout.keys.items():
        for cand in candidates:
            hit = by_norm.get(norm_header(cand))
            if hit is not None:
                found[key] = hit
                break
    return found


#: Order in which presets are tried when guessing; earlier wins a tie.
_GUESS_ORDER = ("completejourney", "orders", "ratings", "behaviour", "canonical", "events")


def guess_mapping(columns: Iterable[str]) -> tuple[str, dict[str, str]]:
    """Best-guess preset and key -> column mapping for an events file's header.

    The preset whose required keys are all found and that matches the most keys wins (ties go
    to the more specific preset). When no preset has all its required keys, the one that matches
    the most keys is returned with its partial mapping, so a UI can show what is missing.
    """
    cols = list(columns)
    best: tuple[tuple[int, int, int], str, dict[str, str]] | None = None
    for rank, name in enumerate(_GUESS_ORDER):
        layout = PRESETS[name].events
        found = match_columns(layout, cols)
        complete = all(k in found for k in layout.required)
        score = (int(complete), len(found), -rank)
        if best is None or score > best[0]:
            best = (score, name, found)
    assert best is not None
    return best[1], best[2]


#: The preset names, for UIs.
PRESET_NAMES = tuple(PRESETS)


#: A headerless file recognised by its values: (column names, per-column value patterns).
_HEADERLESS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        # behaviour log (e.g. Taobao UserBehavior.csv): ids, pv/cart/fav/buy, unix seconds
        ("user_id", "item_id", "category_id", "behavior_type", "timestamp"),
        (r"\d+", r"\d+", r"\d+", r"(?i:pv|cart|fav|buy)", r"-?\d{1,11}"),
    ),
)


def guess_headerless(rows: list[list[str]]) -> tuple[str, ...] | None:
    """Column names for a file whose first line is already data, when every sampled row has
    the shape of a known headerless layout (the behaviour log); else None."""
    for names, patterns in _HEADERLESS:
        if rows and all(
            len(r) == len(patterns)
            and all(re.fullmatch(p, v.strip()) for p, v in zip(patterns, r, strict=True))
            for r in rows
        ):
            return names
    return None
