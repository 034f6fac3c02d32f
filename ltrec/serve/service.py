"""What one ``ltrec serve`` holds: the one :class:`~ltrec.app.pipeline.RecSession`, its live
history, the event log and its flusher, and the swap of a reload.

With arms (an A/B experiment, :mod:`.experiments`) it holds one session per arm, built once at
start: an arm on the server's run shares that run's session (another re-ranking setting, the
same live history); an arm on another run opens that run once and gets every event too. Each
served list is then logged as impressions (:meth:`Service.expose`) through the same write-ahead
log as posted events, before the answer.

Events and swaps are ordered by one lock (:attr:`Service._apply`): an accepted batch is logged
(fsynced) and applied to the current session inside it, and a reload swaps sessions inside it
after replaying every event logged so far. So each acknowledged event is applied exactly once
to whichever session serves next, and a request in flight keeps the session it started with.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from ltrec.app import live_experiments as experiments
from ltrec.app.live_events import (
    EXPOSURE,
    Event,
    EventError,
    EventLog,
    Flusher,
    Validator,
    iter_replay,
    store_seq,
)
from ltrec.app.pipeline import RecSession
from ltrec.errors import BadInputError, LtrecError
from ltrec.rerank.pipeline import parse_config
from ltrec.rerank.strategies import StrategyConfig
from ltrec.serve.keys import KeyRing
from ltrec.serve.metrics import Metrics

#: Parsed re-ranking settings kept per distinct request text.
_CONFIG_CACHE = 256


class Service:
    """The served dataset. Build with :meth:`start`; :meth:`close` flushes and releases."""

    def __init__(
        self,
        dataset: str,
        run_id: str | None,
        rerank: Any,
        data_dir: Path | str | None,
        *,
        allow_stale: bool = False,
        flush_interval: float = 5.0,
        arms: dict[str, dict] | None = None,
        split: Sequence[float] | None = None,
        experiment_id: str | None = None,
        stop_experiment: bool = False,
    ) -> None:
        self.dataset, self.run_arg, self.data_dir = dataset, run_id, data_dir
        self.allow_stale = allow_stale
        if arms and rerank is not None:
            raise BadInputError(
                "--rerank and --arm together: with arms, each arm's policy is its setting",
                hint='put the setting into the arms, e.g. --arm boost=\'{"strategy": '
                '"tail_boost", "beta": 0.3}\'',
            )
        self.config: StrategyConfig = parse_config(rerank)  # a bad setting fails first
        #: The running experiment this server serves (None: no arms, one list for everyone).
        self.experiment: experiments.Experiment | None = None
        self.stopped: experiments.Experiment | None = None  # the one this start stopped
        #: arm -> its session; ``_own``: run id -> session of an arm on another run.
        self.arms: dict[str, Any] = {}
        self._own: dict[str, Any] = {}
        self.rerank_arg = rerank
        self.validator = Validator()
        self.keys = KeyRing(data_dir)
        self.metrics = Metrics()
        self.started = time.monotonic()
        self._apply = threading.Lock()
        self._reload = threading.Lock()
        self._configs: OrderedDict[str, Any] = OrderedDict()
        self._closed = False
        self.skipped = 0  # replayed events whose item the served run does not know
        self.log = EventLog(dataset, data_dir, floor=store_seq(dataset, data_dir))
        try:
            through = self.log.last_seq
            self.session, _ = self._build(run_id, through)
            if arms:
                self.arms = self._arm_sessions(arms, self.session, through)
                # only once every arm loaded: a bad arm starts (and stops) nothing
                if stop_experiment and experiments.running(data_dir, dataset) is not None:
                    self.stopped = experiments.stop(data_dir, dataset)
                split = split or experiments.parse_split(None, len(arms))
                self.experiment, stopped = experiments.begin(
                    data_dir, dataset, arms, split, experiment_id
                )
                self.stopped = stopped or self.stopped
            self.flusher = Flusher(dataset, self.log, data_dir, interval=flush_interval)
        except BaseException:
            self.log.close()
            raise

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> Service:
        svc = cls(*args, **kwargs)
        svc.flusher.start()
        return svc

    def close(self) -> None:
        """Flush what is left into the store and release the log (idempotent)."""
        with self._apply:
            if self._closed:
                return
            self._closed = True
        self.flusher.close()
        self.log.close()

    # ------------------------------------------------------------------ sessions

    def _build(self, run_id: str | None, through: int) -> tuple[Any, int]:
        """Open a session and replay every acknowledged event up to ``through`` into it."""
        session = RecSession.open(
            self.dataset,
            run_id,
            self.config,
            data_dir=self.data_dir,
            allow_stale=self.allow_stale,
        )
        self._replay(session, iter_replay(self.dataset, self.log, self.data_dir, through=through))
        return session, through

    def _arm_sessions(self, arms: dict[str, dict], base: Any, through: int) -> dict[str, Any]:
        """One session per arm: the server's run under the arm's setting, or the arm's own run
        (opened once per run, with every acknowledged event replayed into it)."""
        out = {}
        for name, policy in arms.items():
            run, setting = experiments.arm_setting(policy)
            try:
                if run is None:
                    out[name] = base.with_config(setting)
                    continue
                own = self._own.get(run)
                if own is None:
                    own = RecSession.open(
                        self.dataset, run, data_dir=self.data_dir, allow_stale=self.allow_stale
                    )
                    self._replay(
                        own, iter_replay(self.dataset, self.log, self.data_dir, through=through)
                    )
                    self._own[run] = own
                out[name] = own.with_config(setting)
            except LtrecError as err:
                raise BadInputError(f"arm {name!r}: {err.message}", hint=err.hint) from None
        return out

    def _replay(self, session: Any, events: Any) -> None:
        for e in events:
            if e.exposure:  # the server's own impressions: no one's history
                continue
            try:
                session.add_events(e.user_id, e.item_id, e.event_type, e.ts)
            except BadInputError:  # an item the (reloaded) run does not know
                self.skipped += 1

    def reload(self, run_id: str | None = None) -> dict[str, Any]:
        """Serve another run (None: the registry's choice now, e.g. a newly promoted run)
        without failing a request: the new session is built beside the old one, given every
        live event, and swapped in with one assignment. Blocking: call from a worker thread."""
        with self._reload:
            with self._apply:
                through = self.log.last_seq
            old = self.session
            new, _ = self._build(run_id, through)
            # arms on the server's run follow it; an arm on its own run keeps its session
            arms = dict(self.arms)
            if self.experiment is not None:
                for name, policy in self.experiment.arms.items():
                    run, setting = experiments.arm_setting(policy)
                    if run is None:
                        arms[name] = new.with_config(setting)
            with self._apply:
                later = [e for e in self.log.snapshot() if e.seq > through]
                if len(later) != self.log.last_seq - through:  # some were flushed meanwhile
                    later = [
                        e
                        for e in iter_replay(
                            self.dataset, self.log, self.data_dir, through=self.log.last_seq
                        )
                        if e.seq > through
                    ]
                self._replay(new, later)
                self.arms = arms
                self.session = new  # (cached settings hold their session: see with_rerank)
        return {"previous_run_id": old.run_id, "run_id": new.run_id, "model": new.model.name}

    def with_rerank(self, text: str | None) -> Any:
        """The current session under a request's setting (the server's own when None)."""
        session = self.session
        if text is None:
            return session
        cached = self._configs.get(text)
        if cached is None or cached[0] is not session:
            cached = (session, session.with_config(parse_config(text)))
            self._configs[text] = cached
            if len(self._configs) > _CONFIG_CACHE:
                self._configs.popitem(last=False)
        return cached[1]

    # ------------------------------------------------------------------ events

    def accept(self, raw: Sequence[dict[str, Any]]) -> list[Event]:
        """Validate, log durably, then apply to the live history; returns the logged events.

        Raises:
            EventError: a rejected event (nothing of the batch is logged or applied).
        """
        events = self.validator.validate(raw)
        n = len(events)
        exp = self.experiment
        if exp is not None:  # the user's arm, for the attribution (issue 22)
            events = [
                e.copy(experiment=exp.id, arm=experiments.assign(e.user_id, exp)) for e in events
            ]
        with self._apply:
            index = self.session.data.item_index
            for pos, e in enumerate(events):
                if e.item_id not in index:
                    where = "item_id" if n == 1 else f"events[{pos}].item_id"
                    raise EventError(
                        f"unknown item {e.item_id[:100]!r}: not in the catalogue of run "
                        f"{self.session.run_id}",
                        where,
                        hint="events can name only items the served run knows; import the item "
                        "and train a new run for new items",
                    )
            done = self.log.append(events)
            self._replay(self.session, done)
            for own in self._own.values():
                self._replay(own, done)
        self.metrics.accepted(n)
        return done

    # ------------------------------------------------------------------ arms

    def arm_of(self, user_id: str) -> tuple[str, Any]:
        """The user's arm in the running experiment and its session."""
        arm = experiments.assign(user_id, self.experiment)  # type: ignore[arg-type]  # called only while one runs
        return arm, self.arms[arm]

    def expose(self, lists: Sequence[dict[str, Any]]) -> int:
        """Log the served lists as impressions (one per item, 1-based position, the list's
        ``request_id``), durably: returns once they are on disk. Blocking: a worker thread."""
        now = datetime.now(UTC).replace(tzinfo=None)
        events = []
        for out in lists:
            head = Event(
                out["user_id"], "", "impression", now, source=EXPOSURE,
                experiment=out["experiment"], arm=out["arm"], request_id=out["request_id"],
            )  # fmt: skip
            events += [head.copy(item_id=it["item_id"], position=it["rank"]) for it in out["items"]]
        if events:
            self.log.append(events)
        return len(events)

    @staticmethod
    def request_id() -> str:
        return uuid.uuid4().hex

    # ------------------------------------------------------------------ similar items

    def similar(self, item_id: str, k: int) -> dict[str, Any]:
        """Items the model ranks highest for a history of this one item alone (item-kNN: its
        neighbours; EASE: its row of weights; two-tower: the history tower)."""
        session = self.session
        data, ctx = session.data, session.context
        item = data.item_index.get(item_id, -1)
        if item < 0:
            raise EventError(
                f"unknown item {item_id[:100]!r}: not in the catalogue of run {session.run_id}",
                "item_id",
            )
        weight = max(data.weights.values())
        one = sparse.csr_matrix(
            (np.array([weight], dtype=np.float32), (np.array([0]), np.array([item]))),
            shape=(1, data.n_items),
        )
        items, scores = session.model.recommend_history(one, k)
        items, scores = items[0], scores[0]
        names = (*ctx.category_names, None)
        out = []
        for r, (i, s) in enumerate(zip(items.tolist(), scores.tolist(), strict=True)):
            if i < 0 or not np.isfinite(s):
                continue
            out.append(
                {
                    "rank": r + 1,
                    "item_id": str(data.item_ids[i]),
                    "title": str(data.item_titles[i] or "") or None,
                    "category": names[ctx.category[i]],
                    "bucket": ctx.bucket_names[ctx.bucket[i]],
                    "score": float(s),
                }
            )
        return {
            "run_id": session.run_id,
            "model": session.model.name,
            "item_id": item_id,
            "title": str(data.item_titles[item] or "") or None,
            "items": out,
        }

    # ------------------------------------------------------------------ status

    def health(self) -> dict[str, Any]:
        s = self.session
        f = self.flusher
        return {
            "status": "ok",
            "dataset": self.dataset,
            "run_id": s.run_id,
            "model": s.model.name,
            "stale": s.stale,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "experiment": None
            if self.experiment is None
            else {
                "id": self.experiment.id,
                "arms": list(self.experiment.arms),
                "split": list(self.experiment.split),
                "started_at": self.experiment.started_at,
            },
            "events": {
                "last_seq": self.log.last_seq,
                "pending": len(self.log.pending),
                "fsyncs": self.log.fsyncs,
                "flushed": f.flushed,
                "last_flush_s": round(f.last_flush_s, 4),
                "store_busy": f.busy,
                "flush_errors": f.errors,
                "last_error": f.last_error,
                "skipped_on_replay": self.skipped,
            },
        }

    def gauges(self) -> dict[str, Any]:
        return {
            "ltrec_events_pending": (
                "Acknowledged events not yet in the store.",
                lambda: float(len(self.log.pending)),
            ),
            "ltrec_events_flushed_total": (
                "Events this server wrote to the store.",
                lambda: float(self.flusher.flushed),
            ),
            "ltrec_flush_errors_total": (
                "Flushes that failed (retried).",
                lambda: float(self.flusher.errors),
            ),
        }
