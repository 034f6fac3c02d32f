"""Streamlit-side helpers of the Rerank Studio: cached resources, URL state, setting widgets.

Caching (nothing large is ever hashed: every key is a short string or number):

* :func:`studio_run` (``st.cache_resource``): a loaded run as a
  :class:`~ltrec.app.pipeline.RecSession` (the one pipeline of ``ltrec recommend/export`` and
  the API, so the Studio's lists and reasons are theirs) with the display
  :class:`~ltrec.app.studio.Catalogue`, keyed by (dataset, file version, run id).
* :func:`user_pool` (``st.cache_data``): one user's candidate pool, keyed by (dataset, file
  version, run id, user, M).
* :func:`sample`, :func:`evaluated`, :func:`swept` (``st.cache_resource``): the user sample and
  the per-setting results over it, keyed by the setting's JSON, so moving one slider recomputes
  one setting only.

URL keys (a link reproduces the view): ``run``, ``user``, ``k``, ``cols`` (2-4), ``c1.*`` ..
``c4.*`` (each column's setting in the pipeline's URL form, e.g. ``c2.strategy=tail_boost&
c2.beta=0.3``), ``sample`` (users in the aggregate), ``target`` (tail share for the solver),
``sweep`` (the column whose strategy is swept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import streamlit as st

from ltrec.analytics.export import to_csv
from ltrec.analytics.view import ViewParams
from ltrec.app import services
from ltrec.app import studio as logic
from ltrec.app.auth import Right
from ltrec.app.pipeline import RecSession
from ltrec.app.tune import tune
from ltrec.charts.metrics import metric_label, metrics_frame, metrics_table
from ltrec.charts.rerank import marks_frame, sweep_figure
from ltrec.charts.text import markdown_text
from ltrec.config import get_settings
from ltrec.definitions import BUCKET_COLOURS, bucket_tint, pct
from ltrec.errors import ConfigError, LtrecError
from ltrec.evaluation import compare
from ltrec.rerank import (
    STRATEGIES,
    BaseOrderConfig,
    StrategyConfig,
    TailBoostConfig,
    XQuADConfig,
    from_query,
    parse_config,
    to_json,
    to_query,
)
from ltrec.rerank.sweep import evaluation_scorer, min_strength_for_tail_share, sweep
from ltrec.ui import auth, cache, state
from ltrec.ui import models as lab
from ltrec.ui.bytecache import bounded
from ltrec.ui.models import fresh_check, runs

TTL_S = 3600
#: Byte budgets (MiB of pickles) of the caches whose values grow with the users: the users
#: table and every user's list as CSV (:mod:`ltrec.ui.bytecache`).
USERS_MB = 128
EXPORT_MB = 256
MIN_COLS, MAX_COLS = 2, 4
DEFAULTS: tuple[StrategyConfig, ...] = (
    BaseOrderConfig(),
    TailBoostConfig(beta=0.3),
    XQuADConfig(lam=0.5),
    TailBoostConfig(beta=1.0, signal="log_popularity"),
)
NAMES = {
    "none": "base order",
    "tail_boost": "tail boost",
    "tail_select": "tail boost, base order",
    "xquad": "xQuAD (popularity-aware)",
    "xquad_personal": "xQuAD (personalised tail appetite)",
    "calibration": "calibration (Steck)",
    "calibrated_popularity": "calibrated popularity (CP)",
    "mmr": "MMR (diversity)",
    "fair": "FA*IR (tail share floor)",
}
HELP = {
    "none": "The model's own order (business rules still apply).",
    "tail_boost": "s' = norm(s) + beta * b(i); b = tail flag or 1 - normalised log popularity.",
    "tail_select": "The tail boost's items (top K by norm(s) + beta * b(i)) listed in the base "
    "order: the same tail for less accuracy lost.",
    "xquad": "Popularity-aware xQuAD (Abdollahpouri et al. 2019): head and tail as two aspects; "
    "lambda trades relevance for covering the aspect the list lacks.",
    "calibration": "Calibrated recommendations (Steck 2018): greedy, lambda weighs the KL "
    "divergence to the user's own distribution over buckets or categories.",
    "xquad_personal": "Personalised xQuAD (Abdollahpouri et al. 2019): the tail aspect weighs "
    "each user's own tail share, so tail slots go to users who like the tail; shrink pulls short "
    "histories towards the shop's average.",
    "calibrated_popularity": "Calibrated popularity (Abdollahpouri et al. 2021): greedy, lambda "
    "weighs the Jensen-Shannon divergence between the list's head/mid/tail mix and the user's.",
    "mmr": "Maximal marginal relevance (Carbonell & Goldstein 1998): lambda weighs "
    "dissimilarity to the items already chosen.",
    "fair": "FA*IR (Zehlike et al. 2017): tail items as the protected group, a minimum share p "
    "at every prefix of the list.",
}


# --------------------------------------------------------------------------------------------
# cached resources


@dataclass
class StudioRun:
    """A loaded run (the pipeline's session) and what the Studio derives from it once."""

    run_id: str
    session: RecSession
    catalogue: logic.Catalogue

    @property
    def model(self) -> Any:
        return self.session.model

    @property
    def manifest(self) -> dict[str, Any]:
        return self.session.run.manifest

    @property
    def data(self) -> Any:
        return self.session.data

    @property
    def context(self) -> Any:
        return self.session.context


def list_runs(name: str) -> list[Any]:
    """The dataset's runs, newest first (cached until the data or the runs change)."""
    return list(reversed(runs(name)))


def active_run_id(name: str, runs: list[Any]) -> str | None:
    """The Model Lab's active run when it has one, else the best evaluated run by NDCG@K
    (:func:`ltrec.app.studio.best_run`: a production run, fitted on all data, has no test split
    to measure settings on), else the newest run."""
    try:
        chosen = lab.active_run(name)
    except LtrecError:
        chosen = None
    rid = getattr(chosen, "run_id", chosen)
    if isinstance(rid, str) and any(r.run_id == rid for r in runs):
        return rid
    return logic.best_run(runs)  # the best evaluated run, not merely the newest


def no_test_split(info: Any) -> str | None:
    """One sentence when ``info`` (a RunInfo) is a production run: nothing to measure on."""
    if not info.all_data:
        return None
    source = info.manifest.get("from_run")
    pick = f"pick its source run {source}" if source else "pick an evaluation run"
    return (
        f"Run {info.run_id} was fitted on every event (a production run), so no held-out data is "
        f"left to measure settings on: the lists above are its real lists; {pick} to measure."
    )


def remember_run(name: str, run_id: str) -> None:
    """Make the Studio's run the Model Lab's active run too (one active model per session)."""
    # choosing the active model is an analyst's; a viewer's pick stays the Studio's own
    if not auth.can(Right.SET_ACTIVE_MODEL):
        return
    if lab.active_run(name) != run_id:
        lab.set_active_run(name, run_id)


@st.cache_resource(max_entries=2, show_spinner=False, ttl=TTL_S)
def _studio_run(name: str, version: str, run_id: str) -> StudioRun:
    del version  # part of the cache key only

    # staleness is checked by studio_run on every call, outside the cache
    session = RecSession.open(name, run_id, data_dir=state.data_root(), allow_stale=True)
    conv = None
    try:
        frame = cache.view("item_conversion", name, ViewParams()).frame
        conv = pd.Series(frame["shrunk"].to_numpy(float), index=frame["item_id"].astype(str))
    except LtrecError:
        conv = None
    return StudioRun(
        run_id=run_id,
        session=session,
        catalogue=logic.Catalogue.build(session.data, session.context, conv),
    )


def studio_run(name: str, run_id: str, *, allow_stale: bool = False) -> StudioRun:
    """The loaded run ``run_id`` of dataset ``name`` (cached per dataset file version).

    Raises:
        StaleRunError: the dataset changed since the run was trained (unless ``allow_stale``).
    """
    fresh_check(name, run_id, allow_stale=allow_stale)  # a re-import must refuse a cached run
    return _studio_run(name, state.version(name), run_id)


@bounded(USERS_MB, TTL_S)
def _users(name: str, root: str, version: str) -> pd.DataFrame:
    del root, version
    cur = state.cursor(name)
    try:
        users = cur.execute("SELECT * FROM users").df()
        has = cur.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'user_derived' "
            "AND database_name = current_database()"
        ).fetchall()[0][0]
        derived = cur.execute("SELECT * FROM user_derived").df() if has else None
    finally:
        cur.close()
    users["user_id"] = users["user_id"].astype(str)
    if derived is not None:
        derived["user_id"] = derived["user_id"].astype(str)
        keep = [c for c in derived.columns if c == "user_id" or c not in users.columns]
        users = users.merge(derived[keep], on="user_id", how="outer")
    return users


def users_table(name: str) -> pd.DataFrame:
    """Users with their segment columns and derived segments (tail affinity, ...), cached."""
    return _users(name, str(state.data_root()), state.version(name))


@st.cache_data(ttl=TTL_S, max_entries=512, show_spinner=False)
def _pool(name: str, version: str, run_id: str, user: int, m: int) -> tuple[np.ndarray, ...]:
    sr = _studio_run(name, version, run_id)
    items, scores = sr.session.with_config(BaseOrderConfig(pool=int(m))).pools(np.array([user]))
    return np.asarray(items[0]), np.asarray(scores[0], dtype=float)


def user_pool(name: str, run_id: str, user: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The base model's top ``m`` for one user (items, scores), seen items excluded."""
    items, scores = _pool(name, state.version(name), run_id, int(user), int(m))
    return items, scores


@st.cache_resource(max_entries=64, show_spinner=False, ttl=TTL_S)
def _user_lists(
    name: str, version: str, run_id: str, user: int, k: int, settings: tuple[str, ...]
) -> tuple[logic.StudioLists, tuple[pd.DataFrame, ...]]:
    sr = _studio_run(name, version, run_id)
    cfgs = [parse_config(x) for x in settings]
    m = max(c.pool for c in cfgs)
    items, scores = _pool(name, version, run_id, user, max(m, k))
    lists = logic.compare_lists(sr.session, items, scores, cfgs, user, k)
    frames = tuple(
        logic.list_frame(r, sr.catalogue, k, logic.why_texts(sr.session, user, r))
        for r in lists.lists
    )
    return lists, frames


def user_lists(
    name: str, run_id: str, user: int, k: int, settings: list[StrategyConfig]
) -> tuple[logic.StudioLists, tuple[pd.DataFrame, ...]]:
    """One user's lists under each setting (the pipeline's lists and reasons) and their
    display frames, cached per (user, K, settings): a rerun that changes nothing re-renders
    only. Treat the frames as read-only."""
    return _user_lists(
        name, state.version(name), run_id, int(user), int(k), tuple(to_json(c) for c in settings)
    )


@st.cache_resource(max_entries=8, show_spinner=False, ttl=TTL_S)
def _sample(name: str, version: str, run_id: str, n: int, seed: int, m: int) -> logic.Sample:
    sr = _studio_run(name, version, run_id)
    return logic.sample_users(sr.session, n, seed=seed, m=m)


def sample(name: str, run_id: str, n: int, seed: int, m: int) -> logic.Sample:
    """A seeded sample of ``n`` test users with their top-``m`` pools (cached)."""
    return _sample(name, state.version(name), run_id, int(n), int(seed), int(m))


@st.cache_resource(max_entries=64, show_spinner=False, ttl=TTL_S)
def _evaluated(
    name: str, version: str, run_id: str, n: int, seed: int, m: int, k: int, setting: str
) -> Any:
    sr = _studio_run(name, version, run_id)
    smp = _sample(name, version, run_id, n, seed, m)
    return logic.evaluate_setting(sr.session, parse_config(setting), smp, k)


def evaluated(name: str, run_id: str, n: int, seed: int, m: int, k: int, cfg: StrategyConfig):
    """Every metric of one setting over the user sample (an ``EvalResult``), cached."""
    return _evaluated(name, state.version(name), run_id, n, seed, m, k, to_json(cfg))


@st.cache_resource(max_entries=64, show_spinner=False, ttl=TTL_S)
def _compared(
    name: str, version: str, run_id: str, n: int, seed: int, m: int, k: int, base: str,
    setting: str,
) -> pd.DataFrame:  # fmt: skip

    res = _evaluated(name, version, run_id, n, seed, m, k, setting)
    ref = _evaluated(name, version, run_id, n, seed, m, k, base)
    return compare(res, ref, n_boot=logic.N_BOOT, seed=seed)


def compared(
    name: str,
    run_id: str,
    n: int,
    seed: int,
    m: int,
    k: int,
    settings: list[StrategyConfig],
    labels: list[str],
) -> pd.DataFrame:
    """Deltas of every column against the first (paired intervals), cached per pair, in the
    layout of :func:`ltrec.evaluation.compare_many`."""
    version = state.version(name)
    base = to_json(settings[0])
    frames = [
        _compared(name, version, run_id, n, seed, m, k, base, to_json(cfg)).assign(setting=lab)
        for lab, cfg in zip(labels[1:], settings[1:], strict=True)
    ]
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return out[["setting", *[c for c in out.columns if c != "setting"]]]


@st.cache_data(ttl=TTL_S, max_entries=256, show_spinner=False)
def _history(name: str, version: str, run_id: str, user: int, n: int) -> pd.DataFrame:
    sr = _studio_run(name, version, run_id)
    # the user's last-seen times come from the store: the split's training frame never loads
    return logic.history_frame(sr.data, sr.catalogue, user, n, cur=state.cursor(name))


def history(name: str, run_id: str, user: int, n: int = 10) -> pd.DataFrame:
    """The user's recent training history (cached per user)."""
    return _history(name, state.version(name), run_id, int(user), int(n))


def strength_grid(cfg: StrategyConfig) -> list[float]:
    """The strengths a sweep visits: 0 .. the strategy's maximum (tail boost up to 2)."""
    top = float(type(cfg).STRENGTH_MAX)
    if top <= 1:
        return [round(x, 3) for x in np.linspace(0, top, 11)]
    return [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0]


@st.cache_resource(max_entries=16, show_spinner=False, ttl=TTL_S)
def _swept(
    name: str, version: str, run_id: str, n: int, seed: int, m: int, k: int, setting: str
) -> Any:
    sr = _studio_run(name, version, run_id)
    smp = _sample(name, version, run_id, n, seed, m)
    cfg = parse_config(setting)
    scorer = evaluation_scorer(
        list(smp.test), item_pop=sr.context.popularity, k=k, tail_mask=sr.context.tail
    )
    return sweep(cfg, strength_grid(cfg), smp.pools(), sr.context, k, scorer)


def swept(name: str, run_id: str, n: int, seed: int, m: int, k: int, cfg: StrategyConfig):
    """The strength sweep of ``cfg``'s strategy (its other fields kept), cached by them."""
    key = to_json(cfg.with_strength(0.0))  # the strength itself does not change the sweep
    return _swept(name, state.version(name), run_id, n, seed, m, k, key)


@st.cache_data(ttl=TTL_S, max_entries=64, show_spinner=False)
def _solved(
    name: str, version: str, run_id: str, n: int, seed: int, m: int, k: int, setting: str,
    target: float,
) -> dict[str, Any]:  # fmt: skip

    sr = _studio_run(name, version, run_id)
    smp = _sample(name, version, run_id, n, seed, m)
    ans = min_strength_for_tail_share(setting, target, smp.pools(), sr.context, k)
    return ans.to_dict()


def solved(
    name: str, run_id: str, n: int, seed: int, m: int, k: int, cfg: StrategyConfig, target: float
) -> dict[str, Any]:
    """The smallest strength of ``cfg``'s strategy reaching ``target`` tail share (cached)."""
    key = to_json(cfg.with_strength(0.0))
    return _solved(name, state.version(name), run_id, n, seed, m, k, key, round(target, 4))


@st.cache_resource(max_entries=16, show_spinner=False, ttl=TTL_S)
def _recommended(
    name: str, version: str, run_id: str, n: int, seed: int, m: int, k: int, target: float
) -> logic.Recommendation:
    sr = _studio_run(name, version, run_id)
    smp = _sample(name, version, run_id, n, seed, m)
    return logic.recommend(smp, sr.context, k, target=target)


def recommended(
    name: str, run_id: str, n: int, seed: int, m: int, k: int, target: float
) -> logic.Recommendation:
    """The recommended setting (:func:`ltrec.app.studio.recommend`) on the user sample, cached."""
    return _recommended(
        name, state.version(name), run_id, int(n), int(seed), int(m), int(k), round(target, 4)
    )


#: The aggregate table's metrics, in order.
AGGREGATE_METRICS = ("ndcg", "recall", "aplt", "tail_recall", "arp", "coverage", "overlap")


@st.cache_resource(max_entries=32, show_spinner=False, ttl=TTL_S)
def _aggregate_figure(
    name: str, version: str, run_id: str, n: int, seed: int, m: int, k: int,
    settings: tuple[str, ...], labels: tuple[str, ...],
) -> Any:  # fmt: skip

    cfgs = [parse_config(x) for x in settings]
    results = {
        lab: _evaluated(name, version, run_id, n, seed, m, k, x)
        for lab, x in zip(labels, settings, strict=True)
    }
    deltas = compared(name, run_id, n, seed, m, k, cfgs, list(labels))
    keep = [f"{x}@{k}" for x in AGGREGATE_METRICS]
    table = metrics_frame(
        results, deltas, metrics=[x for x in keep if x in results[labels[0]].metrics]
    )
    return metrics_table(table, height=40 + 29 * len(table))


def aggregate_figure(
    name: str, run_id: str, n: int, seed: int, m: int, k: int,
    settings: list[StrategyConfig], labels: list[str],
) -> Any:  # fmt: skip
    """The aggregate table (every column's metrics with intervals and changes in words),
    built once per set of settings (a rerun re-sends it; building it is most of its cost)."""
    return _aggregate_figure(
        name, state.version(name), run_id, int(n), int(seed), int(m), int(k),
        tuple(to_json(c) for c in settings), tuple(labels),
    )  # fmt: skip


@st.cache_resource(max_entries=32, show_spinner=False, ttl=TTL_S)
def _sweep_figure(
    name: str, version: str, run_id: str, n: int, seed: int, m: int, k: int, swept_key: str,
    marks: tuple[tuple[str, str], ...], target: float,
) -> Any:  # fmt: skip

    result = _swept(name, version, run_id, n, seed, m, k, swept_key)
    shown = {lab: _evaluated(name, version, run_id, n, seed, m, k, x) for lab, x in marks}
    return sweep_figure(result, marks_frame(shown), target=target)


def sweep_chart(
    name: str, run_id: str, n: int, seed: int, m: int, k: int, cfg: StrategyConfig,
    settings: list[StrategyConfig], labels: list[str], target: float,
) -> Any:  # fmt: skip
    """The sweep of ``cfg``'s strategy with the columns of the same strategy (and the base
    order) marked on it, built once per view."""
    same = tuple(
        (lab, to_json(c))
        for lab, c in zip(labels, settings, strict=True)
        if c.strategy in ("none", cfg.strategy)  # type: ignore[attr-defined]  # each StrategyConfig subclass declares its own Literal `strategy`; the base has none
    )
    return _sweep_figure(
        name, state.version(name), run_id, int(n), int(seed), int(m), int(k),
        to_json(cfg.with_strength(0.0)), same, round(float(target), 4),
    )  # fmt: skip


@bounded(EXPORT_MB, TTL_S)
def _export_all(name: str, version: str, run_id: str, k: int, setting: str) -> bytes:
    sr = _studio_run(name, version, run_id)
    frame = logic.all_lists(sr.session, parse_config(setting), k)
    return to_csv(frame)


def export_all(name: str, run_id: str, k: int, cfg: StrategyConfig) -> bytes:
    """Every user's list under ``cfg`` as formula-escaped CSV (the ``ltrec export`` layout);
    analysts only, audited."""
    return services.export(
        auth.current(),
        f"every user's list of run {run_id} of {name} ({to_json(cfg)})",
        lambda: _export_all(name, state.version(name), run_id, int(k), to_json(cfg)),
        state.data_root(),
    )


# --------------------------------------------------------------------------------------------
# URL state


def qp(key: str) -> str | None:
    value = st.query_params.get(key)
    return value if value not in (None, "") else None


def qp_int(key: str, default: int, lo: int, hi: int) -> int:
    try:
        value = int(qp(key) or default)
    except ValueError:
        return default
    return min(max(value, lo), hi)


def settings_from_url(
    n: int, defaults: tuple[StrategyConfig, ...] = DEFAULTS
) -> tuple[list[StrategyConfig], list[str]]:
    """The columns' settings from ``c1.*`` .. ``cN.*`` (``defaults`` where absent or bad)."""
    out, problems = [], []
    for i in range(n):
        prefix = f"c{i + 1}."
        pairs = [
            (key[len(prefix) :], v)
            for key in st.query_params
            if key.startswith(prefix)
            for v in st.query_params.get_all(key)
        ]
        cfg = defaults[i]
        if pairs:
            try:
                cfg = from_query(pairs)
            except ConfigError as err:
                problems.append(f"column {i + 1}: {err.message}; using {cfg.label()}")
        out.append(cfg)
    return out, problems


def settings_to_url(settings: list[StrategyConfig]) -> None:
    """Write the columns' settings to the URL (and drop columns beyond them)."""
    for key in [k for k in st.query_params if k[:1] == "c" and "." in k and k[1:2].isdigit()]:
        del st.query_params[key]
    for i, cfg in enumerate(settings):
        grouped: dict[str, list[str]] = {}
        for key, value in to_query(cfg):
            grouped.setdefault(f"c{i + 1}.{key}", []).append(value)
        for key, values in grouped.items():
            st.query_params[key] = values if len(values) > 1 else values[0]


def share_link() -> str:
    """The current view as a link (the page's URL with every query parameter)."""
    pairs = [(k, v) for k in st.query_params for v in st.query_params.get_all(k)]
    base = ""
    try:
        base = str(st.context.url or "").split("?", 1)[0]
    except Exception:  # noqa: BLE001 - no browser context (tests, bare mode)
        base = ""
    return f"{base}?{urlencode(pairs)}"


# --------------------------------------------------------------------------------------------
# the recommended setting (what the Studio opens on) and Apply buttons


def recommendation(name: str, info: Any, k: int) -> logic.Recommendation | None:
    """The recommended setting for the run: the smallest boost reaching the target tail share
    (the sweep's target, 30% by default) within 5% NDCG loss, on the aggregate's user sample.
    None for a production run or a split without test users."""
    if no_test_split(info) is not None:
        return None
    n = int(st.session_state.get("rs_sample") or qp_int("sample", 200, 20, 5000))
    target = int(st.session_state.get("rs_target", qp_int("target", 30, 0, 100)))
    try:
        with st.spinner("Finding the recommended setting…"):
            return recommended(
                name, info.run_id, n, get_settings().seed, DEFAULTS[1].pool, k, target / 100
            )
    except LtrecError:
        return None


def recommendation_block(rec: logic.Recommendation | None) -> None:
    """The recommended setting in one sentence, with an Apply button for column 2."""
    if rec is None:
        return
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.markdown(f"**Recommended:** {plain(rec.message)}")
    if not auth.can(Right.RERANK):  # a viewer's settings are the link's: nothing to apply
        return
    right.button(
        "Apply to column 2",
        key="rs_rec_apply",
        on_click=apply_setting,
        args=(2, rec.setting),
        help="Sets column 2's strategy and strength to the recommended setting. The target "
        "is the sweep's 'Target tail share' below.",
    )


@st.cache_data(ttl=TTL_S, max_entries=16, show_spinner=False)
def _opening_user(
    name: str, version: str, run_id: str, k: int, setting: str | None
) -> str | None:  # fmt: skip
    sr = _studio_run(name, version, run_id)
    users = _users(name, str(state.data_root()), version)
    if setting is None:
        return logic.default_user(users, sr.data.user_ids)
    return logic.opening_user(sr.session, users, parse_config(setting), k)


def opening_user(name: str, sr: StudioRun, info: Any, k: int) -> str | None:
    """The user a link without ``user`` opens on: a niche-taste user whose list the
    recommended setting changes (:func:`ltrec.app.studio.opening_user`), cached."""
    rec = recommendation(name, info, k)
    setting = None if rec is None else to_json(parse_config(rec.setting))
    return _opening_user(name, state.version(name), sr.run_id, int(k), setting)


def opening_settings(rec: logic.Recommendation | None) -> tuple[StrategyConfig, ...]:
    """The columns a link without settings opens on: the base order, the recommended setting,
    then the defaults (the defaults alone when there is no recommendation)."""
    if rec is None:
        return DEFAULTS
    return (DEFAULTS[0], parse_config(rec.setting), *DEFAULTS[2:])


def apply_button(col: int, answer: dict[str, Any], key: str) -> None:
    """An Apply button under the solver's answer: its strength (rounded up to the slider step,
    so it still reaches the target) into column ``col``."""
    if not answer.get("reachable") or not answer.get("setting"):
        return
    cfg = parse_config(answer["setting"])
    cfg = cfg.with_strength(min(logic.round_up(cfg.strength), float(type(cfg).STRENGTH_MAX)))
    st.button(
        f"Apply {human_label(cfg)} to column {col}",
        key=key,
        on_click=apply_setting,
        args=(col, to_json(cfg)),
        help=f"Sets column {col}'s strength to the solver's answer.",
    )


# --------------------------------------------------------------------------------------------
# setting widgets


def _bounds(field: Any) -> tuple[float | None, float | None]:
    lo = hi = None
    for meta in field.metadata:
        lo = getattr(meta, "ge", getattr(meta, "gt", lo))
        hi = getattr(meta, "le", getattr(meta, "lt", hi))
    return lo, hi


def _init(key: str, value: Any) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


#: The candidate-pool fields every strategy shares, shown after the strategy's own.
POOL_FIELDS = ("tail_pool", "tail_source")
#: Widget labels (with units and ranges) and help of the strategies' fields, by field name.
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "beta": ("Boost strength β (0–5)", "Added to a tail item's score (scores scaled to 0–1); "
             "0 = the base order."),
    "lam": ("Trade-off λ (0–1)", "0 = relevance only; 1 = covering the aspect the list lacks."),
    "p": ("Minimum tail share p (0–1)", "The share of tail items every prefix of the list must "
          "hold (up to chance)."),
    "alpha": ("Smoothing α (0–0.5)", "Mixes the list's distribution towards the user's, so "
              "an empty group does not make the divergence infinite."),
    "shrink": ("Shrinkage (0–100 pseudo-items)", "Pulls a short history's tail share towards "
               "the shop's; 0 = the user's own share."),
    "signal": ("Boost signal", "tail: the same boost for every tail item; log popularity: the "
               "less popular the item, the larger its boost."),
    "by": ("Calibrate over", "Popularity buckets or categories."),
    "groups": ("Popularity groups", "paper: head = items with the first 20% of interactions, "
               "tail = the last 20%; buckets: the dataset's own buckets."),
    "personalised": ("Personalised tail appetite", "Weigh the tail by the user's own tail "
                     "share (else half and half)."),
    "smooth": ("Smooth coverage", "Count the share of the list outside an aspect instead of "
               "yes/no."),
    "adjust_alpha": ("Correct for testing every prefix", "FA*IR's multiple-testing correction."),
    "tail_pool": ("Extra tail candidates (0–1000 items)", "Tail items added to the base "
                  "model's candidates by a second source; 0 = none."),
    "tail_source": ("Tail candidates from", "Items bought together with the user's items, "
                    "items with similar text, or both."),
}  # fmt: skip
#: Option labels of the fields' choices.
OPTION_LABELS = {"log_popularity": "log popularity", "cooccurrence": "bought together"}


def setting_widgets(col: int, initial: StrategyConfig, box: Any = None) -> StrategyConfig:
    """A strategy select and its bounded parameters (from its pydantic config) for column
    ``col``; returns the validated setting. Rules and pool of ``initial`` are kept.

    Widget keys: ``rs_c{col}_strategy`` and ``rs_c{col}_{strategy}_{field}``. Without the
    re-rank right (viewers) the widgets are disabled and ``initial`` (the shared link's
    setting) is returned whatever the widgets hold.
    """
    box = box or st
    locked = not auth.can(Right.RERANK)
    names = list(STRATEGIES)
    skey = f"rs_c{col}_strategy"
    _init(skey, initial.strategy)  # type: ignore[attr-defined]  # each StrategyConfig subclass declares its own Literal `strategy`; the base has none
    name = box.selectbox(
        "Strategy",
        names,
        key=skey,
        format_func=lambda s: NAMES.get(s, s),
        help=" ".join(f"{NAMES[s]}: {HELP[s]}" for s in names),
        disabled=locked,
    )
    cls, _ = STRATEGIES[name]
    same = initial.strategy == name  # type: ignore[attr-defined]  # each StrategyConfig subclass declares its own Literal `strategy`; the base has none
    values: dict[str, Any] = {"strategy": name, "pool": initial.pool, "rules": initial.rules}
    fields = sorted(  # the strength first: the one control that matters most
        cls.model_fields.items(), key=lambda kv: (kv[0] != cls.STRENGTH, kv[0] in POOL_FIELDS)
    )
    for fname, field in fields:
        if fname in ("strategy", "pool", "rules"):
            continue
        wkey = f"rs_c{col}_{name}_{fname}"
        label, desc = FIELD_LABELS.get(fname, (fname.replace("_", " "), field.description or ""))
        start = getattr(initial, fname) if same else field.get_default(call_default_factory=True)
        _init(wkey, start)
        ann = field.annotation
        if ann is bool:
            values[fname] = box.checkbox(label, key=wkey, help=desc, disabled=locked)
        elif get_origin(ann) is Literal:
            values[fname] = box.selectbox(
                label,
                list(get_args(ann)),
                key=wkey,
                help=desc,
                disabled=locked,
                format_func=lambda v: OPTION_LABELS.get(v, str(v).replace("_", " ")),
            )
        elif ann is float:
            lo, hi = _bounds(field)
            lo = 0.0 if lo is None else float(lo)
            hi = lo + 1.0 if hi is None else float(hi)
            step = 0.05 if hi - lo > 2 else (0.001 if hi - lo < 0.6 else 0.01)
            if fname == cls.STRENGTH:  # fine enough for the recommended setting and the solver
                step = logic.STRENGTH_STEP
            st.session_state[wkey] = float(min(max(st.session_state[wkey], lo), hi))
            values[fname] = box.slider(
                label,
                min_value=lo,
                max_value=hi,
                step=step,
                format="%.3f" if step < 0.01 else "%.2f",
                key=wkey,
                help=desc,
                disabled=locked,
            )
        elif ann is int:
            lo, hi = _bounds(field)
            values[fname] = box.number_input(
                label, min_value=lo, max_value=hi, step=1, key=wkey, help=desc, disabled=locked
            )
    if locked:
        return initial
    try:
        return parse_config(values)
    except ConfigError as err:
        box.warning(err.message)
        return initial


def human_label(cfg: StrategyConfig) -> str:
    """A setting as a person reads it: ``"tail boost beta=0.3"``, ``"base order"``."""
    strategy = getattr(cfg, "strategy", "none")
    label = cfg.label()
    if strategy == "none":
        return label.replace("base", NAMES["none"], 1)
    return label.replace(strategy, NAMES.get(strategy, strategy.replace("_", " ")), 1)


def unique_labels(settings: list[StrategyConfig]) -> list[str]:
    """Column labels from the settings, numbered where two columns share a setting."""
    labels: list[str] = []
    for cfg in settings:
        label = human_label(cfg)
        if label in labels:
            label = f"{label} (#{len(labels) + 1})"
        labels.append(label)
    return labels


# --------------------------------------------------------------------------------------------
# list rendering


NEW_COLOUR, UP_COLOUR, DOWN_COLOUR = "#fff3c4", "#e5f5e0", "#fde0dd"


def _bucket_style(value: object) -> str:
    # the bucket's chart colour as a tint: a bucket looks the same on every page
    return f"background-color: {bucket_tint(str(value))}" if str(value) in BUCKET_COLOURS else ""


def _change_style(value: object) -> str:
    text = str(value)
    if text.startswith("new"):
        return f"background-color: {NEW_COLOUR}; font-weight: 600"
    if text.startswith("▲"):
        return f"background-color: {UP_COLOUR}"
    if text.startswith("▼"):
        return f"background-color: {DOWN_COLOUR}"
    return ""


LIST_COLUMNS = ["rank", "title", "change", "bucket", "conversion", "pop_rank", "price"]
LIST_COLUMNS += ["category", "why", "reason"]
#: Rows tall enough for four lines: the grid wraps text only above 4rem, so a title of up to
#: ~80 characters shows in full in a 1280 px window with three lists side by side.
LIST_ROW_HEIGHT = 86


def list_table(frame: pd.DataFrame, key: str, height: int | None = None) -> None:
    """A list as ``st.dataframe``: catalogue text is data (never HTML); badges are cell colours
    (the title is tinted with its bucket's colour, so the badge shows without scrolling)."""
    shown = frame[LIST_COLUMNS]
    tint = [_bucket_style(b) for b in shown["bucket"]]
    styled = (
        shown.style.map(_bucket_style, subset=["bucket"])
        .map(_change_style, subset=["change"])
        .apply(lambda _: tint, subset=["title"])
    )
    st.dataframe(
        styled,
        hide_index=True,
        key=key,
        height=height or 40 + LIST_ROW_HEIGHT * len(shown),  # every row, no inner scroll
        row_height=LIST_ROW_HEIGHT,
        column_config={
            "rank": st.column_config.NumberColumn("#", width=28),
            "change": st.column_config.TextColumn(
                "vs base",
                width=84,
                help="Rank change against the base order: ▲ moved up, ▼ moved down, "
                "new = not in the base top K (its rank in the candidate pool in brackets).",
            ),
            "title": st.column_config.TextColumn(
                "title", width=150, help="Shaded with its popularity bucket's colour."
            ),
            "bucket": st.column_config.TextColumn(
                "bucket",
                width=52,
                help="Popularity bucket: head / tail (head / mid / tail with two cuts) by "
                "cumulative interaction share (tail = outside the smallest top set making the "
                "configured share).",
            ),
            "conversion": st.column_config.NumberColumn(
                "conv.",
                format="percent",
                width=60,
                help="View→purchase rate shrunk toward the catalogue by an empirical-Bayes "
                "beta prior (a tail item with 2 views and 1 purchase does not read 50%).",
            ),
            "pop_rank": st.column_config.NumberColumn(
                "pop. rank", format="%d", width=60, help="1 = the most popular item."
            ),
            "price": st.column_config.NumberColumn("price", format="%.2f", width=60),
            "category": st.column_config.TextColumn("category"),
            "why": st.column_config.TextColumn(
                "why it is there",
                width="large",
                help="Its reasons, as `ltrec export` and `ltrec recommend` give them: the "
                "history items that contributed most to its score, what the re-ranker did, "
                "or the fallback for a user without history.",
            ),
            "reason": st.column_config.TextColumn("re-ranker's reason", width="medium"),
        },
    )


# --------------------------------------------------------------------------------------------
# empty state: one-click training

#: Above this many items the one-click model is item-kNN (EASE inverts an items x items matrix).
EASE_MAX_ITEMS = 10_000


def quick_model(n_items: int, n_events: int) -> tuple[str, int]:
    """The model the empty state offers and a rough training time in seconds.

    EASE's closed form costs O(n_items^3) (about 2 s at 2,000 items on one core); item-kNN
    grows with the interactions.
    """
    if n_items <= EASE_MAX_ITEMS:
        return "ease", int(round(5 + 2.0 * (n_items / 2000) ** 3 + n_events / 250_000))
    return "itemknn", int(round(10 + n_events / 100_000))


def catalogue_size(name: str) -> tuple[int, int]:
    """(items, events) of a dataset, for the training estimate."""
    cur = state.cursor(name)
    try:
        items = cur.execute("SELECT count(*) FROM items").fetchall()[0][0]
        events = cur.execute("SELECT count(*) FROM events").fetchall()[0][0]
    finally:
        cur.close()
    return int(items), int(events)


def train_prompt(name: str) -> None:
    """The empty state without runs: what the page needs, and a one-click training button."""
    items, events = catalogue_size(name)
    model, seconds = quick_model(items, events)
    label = {"ease": "EASE", "itemknn": "item-kNN"}[model]
    st.info(
        f"The Studio re-ranks a model's candidates, and dataset **{name}** has no trained "
        f"model yet. Train {label} now (about {seconds} s here), or train any model in the "
        f"Model Lab or with `ltrec train {name} --model {model}`."
    )
    if not auth.can(Right.TRAIN):
        st.caption("Training needs the analyst role.")
        return
    if not st.button(f"Train {label} (about {seconds} s)", type="primary", key="rs_train"):
        return
    bar = st.progress(0.0, text="starting")
    try:
        result = services.train(
            auth.current(),
            name,
            model,
            progress=lambda done, msg: bar.progress(min(max(done, 0.0), 1.0), text=msg),
            data_dir=state.data_root(),
        )
    except LtrecError as err:
        state.show_error(err)
        return
    st.query_params["run"] = result.run_id
    st.rerun()


# --------------------------------------------------------------------------------------------
# choosing a user

PICKERS = ("by id", "at random from a segment", "with niche taste")


def user_picker(name: str, sr: StudioRun, default: str | None) -> str | None:
    """Search by id, draw at random from a segment, or pick a user with niche taste.

    Returns the chosen user id (known to the model), or None when nothing matches.
    """
    users = users_table(name)
    known = sr.data.user_ids
    _init("rs_pick", PICKERS[0])
    how = st.radio("Choose a user", PICKERS, key="rs_pick", horizontal=True)
    if how == PICKERS[0]:
        _init("rs_query", default or "")
        query = st.text_input(
            "User id (or part of it)", key="rs_query", help="Matching is case-insensitive."
        )
        hits = logic.search_users(known, query)
        if not hits:
            if query:
                st.warning(f"No user id contains '{plain(query)}'.")
            return None
        return st.selectbox(f"{len(hits)} match(es)", hits, key=f"rs_hits_{query}")
    if how == PICKERS[1]:
        dims = [c for c in users.columns if c not in ("user_id", "first_ts", "tail_share")]
        dims = [c for c in dims if 1 <= users[c].nunique() <= 50]
        if not dims:
            st.info("This dataset has no user segments: any user is drawn.")
        left, mid = st.columns(2)
        dim = left.selectbox("Segment", ["(any)", *dims], key="rs_seg")
        value = None
        if dim != "(any)":
            value = mid.selectbox("Value", logic.segment_values(users, dim), key="rs_seg_value")
        _init("rs_draw", 0)
        if st.button("Draw another", key="rs_redraw"):
            st.session_state["rs_draw"] += 1
        column = None if dim == "(any)" else dim
        chosen = logic.random_user(
            users, column, value, seed=int(st.session_state["rs_draw"]), known=known
        )
        if chosen is None:
            st.warning("No user in this segment.")
        return chosen
    niche = logic.niche_users(users)
    niche = niche[niche["user_id"].isin(set(known.tolist()))]
    if niche.empty:
        st.info("No user with at least 5 interactions has a tail share to rank by.")
        return None
    shares = dict(zip(niche["user_id"], niche["tail_share"], strict=True))
    counts = dict(zip(niche["user_id"], niche["interactions"], strict=True))
    return st.selectbox(
        "Users with the highest share of interactions on tail items",
        niche["user_id"].tolist(),
        key="rs_niche",
        format_func=lambda u: f"{u} · {pct(shares[u])} tail · {int(counts[u])} interactions",
    )


#: Data text made inert in Streamlit markdown (defined once, in :mod:`ltrec.charts.text`).
plain = markdown_text


def history_table(frame: pd.DataFrame) -> None:
    """The user's recent history as ``st.dataframe`` (text as data, bucket as a cell colour)."""
    cols = ["last_seen", "title", "category", "bucket", "price", "weight"]
    styled = frame[cols].style.map(_bucket_style, subset=["bucket"])
    st.dataframe(
        styled,
        hide_index=True,
        key="rs_history",
        column_config={
            "last_seen": st.column_config.DatetimeColumn("last seen", format="YYYY-MM-DD"),
            "title": st.column_config.TextColumn("title", width="large"),
            "bucket": st.column_config.TextColumn("bucket", width="small"),
            "price": st.column_config.NumberColumn("price", format="%.2f"),
            "weight": st.column_config.NumberColumn(
                "weight", format="%g", help="Summed event weights: view 1, cart 3, purchase 5."
            ),
        },
    )


# --------------------------------------------------------------------------------------------
# find the best setting (ltrec.app.tune, the tuner of `ltrec tune`)

#: Tail objectives the Studio offers the tuner (``ltrec tune --objective`` takes more).
TUNE_OBJECTIVES = ("aplt", "tail_recall", "coverage")


def apply_setting(col: int, setting: dict[str, Any] | str) -> None:
    """Button callback: a setting (tuned, recommended or solved) into column ``col``'s widgets
    (a callback runs before the widgets exist in the next run, so their keys may still be
    set)."""
    cfg = parse_config(setting)
    name = cfg.strategy  # type: ignore[attr-defined]  # each StrategyConfig subclass declares its own Literal `strategy`; the base has none
    st.session_state[f"rs_c{col}_strategy"] = name
    cls, _ = STRATEGIES[name]
    for fname in cls.model_fields:
        if fname not in ("strategy", "pool", "rules"):
            st.session_state[f"rs_c{col}_{name}_{fname}"] = getattr(cfg, fname)


def _tuned_table(out: dict[str, Any]) -> pd.DataFrame:
    """Base, best linear tail boost and tuned setting on the test split: mean [95% interval]."""
    t, k = out["test"], out["k"]
    labels = {
        "base": "base",
        "best_linear": parse_config(out["best_linear_setting"]).label(),
        "chosen": out["label"],
    }
    metrics = list(dict.fromkeys((f"ndcg@{k}", out["objective"], f"aplt@{k}", f"tail_recall@{k}")))
    rows = []
    for key, what in (("base", "base"), ("best_linear", "best linear boost"), ("chosen", "tuned")):
        row = {"": what, "setting": labels[key]}
        for metric in metrics:
            v = t[key].get(metric) or {}
            lo, hi = v.get("low"), v.get("high")
            ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
            row[metric] = "–" if v.get("mean") is None else f"{v['mean']:.3f}{ci}"
        rows.append(row)
    return pd.DataFrame(rows)


def tune_block(name: str, run_id: str, *, col: int = 2) -> None:
    """The "Find the best setting" block: the tuner on a validation split of the run's training
    period, its result on the test split beside the base and the best linear tail boost, and an
    Apply that puts the setting into column ``col``."""
    st.subheader("Find the best setting")
    if not auth.can(Right.RERANK):
        st.caption("Tuning needs the analyst role.")
        return
    a, b, c = st.columns([1, 1, 1])
    loss = a.slider(
        "Largest NDCG loss (%)",
        0.0,
        20.0,
        5.0,
        0.5,
        key="rs_tune_loss",
        help="Against the base order, on the validation split.",
    )
    objective = b.selectbox(
        "Maximise",
        [f"{o}@10" for o in TUNE_OBJECTIVES],
        key="rs_tune_objective",
        format_func=metric_label,
        help="APLT: share of tail items per list; tail recall: tail test items found; "
        "coverage: catalogue share shown.",
    )
    state_key = f"rs_tuned::{name}::{run_id}"
    c.write("")
    if c.button(
        "Find the best setting",
        key="rs_tune_go",
        help="Searches every strategy and candidate mix on a validation split of the run's "
        "training period (the test split is never used to choose), then measures the chosen "
        "setting on the test split. Takes a few minutes (`ltrec tune`).",
    ):
        bar = st.progress(0.0, text="starting")

        def progress(done: float, msg: str) -> None:
            bar.progress(min(max(done, 0.0), 1.0), text=msg)

        try:
            result = tune(
                name, run_id, max_loss=float(loss) / 100, objective=objective, progress=progress
            )
        except LtrecError as err:
            bar.empty()
            state.show_error(err)
            return
        bar.empty()
        st.session_state[state_key] = result.to_dict()
    out = st.session_state.get(state_key)
    if not out:
        return
    v, t = out["validation"], out["test"]
    st.markdown(
        f"**Tuned: {markdown_text(out['label'])}** · chosen among {v['evaluated']} settings on "
        f"{v['users']:,} validation users within {out['max_loss']:.1%} NDCG loss; measured on "
        f"{t['users']:,} test users (95% intervals)."
    )
    st.dataframe(_tuned_table(out), hide_index=True, key="rs_tune_table")
    ratio = (t.get("ratio") or {}).get(f"aplt@{out['k']}")
    if ratio and ratio.get("mean") is not None:
        lo, hi = ratio.get("low"), ratio.get("high")
        ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else ""
        st.caption(f"APLT, tuned / best linear tail boost: {ratio['mean']:.2f}{ci} (paired)")
    st.button(
        f"Apply to column {col}",
        key="rs_tune_apply",
        on_click=apply_setting,
        args=(col, out["setting"]),
        help=f"Sets column {col}'s strategy and parameters to the tuned setting.",
    )
