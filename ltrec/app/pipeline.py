"""The one recommendation pipeline: a user -> candidate pool -> re-ranked list (DESIGN §5, §11).

:class:`RecSession` is a loaded run (or an in-memory model), its data, the re-ranking context and
one re-ranking setting. It is the only code that turns users into final lists: ``ltrec
recommend/evaluate/export``, the Rerank Studio, the simulator and the API all call it, so their
lists cannot drift apart.

* :meth:`RecSession.pools` builds the candidate pools
  (:func:`ltrec.models.candidates.candidate_pool`, live history applied),
* :meth:`RecSession.lists` / :meth:`RecSession.rerank_pools` re-rank them to K,
* :meth:`RecSession.recommend` (one user, the ``ltrec recommend --json`` object),
  :meth:`RecSession.frame` / :meth:`RecSession.export` (every user's list as rows or a file) and
  :meth:`RecSession.evaluate` (every metric on the run's test split) read those lists,
* :meth:`RecSession.add_events` adds live events to a user's history (a per-user overlay on the
  training matrix): the next list of a model that scores from history reflects them at once.

Each listed item carries its reasons (:meth:`RecSession.reasons`): the history items that
contributed most to its score (:meth:`~ltrec.models.base.Recommender.contributions`), what the
re-ranker did, or the fallback for a user without history.

Data and context come from the run's own split, so a dataset changed since training is refused;
a stale run (the dataset re-imported since) is refused unless ``allow_stale``. A stale run whose
training data is gone still recommends from its own training matrix (``evaluate`` refuses then).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import sparse

from ltrec.config import EVENT_WEIGHTS
from ltrec.errors import BadInputError, RegistryError
from ltrec.evaluation import evaluate
from ltrec.files import atomic_path
from ltrec.models.candidates import candidate_pool
from ltrec.models.data import InteractionData, load_catalogue
from ltrec.models.registry import check_evaluable, load_run, resolve_run
from ltrec.models.spark_resident import is_resident_run, refuse_one_user
from ltrec.models.train import add_text, load_run_data, split_targets
from ltrec.rerank.adapters import context_from_data
from ltrec.rerank.base import PAD, Context, Ranked, RankedBatch, rerank_batch
from ltrec.rerank.pipeline import Pipeline, parse_config, to_dict
from ltrec.rerank.strategies import StrategyConfig
from ltrec.store import connect

#: Columns of an exported list: the original seven, then the display and explanation columns.
EXPORT_COLUMNS = [
    "user_id", "rank", "item_id", "base_score", "final_score", "base_rank", "reason",
    "title", "category", "bucket", "rank_change", "reasons",
]  # fmt: skip
#: History items named per recommended item.
HISTORY_TOP = 2
#: Longest title shown in a reason (longer ones end in "…").
TITLE_CHARS = 40
#: The reason of an item no history item contributed to (filled in by the model's order).
_NO_LINK = "no link to your history: ranked by the model's score"
#: Strongest event first: the verb a reason uses for a history item.
_VERBS = (("purchase", "bought"), ("cart", "added"), ("view", "viewed"))


# --------------------------------------------------------------------------------------------
# live history: events added since the session was loaded


@dataclass
class _Live:
    """Per-user event weights added since load, shared by every session of one model.

    ``weights[u]`` maps item index -> summed weight; ``kinds[u]`` item -> strongest event type.
    ``u`` is a training user index or, for a user unknown to training, a virtual index
    ``n_users + j`` recorded in ``new_users``.
    """

    weights: dict[int, dict[int, float]] = field(default_factory=dict)
    kinds: dict[int, dict[int, str]] = field(default_factory=dict)
    new_users: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(eq=False)
class _Shared:
    """What every :meth:`RecSession.with_config` copy shares: model, data, context, overlay."""

    model: Any
    data: Any
    context: Context | None
    run: Any = None
    dataset: str | None = None
    data_dir: Path | None = None
    #: False when the data was rebuilt from a stale run's own matrix (no test split to use).
    data_matches: bool = True
    live: _Live = field(default_factory=_Live)
    pair_kind: np.ndarray | None = None  # [nnz of data.matrix] strongest event type code
    fallback: str | None = None  # fallback_name(model), computed on first use

    def add_text(self) -> None:
        """Text vectors into the data and the context, when the dataset is known and the data
        has none yet, so a setting that reads them sees what ``open`` with it would load."""
        if self.data.item_text_emb is not None or self.dataset is None or not self.data_matches:
            return

        with self.live.lock:
            if self.data.item_text_emb is not None:
                return
            data = add_text(self.data, self.dataset, data_dir=self.data_dir)
            old = self.context
            price = None if old is None else old.price
            stock = None if old is None else old.in_stock
            self.context = context_from_data(data, price=price, in_stock=stock)
            self.data = data


def _run_data(run: Any, items: pd.DataFrame) -> Any:
    """The training data of a stale run whose data is gone, rebuilt from the run itself.

    The matrix is the model's own training matrix (``seen_``), so its lists are the run's;
    titles come from today's catalogue; features are unknown and there is no split; the
    repeat flag is the run's own (``repeat_``, read from the dataset's meta when it trained).
    """
    seen = sparse.csr_matrix(run.model.seen_, dtype=np.float32)
    n = seen.shape[1]
    frame = items.assign(item_id=items["item_id"].astype(str)).drop_duplicates("item_id")
    frame = frame.set_index("item_id").reindex(pd.Index(run.item_ids))
    title_col = frame["title"] if "title" in frame else pd.Series([None] * n)
    titles: list[str] = title_col.astype("string").fillna("").tolist()
    stamps = seen.copy()
    stamps.data = np.zeros(stamps.nnz, dtype=np.float64)
    return InteractionData(
        user_ids=np.asarray(run.user_ids, dtype=str),
        item_ids=np.asarray(run.item_ids, dtype=str),
        matrix=seen,
        last_ts=stamps,
        item_pop=np.bincount(seen.indices, minlength=n).astype(np.int64),
        item_weight=np.bincount(seen.indices, weights=seen.data, minlength=n),
        item_category=np.zeros(n, dtype=np.int32),
        category_names=[""],
        item_brand=np.zeros(n, dtype=np.int32),
        brand_names=[""],
        item_price_band=np.zeros(n, dtype=np.int32),
        item_titles=titles,
        item_texts=titles,
        user_features={},
        user_feature_names={},
        weights=dict(EVENT_WEIGHTS),
        repeat_domain=bool(getattr(run.model, "repeat_", False)),
    )


def needs_text(config: StrategyConfig) -> bool:
    """True when a setting reads item text vectors: MMR by embedding, or tail candidates by
    text (``tail_source`` "text" or "both")."""
    mmr = getattr(config, "strategy", "") == "mmr" and getattr(config, "by", "") == "embedding"
    return mmr or (config.tail_pool > 0 and config.tail_source != "cooccurrence")


def _load(
    dataset: str,
    run_id: str,
    config: StrategyConfig,
    data_dir: Path | str | None,
    allow_stale: bool,
) -> _Shared:
    """A run, its training data (fingerprint-checked) and a context with price and stock."""
    run = load_run(dataset, run_id, data_dir, allow_stale=allow_stale)

    if is_resident_run(run.manifest):  # its histories live on Spark (export --engine spark)
        raise refuse_one_user(dataset, run_id)
    con = connect(dataset, Path(data_dir) if data_dir is not None else None)
    try:
        items, _ = load_catalogue(con)
    finally:
        con.close()
    # Text vectors only where the model or the setting uses them (they may load MiniLM).
    text = bool(run.model.content_model or needs_text(config))
    matches = True
    try:
        # every event for an all-data run, the split's training data otherwise
        data = load_run_data(dataset, run, text=text, data_dir=data_dir)
    except RegistryError:  # the data changed since training (fingerprint)
        if not run.stale:
            raise
        matches = False
        data = _run_data(run, items)  # an allowed stale run: its own lists, today's titles
    context = context_from_data(data, items=items)
    folder = Path(data_dir) if data_dir is not None else None
    return _Shared(run.model, data, context, run, dataset, folder, data_matches=matches)


# --------------------------------------------------------------------------------------------
# reasons


def _title(data: Any, item: int) -> str:
    text = str(data.item_titles[item] or "") or str(data.item_ids[item])
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def _names(titles: Sequence[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    if len(titles) <= 1:
        return "".join(titles)
    return ", ".join(titles[:-1]) + " and " + titles[-1]


def history_text(method: str, entries: Sequence[tuple[str, str | None]]) -> str:
    """The reason naming the history items behind a score.

    Args:
        method: ``exact`` (the items' share of the score) or ``embedding`` (nearest history
            items by item embedding, a likeness rather than a cause).
        entries: ``(title, event type)`` per history item, strongest first; the event type is
            the strongest event the user had with it (None: not known).

    ``exact``: "because you bought A and viewed B"; ``embedding``: "similar to A and B, which
    you bought". Without event types: "because you interacted with A and B".
    """
    verbs = dict(_VERBS)
    groups: dict[str, list[str]] = {}
    for title, kind in entries:
        groups.setdefault(verbs.get(kind or "", "interacted with"), []).append(title)
    if method == "embedding":
        titles = [t for t, _ in entries]
        if len(groups) == 1:
            (verb,) = groups
            return f"similar to {_names(titles)}, which you {verb}"
        parts = [f"{t} ({verbs.get(k or '', 'seen')})" for t, k in entries]
        return f"similar to {_names(parts)}"
    parts = []
    for verb, titles in groups.items():
        if verb == "added":
            parts.append(f"added {_names(titles)} to your cart")
        else:
            parts.append(f"{verb} {_names(titles)}")
    return "because you " + " and ".join(parts)


_PAREN = re.compile(r"\s*\([^()]*\)$")


def _what(reason: str) -> str:
    """The re-ranker's motive from its reason text: 'boosted: tail item (+0.21)' -> 'tail item'."""
    r = reason
    for prefix in ("boosted: ", "moved up: ", "moved up for "):
        if r.startswith(prefix):
            r = r[len(prefix) :]
            break
    else:
        if r.startswith("moved up from ") and ": " in r:
            r = r.split(": ", 1)[1]
    return _PAREN.sub("", r).strip() or "re-ranking"


def rerank_reasons(ranked: Ranked) -> list[dict[str, Any] | None]:
    """Per listed item, what the re-ranker did (None where it kept the base rank).

    "lifted 6 places: tail item", "moved down 2 places", "pinned at position 1".
    """
    out: list[dict[str, Any] | None] = []
    for r, (br, why) in enumerate(zip(ranked.base_ranks.tolist(), ranked.reasons, strict=True), 1):
        text = None
        if why.startswith("pinned"):
            text = f"pinned at position {r}"
        elif br > r:
            n = br - r
            text = f"lifted {n} place{'s' if n > 1 else ''}: {_what(why)}"
        elif 0 < br < r:
            n = r - br
            text = f"moved down {n} place{'s' if n > 1 else ''}"
        out.append(None if text is None else {"kind": "rerank", "text": text, "item_ids": []})
    return out


def reasons_text(reasons: Sequence[dict[str, Any]]) -> str:
    """The reasons of one item as one cell: the texts joined with "; "."""
    return "; ".join(r["text"] for r in reasons)


def fallback_name(model: Any) -> str:
    """What ranks for a user without history: "popularity" or "content" (segment features)."""
    return (
        "content"
        if getattr(model.config, "cold_users", "popularity") != "popularity"
        else ("popularity")
    )


# --------------------------------------------------------------------------------------------
# the session


#: Export columns that hold shop text: escaped in CSV so a spreadsheet never runs a formula.
_TEXT_COLUMNS = ("user_id", "item_id", "reason", "title", "category", "bucket", "reasons")


class RecSession:
    """A loaded run + a re-ranking setting + the dataset's context: the one path to a list.

    Build with :meth:`open` (a saved run) or :meth:`from_parts` (an in-memory model);
    :meth:`with_config` gives the same model under another setting (sharing model, data,
    context and live history). User arguments are integer indices into the run's users
    (:meth:`user_index` maps ids; users unknown to training get ``-1`` or, once they have live
    events, a virtual index ``>= data.n_users``).
    """

    def __init__(self, shared: _Shared, config: StrategyConfig, *, rerank_given: bool = True):
        self._s = shared
        self.config = config
        self.pipeline = Pipeline(config)
        #: False when no setting was asked for (``ltrec evaluate`` without --rerank): the
        #: evaluation then has no list-change metrics against the base order.
        self.rerank_given = rerank_given
        rules = config.rules
        #: The base order without rules or extra candidates: the lists are the pools' heads.
        self._plain = (
            getattr(config, "strategy", "none") == "none"
            and not rules.filters
            and not rules.pins
            and self.tail_pool == 0
        )

    # ------------------------------------------------------------------ construction

    @classmethod
    def open(
        cls,
        dataset: str,
        run_id: str | None = None,
        rerank: Any = None,
        *,
        data_dir: Path | str | None = None,
        allow_stale: bool = False,
    ) -> RecSession:
        """A saved run of ``dataset`` (None: the registry's production / active / newest run)
        under the setting ``rerank`` (JSON text, URL form, dict, config; None: base order).

        Raises:
            ConfigError: a bad setting (before anything is loaded).
            StaleRunError: the dataset changed since training (unless ``allow_stale``).
            RegistryError: no such run, or the data differs from the run's training data.
        """
        cfg = parse_config(rerank)

        rid = resolve_run(dataset, run_id, data_dir)
        return cls(
            _load(dataset, rid, cfg, data_dir, allow_stale), cfg, rerank_given=rerank is not None
        )

    @classmethod
    def from_parts(
        cls,
        model: Any,
        data: Any,
        context: Context | None,
        config: Any = None,
        *,
        run: Any = None,
        dataset: str | None = None,
        data_dir: Path | str | None = None,
    ) -> RecSession:
        """A session over an in-memory model and its ``InteractionData`` (simulator, tuner,
        tests). ``context`` None: built from ``data`` when a setting needs it."""
        shared = _Shared(
            model, data, context, run, dataset, Path(data_dir) if data_dir is not None else None
        )
        return cls(shared, parse_config(config), rerank_given=config is not None)

    def with_config(self, rerank: Any) -> RecSession:
        """The same model, data, context and live history under another setting (cheap; the
        first setting that reads text vectors loads them once for every copy)."""
        cfg = parse_config(rerank)
        if needs_text(cfg):
            self._s.add_text()
        return RecSession(self._s, cfg, rerank_given=rerank is not None)

    # ------------------------------------------------------------------ accessors

    @property
    def model(self) -> Any:
        return self._s.model

    @property
    def data(self) -> Any:
        return self._s.data

    @property
    def run(self) -> Any:
        return self._s.run

    @property
    def run_id(self) -> str | None:
        return None if self._s.run is None else self._s.run.run_id

    @property
    def dataset(self) -> str | None:
        return self._s.dataset

    @property
    def stale(self) -> bool:
        return bool(self._s.run is not None and self._s.run.stale)

    @property
    def context(self) -> Context:
        if self._s.context is None:
            self._s.context = context_from_data(self._s.data)
        return self._s.context

    @property
    def tail_pool(self) -> int:
        """Tail candidates the setting adds to each pool (``StrategyConfig.tail_pool``)."""
        return int(self.config.tail_pool)

    @property
    def width(self) -> int:
        """Candidates per user the setting re-ranks: the model's top M plus the tail ones."""
        return int(self.config.pool) + self.tail_pool

    def user_index(self, user_id: str) -> int:
        """The index of a user id: training users first, then users with live events only;
        ``-1`` for a user the session has never seen."""
        u = self.data.user_index.get(str(user_id), -1)
        if u < 0:
            with self._s.live.lock:
                u = self._s.live.new_users.get(str(user_id), -1)
        return int(u)

    def user_ids(self, users: np.ndarray) -> np.ndarray:
        """User ids of indices (virtual indices of live-only users included; -1 -> "")."""
        ids = np.asarray(self.data.user_ids, dtype=object)
        n = ids.size
        with self._s.live.lock:
            extra = {v: k for k, v in self._s.live.new_users.items()}
        return np.array(
            [ids[u] if 0 <= u < n else extra.get(int(u), "") for u in np.asarray(users).tolist()],
            dtype=object,
        )

    # ------------------------------------------------------------------ history

    def _live_rows(self, users: np.ndarray) -> dict[int, dict[int, float]]:
        live = self._s.live
        if not live.weights:
            return {}
        with live.lock:
            return {int(u): dict(live.weights[int(u)]) for u in users if int(u) in live.weights}

    def history(self, users: np.ndarray) -> sparse.csr_matrix:
        """[n, n_items] event weights of the users: training rows plus live events."""
        users = np.asarray(users, dtype=np.int64).ravel()
        data = self.data
        if users.size == 1 and 0 <= users[0] < data.n_users and not self._live_rows(users):
            # One known user without live events (an API request): the training row by
            # slicing, without scipy's fancy-indexing and format checks (same values).
            m, u = data.matrix, int(users[0])
            lo, hi = m.indptr[u], m.indptr[u + 1]
            out = sparse.csr_matrix(
                (
                    m.data[lo:hi].astype(np.float32),
                    m.indices[lo:hi].copy(),
                    np.array([0, hi - lo], dtype=m.indptr.dtype),
                ),
                shape=(1, m.shape[1]),
            )
            out.sort_indices()
            return out
        known = (users >= 0) & (users < data.n_users)
        rows = data.matrix[np.where(known, users, 0)]
        if not known.all():
            rows = sparse.diags(known.astype(np.float32)) @ rows
        live = self._live_rows(users)
        if live:
            r: list[int] = []
            c: list[int] = []
            v: list[float] = []
            for row, u in enumerate(users.tolist()):
                for item, w in live.get(u, {}).items():
                    r.append(row)
                    c.append(item)
                    v.append(w)
            add = (np.asarray(v, dtype=np.float32), (np.asarray(r), np.asarray(c)))
            rows = rows + sparse.csr_matrix(add, shape=rows.shape, dtype=np.float32)
        out = sparse.csr_matrix(rows, dtype=np.float32)
        out.sort_indices()
        return out

    def _kinds(self, user: int, items: np.ndarray) -> list[str | None]:
        """The strongest event type of each history item of ``user`` (None: not known)."""
        s = self._s
        data = self.data
        out: list[str | None] = [None] * len(items)
        if 0 <= user < data.n_users:
            if s.pair_kind is None:
                s.pair_kind = self._pair_kinds()
            lo, hi = data.matrix.indptr[user], data.matrix.indptr[user + 1]
            pos = dict(zip(data.matrix.indices[lo:hi].tolist(), range(lo, hi), strict=True))
            for j, i in enumerate(np.asarray(items).tolist()):
                p = pos.get(int(i))
                if p is not None and s.pair_kind[p] >= 0:
                    out[j] = _VERBS[int(s.pair_kind[p])][0]
        with s.live.lock:
            live = dict(s.live.kinds.get(int(user), {}))
        order = [k for k, _ in _VERBS]
        for j, i in enumerate(np.asarray(items).tolist()):
            kind, cur = live.get(int(i)), out[j]
            if kind is not None and (cur is None or order.index(kind) < order.index(cur)):
                out[j] = kind
        return out

    def _pair_kinds(self) -> np.ndarray:
        """Per stored pair, the code (index into ``_VERBS``) of its strongest event; -1 unknown.

        From the per-event weights when they describe the matrix; an event's type is the one
        whose weight it has (the strongest such type when two types share a weight).
        """
        data = self.data
        nnz = data.matrix.nnz
        out = np.full(nnz, -1, dtype=np.int8)
        if not data._has_events():
            return out
        best = np.zeros(nnz, dtype=np.float64)
        np.maximum.at(best, np.asarray(data.event_pair, dtype=np.int64), data.event_weight)
        for code in range(len(_VERBS) - 1, -1, -1):  # strongest last: it wins a shared weight
            w = data.weights.get(_VERBS[code][0])
            if w:
                out[np.isclose(best, w)] = code
        return out

    # ------------------------------------------------------------------ lists

    def _model_users(self, users: np.ndarray) -> np.ndarray:
        return np.where((users >= 0) & (users < self.data.n_users), users, -1)

    def pools(self, users: np.ndarray, m: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Candidate pools ``(items [n, m + tail_pool], scores)``, -1 / -inf padded.

        The model's top ``m`` (default the setting's ``pool``; seen items excluded unless the
        domain repeats) plus the setting's tail candidates, by
        :func:`ltrec.models.candidates.candidate_pool`. Users with live events are scored from
        their training history plus those events when the model scores from history
        (``live_history``); other models keep their training score.
        """
        users = np.asarray(users, dtype=np.int64).ravel()
        m = int(self.config.pool if m is None else m)
        model, data = self.model, self.data
        kw: dict[str, Any] = {}
        if self.tail_pool:
            kw = {
                "tail_pool": self.tail_pool,
                "tail_source": self.config.tail_source,
                "tail_mask": self.context.tail,
            }
        live = self._live_rows(users) if self._s.live.weights and model.live_history else {}
        if not live:
            return candidate_pool(model, data, self._model_users(users), m, **kw)
        hot = np.array([int(u) in live for u in users.tolist()])
        items, scores = candidate_pool(model, data, self._model_users(users[~hot]), m, **kw)
        items_h, scores_h = candidate_pool(
            model, data, self._model_users(users[hot]), m, history=self.history(users[hot]), **kw
        )
        out_i = np.full((users.size, items_h.shape[1]), PAD, dtype=np.int64)
        out_s = np.full((users.size, items_h.shape[1]), -np.inf, dtype=np.float32)
        out_i[~hot], out_s[~hot] = items, scores
        out_i[hot], out_s[hot] = items_h, scores_h
        return out_i, out_s

    def _rerank_users(self, users: np.ndarray) -> list[int | None]:
        n = self.data.n_users
        return [u if 0 <= u < n else None for u in np.asarray(users, dtype=np.int64).tolist()]

    def rerank_pools(
        self, users: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int
    ) -> RankedBatch:
        """Re-rank precomputed pools (sweeps, the Studio): the setting sees the first
        :attr:`width` candidates of each row."""
        w = self.width
        items = np.atleast_2d(items)[:, :w]
        scores = np.atleast_2d(scores)[:, :w]
        return rerank_batch(
            self.pipeline, items, scores, self.context, self._rerank_users(users), k
        )

    def lists(self, users: np.ndarray, k: int) -> RankedBatch:
        """The final top ``k`` of each user: THE path from a user to a list."""
        users = np.asarray(users, dtype=np.int64).ravel()
        if not self._plain:
            items, scores = self.pools(users)
            return self.rerank_pools(users, items, scores, k)
        # The base order's top k of a pool is the pool's head: no per-user re-ranking.
        items, scores = self.pools(users, min(int(k), int(self.config.pool)))
        return _head_batch(users, items, scores, int(k), self.config.label())

    # ------------------------------------------------------------------ reasons

    def _fallback_name(self) -> str:
        """:func:`fallback_name` of the model, once per model (a pydantic config answers a
        missing attribute by raising, which costs more than the rest of a list's reasons)."""
        s = self._s
        if s.fallback is None:
            s.fallback = fallback_name(s.model)
        return s.fallback

    def reasons(
        self, users: np.ndarray, batch: RankedBatch, *, hist: sparse.csr_matrix | None = None
    ) -> list[list[list[dict[str, Any]]]]:
        """Per user, per listed item: its reasons (``{"kind", "text", "item_ids"}`` dicts).

        ``history``: the history items that contributed most to the item's score; ``rerank``:
        what the re-ranker did; ``fallback``: the ranking used for a user without history (or
        the popularity model).
        """
        users = np.asarray(users, dtype=np.int64).ravel()
        model, data = self.model, self.data
        if hist is None:  # (given by recommend, which has built it already)
            hist = self.history(users)
        name = self._fallback_name()
        fb_text = (
            "popular with other shoppers (no history yet)"
            if name == "popularity"
            else "suits your customer segment (no history yet)"
        )
        out = []
        for row, u in enumerate(users.tolist()):
            ranked = batch.lists[row]
            moved = rerank_reasons(ranked)
            h = hist if hist.shape[0] == 1 else hist[row]  # (one row: no scipy slicing)
            per_item: list[list[dict[str, Any]]] = [[] for _ in range(len(ranked))]
            if h.nnz == 0:
                for x in per_item:
                    x.append({"kind": "fallback", "text": fb_text, "item_ids": []})
            elif len(ranked):
                con = model.contributions(h, ranked.items, top=HISTORY_TOP)
                if con.method == "none":
                    for x in per_item:
                        x.append({"kind": "fallback", "text": "popular with other shoppers",
                                  "item_ids": []})  # fmt: skip
                else:
                    # The event kinds of every named history item at once (one lookup per user).
                    named = [i for contrib in con.rows for i, _ in contrib]
                    kind_of = dict(zip(named, self._kinds(u, np.array(named, dtype=np.int64)),
                                       strict=True))  # fmt: skip
                    for x, contrib in zip(per_item, con.rows, strict=True):
                        if not contrib:
                            x.append({"kind": "fallback", "text": _NO_LINK, "item_ids": []})
                            continue
                        hitems = [int(i) for i, _ in contrib]
                        kinds = [kind_of[i] for i in hitems]
                        titles = [_title(data, i) for i in hitems]
                        x.append(
                            {
                                "kind": "history",
                                "text": history_text(
                                    con.method, list(zip(titles, kinds, strict=True))
                                ),
                                "item_ids": [str(data.item_ids[i]) for i in hitems],
                            }
                        )
            for x, mv in zip(per_item, moved, strict=True):
                if mv is not None:
                    x.append(mv)
            out.append(per_item)
        return out

    # ------------------------------------------------------------------ one user

    def recommend(self, user_id: str, k: int = 10) -> dict[str, Any]:
        """One user's list as the ``ltrec recommend --json`` object (see README)."""
        u = self.user_index(user_id)
        batch = self.lists(np.array([u]), k)
        ranked = batch.row(0)
        ctx, data = self.context, self.data
        hist = self.history(np.array([u]))
        n_hist = int(hist.nnz)
        with self._s.live.lock:
            n_live = len(self._s.live.weights.get(u, {}))
        reasons = self.reasons(np.array([u]), batch, hist=hist)[0]
        stats = ranked.stats(ctx)
        notes = list(ranked.notes)
        if n_live and not getattr(self.model, "live_history", False):
            notes.append(
                f"the {self.model.name} model scores from its training history only: "
                f"{n_live} live item(s) are not used until it is retrained"
            )
        names = (*ctx.category_names, None)

        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else float(x)

        items = []
        for r, i in enumerate(ranked.items.tolist()):
            title = str(data.item_titles[i] or "") or None
            items.append(
                {
                    "rank": r + 1,
                    "item_id": str(data.item_ids[i]),
                    "title": title,
                    "category": names[ctx.category[i]],
                    "bucket": ctx.bucket_names[ctx.bucket[i]],
                    "score": num(float(ranked.scores[r])),
                    "base_score": num(float(ranked.base_scores[r])),
                    "base_rank": int(ranked.base_ranks[r]),
                    "reason": ranked.reasons[r],
                    "reasons": reasons[r],
                }
            )
        return {
            "run_id": self.run_id,
            "model": self.model.name,
            "user": str(user_id),
            "known_user": 0 <= u < data.n_users,
            "history_items": n_hist,
            "live_events": n_live,
            # No history at all: the model's fallback ranks (popularity, or segment features).
            "fallback": self._fallback_name() if n_hist == 0 else False,
            "fallback_kind": self._fallback_name() if n_hist == 0 else None,
            "stale": self.stale,
            "rerank": to_dict(self.config),
            "setting": ranked.setting,
            "notes": notes,
            "list": {
                a: (num(b) if isinstance(b, float) else b) for a, b in stats.to_dict().items()
            },
            "items": items,
        }

    # ------------------------------------------------------------------ many users

    def frame(self, users: np.ndarray, k: int) -> pd.DataFrame:
        """Export rows of the users' lists (:data:`EXPORT_COLUMNS`; padding slots dropped)."""
        users = np.asarray(users, dtype=np.int64).ravel()
        batch = self.lists(users, k)
        return self.batch_frame(users, batch)

    def batch_frame(self, users: np.ndarray, batch: RankedBatch) -> pd.DataFrame:
        """:meth:`frame` of a batch already re-ranked (the Studio's columns)."""
        users = np.asarray(users, dtype=np.int64).ravel()
        ctx, data = self.context, self.data
        n, k = batch.items.shape
        valid = batch.items >= 0
        flat = valid.ravel()
        rows_u = np.repeat(np.arange(n), k)[flat]
        ranks = np.tile(np.arange(1, k + 1), n)[flat]
        items = batch.items[valid]
        base_ranks = batch.base_ranks[valid]
        why = self.reasons(users, batch)
        names = np.array([*ctx.category_names, ""], dtype=object)
        titles = np.asarray(data.item_titles, dtype=object)
        return pd.DataFrame(
            {
                "user_id": self.user_ids(users)[rows_u],
                "rank": ranks,
                "item_id": np.asarray(data.item_ids)[items],
                "base_score": batch.base_scores[valid],
                "final_score": batch.scores[valid],
                "base_rank": base_ranks,
                "reason": [r for lst in batch.lists for r in lst.reasons],
                "title": titles[items],
                "category": names[ctx.category[items]],
                "bucket": np.asarray(ctx.bucket_names, dtype=object)[ctx.bucket[items]],
                "rank_change": np.where(base_ranks > 0, base_ranks - ranks, 0),
                "reasons": [reasons_text(x) for user in why for x in user],
            },
            columns=EXPORT_COLUMNS,
        )

    def all_users(self) -> np.ndarray:
        """Every training user's index."""
        return np.arange(self.data.n_users)

    def frames(self, k: int, *, users: np.ndarray | None = None, batch_size: int = 2048):
        """:meth:`frame` of every user (or ``users``), one batch of users at a time."""
        everyone = self.all_users() if users is None else np.asarray(users, dtype=np.int64)
        for start in range(0, everyone.size, batch_size):
            yield self.frame(everyone[start : start + batch_size], k)

    def table(
        self, k: int, *, users: np.ndarray | None = None, batch_size: int = 2048
    ) -> pd.DataFrame:
        """Every user's (or ``users``') list as one frame of export rows."""
        parts = list(self.frames(k, users=users, batch_size=batch_size))
        if not parts:
            return pd.DataFrame(columns=EXPORT_COLUMNS)
        return pd.concat(parts, ignore_index=True)

    def export(self, out: Path | str, *, k: int = 10, batch_size: int = 2048) -> dict[str, Any]:
        """Write every user's list to ``out`` (.csv, formula-escaped, or .parquet); a summary.

        Streams: each batch of ``batch_size`` users is scored, re-ranked and appended to the
        file (a CSV's lines, a Parquet row group), so memory holds one batch, never the whole
        export (10M-event demo: 1M rows). The file is the one a single write of every row
        gives, and it appears whole or not at all (written aside, then renamed).
        """
        out = Path(out)
        fmt = out.suffix.lower()
        if fmt not in (".csv", ".parquet"):
            raise BadInputError(
                f"cannot write {out.name!r}: the export format is chosen by the file name",
                hint="end --out with .csv or .parquet",
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:  # a reader never sees half a file
            write = _write_csv if fmt == ".csv" else _write_parquet
            rows = write(tmp, self.frames(k, batch_size=batch_size))
        return {
            "run_id": self.run_id,
            "stale": self.stale,
            "rerank": to_dict(self.config),
            "out": str(out),
            "format": fmt[1:],
            "users": int(self.data.n_users),
            "rows": rows,
            "k": k,
        }

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, k: int = 10, n_boot: int = 200, *, seed: int | None = None) -> Any:
        """Every metric of the lists on the run's test split (an ``EvalResult``).

        With a setting (``rerank_given``) the tail is the context's and ``overlap@k`` /
        ``rbo@k`` compare with the model's own top K.

        Raises:
            NoTestSplitError: a run fitted on all data (it has no test split).
            RegistryError: a stale run whose training data is gone.
        """
        data = self.data
        run = self._s.run
        if run is not None:
            # an all-data run: refused (a loaded run always has its dataset: _load)
            check_evaluable(cast(str, self.dataset), run.run_id, run.manifest)
        if not self._s.data_matches:
            raise RegistryError(
                f"dataset '{self.dataset}' changed since run {self.run_id} was trained: its "
                "test split cannot be rebuilt",
                hint=f"train a new run: `ltrec train {self.dataset} --model {self.model.name}`",
            )
        users, test = split_targets(data)
        batch = self.lists(users, k)
        seed = self.model.config.seed if seed is None else seed
        extra: dict[str, Any] = {}
        label = self.model.name
        if self.rerank_given:
            base = batch.items if self._plain else self.with_config(None).lists(users, k).items
            extra = {"tail_mask": self.context.tail, "base_recs": base}
            label = f"{self.model.name} + {self.config.label()}"
        return evaluate(
            batch.items,
            test,
            item_pop=data.item_pop,
            k=k,
            item_category=data.item_category,
            item_embedding=data.item_text_emb,
            user_ids=data.user_ids[users].tolist(),
            seen=data.matrix[users],
            n_boot=n_boot,
            seed=seed,
            label=label,
            **extra,
        )

    # ------------------------------------------------------------------ live events

    def add_events(
        self, user_id: str, item_id: str, event_type: str, ts: Any = None
    ) -> dict[str, Any]:
        """Add one event to a user's live history (memory only: the caller makes it durable).

        The next list of this user (in every session sharing this model) is scored from the
        training history plus the live events when the model scores from history
        (``live_history``); a user unknown to training gets a live history of their own.
        Models that cannot (``live_history`` False) keep their training score, and
        :meth:`recommend` says so in its notes.

        Raises:
            BadInputError: an item unknown to the run, or an unknown event type.
        """
        del ts  # recency is not used by the scores; kept for the API's record
        data = self.data
        weights = data.weights
        if event_type not in weights:
            raise BadInputError(
                f"unknown event type {event_type!r}",
                hint=f"use one of: {', '.join(sorted(weights))}",
            )
        item = data.item_index.get(str(item_id), -1)
        if item < 0:
            raise BadInputError(
                f"item {str(item_id)[:100]!r} is not in the catalogue of run {self.run_id}",
                hint="events can name only items the run was trained with",
            )
        w = float(weights[event_type])
        live = self._s.live
        with live.lock:
            u = data.user_index.get(str(user_id), -1)
            if u < 0:
                u = live.new_users.setdefault(str(user_id), data.n_users + len(live.new_users))
            if w > 0:
                row = live.weights.setdefault(u, {})
                row[item] = row.get(item, 0.0) + w
                kinds = live.kinds.setdefault(u, {})
                order = [k for k, _ in _VERBS]
                old = kinds.get(item)
                if event_type in order and (
                    old is None or order.index(event_type) < order.index(old)
                ):
                    kinds[item] = event_type
            n_live = len(live.weights.get(u, {}))
        return {"user": str(user_id), "known_user": u < data.n_users, "live_events": n_live}


def _write_csv(path: Path, frames: Any) -> int:
    """Export frames appended to one CSV (header once; text cells formula-escaped); rows."""
    # lazy: ltrec.analytics loads ibis; only a CSV export needs its cell escaping
    from ltrec.analytics.export import escape_cell

    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        for frame in frames:
            text = frame.copy()
            for col in _TEXT_COLUMNS:
                text[col] = text[col].astype(object).map(escape_cell)
            text.to_csv(fh, index=False, header=rows == 0)
            rows += len(frame)
        if rows == 0:  # no user: the header alone, as an empty frame writes it
            pd.DataFrame(columns=EXPORT_COLUMNS).to_csv(fh, index=False)
    return rows


def _write_parquet(path: Path, frames: Any) -> int:
    """Export frames as the row groups of one Parquet file (the first frame's schema); rows."""
    # lazy: pyarrow.parquet (~0.2 s to import) serves only a Parquet export
    import pyarrow.parquet as pq

    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for frame in frames:
            if not len(frame):
                continue
            if writer is None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = pq.ParquetWriter(path, table.schema)
            else:
                table = pa.Table.from_pandas(frame, schema=writer.schema, preserve_index=False)
            writer.write_table(table)
            rows += len(frame)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # no user: an empty file with the columns
        pd.DataFrame(columns=EXPORT_COLUMNS).to_parquet(path, index=False)
    return rows


def _head_batch(
    users: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int, setting: str
) -> RankedBatch:
    """The base order's lists from pools already in base order (what :class:`BaseOrder` gives
    for each row, without building a pool object per user)."""
    n = users.size
    items = np.atleast_2d(items)[:, :k]
    scores = np.atleast_2d(scores)[:, :k].astype(float)
    # Pools pad at the end (-1 / -inf): a full last column means every row is full.
    if items.shape[1] == k and (items[:, -1] >= 0).all() and np.isfinite(scores[:, -1]).all():
        ranks = np.arange(1, k + 1)
        reasons = ("base rank",) * k
        lists = [Ranked(items[r], scores[r], scores[r], ranks, reasons, setting) for r in range(n)]
        out_items, out_scores = items.astype(np.int64, copy=False), scores
        out_ranks = np.empty((n, k), dtype=np.int64)
        out_ranks[:] = ranks
    else:
        out_items = np.full((n, k), PAD, dtype=np.int64)
        out_scores = np.full((n, k), np.nan)
        out_ranks = np.zeros((n, k), dtype=np.int64)
        lists = []
        for r in range(n):
            ok = (items[r] >= 0) & np.isfinite(scores[r])
            it, sc = items[r][ok], scores[r][ok]
            m = it.size
            out_items[r, :m] = it
            out_scores[r, :m] = sc
            ranks = np.arange(1, m + 1)
            out_ranks[r, :m] = ranks
            lists.append(Ranked(it, sc, sc.copy(), ranks, ("base rank",) * m, setting=setting))
    return RankedBatch(
        users=np.asarray(users, dtype=object),
        items=out_items,
        base_scores=out_scores.copy(),
        scores=out_scores,
        base_ranks=out_ranks,
        lists=tuple(lists),
    )
