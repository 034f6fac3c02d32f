"""Why a row was rejected, as a code: one enum for the importer, the ``rejects`` table, the CLI,
the Data page and the tests.

Each rejected row has a code (``rejects.code``, ``ImportReport.rejects_by_code``) and a reason in
words (``rejects.reason``) that may name the field or the value (``unknown event type 'fav'``).
Programs decide on the code and never parse the reason.
"""

from __future__ import annotations

from enum import StrEnum


class RejectCode(StrEnum):
    """The reject codes. Values are stable: they are stored and printed by ``--json``."""

    MISSING_USER_ID = "missing_user_id"
    GUEST_ORDER = "guest_order"  # an order line without a customer id
    MISSING_ITEM_ID = "missing_item_id"
    CONTROL_CHARACTER_IN_ID = "control_character_in_id"
    CANCELLATION = "cancellation"
    MISSING_RATING = "missing_rating"
    UNPARSEABLE_RATING = "unparseable_rating"
    MISSING_EVENT_TYPE = "missing_event_type"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    MISSING_TIMESTAMP = "missing_timestamp"
    UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    UNPARSEABLE_QUANTITY = "unparseable_quantity"
    NON_POSITIVE_QUANTITY = "non_positive_quantity"
    NON_INTEGER_QUANTITY = "non_integer_quantity"
    QUANTITY_TOO_LARGE = "quantity_too_large"
    UNPARSEABLE_PRICE = "unparseable_price"
    NAN_PRICE = "nan_price"
    INFINITE_PRICE = "infinite_price"
    NEGATIVE_PRICE = "negative_price"
    UNPARSEABLE_VALUE = "unparseable_value"  # an items/users field (in_stock, created_at)
    DUPLICATE_ROW = "duplicate_row"  # an exact repeat of an earlier event of the file
    DUPLICATE_ITEM_ID = "duplicate_item_id"  # an items row whose id came earlier in the file
    DUPLICATE_USER_ID = "duplicate_user_id"  # a users row whose id came earlier in the file
    MALFORMED_ROW = "malformed_row"  # a line that is not well-formed CSV
    #: Not a reject: a row whose event value ``--event-map`` maps to ``drop``. Staged with this
    #: code so it is neither imported nor counted as rejected (``dropped_event_types``).
    DROPPED_EVENT_TYPE = "dropped_event_type"

    def sql(self) -> str:
        """The code as a SQL string literal (values are plain ``[a-z_]``)."""
        return f"'{self.value}'"
