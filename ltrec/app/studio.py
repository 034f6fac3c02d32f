"""The Rerank Studio's logic, without Streamlit: pick a user, compare lists, explain, aggregate.

The page (``app_pages/rerank_studio.py``) is widgets around these pure functions:

* :class:`Catalogue`: per-item display facts aligned with the model's item indices (title,
  category, price, a bucket badge, popularity rank, shrunk conversion).
* user pickers: :func:`search_users`, :func:`random_user` (from a segment),
  :func:`niche_users` (high tail affinity, from the store's ``user_derived`` table).
* :func:`history_frame`: a user's recent history.
* :func:`compare_lists`: the base list and one :class:`~ltrec.rerank.base.Ranked` per setting,
  with :func:`list_frame` (one row per item: badges, rank change against the base, why it is
  there: the pipeline's reasons) and per-list :class:`~ltrec.rerank.base.ListStats`.
* :func:`sample_users`, :func:`evaluate_setting`, :func:`compare_settings`: aggregate metrics
  of each setting over a seeded sample of test users, with intervals and deltas.
* :func:`all_lists`: the export, in the layout of ``ltrec export``.

Every list comes from the one pipeline, :class:`~ltrec.app.pipeline.RecSession` (pools,
re-ranking, reasons), so the Studio shows what ``ltrec recommend/export`` and the API give.
Item and user arguments are integer indices into the run's vocabularies (the model's, the
:class:`~ltrec.rerank.base.Context`'s and the ``InteractionData``'s, which all agree).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ltrec.app.pipeline import EXPORT_COLUMNS, RecSession, reasons_text
from ltrec.config import MAX_LOSS  # the accuracy a recommendation may cost
from ltrec.definitions import pct, signed_pct
from ltrec.errors import BadInputError
from ltrec.evaluation import compare_many, evaluate
from ltrec.evaluation import metrics as M
from ltrec.models.train import split_targets
from ltrec.rerank.base import Context, ListStats, Ranked, RankedBatch
from ltrec.rerank.pipeline import to_json
from ltrec.rerank.strategies import BaseOrderConfig, StrategyConfig, TailBoostConfig
from ltrec.rerank.sweep import Pools, min_strength_for_tail_share

__all__ = ["EXPORT_COLUMNS"]
#: Bootstrap resamples for the aggregate's intervals and paired deltas.
N_BOOT = 200


# --------------------------------------------------------------------------------------------
# the catalogue as the page shows it


@dataclass(frozen=True)
class Catalogue:
    """Display facts per item, index-aligned with the run's vocabulary.

    Attributes:
        item_ids, titles, categories: [n] strings.
        price: [n] floats (NaN unknown).
        badge: [n] the context's bucket names (head / tail, or head / mid / tail with two
            cuts): the same buckets every other page shows.
        pop_rank: [n] :func:`ltrec.definitions.popularity_rank` (1 = most popular).
        conversion: [n] view->purchase conversion shrunk by an empirical-Bayes beta prior
            (``ltrec.analytics.conversion``); NaN for items never viewed.
    """

    item_ids: np.ndarray
    titles: np.ndarray
    categories: np.ndarray
    price: np.ndarray
    badge: np.ndarray
    pop_rank: np.ndarray
    conversion: np.ndarray

    @classmethod
    def build(
        cls,
        data: Any,
        context: Context,
        conversion: Mapping[str, float] | pd.Series | None = None,
    ) -> Catalogue:
        """From ``InteractionData``, its re-ranking context and shrunk conversion by item id.

        Args:
            data: the run's ``InteractionData``.
            context: its :class:`Context` (popularity, buckets, price).
            conversion: item id -> shrunk view->purchase rate (missing: NaN).
        """
        ids = np.asarray(data.item_ids, dtype=str)
        codes = context.bucket
        names = np.array(context.bucket_names, dtype=object)
        cat_names = np.array(list(data.category_names), dtype=object)
        cats = cat_names[np.asarray(data.item_category, dtype=np.int64)]
        cats = np.where(cats == "", "(none)", cats)
        conv = np.full(ids.size, np.nan)
        if conversion is not None:
            series = pd.Series(conversion, dtype=float)
            series.index = series.index.astype(str)
            conv = series.reindex(ids).to_numpy(dtype=float)
        return cls(
            item_ids=ids,
            titles=np.asarray(data.item_titles, dtype=object),
            categories=cats.astype(object),
            price=np.asarray(context.price, dtype=float),
            badge=names[codes],
            pop_rank=context.popularity_rank,
            conversion=conv,
        )

    def frame(self, items: np.ndarray) -> pd.DataFrame:
        """title, category, price, bucket, pop_rank, conversion of ``items`` (in order)."""
        items = np.asarray(items, dtype=np.int64)
        return pd.DataFrame(
            {
                "item_id": self.item_ids[items],
                "title": self.titles[items],
                "category": self.categories[items],
                "price": self.price[items],
                "bucket": self.badge[items],
                "pop_rank": self.pop_rank[items],
                "conversion": self.conversion[items],
            }
        )


# --------------------------------------------------------------------------------------------
# choosing a user


def search_users(user_ids: Sequence[str] | np.ndarray, query: str, limit: int = 50) -> list[str]:
    """User ids containing ``query`` (case-insensitive); exact match first, then sorted."""
    q = query.strip().lower()
    if not q:
        return []
    ids = np.asarray(user_ids, dtype=str)
    low = np.char.lower(ids)
    hits = ids[np.char.find(low, q) >= 0]
    exact = [u for u in hits if u.lower() == q]
    rest = sorted(u for u in hits if u.lower() != q)
    return (exact + rest)[: max(int(limit), 0)]


def segment_values(users: pd.DataFrame, column: str) -> list[str]:
    """The distinct values of a segment column (as text, sorted), for a picker."""
    if column not in users.columns or column == "user_id":
        raise BadInputError(f"unknown segment column {column!r}")
    vals = users[column].dropna().astype(str)
    return sorted(vals.unique().tolist())


def random_user(
    users: pd.DataFrame,
    column: str | None = None,
    value: str | None = None,
    *,
    seed: int = 0,
    known: Sequence[str] | np.ndarray | None = None,
) -> str | None:
    """A seeded random user id, optionally from the segment ``column == value``.

    Args:
        users: one row per user with ``user_id`` and segment columns.
        column, value: the segment (None: any user).
        seed: the draw (the page increments it on "another one").
        known: restrict to these ids (the model's users); None: no restriction.

    Returns:
        A user id, or None when the segment is empty.
    """
    pool = users
    if column is not None:
        if column not in users.columns:
            raise BadInputError(f"unknown segment column {column!r}")
        pool = users[users[column].astype(str) == str(value)]
    col = pool["user_id"].astype(str)
    if known is not None:
        col = col[col.isin(set(np.asarray(known, dtype=str).tolist()))]
    ids = np.sort(col.unique())
    if ids.size == 0:
        return None
    return str(ids[np.random.default_rng(seed).integers(ids.size)])


def niche_users(users: pd.DataFrame, *, min_interactions: int = 5, top: int = 50) -> pd.DataFrame:
    """Users with the highest share of interactions on tail items (niche taste).

    Reads ``tail_share`` and ``interactions`` of the store's ``user_derived`` table (DESIGN §2:
    tail affinity = share of the user's interactions on tail items). Users with fewer than
    ``min_interactions`` interactions are left out, so a single tail click is not a "taste".

    Returns:
        ``user_id, tail_share, interactions`` sorted by tail share, then interactions, desc.
    """
    need = {"user_id", "tail_share", "interactions"}
    if not need <= set(users.columns):
        return pd.DataFrame(columns=sorted(need))
    df = users.loc[users["interactions"].fillna(0) >= min_interactions]
    df = df[["user_id", "tail_share", "interactions"]].dropna(subset=["tail_share"])
    df = df.sort_values(["tail_share", "interactions", "user_id"], ascending=[False, False, True])
    return df.head(top).reset_index(drop=True)


def default_user(users: pd.DataFrame, known: Any) -> str | None:
    """The user the Studio opens on when the URL names none: a well-documented niche taste.

    A demo should open where re-ranking visibly matters: among users with at least 10
    interactions, the one with the highest tail share (ties: more interactions, then id);
    a seeded random user when the dataset has no derived tail shares.
    """
    niche = niche_users(users, min_interactions=10)
    niche = niche[niche["user_id"].isin(set(np.asarray(known, dtype=str).tolist()))]
    if len(niche):
        return str(niche["user_id"].iloc[0])
    return random_user(users, seed=0, known=known)


def opening_user(
    session: RecSession,
    users: pd.DataFrame,
    setting: StrategyConfig,
    k: int,
    *,
    top: int = 50,
) -> str | None:
    """The user the Studio opens on when it opens on a recommended setting: among the users
    :func:`default_user` ranks first (niche taste, at least 10 interactions), the first whose
    top ``k`` the setting changes, so the first two lists differ; :func:`default_user` when the
    setting changes none of them."""
    known = session.data.user_ids
    niche = niche_users(users, min_interactions=10, top=top)
    index = {str(u): i for i, u in enumerate(np.asarray(known, dtype=str).tolist())}
    ids = [u for u in niche["user_id"].astype(str) if u in index]
    if ids:
        rows = np.array([index[u] for u in ids], dtype=np.int64)
        items, scores = session.with_config(BaseOrderConfig(pool=setting.pool)).pools(rows)
        base = session.with_config(BaseOrderConfig(pool=setting.pool))
        before = base.rerank_pools(rows, items, scores, k).items
        after = _rerank(session.with_config(setting), rows, items, scores, k).items
        changed = np.flatnonzero((before != after).any(axis=1))
        if changed.size:
            return ids[int(changed[0])]
    return default_user(users, known)


def history_frame(
    data: Any, catalogue: Catalogue, user: int, n: int = 10, cur: Any = None
) -> pd.DataFrame:
    """The user's ``n`` most recent training items: when, title, category, bucket, event weight.

    ``last_seen`` is the pair's last training event (any event type), read from the split's
    training events when ``data`` has a split (else from ``data.last_ts``, epoch seconds).
    With ``cur``, a cursor on the dataset's store, and a split with one global cut-off, one
    query reads this user's events for these items: the split's training frame (every training
    event, gigabytes at 10M events) is never loaded. ``weight`` is the summed event weight of
    the pair (view 1, cart 3, purchase 5 by default).
    """
    hist = data.history(int(user))[: max(int(n), 0)]
    df = catalogue.frame(hist)
    lo, hi = data.matrix.indptr[user], data.matrix.indptr[user + 1]
    w = dict(zip(data.matrix.indices[lo:hi].tolist(), data.matrix.data[lo:hi], strict=True))
    split = getattr(data, "split", None)
    if split is not None and cur is not None and split.config.last_n is None and split.n_train:
        last = _last_training_events(cur, str(data.user_ids[user]), df["item_id"], split.cutoff)
        seen = pd.to_datetime(last.reindex(df["item_id"]).to_numpy())
    elif split is not None and len(split.train):
        train = split.train
        mine = train[train["user_id"].astype(str) == str(data.user_ids[user])]
        last = mine.groupby(mine["item_id"].astype(str))["ts"].max()
        seen = pd.to_datetime(last.reindex(df["item_id"]).to_numpy())
    else:
        ts = data.last_ts
        lt = dict(zip(ts.indices[lo:hi].tolist(), ts.data[lo:hi], strict=True))
        seen = pd.to_datetime([lt.get(int(i), np.nan) for i in hist], unit="s")
    df.insert(0, "last_seen", seen)
    df["weight"] = [float(w.get(int(i), 0.0)) for i in hist]
    return df


def _last_training_events(
    cur: Any, user_id: str, item_ids: pd.Series, cutoff: pd.Timestamp
) -> pd.Series:
    """Per item of ``item_ids``: the user's last event before ``cutoff`` (the training events
    of a global cut-off split: ``ltrec.evaluation.split.store_split``'s rule)."""
    frame = cur.execute(
        "SELECT CAST(item_id AS VARCHAR) AS item_id, max(ts) AS ts FROM events "
        "WHERE CAST(user_id AS VARCHAR) = ? AND CAST(item_id AS VARCHAR) IN "
        "(SELECT unnest(?::VARCHAR[])) AND ts IS NOT NULL AND ts < ? GROUP BY 1",
        [user_id, [str(i) for i in item_ids], pd.Timestamp(cutoff).to_pydatetime()],
    ).df()
    return frame.set_index("item_id")["ts"]


# --------------------------------------------------------------------------------------------
# lists side by side


@dataclass(frozen=True)
class StudioLists:
    """One user's lists: the base order's top K and one list per setting.

    Attributes:
        base: the base model's top K (no strategy, no rules).
        lists: one :class:`Ranked` per setting, in the order given.
        stats: per setting, :class:`ListStats` against ``base``.
    """

    base: Ranked
    lists: tuple[Ranked, ...]
    stats: tuple[ListStats, ...]


def compare_lists(
    session: RecSession,
    items: np.ndarray,
    scores: np.ndarray,
    settings: Sequence[StrategyConfig],
    user: int | None,
    k: int,
) -> StudioLists:
    """Re-rank one user's pool (``items``/``scores``: one row of :meth:`RecSession.pools`)
    under each setting; per-list stats against the base top K.

    Each setting sees the first ``setting.pool`` candidates of the pool (its own M).
    """
    users = np.array([-1 if user is None else int(user)])
    row_i, row_s = np.atleast_2d(items), np.atleast_2d(scores)
    base = (
        session.with_config(BaseOrderConfig(pool=row_i.shape[1]))
        .rerank_pools(users, row_i, row_s, k)
        .row(0)
    )
    lists, stats = [], []
    for cfg in settings:
        ranked = _rerank(session.with_config(cfg), users, row_i, row_s, k).row(0)
        lists.append(ranked)
        stats.append(ranked.stats(session.context, base=base))
    return StudioLists(base, tuple(lists), tuple(stats))


def _rerank(
    session: RecSession, users: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int
) -> RankedBatch:
    """The setting's lists from the shared pools, or from its own pools when it adds tail
    candidates (those depend on the setting, so the shared pools lack them)."""
    if session.tail_pool:
        items, scores = session.pools(users)
    return session.rerank_pools(users, items, scores, k)


def why_texts(session: RecSession, user: int, ranked: Ranked) -> list[str]:
    """Per listed item, its reasons as one text (what ``ltrec export`` writes in ``reasons``)."""
    batch = RankedBatch(
        users=np.array([user], dtype=object),
        items=np.atleast_2d(ranked.items),
        base_scores=np.atleast_2d(ranked.base_scores),
        scores=np.atleast_2d(ranked.scores),
        base_ranks=np.atleast_2d(ranked.base_ranks),
        lists=(ranked,),
    )
    return [reasons_text(x) for x in session.reasons(np.array([user]), batch)[0]]


def change_label(ranked: Ranked, k: int) -> list[str]:
    """Per item, its change against the base: "=", "▲ 3", "▼ 2", "new (was 27)", "pinned".

    "new" marks an item outside the base top ``k``; its rank in the pool is shown.
    """
    out = []
    for r, br in enumerate(ranked.base_ranks.tolist(), start=1):
        if br <= 0:
            out.append("new (pinned)")
        elif br > k:
            out.append(f"new (was {br})")
        elif br == r:
            out.append("=")
        elif br > r:
            out.append(f"▲ {br - r}")
        else:
            out.append(f"▼ {r - br}")
    return out


def list_frame(
    ranked: Ranked,
    catalogue: Catalogue,
    k: int,
    why: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per listed item, for ``st.dataframe``.

    Columns: ``rank, change, title, category, price, bucket, pop_rank, conversion,
    base_score, score, moved, new, reason, why, item_id``. ``moved``: the rank differs from
    the base rank; ``new``: not in the base top ``k``.
    """
    df = catalogue.frame(ranked.items)
    df.insert(0, "rank", np.arange(1, len(ranked) + 1))
    df.insert(1, "change", change_label(ranked, k))
    df["base_score"] = ranked.base_scores
    df["score"] = ranked.scores
    ranks = np.arange(1, len(ranked) + 1)
    df["new"] = (ranked.base_ranks <= 0) | (ranked.base_ranks > k)
    df["moved"] = ranked.base_ranks != ranks
    df["reason"] = list(ranked.reasons)
    df["why"] = list(why) if why is not None else [""] * len(ranked)
    cols = ["rank", "change", "title", "category", "price", "bucket", "pop_rank", "conversion"]
    cols += ["base_score", "score", "moved", "new", "reason", "why", "item_id"]
    return df[cols]


# --------------------------------------------------------------------------------------------
# aggregate over a user sample


@dataclass(frozen=True)
class Sample:
    """A seeded sample of test users with their test items and candidate pools.

    Attributes:
        users: [n] user indices. test: their test items (one array per user).
        items, scores: [n, M] the base model's candidate pools.
        seed: the sample's seed.
    """

    users: np.ndarray
    test: tuple[np.ndarray, ...]
    items: np.ndarray
    scores: np.ndarray
    seed: int

    def __len__(self) -> int:
        return int(self.users.size)

    def pools(self) -> Any:
        """As :class:`ltrec.rerank.sweep.Pools` (for sweeps and solvers)."""
        return Pools(self.users, self.items, self.scores)


def sample_users(session: RecSession, n: int, *, seed: int = 0, m: int = 200) -> Sample:
    """``n`` test users drawn with ``seed`` (all when fewer), and their top-``m`` pools."""
    users, test = split_targets(session.data)
    if users.size == 0:
        raise BadInputError(
            "the run's split has no test users to evaluate on",
            hint="the data needs target events (purchases) after the split cut-off",
        )
    rows = np.arange(users.size)
    if n < users.size:
        rows = np.sort(np.random.default_rng(seed).choice(users.size, int(n), replace=False))
    chosen = users[rows]
    items, scores = session.with_config(BaseOrderConfig(pool=int(m))).pools(chosen)
    return Sample(
        users=chosen,
        test=tuple(test[r] for r in rows),
        items=np.atleast_2d(items),
        scores=np.atleast_2d(scores).astype(float),
        seed=seed,
    )


def rerank_sample(
    session: RecSession, config: StrategyConfig, sample: Sample, k: int
) -> RankedBatch:
    """Re-rank every sampled user's pool (its first ``config.pool`` candidates) to ``k``."""
    return _rerank(session.with_config(config), sample.users, sample.items, sample.scores, k)


def evaluate_setting(
    session: RecSession,
    config: StrategyConfig,
    sample: Sample,
    k: int,
    *,
    n_boot: int = N_BOOT,
    label: str = "",
) -> Any:
    """Every metric of the evaluation core for ``config`` on the sample (an ``EvalResult``).

    Overlap and RBO are against the base order's top ``k`` of the same pools; the tail is the
    context's tail; intervals are bootstrap intervals over the sampled users (seeded).
    """
    context, data = session.context, session.data
    recs = rerank_sample(session, config, sample, k).items
    base = sample.items[:, :k]
    return evaluate(
        recs,
        list(sample.test),
        item_pop=context.popularity,
        k=k,
        tail_mask=context.tail,
        item_category=data.item_category,
        base_recs=base,
        user_ids=data.user_ids[sample.users].tolist(),
        seen=data.matrix[sample.users],
        n_boot=n_boot,
        seed=sample.seed,
        label=label or config.label(),
    )


def compare_settings(
    results: Mapping[str, Any], base: str, *, n_boot: int = N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """Deltas of every setting against ``results[base]`` (paired intervals, p-values)."""
    return compare_many(results, base, n_boot=n_boot, seed=seed)


# --------------------------------------------------------------------------------------------
# export


def all_lists(
    session: RecSession,
    config: StrategyConfig,
    k: int,
    *,
    users: np.ndarray | None = None,
    batch_size: int = 2048,
) -> pd.DataFrame:
    """Every user's (or ``users``') list under ``config``: the rows ``ltrec export`` writes."""
    return session.with_config(config).table(k, users=users, batch_size=batch_size)


# --------------------------------------------------------------------------------------------
# what the Studio opens on: the best evaluated run against a recommended setting


def best_run(runs: Sequence[Any]) -> str | None:
    """The run the Studio opens on: the best NDCG@K (each run's own K) among fresh runs with a
    test split; then any run with a test split; then the newest run (``runs``: ``RunInfo``s,
    any order). Ties: the newer run. A run without a stored NDCG ranks last in its group."""

    def ndcg(r: Any) -> float:
        k = r.manifest.get("k") or 10
        value = ((r.metrics or {}).get(f"ndcg@{k}") or {}).get("mean")
        return float(value) if value is not None and np.isfinite(value) else -np.inf

    newest_first = sorted(runs, key=lambda r: str(r.manifest.get("created_at") or r.run_id))[::-1]
    for group in (
        [r for r in newest_first if not r.all_data and not r.stale],
        [r for r in newest_first if not r.all_data],
    ):
        if group:
            return max(group, key=ndcg).run_id  # max keeps the first (newest) of equals
    return newest_first[0].run_id if newest_first else None


#: The strength resolution of the Studio's sliders and of the recommended setting: the tail
#: boost moves lists at a few thousandths on sharp models, so 0.05 steps would skip the answer.
STRENGTH_STEP = 0.001


def round_up(strength: float, step: float = STRENGTH_STEP) -> float:
    """``strength`` rounded up to the slider step (the tail share never falls as the strength
    grows, so a rounded-up solver answer still reaches its target)."""
    return round(float(np.ceil(strength / step - 1e-9)) * step, 6)


@dataclass(frozen=True)
class Recommendation:
    """The setting the Studio proposes (and opens column 2 on).

    Attributes:
        setting: the setting's JSON dict (a tail boost with its strength).
        label: the setting's short label.
        strength: its strength (a multiple of :data:`STRENGTH_STEP`).
        target: the stated tail share; max_loss: the largest relative NDCG loss allowed.
        reached: whether the setting reaches ``target`` within ``max_loss``.
        tail_share, base_tail_share: mean tail share per list (APLT) of the setting / the base.
        ndcg, base_ndcg: NDCG@K of the setting / the base order on the sample.
        users: sampled test users. k: list length.
        message: the answer in one sentence.
    """

    setting: dict[str, Any]
    label: str
    strength: float
    target: float
    max_loss: float
    reached: bool
    tail_share: float
    base_tail_share: float
    ndcg: float
    base_ndcg: float
    users: int
    k: int
    message: str

    @property
    def loss(self) -> float:
        """Relative NDCG loss against the base order (0 when the base NDCG is 0)."""
        return 1.0 - self.ndcg / self.base_ndcg if self.base_ndcg > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "loss": self.loss}


def recommend(
    sample: Sample,
    context: Context,
    k: int,
    *,
    target: float = 0.3,
    max_loss: float = MAX_LOSS,
    config: StrategyConfig | None = None,
    grid: int = 40,
) -> Recommendation:
    """The smallest boost reaching ``target`` tail share within ``max_loss`` NDCG loss.

    One rule, in words: the solver's smallest strength reaching the target
    (:func:`ltrec.rerank.sweep.min_strength_for_tail_share`, rounded up to the slider step)
    when it costs at most ``max_loss`` of the base order's NDCG@K on the sample; otherwise
    (the target costs more, is out of reach, or the base order already reaches it) the
    strength with the highest tail share that stays within ``max_loss``, searched on a
    geometric grid of ``grid`` strengths (ascending, stopping at twice the allowed loss).
    Lists are the sweep's (``Pools.rerank``) and NDCG is the evaluation core's, so the sweep
    chart shows the same point.
    """
    cfg = config or TailBoostConfig()
    pools = sample.pools()
    # NDCG alone, by the evaluation core's functions (the full scorer computes ~20 metrics
    # per point: most of the cost of the search)
    n_items = int(np.asarray(context.popularity).size)
    truth = M.as_truth(list(sample.test), len(sample), n_items)
    n_rel = np.diff(truth.indptr)

    def measure(s: float) -> tuple[float, float]:
        ranked = pools.rerank(cfg.with_strength(s), context, k)
        hits = M.hit_matrix(M.clean_recs(ranked.items, k, n_items), truth)
        return float(np.nanmean(M.ndcg(hits, n_rel))), ranked.tail_share(context)

    base_ndcg, base_tail = measure(0.0)

    def within(ndcg: float) -> bool:
        return base_ndcg <= 0 or ndcg >= (1.0 - max_loss) * base_ndcg - 1e-12

    answer = min_strength_for_tail_share(cfg, target, pools, context, k, tol=STRENGTH_STEP / 2)
    top = float(type(cfg).STRENGTH_MAX)
    if answer.reachable and answer.strength:
        s = min(round_up(answer.strength), top)
        ndcg, tail = measure(s)
        if within(ndcg):
            return _recommendation(
                cfg.with_strength(s), "target", target, max_loss, (tail, base_tail),
                (ndcg, base_ndcg), len(sample), k,
            )  # fmt: skip
        top = s  # beyond the target's strength the loss only grows
    # the most tail within the budget
    strengths = np.unique(
        [round_up(x) for x in np.geomspace(STRENGTH_STEP, max(top, STRENGTH_STEP), grid)]
    )
    best = (0.0, base_ndcg, base_tail)
    for s in strengths:  # ascending
        ndcg, tail = measure(float(s))
        if within(ndcg) and tail > best[2]:
            best = (float(s), ndcg, tail)
        if base_ndcg > 0 and ndcg < (1.0 - 2 * max_loss) * base_ndcg:
            break  # twice the allowed loss: stronger boosts only lose more
    s, ndcg, tail = best
    why = "none" if s == 0 else ("base" if base_tail >= target else "budget")
    return _recommendation(
        cfg.with_strength(s), why, target, max_loss, (tail, base_tail), (ndcg, base_ndcg),
        len(sample), k,
    )  # fmt: skip


def _recommendation(
    cfg: StrategyConfig,
    why: str,
    target: float,
    max_loss: float,
    tails: tuple[float, float],
    ndcgs: tuple[float, float],
    users: int,
    k: int,
) -> Recommendation:

    (tail, base_tail), (ndcg, base_ndcg) = tails, ndcgs
    name = cfg.label().replace("_", " ")  # "tail boost beta=0.007", as the page labels it
    loss = 1.0 - ndcg / base_ndcg if base_ndcg > 0 else 0.0
    goal, budget = pct(target, 0), pct(max_loss, 0)
    reason = {
        "target": f"the smallest boost that reaches a {goal} tail share within {budget} "
        f"NDCG@{k} loss",
        "none": f"every boost costs more than {budget} NDCG@{k}: the base order stays",
        "base": f"the base order already reaches {goal}; this is the most tail within "
        f"{budget} NDCG@{k} loss",
        "budget": f"a {goal} tail share costs more than {budget} NDCG@{k}; this is the most "
        "tail within that loss",
    }[why]
    return Recommendation(
        setting=json.loads(to_json(cfg)),
        label=cfg.label(),
        strength=float(cfg.strength),
        target=float(target),
        max_loss=float(max_loss),
        reached=why == "target",
        tail_share=float(tail),
        base_tail_share=float(base_tail),
        ndcg=float(ndcg),
        base_ndcg=float(base_ndcg),
        users=int(users),
        k=int(k),
        message=f"{name}: tail share {pct(base_tail)} → {pct(tail)}, NDCG@{k} "
        f"{signed_pct(-loss)} ({users} test users): {reason}.",
    )
