"""The evaluation split of an external dataset computed on its engine (Spark, or any Ibis
backend): :func:`engine_split` applies the rule of :func:`ltrec.evaluation.temporal_split` to
Ibis tables that stay on the engine, so a Spark-resident run and a local run of the same events
split them identically (``ltrec.models.spark_resident`` trains on it). Evaluation code, so it
lives here, above the store it reads (``ltrec.store.external``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from ltrec.errors import BadInputError
from ltrec.evaluation.split import (
    INTERACTION_TYPES,
    default_split,
    drop_stats,
    no_target_events,
    no_test_pairs,
    nothing_after,
    nothing_before,
    share_cutoff_index,
)

if TYPE_CHECKING:
    from ltrec.store.external import ExternalSource


@dataclass
class EngineSplit:
    """:func:`ltrec.evaluation.temporal_split`'s result as engine expressions (Ibis tables
    that stay on the engine) and the few numbers the driver needs.

    ``train`` holds the training events, ``test`` the distinct ``(user_id, item_id)`` target
    pairs (cold users and, unless ``keep_seen``, seen pairs removed), ``cold`` the cold users'
    ids; :meth:`summary` is :meth:`ltrec.evaluation.Split.summary` of the same data.
    """

    train: ir.Table
    test: ir.Table
    cold: ir.Table
    cutoff: Any  # pandas Timestamp, naive UTC
    config: Any  # the SplitConfig
    stats: dict[str, int]

    def summary(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "train_events": self.stats["train_events"],
            "test_pairs": self.stats["test_pairs"],
            "test_users": self.stats["test_users"],
            "cold_users": self.stats["cold_users"],
            **{
                k: self.stats[k]
                for k in ("target_pairs", "seen_pairs_dropped", "cold_pairs_dropped")
            },  # fmt: skip
            "config": self.config.model_dump(mode="json"),
        }


#: Events the cut-off search fetches at most to sort them on the driver.
_NTH_FETCH = 200_000
_NTH_BUCKETS = 4096


def _nth_time(ev: ir.Table, at: int, n: int) -> Any:
    """The time of the ``at``-th event (0-based) in time order, exactly, without sorting the
    events on the engine (a global sort or row number runs in one task on Spark): count the
    events per time bucket (whole seconds), keep the bucket that holds position ``at``, refine
    it until it holds at most ``_NTH_FETCH`` events (or one second), then sort those here."""
    tv = ev.select("ts", s=ev.ts.epoch_seconds().cast("int64"))
    bounds = tv.aggregate(lo=tv.s.min(), hi=tv.s.max()).to_pyarrow().to_pylist()[0]
    lo, hi = int(bounds["lo"]), int(bounds["hi"]) + 1
    before, inside = 0, n
    while inside > _NTH_FETCH and hi - lo > 1:
        width = -(-(hi - lo) // _NTH_BUCKETS)
        part = tv.filter((tv.s >= lo) & (tv.s < hi))
        part = part.mutate(b=((part.s - lo) // width).cast("int64"))
        counts = part.group_by("b").aggregate(n=part.count()).to_pyarrow().to_pandas()
        counts = counts.sort_values("b")
        total = before + counts["n"].cumsum().to_numpy()
        j = int((total <= at).sum())  # the first bucket whose events reach past position at
        b = int(counts["b"].iloc[j])
        before = int(total[j - 1]) if j else before
        inside = int(counts["n"].iloc[j])
        lo, hi = lo + b * width, min(hi, lo + (b + 1) * width)
    times = tv.filter((tv.s >= lo) & (tv.s < hi)).select("ts").to_pyarrow()["ts"]
    ordered = pd.Series(pd.to_datetime(times.to_pandas())).sort_values(ignore_index=True)
    cutoff = pd.Timestamp(ordered.iloc[at - before])
    return cutoff.tz_convert("UTC").tz_localize(None) if cutoff.tzinfo is not None else cutoff


def engine_split(source: ExternalSource, config: Any = None) -> EngineSplit:
    """The evaluation split of an external dataset, computed on its engine by the rule of
    :func:`ltrec.evaluation.temporal_split` (global cut-off; the same cut-off position
    :func:`~ltrec.evaluation.split.share_cutoff_index`, the same test, cold and seen rules), so a
    Spark-resident run and a local run of the same events split them identically.

    ``config`` None: the default split (:func:`~ltrec.evaluation.default_split`; an external
    dataset has no meta, so no repeat domain). Only a few counts and the cut-off reach the driver.

    Raises:
        BadInputError: a per-user last-N split (not available on an engine), no events, nothing
            before the cut-off, no target events after it, or no test pair left (the messages of
            :func:`~ltrec.evaluation.temporal_split`).
    """
    config = config or default_split({})
    if config.last_n is not None:
        raise BadInputError(
            "a per-user last-N split is not available for data on an external engine",
            hint="use the time cut-off split (test_share or cutoff), or train on a sample",
        )
    ev = source.table("events")
    ev = ev.filter(ev.ts.notnull() & ev.user_id.notnull() & ev.item_id.notnull())
    if source.config.backend == "pyspark":
        ev = ev.cache()  # every count below reads it: computed once on the cluster
    targets = list(config.target_events)
    is_target = ev.event_type.isin(targets)
    # few jobs, each one aggregate (on Spark every job has a fixed cost of seconds)
    head = ev.aggregate(n=ev.count(), t=is_target.cast("int64").sum()).to_pyarrow().to_pylist()[0]
    n = int(head["n"] or 0)
    if n == 0:
        raise BadInputError("there are no events to split", hint="check [tables] in the TOML")
    if not head["t"]:
        kinds = ev.select("event_type").distinct().to_pyarrow()["event_type"].to_pylist()
        raise no_target_events(config, sorted(str(x) for x in kinds))
    if config.cutoff is not None:
        cut = pd.Timestamp(config.cutoff)
        cutoff = cut.tz_convert("UTC").tz_localize(None) if cut.tzinfo is not None else cut
    else:
        cutoff = _nth_time(ev, share_cutoff_index(n, config.test_share), n)
    bound = ibis.literal(cutoff.to_pydatetime(), type="timestamp")
    before = ev.ts < bound
    train = ev.filter(before)
    sides = (
        ev.aggregate(
            train=before.cast("int64").sum(),
            test=(~before & is_target).cast("int64").sum(),
            first=ev.ts.min(),
            last=ev.ts.max(),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    n_train = int(sides["train"] or 0)
    if n_train == 0:
        raise nothing_before(cutoff, pd.Timestamp(sides["first"]))
    if not sides["test"]:
        raise nothing_after(config, cutoff, pd.Timestamp(sides["last"]))
    test_ev = ev.filter(~before & is_target)
    pairs = test_ev.select("user_id", "item_id").distinct()
    counts = train.group_by("user_id").aggregate(n_train=train.count())
    warm_users = counts.filter(counts.n_train >= config.min_train_events).select(
        w_user=counts.user_id
    )
    flagged = pairs.left_join(warm_users, pairs.user_id == warm_users.w_user)
    flagged = flagged.select("user_id", "item_id", warm=flagged.w_user.notnull())
    if config.keep_seen:
        flagged = flagged.mutate(seen=ibis.literal(False))
    else:
        seen = train.filter(train.event_type.isin(list(INTERACTION_TYPES)))
        seen = seen.select(s_user=seen.user_id, s_item=seen.item_id).distinct()
        flagged = flagged.left_join(
            seen, (flagged.user_id == seen.s_user) & (flagged.item_id == seen.s_item)
        )
        flagged = flagged.select("user_id", "item_id", "warm", seen=flagged.s_user.notnull())
    keep = flagged.warm & ~flagged.seen
    tally = (
        flagged.aggregate(
            pairs=flagged.count(),
            warm=flagged.warm.cast("int64").sum(),
            test=keep.cast("int64").sum(),
            test_users=flagged.user_id.nunique(where=keep),
            cold_users=flagged.user_id.nunique(where=~flagged.warm),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    n_pairs, n_warm, n_test = (int(tally[k] or 0) for k in ("pairs", "warm", "test"))
    n_seen, n_cold = n_warm - n_test, int(tally["cold_users"] or 0)
    if n_test == 0:
        raise no_test_pairs(n_cold, n_seen)
    test = flagged.filter(keep).select("user_id", "item_id")
    cold = flagged.filter(~flagged.warm).select("user_id").distinct()
    stats = {
        "train_events": n_train,
        "test_pairs": n_test,
        "test_users": int(tally["test_users"] or 0),
        "cold_users": n_cold,
        **drop_stats(n_pairs, n_seen, n_pairs - n_warm),
    }
    return EngineSplit(train, test, cold, cutoff, config, stats)
