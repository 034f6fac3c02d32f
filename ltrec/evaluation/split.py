"""Temporal train/test splits (DESIGN §6).

A global time cut-off is the default: every event before it is training data, target events
(purchases by default) at or after it are the test. A random or leave-one-out split leaks the
future into training and flatters models that exploit it (Meng et al. 2020, "Exploring Data
Splitting Strategies for the Evaluation of Recommendation Models"), so time comes first here.

Conventions (stated once, used by every model and metric):

* The cut-off is inclusive on the test side: an event with ``ts == cutoff`` is a test event.
* "Seen" items are those the user *interacted* with in training: any event type with a positive
  interaction weight (view, cart, purchase; not impressions), the same set a model's
  ``exclude_seen`` removes. They are dropped from the test unless ``keep_seen`` (repeat-purchase
  domains such as groceries).
* Users with test targets but fewer than ``min_train_events`` training events (default 1: none)
  are cold: reported in :attr:`Split.cold_users` and excluded from the test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ltrec.config import EVENT_TYPES, EVENT_WEIGHTS
from ltrec.errors import BadInputError
from ltrec.store.schema import EVENT_COLUMNS, REQUIRED_EVENT_FIELDS

#: Event types that count as an interaction with an item (positive weight): a user who only saw
#: an impression of an item has not "seen" it in the sense of ``exclude_seen``.
INTERACTION_TYPES: tuple[str, ...] = tuple(t for t in EVENT_TYPES if EVENT_WEIGHTS.get(t, 0) > 0)


class SplitConfig(BaseModel):
    """How to cut events into training history and test targets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cutoff: datetime | None = Field(
        None, description="Global time cut-off; if None, chosen so test_share of events follow it."
    )
    test_share: float = Field(
        0.2, gt=0.0, le=0.9, description="Share of events (by time) at or after the cut-off."
    )
    last_n: int | None = Field(
        None, ge=1, le=1000, description="Hold out each user's last N target events instead."
    )
    target_events: tuple[str, ...] = Field(
        ("purchase",), min_length=1, description="Event types that count as test targets."
    )
    keep_seen: bool = Field(
        False, description="Keep test items the user interacted with in training (repeat buys)."
    )
    min_train_events: int = Field(
        1, ge=1, le=10_000, description="Users with fewer training events are cold."
    )

    @field_validator("target_events")
    @classmethod
    def _known_types(cls, types: tuple[str, ...]) -> tuple[str, ...]:
        bad = [t for t in types if t not in EVENT_TYPES]
        if bad:
            raise ValueError(f"unknown event types {bad}; choose from {list(EVENT_TYPES)}")
        return tuple(dict.fromkeys(types))  # de-duplicated, order kept


#: Meta key a preset sets for repeat-purchase domains (groceries), where a user's next purchase
#: is often an item they bought before.
REPEAT_DOMAIN_KEY = "repeat_domain"


def default_split(meta: Mapping[str, str] | None = None, **overrides: Any) -> SplitConfig:
    """The split a dataset is evaluated on unless the caller says otherwise (DESIGN §6).

    Targets are every interaction type (view, cart, purchase): purchases alone are too sparse on
    most shops for tight intervals (0.4% of the demo shop's events). Seen items are kept as
    targets when the dataset is a repeat-purchase domain (``meta[repeat_domain] == "true"``,
    set by the ``completejourney`` preset), and excluded otherwise.

    Args:
        meta: the dataset's ``meta`` table as a dict (``ltrec.store.read_meta``).
        overrides: fields that replace the defaults (validated by :class:`SplitConfig`).
    """
    repeat = (meta or {}).get(REPEAT_DOMAIN_KEY, "").lower() == "true"
    base: dict[str, Any] = {"target_events": ("view", "cart", "purchase"), "keep_seen": repeat}
    return SplitConfig(**{**base, **overrides})


@dataclass(frozen=True)
class Split:
    """The result of :func:`temporal_split`.

    Attributes:
        train: events before the cut-off (all event types), canonical columns, sorted by time.
        test: distinct ``(user_id, item_id)`` target pairs at or after the cut-off, seen items
            removed unless ``keep_seen``; sorted by user, item.
        cutoff: the global cut-off (last-N mode: the earliest held-out event's time).
        cold_users: users with test targets but too little training history (sorted); they are
            excluded from ``test``.
        config: the configuration that produced this split.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    cutoff: pd.Timestamp
    cold_users: list[str]
    config: SplitConfig
    #: Counts for reports and manifests (test pairs dropped as seen, users, ...).
    stats: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """JSON-ready description for manifests and the CLI."""
        return {
            "cutoff": self.cutoff.isoformat(),
            "train_events": len(self.train),
            "test_pairs": len(self.test),
            "test_users": int(self.test["user_id"].nunique()),
            "cold_users": len(self.cold_users),
            **self.stats,
            "config": self.config.model_dump(mode="json"),
        }


def _as_events(events: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED_EVENT_FIELDS if c not in events.columns]
    if missing:
        raise BadInputError(
            f"events lack the column(s) {', '.join(missing)}; columns are: "
            f"{', '.join(map(str, events.columns))}",
            hint="load events with ltrec.evaluation.load_events or import them with `ltrec import`",
        )
    if events.empty:
        raise BadInputError("there are no events to split", hint="import events first")
    out = events.copy()
    if not pd.api.types.is_datetime64_any_dtype(out["ts"]):
        out["ts"] = pd.to_datetime(out["ts"], errors="coerce")
    if getattr(out["ts"].dt, "tz", None) is not None:  # compare in naive UTC, like the store
        out["ts"] = out["ts"].dt.tz_convert("UTC").dt.tz_localize(None)
    out = out[out["ts"].notna() & out["user_id"].notna() & out["item_id"].notna()]
    if out.empty:
        raise BadInputError("no event has a user, an item and a timestamp", hint="check the data")
    for col in ("user_id", "item_id"):
        out[col] = out[col].astype(str)
    # Stable sort: events at the same time keep their input order.
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def _naive(ts: datetime) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t


def _share_cutoff(ts: pd.Series, share: float) -> pd.Timestamp:
    """The timestamp at which ``share`` of the events (by time) begin."""
    n = len(ts)
    idx = min(n - 1, max(0, int(np.floor(n * (1.0 - share)))))
    return pd.Timestamp(ts.iloc[idx])


def _types_hint(config: SplitConfig) -> str:
    return ", ".join(config.target_events)


def temporal_split(events: pd.DataFrame, config: SplitConfig | None = None) -> Split:
    """Split events by time into training history and test target pairs.

    Global mode (default): ``cutoff`` (or the time at which the last ``test_share`` of events
    begins) splits all events; train = events with ``ts < cutoff``; test = target events with
    ``ts >= cutoff``. Last-N mode (``last_n``): each user's last N target events are held out;
    that user's training history is their events strictly before the first held-out one (other
    users' later events stay in training, the usual leave-last-out compromise).

    Args:
        events: canonical events (``user_id``, ``item_id``, ``event_type``, ``ts``; others kept).
        config: the split settings (defaults: 20% by time, purchases as targets).

    Returns:
        A :class:`Split`.

    Raises:
        BadInputError: missing columns, no events, nothing before the cut-off, no target events
            in the test window, or no test pair left after excluding seen items and cold users.
    """
    config = config or SplitConfig()
    ev = _as_events(events)
    is_target = ev["event_type"].isin(config.target_events).to_numpy()
    if not is_target.any():
        present = sorted(ev["event_type"].dropna().astype(str).unique())
        raise BadInputError(
            f"no {_types_hint(config)} events in the data (event types present: "
            f"{', '.join(present)})",
            hint="choose target event types that the data has",
        )

    if config.last_n is not None:
        train, test_ev, cutoff = _last_n(ev, is_target, config)
    else:
        cutoff = _naive(config.cutoff) if config.cutoff is not None else None
        if cutoff is None:
            cutoff = _share_cutoff(ev["ts"], config.test_share)
        before = (ev["ts"] < cutoff).to_numpy()
        train = ev[before]
        test_ev = ev[~before & is_target]
        if train.empty:
            raise BadInputError(
                f"no events before the cut-off {cutoff.date()} (first event "
                f"{ev['ts'].iloc[0].date()})",
                hint="choose a later cut-off or a smaller test share",
            )
        if test_ev.empty:
            raise BadInputError(
                f"no {_types_hint(config)} events after the cut-off {cutoff.date()} "
                f"(last event {ev['ts'].iloc[-1].date()})",
                hint="choose an earlier cut-off, a larger test share, or add target event types",
            )

    pairs = test_ev[["user_id", "item_id"]].drop_duplicates()
    n_pairs = len(pairs)

    # Cold users: targets but too little training history.
    train_counts = train["user_id"].value_counts()
    have = train_counts[train_counts >= config.min_train_events].index
    warm = pairs["user_id"].isin(have)
    cold_users = sorted(pairs.loc[~warm, "user_id"].unique().tolist())
    pairs = pairs[warm]

    n_seen = 0
    if not config.keep_seen:
        seen = train.loc[train["event_type"].isin(INTERACTION_TYPES), ["user_id", "item_id"]]
        seen = seen.drop_duplicates()
        merged = pairs.merge(seen, on=["user_id", "item_id"], how="left", indicator=True)
        keep = (merged["_merge"] == "left_only").to_numpy()
        n_seen = int((~keep).sum())
        pairs = pairs[keep]

    if pairs.empty:
        why = []
        if cold_users:
            why.append(f"{len(cold_users)} user(s) had no training history")
        if n_seen:
            why.append(f"{n_seen} pair(s) were items the user already had in training")
        raise BadInputError(
            "no test pairs left after the split" + (f" ({'; '.join(why)})" if why else ""),
            hint="set keep_seen=True for repeat-purchase domains, or choose an earlier cut-off",
        )

    test = pairs.sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)
    cols = [c for c in EVENT_COLUMNS if c in train.columns]
    cols += [c for c in train.columns if c not in cols]
    train = train[cols].reset_index(drop=True)
    stats = {
        "target_pairs": n_pairs,
        "seen_pairs_dropped": n_seen,
        "cold_pairs_dropped": int((~warm).sum()),
    }
    return Split(train, test, pd.Timestamp(cutoff), cold_users, config, stats)


def _last_n(
    ev: pd.DataFrame, is_target: np.ndarray, config: SplitConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    targets = ev[is_target]
    # Rank each user's target events from the last one backwards (ev is sorted by time).
    rank_from_end = targets.groupby("user_id", sort=False).cumcount(ascending=False)
    test_ev = targets[rank_from_end.to_numpy() < config.last_n]
    user_cut = test_ev.groupby("user_id", sort=False)["ts"].min()
    cut_per_event = ev["user_id"].map(user_cut)
    # Events strictly before the user's first held-out event; users without targets keep all.
    train = ev[cut_per_event.isna().to_numpy() | (ev["ts"] < cut_per_event).to_numpy()]
    return train, test_ev, pd.Timestamp(user_cut.min())


def load_events(con, *, event_types: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Read the canonical ``events`` table from a store connection, sorted by time.

    Args:
        con: a connection from :func:`ltrec.store.connect` (read-only; a per-call cursor is used)
            or any DuckDB connection whose current catalog has an ``events`` table.
        event_types: only these event types (``None``: all).

    Returns:
        A DataFrame with the :data:`EVENT_COLUMNS` columns.
    """
    import duckdb

    from ltrec.store import cursor

    try:
        cur = cursor(con)
    except duckdb.Error:  # not a connect() connection (no 'ds' catalog): use it as it is
        cur = con.cursor()
    cols = ", ".join(EVENT_COLUMNS)
    sql = f"SELECT {cols} FROM events"  # noqa: S608 - fixed column names
    params: list[object] = []
    if event_types is not None:
        if not event_types:
            raise BadInputError("no event types chosen", hint=f"choose from {list(EVENT_TYPES)}")
        sql += " WHERE event_type IN (" + ", ".join("?" for _ in event_types) + ")"
        params = list(event_types)
    try:
        return cur.execute(sql + " ORDER BY ts", params).df()
    finally:
        cur.close()
