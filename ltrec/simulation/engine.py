"""The feedback-loop simulator (DESIGN §7), after Mansoury et al. 2020, "Feedback Loop and Bias
Amplification in Recommender Systems" (CIKM).

Each round t = 1..R, for every policy (model + optional re-ranking setting):

1. **Recommend.** A seeded sample of ``users`` active users (the same users for every policy in
   a round: common random numbers, so policies differ only by what they show) gets a top-K list
   from the policy's current model (seen items excluded), re-ranked from the model's top-M pool
   when the policy has a re-ranking setting.
2. **Respond.** For the item at rank r the user model gives P(click | examined), P(cart | click)
   and P(purchase | cart); the click also needs the item to be examined, with the position bias
   P(examine | r) = 1 / log2(r + 1) (or r^-eta, the demo truth's own). Outcomes are drawn from
   one uniform array per round shared by all policies.
3. **Append.** Views, carts and purchases become interactions (weights view 1, cart 3,
   purchase 5) added to the policy's private in-memory copy of the interaction matrix; the
   store file is never written. The matrix and item popularity are updated incrementally (one
   sparse addition per round), not rebuilt from events.
4. **Retrain** every ``retrain_every`` rounds: a fresh model of the policy's config is fitted on
   the grown data, and the re-ranking context (popularity, buckets, histories) is rebuilt.

Per round and policy the simulator records exposure Gini, tail share of exposure, catalogue
coverage, ARP (:mod:`ltrec.evaluation.metrics`: ``exposure``, ``gini``, ``coverage``, ``arp``),
clicks, carts, purchases, tail purchases and revenue. The tail and the popularity used for ARP
are those of the starting data, so every round and policy is measured on the same yardstick.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltrec.app.pipeline import RecSession
from ltrec.definitions import gini, tail_mask
from ltrec.errors import BadInputError, ConfigError
from ltrec.evaluation.metrics import arp, coverage, exposure, position_weights
from ltrec.evaluation.split import load_events
from ltrec.models.base import make_model
from ltrec.models.data import InteractionData, load_catalogue
from ltrec.progress import Progress
from ltrec.rerank import parse_config
from ltrec.rerank.adapters import context_from_data
from ltrec.simulation.config import PolicyConfig, SimulationConfig, parse_policy
from ltrec.simulation.result import SimulationResult, save_result
from ltrec.simulation.users import TruthUserModel, UserModel, fit_calibrated
from ltrec.store import connect, cursor, read_meta
from ltrec.store.profile import is_repeat_domain
from ltrec.synth.truth import has_truth, load_truth

#: Seconds of simulated time per round (timestamps of the appended events).
ROUND_SECONDS = 86_400.0


def _labels(policies: Sequence[PolicyConfig]) -> list[str]:
    out: list[str] = []
    for p in policies:
        name, n = p.name, 2
        while name in out:
            name, n = f"{p.name} ({n})", n + 1
        out.append(name)
    return out


def examination(ranks: np.ndarray, config: SimulationConfig, user_model: UserModel) -> np.ndarray:
    """P(examine | rank r) for 1-based ranks under the configured position bias."""
    if config.position_bias == "auto":
        own = user_model.examine(ranks)
        if own is not None:
            return np.asarray(own, dtype=float)
        return position_weights(len(ranks), "position")[np.asarray(ranks) - 1]
    if config.position_bias == "log2":
        return 1.0 / np.log2(np.asarray(ranks, dtype=float) + 1.0)
    return np.asarray(ranks, dtype=float) ** (-config.eta)


def rerank_context(data: Any, cuts: Sequence[float], prices: np.ndarray, stock: np.ndarray):
    """A re-ranking :class:`~ltrec.rerank.Context` for the current interaction data."""
    return context_from_data(data, cuts=cuts, price=prices, in_stock=stock)


@dataclass(eq=False)
class _PolicyState:
    """One policy's private world: its data, model, re-ranker and running totals."""

    policy: PolicyConfig
    label: str
    data: Any
    model: Any = None
    setting: Any = None  # the policy's re-ranking setting (a StrategyConfig), or None
    context: Any = None
    exposure_cum: np.ndarray | None = None
    totals: dict[str, float] = field(default_factory=dict)  # set per run by run_simulation

    def fit(self, cuts: Sequence[float], prices: np.ndarray, stock: np.ndarray) -> None:
        self.model = make_model(self.policy.model, self.policy.params).fit(self.data)
        if self.setting is not None:
            self.context = rerank_context(self.data, cuts, prices, stock)

    def recommend(self, users: np.ndarray, k: int) -> np.ndarray:
        """The policy's lists: the one pipeline over the current model, data and context."""
        session = RecSession.from_parts(self.model, self.data, self.context, self.setting)
        return session.lists(users, k).items

    def append(self, users, recs, viewed, carted, bought, t: float) -> None:
        """Add the round's interactions to the policy's data (incremental CSR update)."""
        d = self.data
        w = d.weights
        weight = (
            viewed * w.get("view", 1.0)
            + carted * w.get("cart", 3.0)
            + bought * w.get("purchase", 5.0)
        )
        hit = weight > 0
        if not hit.any():
            return
        rows = np.broadcast_to(users[:, None], recs.shape)[hit]
        cols = recs[hit]
        shape = d.matrix.shape
        delta = sp.csr_matrix((weight[hit].astype(np.float32), (rows, cols)), shape=shape)
        matrix = (d.matrix + delta).tocsr()
        matrix.sort_indices()
        # Pairs touched this round get this round's time; the rest keep theirs.
        stamp = sp.csr_matrix((np.full(len(rows), t), (rows, cols)), shape=shape)
        stamp.sum_duplicates()
        stamp.data[:] = t
        last = d.last_ts.maximum(stamp).tocsr()  # t is later than every earlier time
        last.sort_indices()
        n = shape[1]
        self.data = replace(
            d,
            matrix=matrix,
            last_ts=last,
            item_pop=np.bincount(matrix.indices, minlength=n).astype(np.int64),
            item_weight=np.bincount(matrix.indices, weights=matrix.data, minlength=n),
            # the new events are not in the per-event arrays: decay falls back to last_ts
            event_pair=None,
            event_ts=None,
            event_weight=None,
            split=None,
            _fingerprint=None,
        )


def run_simulation(
    data: Any,
    user_model: UserModel,
    policies: Sequence[PolicyConfig | str | dict],
    config: SimulationConfig | None = None,
    *,
    prices: np.ndarray | None = None,
    in_stock: np.ndarray | None = None,
    progress: Progress | None = None,
) -> SimulationResult:
    """Run the loop on in-memory data (see the module docstring).

    Args:
        data: the starting :class:`~ltrec.models.data.InteractionData` (not modified).
        user_model: decides responses (:mod:`ltrec.simulation.users`).
        policies: one or more policies (configs, dicts or JSON text).
        config: rounds, K, users per round, retraining, seed, position bias.
        prices: [n_items] prices for revenue (NaN or None: no revenue).
        in_stock: [n_items] stock flags for re-ranking rules.
        progress: ``progress(done, message)``.

    Returns:
        A :class:`SimulationResult` (not saved; see :func:`simulate`).
    """
    cfg = config or SimulationConfig()
    pols = [parse_policy(p) for p in policies]
    if not pols:
        raise ConfigError("choose at least one policy", hint='e.g. {"model": "popularity"}')
    if data.n_users == 0 or data.n_items == 0:
        raise BadInputError("the dataset has no users or no items to simulate")
    say = progress or (lambda done, msg: None)
    t_start = time.perf_counter()
    n_items = data.n_items
    cuts = cfg.bucket_cuts
    pop0 = np.asarray(data.item_pop, dtype=float)
    tail0 = tail_mask(pop0, cuts)
    price = np.full(n_items, np.nan) if prices is None else np.asarray(prices, dtype=float)
    stock = np.ones(n_items, dtype=bool) if in_stock is None else np.asarray(in_stock, bool)
    has_price = bool(np.isfinite(price).any())
    price0 = np.nan_to_num(price, nan=0.0)
    k = min(cfg.k, n_items)
    ranks = np.arange(1, k + 1)
    exam = examination(ranks, cfg, user_model)
    n_active = min(cfg.users, data.n_users)
    t0 = float(data.last_ts.data.max()) if data.last_ts.nnz else 0.0

    labels = _labels(pols)
    states = []
    for j, (p, lab) in enumerate(zip(pols, labels, strict=True)):
        setting = parse_config(p.rerank) if p.rerank is not None else None
        st = _PolicyState(p, lab, data, setting=setting)
        say(0.02 * j / len(pols), f"training {lab}")
        st.fit(cuts, price, stock)
        st.exposure_cum = np.zeros(n_items)
        st.totals = dict.fromkeys(("clicks", "purchases", "tail_purchases", "revenue"), 0.0)
        states.append(st)

    rows = []
    steps = cfg.rounds * len(states)
    for rnd in range(1, cfg.rounds + 1):
        rng = np.random.default_rng([cfg.seed, rnd])
        users = np.sort(rng.choice(data.n_users, size=n_active, replace=False))
        draws = rng.random((3, n_active, k))  # shared by every policy: common random numbers
        retrain = rnd % cfg.retrain_every == 0 and rnd < cfg.rounds
        for j, st in enumerate(states):
            step = (rnd - 1) * len(states) + j
            say(0.02 + 0.98 * step / steps, f"round {rnd}/{cfg.rounds}: {st.label}")
            tick = time.perf_counter()
            recs = st.recommend(users, k)
            valid = recs >= 0
            p_click, p_cart, p_buy = user_model.probabilities(users, recs)
            viewed = valid & (draws[0] < exam[None, :] * p_click)
            carted = viewed & (draws[1] < p_cart)
            bought = carted & (draws[2] < p_buy)

            e = exposure(recs, n_items)
            st.exposure_cum += e
            bought_items = recs[bought]
            tot = st.totals
            purchases = int(bought.sum())
            tail_buys = int(tail0[bought_items].sum())
            revenue = float(price0[bought_items].sum()) if has_price else float("nan")
            tot["clicks"] += int(viewed.sum())
            tot["purchases"] += purchases
            tot["tail_purchases"] += tail_buys
            tot["revenue"] += revenue if has_price else 0.0
            slots = int(valid.sum())
            rows.append(
                {
                    "policy": st.label,
                    "round": rnd,
                    "exposure_gini": float(gini(e)),
                    "exposure_gini_cum": float(gini(st.exposure_cum)),
                    "tail_share": float(e[tail0].sum() / slots) if slots else float("nan"),
                    "coverage": float(coverage(e)),
                    "coverage_cum": float(coverage(st.exposure_cum)),
                    "arp": float(np.nanmean(arp(recs, pop0))) if slots else float("nan"),
                    "slots": slots,
                    "clicks": int(viewed.sum()),
                    "carts": int(carted.sum()),
                    "purchases": purchases,
                    "tail_purchases": tail_buys,
                    "revenue": revenue,
                    "cum_clicks": int(tot["clicks"]),
                    "cum_purchases": int(tot["purchases"]),
                    "cum_tail_purchases": int(tot["tail_purchases"]),
                    "cum_revenue": tot["revenue"] if has_price else float("nan"),
                }
            )
            st.append(users, recs, viewed, carted, bought, t0 + rnd * ROUND_SECONDS)
            rows[-1]["popularity_gini"] = float(gini(st.data.item_pop))
            rows[-1]["retrained"] = bool(retrain)
            if retrain:
                st.fit(cuts, price, stock)
            rows[-1]["seconds"] = time.perf_counter() - tick
    say(1.0, "simulation finished")
    return SimulationResult(
        config=cfg,
        policies=pols,
        labels=labels,
        user_model=user_model.describe(),
        rounds=pd.DataFrame(rows),
        data={
            "users": int(data.n_users),
            "items": int(n_items),
            "interactions": int(data.matrix.nnz),
            "fingerprint": data.fingerprint,
            "tail_items": int(tail0.sum()),
            "prices": has_price,
        },
        seconds=time.perf_counter() - t_start,
    )


def load_world(
    dataset: str,
    config: SimulationConfig,
    data_dir: Path | str | None = None,
    progress: Progress | None = None,
) -> tuple[Any, UserModel, np.ndarray, np.ndarray]:
    """The starting data, the user model, prices and stock flags of a stored dataset.

    The interaction data holds every event of the dataset (no split) and the dataset's repeat
    flag (:func:`~ltrec.store.profile.is_repeat_domain`, as training and serving read it). The
    user model is the dataset's ground truth when it has one (unless
    ``config.user_model == "calibrated"``), else a calibrated model fitted on its events.
    """
    say = progress or (lambda done, msg: None)
    con = connect(dataset, data_dir)
    try:
        say(0.0, f"loading {dataset}")
        # Aggregated in DuckDB: the events table enters pandas only for a calibrated user
        # model (a demo shop's ground truth needs none; 10M events are several GB as a frame).
        data = InteractionData.from_query(con, "TRUE")
        items, users = load_catalogue(con)
        data.repeat_domain = is_repeat_domain(read_meta(con))
        cur = cursor(con)
        try:
            truth = load_truth(cur) if has_truth(cur) else None
        finally:
            cur.close()
        calibrated = truth is None or config.user_model == "calibrated"
        events = load_events(con) if calibrated else None
    finally:
        con.close()
    if data.matrix.nnz == 0:
        raise BadInputError(
            f"dataset '{dataset}' has no views, carts or purchases to start from",
            hint="import interaction events first",
        )
    ids = pd.Index(data.item_ids)
    frame = items.assign(item_id=items["item_id"].astype(str)).drop_duplicates("item_id")
    frame = frame.set_index("item_id")
    prices = pd.to_numeric(frame["price"], errors="coerce").reindex(ids).to_numpy(float)
    if "in_stock" in frame:
        stock = frame["in_stock"].reindex(ids).fillna(True).astype(bool).to_numpy()
    else:
        stock = np.ones(len(ids), dtype=bool)
    if config.user_model == "truth" and truth is None:
        raise BadInputError(
            f"dataset '{dataset}' has no ground-truth user model (only demo shops do)",
            hint='use "user_model": "calibrated" (or "auto")',
        )
    if truth is not None and config.user_model != "calibrated":
        um: UserModel = TruthUserModel.for_ids(truth, data.user_ids, data.item_ids)
    else:
        assert events is not None  # loaded above whenever the model is calibrated
        um = fit_calibrated(
            events,
            items,
            users,
            data,
            config.calibration,
            seed=config.seed,
            progress=lambda d, m: say(0.1 * d, m),
        )
    return data, um, prices, stock


def simulate(
    dataset: str,
    policies: Sequence[PolicyConfig | str | dict],
    config: SimulationConfig | None = None,
    *,
    save: bool = True,
    progress: Progress | None = None,
    data_dir: Path | str | None = None,
) -> SimulationResult:
    """Simulate ``policies`` on a stored dataset; saved under ``data/simulations`` by default.

    Policies are validated before any data is loaded, so a bad setting fails at once.
    """
    cfg = config or SimulationConfig()
    pols = [parse_policy(p) for p in policies]
    if not pols:
        raise ConfigError("choose at least one policy", hint='e.g. {"model": "popularity"}')
    say = progress or (lambda done, msg: None)
    data, um, prices, stock = load_world(dataset, cfg, data_dir, say)
    say(0.1, f"user model: {um.describe()['name']}")
    result = run_simulation(
        data,
        um,
        pols,
        cfg,
        prices=prices,
        in_stock=stock,
        progress=lambda d, m: say(0.1 + 0.9 * d, m),
    )
    result.dataset = dataset
    if save:
        save_result(result, dataset, data_dir)
    return result
