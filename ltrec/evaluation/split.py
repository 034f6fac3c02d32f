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

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from ltrec.config import EVENT_TYPES, EVENT_WEIGHTS, ConfigBase
from ltrec.errors import BadInputError
from ltrec.store import connect, cursor
from ltrec.store.profile import is_repeat_domain
from ltrec.store.schema import EVENT_COLUMNS, REQUIRED_EVENT_FIELDS

#: Event types that count as an interaction with an item (positive weight): a user who only saw
#: an impression of an item has not "seen" it in the sense of ``exclude_seen``.
INTERACTION_TYPES: tuple[str, ...] = tuple(t for t in EVENT_TYPES if EVENT_WEIGHTS.get(t, 0) > 0)


class SplitConfig(ConfigBase):
    """How to cut events into training history and test targets."""

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


def default_split(meta: Mapping[str, str] | None = None, **overrides: Any) -> SplitConfig:
    """The split a dataset is evaluated on unless the caller says otherwise (DESIGN §6).

    Targets are every interaction type (view, cart, purchase): purchases alone are too sparse on
    most shops for tight intervals (0.4% of the demo shop's events). Seen items are kept as
    targets when the dataset is a repeat-purchase domain
    (:func:`ltrec.store.profile.is_repeat_domain`), and excluded otherwise.

    Args:
        meta: the dataset's ``meta`` table as a dict (``ltrec.store.read_meta``).
        overrides: fields that replace the defaults (validated by :class:`SplitConfig`).
    """
    repeat = is_repeat_domain(meta)
    base: dict[str, Any] = {"target_events": ("view", "cart", "purchase"), "keep_seen": repeat}
    return SplitConfig(**{**base, **overrides})


class Split:
    """The result of :func:`temporal_split` (or :func:`store_split`).

    Attributes:
        train: events before the cut-off (all event types), canonical columns, sorted by time.
            A split built in the store (:func:`store_split`) leaves them there and reads them
            on first use only: models train on the matrix built by SQL, and at 10M events the
            frame alone is gigabytes.
        test: distinct ``(user_id, item_id)`` target pairs at or after the cut-off, seen items
            removed unless ``keep_seen``; sorted by user, item.
        cutoff: the global cut-off (last-N mode: the earliest held-out event's time).
        cold_users: users with test targets but too little training history (sorted); they are
            excluded from ``test``.
        config: the configuration that produced this split.
        stats: counts for reports and manifests (test pairs dropped as seen, users, ...).
        n_train: the number of training events (without reading them).
    """

    def __init__(
        self,
        train: pd.DataFrame | Callable[[], pd.DataFrame],
        test: pd.DataFrame,
        cutoff: pd.Timestamp,
        cold_users: list[str],
        config: SplitConfig,
        stats: dict[str, int] | None = None,
        *,
        n_train: int | None = None,
    ) -> None:
        if callable(train) and not isinstance(train, pd.DataFrame):
            if n_train is None:
                raise ValueError("a split whose training events load later needs n_train")
            self._train: pd.DataFrame | None = None
            self._load: Callable[[], pd.DataFrame] | None = train
        else:
            self._train, self._load = train, None
        self.test = test
        self.cutoff = cutoff
        self.cold_users = cold_users
        self.config = config
        self.stats: dict[str, int] = dict(stats or {})
        self.n_train = int(len(train) if n_train is None else n_train)  # type: ignore[arg-type]  # a loader comes with n_train

    @property
    def train(self) -> pd.DataFrame:
        if self._train is None:
            assert self._load is not None
            self._train = self._load()
        return self._train

    def replace(self, **changes: Any) -> Split:
        """A copy with some attributes changed (``train`` may be a frame or a loader)."""
        train = changes.pop("train", self._train if self._train is not None else self._load)
        kw: dict[str, Any] = {
            "test": self.test, "cutoff": self.cutoff, "cold_users": self.cold_users,
            "config": self.config, "stats": self.stats,
        }  # fmt: skip
        kw.update(changes)
        if "n_train" not in kw and not isinstance(train, pd.DataFrame):
            kw["n_train"] = self.n_train
        return Split(train, **kw)

    def summary(self) -> dict[str, object]:
        """JSON-ready description for manifests and the CLI."""
        return {
            "cutoff": self.cutoff.isoformat(),
            "train_events": self.n_train,
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


def share_cutoff_index(n: int, share: float) -> int:
    """Position (0-based, in time order) of the event at which the last ``share`` of ``n``
    events begins: the cut-off is that event's time (the one rule, also on an engine:
    :func:`ltrec.evaluation.engine_split.engine_split`)."""
    return min(n - 1, max(0, int(np.floor(n * (1.0 - share)))))


def _share_cutoff(ts: pd.Series, share: float) -> pd.Timestamp:
    """The timestamp at which ``share`` of the events (by time) begin."""
    return pd.Timestamp(ts.iloc[share_cutoff_index(len(ts), share)])


def _types_hint(config: SplitConfig) -> str:
    return ", ".join(config.target_events)


# The errors and counts every way of splitting reports alike (in memory, in the store, on an
# engine: ltrec.evaluation.engine_split), so a split fails with the same message everywhere.


def no_target_events(config: SplitConfig, present: list[str]) -> BadInputError:
    """No event of the config's target types (``present``: the event types the data has)."""
    return BadInputError(
        f"no {_types_hint(config)} events in the data (event types present: {', '.join(present)})",
        hint="choose target event types that the data has",
    )


def nothing_before(cutoff: pd.Timestamp, first: pd.Timestamp) -> BadInputError:
    """No event before the cut-off (``first``: the first event's time)."""
    return BadInputError(
        f"no events before the cut-off {cutoff.date()} (first event {first.date()})",
        hint="choose a later cut-off or a smaller test share",
    )


def nothing_after(config: SplitConfig, cutoff: pd.Timestamp, last: pd.Timestamp) -> BadInputError:
    """No target event at or after the cut-off (``last``: the last event's time)."""
    return BadInputError(
        f"no {_types_hint(config)} events after the cut-off {cutoff.date()} "
        f"(last event {last.date()})",
        hint="choose an earlier cut-off, a larger test share, or add target event types",
    )


def no_test_pairs(n_cold_users: int, n_seen: int) -> BadInputError:
    """Every target pair was dropped: ``n_cold_users`` users without training history,
    ``n_seen`` pairs the user already had in training."""
    why = []
    if n_cold_users:
        why.append(f"{n_cold_users} user(s) had no training history")
    if n_seen:
        why.append(f"{n_seen} pair(s) were items the user already had in training")
    return BadInputError(
        "no test pairs left after the split" + (f" ({'; '.join(why)})" if why else ""),
        hint="set keep_seen=True for repeat-purchase domains, or choose an earlier cut-off",
    )


def drop_stats(n_pairs: int, n_seen: int, n_cold_pairs: int) -> dict[str, int]:
    """:attr:`Split.stats`: distinct target pairs, and how many of them were dropped as seen
    in training or as pairs of cold users."""
    return {
        "target_pairs": n_pairs,
        "seen_pairs_dropped": n_seen,
        "cold_pairs_dropped": n_cold_pairs,
    }


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
        raise no_target_events(config, sorted(ev["event_type"].dropna().astype(str).unique()))

    if config.last_n is not None:
        train, test_ev, cutoff = _last_n(ev, is_target, config.last_n)
    else:
        if config.cutoff is not None:
            cutoff = _naive(config.cutoff)
        else:
            cutoff = _share_cutoff(ev["ts"], config.test_share)
        before = (ev["ts"] < cutoff).to_numpy()
        train = ev[before]
        test_ev = ev[~before & is_target]
        if train.empty:
            raise nothing_before(cutoff, ev["ts"].iloc[0])
        if test_ev.empty:
            raise nothing_after(config, cutoff, ev["ts"].iloc[-1])

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
        raise no_test_pairs(len(cold_users), n_seen)

    test = pairs.sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)
    cols = [c for c in EVENT_COLUMNS if c in train.columns]
    cols += [c for c in train.columns if c not in cols]
    train = train[cols].reset_index(drop=True)
    stats = drop_stats(n_pairs, n_seen, int((~warm).sum()))
    return Split(train, test, pd.Timestamp(cutoff), cold_users, config, stats)


def _last_n(
    ev: pd.DataFrame, is_target: np.ndarray, last_n: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    targets = ev[is_target]
    # Rank each user's target events from the last one backwards (ev is sorted by time).
    rank_from_end = targets.groupby("user_id", sort=False).cumcount(ascending=False)
    test_ev = targets[rank_from_end.to_numpy() < last_n]
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
    cur = _store_cursor(con)
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


# --------------------------------------------------------------------------------------------
# the same split, computed in the store (bounded memory: nothing event-sized leaves DuckDB)

#: An event a split can place: it names a user, an item and a time (what :func:`_as_events`
#: keeps).
VALID_EVENT = "user_id IS NOT NULL AND item_id IS NOT NULL AND ts IS NOT NULL"


def _store_cursor(con: Any) -> Any:
    """A cursor on a store connection (:func:`ltrec.store.connect`) or a plain DuckDB one."""
    try:
        return cursor(con)
    except duckdb.Error:  # not a connect() connection (no 'ds' catalog): use it as it is
        return con.cursor()


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("?" for _ in values) + ")"


def store_split(con: Any, config: SplitConfig | None = None) -> Split:
    """:func:`temporal_split` of the store's ``events``, computed by DuckDB.

    The same cut-off, test pairs, cold users, counts and errors as ``temporal_split(
    load_events(con), config)`` (up to the order of events that share a timestamp), without
    reading the events into pandas: the training events stay in the store and
    :attr:`Split.train` reads them only when asked. Last-N mode (per-user cut-offs) is
    computed by :func:`temporal_split` on the loaded events.
    """
    config = config or SplitConfig()
    if config.last_n is not None:
        return temporal_split(load_events(con), config)
    cur = _store_cursor(con)
    try:
        return _store_split(con, cur, config)
    finally:
        cur.close()


def _one(cur: Any, sql: str, params: list[Any] | None = None) -> Any:
    row = cur.execute(sql, params or []).fetchone()
    return None if row is None else row[0]


def _store_split(con: Any, cur: Any, config: SplitConfig) -> Split:
    targets = config.target_events
    total = int(_one(cur, "SELECT count(*) FROM events"))
    if total == 0:
        raise BadInputError("there are no events to split", hint="import events first")
    n = int(_one(cur, f"SELECT count(*) FROM events WHERE {VALID_EVENT}"))  # noqa: S608
    if n == 0:
        raise BadInputError("no event has a user, an item and a timestamp", hint="check the data")
    valid_targets = f"{VALID_EVENT} AND event_type IN {_in(targets)}"
    if not _one(cur, f"SELECT count(*) FROM events WHERE {valid_targets}", list(targets)):  # noqa: S608
        present = [
            str(r[0])
            for r in cur.execute(
                f"SELECT DISTINCT event_type FROM events WHERE {VALID_EVENT} "  # noqa: S608
                "AND event_type IS NOT NULL ORDER BY 1"
            ).fetchall()
        ]
        raise no_target_events(config, present)
    if config.cutoff is not None:
        cutoff = _naive(config.cutoff)
    else:  # the time at the same position _share_cutoff takes in the time-sorted events
        idx = min(n - 1, max(0, int(np.floor(n * (1.0 - config.test_share)))))
        cutoff = pd.Timestamp(
            _one(
                cur,
                f"SELECT ts FROM events WHERE {VALID_EVENT} ORDER BY ts LIMIT 1 OFFSET ?",  # noqa: S608
                [idx],
            )
        )
    cut = cutoff.to_pydatetime()
    n_train = int(_one(cur, f"SELECT count(*) FROM events WHERE {VALID_EVENT} AND ts < ?", [cut]))  # noqa: S608
    if n_train == 0:
        first = pd.Timestamp(_one(cur, f"SELECT min(ts) FROM events WHERE {VALID_EVENT}"))  # noqa: S608
        raise nothing_before(cutoff, first)
    late = f"{valid_targets} AND ts >= ?"
    if not _one(cur, f"SELECT count(*) FROM events WHERE {late}", [*targets, cut]):  # noqa: S608
        last = pd.Timestamp(_one(cur, f"SELECT max(ts) FROM events WHERE {VALID_EVENT}"))  # noqa: S608
        raise nothing_after(config, cutoff, last)
    # Each distinct target pair with two flags: warm (enough training events) and seen (an
    # interaction in training), as temporal_split's value_counts and merge compute them.
    interactions = tuple(INTERACTION_TYPES)
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _split_pairs AS
        WITH pairs AS (SELECT DISTINCT user_id, item_id FROM events WHERE {late}),
        warm AS (
            SELECT user_id FROM events WHERE {VALID_EVENT} AND ts < ?
            GROUP BY user_id HAVING count(*) >= ?
        ),
        seen AS (
            SELECT DISTINCT user_id, item_id FROM events
            WHERE {VALID_EVENT} AND ts < ? AND event_type IN {_in(interactions)}
        )
        SELECT p.user_id, p.item_id, w.user_id IS NOT NULL AS warm,
               s.user_id IS NOT NULL AS seen
        FROM pairs p
        LEFT JOIN warm w ON w.user_id = p.user_id
        LEFT JOIN seen s ON s.user_id = p.user_id AND s.item_id = p.item_id
        """,  # noqa: S608 - fixed SQL, values bound
        [*targets, cut, cut, config.min_train_events, cut, *interactions],
    )
    try:
        n_pairs, n_cold_pairs, n_seen = cur.execute(
            "SELECT count(*), count(*) FILTER (NOT warm), count(*) FILTER (warm AND seen) "
            "FROM _split_pairs"
        ).fetchone()
        n_seen = 0 if config.keep_seen else int(n_seen)
        cold_users = [
            str(r[0])
            for r in cur.execute(
                "SELECT DISTINCT user_id FROM _split_pairs WHERE NOT warm"
            ).fetchall()
        ]
        cold_users.sort()  # Python's order, as temporal_split's sorted()
        keep = "warm" if config.keep_seen else "warm AND NOT seen"
        test = cur.execute(
            f"SELECT user_id, item_id FROM _split_pairs WHERE {keep}"  # noqa: S608
        ).df()
    finally:
        cur.execute("DROP TABLE IF EXISTS _split_pairs")
    if test.empty:
        raise no_test_pairs(len(cold_users), n_seen)
    for col in ("user_id", "item_id"):
        test[col] = test[col].astype(str)
    test = test.sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)
    stats = drop_stats(int(n_pairs), n_seen, int(n_cold_pairs))
    return Split(
        train_loader(con, f"{VALID_EVENT} AND ts < ?", [cut]),
        test,
        cutoff,
        cold_users,
        config,
        stats,
        n_train=n_train,
    )


def train_loader(con: Any, where: str, params: list[Any]) -> Callable[[], pd.DataFrame]:
    """A loader of the events ``where`` selects (canonical columns, ids as text, by time).

    It reads the store on first use: a dataset file is reopened by its path (the connection
    the split was computed on may be closed by then); an in-memory database (tests) is read
    on ``con`` itself.
    """
    cur = _store_cursor(con)
    try:
        path = _one(
            cur, "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        )
    finally:
        cur.close()

    def load() -> pd.DataFrame:
        own = connect(Path(path).stem, Path(path).parent) if path else None
        c = _store_cursor(own if own is not None else con)
        cols = ", ".join(EVENT_COLUMNS)
        try:
            frame = c.execute(
                f"SELECT {cols} FROM events WHERE {where} ORDER BY ts",  # noqa: S608
                params,
            ).df()
        finally:
            c.close()
            if own is not None:
                own.close()
        for col in ("user_id", "item_id"):
            frame[col] = frame[col].astype(str)
        return frame

    return load
