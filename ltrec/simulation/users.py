"""User models: who clicks and buys what a policy shows (DESIGN §7).

A user model gives, for a user u and a shown item i, three probabilities:

* ``P(click | examined, u, i)``: the user views the item once they look at it;
* ``P(cart | click, u, i)`` and ``P(purchase | cart, u, i)``.

The simulator multiplies the click probability by a position bias ``P(examine | rank r)`` (the
examination hypothesis, Craswell et al. 2008), so
``P(view) = P(examine | r) P(click | examined)``, ``P(purchase) = P(view) P(cart | click)
P(purchase | cart)``.

Two implementations:

* :class:`TruthUserModel`: the demo shop's generator (:mod:`ltrec.synth.truth`), the very model
  that wrote its log. Used whenever the dataset carries one.
* :class:`CalibratedUserModel`: for real data. A model (EASE, or ALS when the catalogue is too
  large for EASE) is fitted on the older events; its scores, standardised per user over the
  catalogue (z = (s - mean_u) / std_u), are mapped to probabilities by Platt scaling
  p = sigmoid(a z + b) (Platt 1999), fitted against held-out behaviour: when the data has
  impressions, the held-out impressed pairs labelled by whether they were viewed (a direct
  estimate of P(click | shown)); otherwise each held-out user's top-scored items plus as many
  random items, labelled by whether the user interacted with them in the held-out period (a
  proxy). Pairs are selected on z only, so P(y | z) is estimated without bias. The scorer is
  then refitted on all events. Cart and purchase probabilities are per item: the item's
  view->cart and cart->purchase rates shrunk toward a Beta prior fitted to all items
  (empirical Bayes, :func:`ltrec.analytics.conversion.fit_beta_prior`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ltrec.errors import ModelError
from ltrec.evaluation.split import SplitConfig, temporal_split
from ltrec.models.base import make_model
from ltrec.models.data import InteractionData
from ltrec.models.ease import max_items
from ltrec.progress import Progress
from ltrec.simulation.config import CalibrationConfig
from ltrec.synth.truth import GroundTruth


class UserModel(Protocol):
    """Response probabilities for (user index, item index) arrays of equal shape."""

    kind: str

    def describe(self) -> dict[str, Any]:
        """``{"kind", "name", "description", ...}`` for results and the UI."""
        ...

    def probabilities(
        self, users: np.ndarray, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(P(click | examined), P(cart | click), P(purchase | cart))``, each ``[n, k]``.

        Args:
            users: ``[n]`` user indices. items: ``[n, k]`` item indices, -1 for an empty slot
                (probability 0).
        """
        ...

    def examine(self, ranks: np.ndarray) -> np.ndarray | None:
        """The model's own position bias, or None to use the simulator's default."""
        ...


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _index_map(vocab: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions of ``ids`` in ``vocab`` (-1 where absent)."""
    vocab = np.asarray(vocab, dtype=str)
    order = np.argsort(vocab, kind="stable")
    keys = vocab[order]
    ids = np.asarray(ids, dtype=str)
    if keys.size == 0:
        return np.full(ids.shape, -1, dtype=np.int64)
    pos = np.clip(np.searchsorted(keys, ids), 0, len(keys) - 1)
    return np.where(keys[pos] == ids, order[pos], -1).astype(np.int64)


@dataclass(eq=False)
class TruthUserModel:
    """The demo generator's ground truth, addressed by the simulator's user and item indices.

    Users or items unknown to the truth (none in a demo shop) never click.
    """

    truth: GroundTruth
    user_map: np.ndarray  # data user index -> truth user index (-1: unknown)
    item_map: np.ndarray  # data item index -> truth item index (-1: unknown)
    kind: str = "truth"

    @classmethod
    def for_ids(cls, truth: GroundTruth, user_ids: np.ndarray, item_ids: np.ndarray):
        return cls(
            truth, _index_map(truth.user_ids, user_ids), _index_map(truth.item_ids, item_ids)
        )

    def describe(self) -> dict[str, Any]:
        m = self.truth.model
        return {
            "kind": self.kind,
            "name": "ground truth",
            "description": "the demo shop's generator: logistic click, cart and purchase "
            "probabilities from taste-item match and item appeal; position bias "
            f"r^-{m.examine_decay:g}",
            "examine_decay": m.examine_decay,
        }

    def probabilities(self, users, items):
        tu = self.user_map[np.asarray(users)][:, None]
        ti = self.item_map[np.maximum(items, 0)]
        ok = (tu >= 0) & (ti >= 0) & (items >= 0)
        tu, ti = np.maximum(tu, 0), np.maximum(ti, 0)
        m = self.truth.match(tu, ti)
        click = np.where(ok, self.truth.click_prob(tu, ti, m), 0.0)
        cart = np.where(ok, self.truth.cart_prob(tu, ti, m), 0.0)
        buy = np.where(ok, self.truth.buy_prob(tu, ti, m), 0.0)
        return click, cart, buy

    def examine(self, ranks: np.ndarray) -> np.ndarray:
        return self.truth.examine_prob(ranks)


@dataclass(eq=False)
class CalibratedUserModel:
    """Platt-calibrated scores of a fitted model, with shrunk per-item conversion rates.

    ``P(click | examined) = sigmoid(a z_ui + b)`` with ``z_ui = (s_ui - mean_u) / std_u``.
    """

    scorer: Any  # a fitted Recommender on the simulator's indices
    a: float
    b: float
    cart: np.ndarray  # [n_items] P(cart | click)
    buy: np.ndarray  # [n_items] P(purchase | cart)
    labels: str  # what the calibration was fitted against
    pairs: int = 0
    base_rate: float = 0.0
    kind: str = "calibrated"
    _stats: dict[int, tuple[float, float]] = field(default_factory=dict, repr=False)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": f"calibrated {self.scorer.name}",
            "description": f"{self.scorer.name} fitted on the data; scores standardised per "
            f"user and Platt-calibrated (a={self.a:.3f}, b={self.b:.3f}) against {self.labels} "
            f"({self.pairs:,} pairs); cart and purchase rates per item, shrunk (empirical Bayes)",
            "platt_a": self.a,
            "platt_b": self.b,
            "labels": self.labels,
            "pairs": self.pairs,
        }

    def z_scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Per-user standardised scores of ``items`` ([n, k]) for ``users`` ([n])."""
        s = self.scorer.score(users)  # [n, n_items]
        mean = s.mean(axis=1, keepdims=True)
        std = s.std(axis=1, keepdims=True)
        z = (s - mean) / np.where(std > 0, std, 1.0)
        return np.take_along_axis(z, np.maximum(items, 0), axis=1)

    def probabilities(self, users, items):
        z = self.z_scores(np.asarray(users), items)
        ok = items >= 0
        click = np.where(ok, _sigmoid(self.a * z + self.b), 0.0)
        i = np.maximum(items, 0)
        return click, np.where(ok, self.cart[i], 0.0), np.where(ok, self.buy[i], 0.0)

    def examine(self, ranks: np.ndarray) -> None:
        return None


def pair_z(scorer: Any, users: np.ndarray, items: np.ndarray, block: int = 256) -> np.ndarray:
    """Per-user standardised scores of (user, item) pairs, scoring ``block`` users at a time."""
    z = np.empty(len(users))
    uniq, inverse = np.unique(users, return_inverse=True)
    for lo in range(0, len(uniq), block):
        rows = uniq[lo : lo + block]
        s = scorer.score(rows)
        std = s.std(axis=1, keepdims=True)
        s = (s - s.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)
        sel = np.flatnonzero((inverse >= lo) & (inverse < lo + block))
        z[sel] = s[inverse[sel] - lo, items[sel]]
    return z


def platt(z: np.ndarray, y: np.ndarray, iters: int = 50) -> tuple[float, float]:
    """Fit p = sigmoid(a z + b) by Newton's method on Platt's smoothed targets.

    Targets are (N+ + 1) / (N+ + 2) for positives and 1 / (N- + 2) for negatives (Platt 1999),
    which keeps the fit finite on separable data.
    """
    z = np.asarray(z, dtype=float)
    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    t = np.where(y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    prior = (n_pos + 1) / (n_pos + n_neg + 2)
    a, b = 0.0, float(np.log(prior / (1 - prior)))
    x = np.stack([z, np.ones_like(z)], axis=1)
    w = np.array([a, b])
    for _ in range(iters):
        p = _sigmoid(x @ w)
        grad = x.T @ (p - t)
        h = (x * (p * (1 - p))[:, None]).T @ x + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, grad)
        w = w - step
        if np.abs(step).max() < 1e-9:
            break
    return float(w[0]), float(w[1])


def item_rates(events: pd.DataFrame, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per item ``(P(cart | view), P(purchase | cart))`` from funnel pairs, shrunk (EB).

    A pair reaches view if the user viewed, carted or bought the item; cart if carted or bought
    (the funnel-stage rule of :mod:`ltrec.analytics.conversion`).
    """
    # lazy: ltrec.analytics loads ibis; only the calibrated model (no ground truth) needs it
    from ltrec.analytics.conversion import fit_beta_prior

    ev = events[events["event_type"].isin(("view", "cart", "purchase"))]
    stage = ev["event_type"].map({"view": 1, "cart": 2, "purchase": 3})
    pairs = (
        pd.DataFrame({"u": ev["user_id"].astype(str), "i": ev["item_id"].astype(str), "s": stage})
        .groupby(["u", "i"], sort=False)["s"]
        .max()
        .reset_index()
    )
    idx = pd.Index(np.asarray(item_ids, dtype=str)).get_indexer(pd.Index(pairs["i"]))
    keep = idx >= 0
    idx, s = idx[keep], pairs["s"].to_numpy()[keep]
    n = len(item_ids)
    views = np.bincount(idx, minlength=n).astype(float)
    carts = np.bincount(idx, weights=(s >= 2), minlength=n)
    buys = np.bincount(idx, weights=(s >= 3), minlength=n)
    out = []
    for succ, trials in ((carts, views), (buys, carts)):
        prior = fit_beta_prior(succ, trials)
        a, b = float(prior.a), float(prior.b)
        out.append((succ + a) / (trials + a + b))
    return out[0], out[1]


def fit_calibrated(
    events: pd.DataFrame,
    items: pd.DataFrame | None,
    users: pd.DataFrame | None,
    data: Any,
    config: CalibrationConfig | None = None,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> CalibratedUserModel:
    """Fit a :class:`CalibratedUserModel` on a dataset's events (see the module docstring).

    Args:
        events: every event of the dataset (canonical columns).
        items / users: the catalogue and users tables.
        data: the simulator's :class:`~ltrec.models.data.InteractionData` over all events; the
            returned model scores on its indices.
        config: which scorer, the held-out share, how many pairs.
    """
    cfg = config or CalibrationConfig()
    name, params = cfg.model, dict(cfg.params)
    if name == "ease" and data.n_items > max_items(params.get("max_memory_gb", 4.0)):
        name, params = "als", {}  # EASE's dense item-item matrix would not fit
    rng = np.random.default_rng(seed)
    say = progress or (lambda done, msg: None)

    # On repeat-purchase data a re-buy is a response to predict like any other.
    repeat = bool(data.repeat_domain)
    split = temporal_split(
        events,
        SplitConfig(
            test_share=cfg.test_share,
            target_events=("view", "cart", "purchase"),
            keep_seen=repeat,
        ),
    )
    train = InteractionData.from_split(split, items, users, repeat_domain=repeat)
    say(0.1, f"calibration: fitting {name} on {train.matrix.nnz:,} training pairs")
    scorer = make_model(name, params).fit(train)

    imps = split.train.iloc[:0]
    has_imp = (events["event_type"] == "impression").any()
    if has_imp:
        cut = split.cutoff
        late = events[pd.to_datetime(events["ts"]) >= cut]
        imps = late[late["event_type"] == "impression"]
    if has_imp and len(imps):
        labels = "held-out impressions (viewed or not)"
        viewed = late[late["event_type"].isin(("view", "cart", "purchase"))]
        seen = set(zip(viewed["user_id"].astype(str), viewed["item_id"].astype(str), strict=True))
        pairs = imps[["user_id", "item_id"]].astype(str).drop_duplicates()
        if len(pairs) > cfg.max_users * cfg.pool:
            pairs = pairs.sample(cfg.max_users * cfg.pool, random_state=seed)
        u = train.users_to_index(pairs["user_id"].tolist())
        i = train.items_to_index(pairs["item_id"].tolist())
        y = np.fromiter(
            (p in seen for p in zip(pairs["user_id"], pairs["item_id"], strict=True)),
            dtype=bool,
            count=len(pairs),
        )
        ok = (u >= 0) & (i >= 0)
        u, i, y = u[ok], i[ok], y[ok]
    else:
        labels = "held-out interactions (top-scored and random items)"
        test = split.test
        tu = train.users_to_index(test["user_id"].tolist())
        ti = train.items_to_index(test["item_id"].tolist())
        ok = (tu >= 0) & (ti >= 0)
        truth = set(zip(tu[ok].tolist(), ti[ok].tolist(), strict=True))
        cand_users = np.unique(tu[ok])
        if len(cand_users) > cfg.max_users:
            cand_users = np.sort(rng.choice(cand_users, cfg.max_users, replace=False))
        pool = min(cfg.pool, train.n_items)
        top, _ = scorer.recommend(cand_users, pool, exclude_seen=not repeat)
        rand = rng.integers(0, train.n_items, size=(len(cand_users), pool))
        both = np.concatenate([top, rand], axis=1)
        u = np.repeat(cand_users, both.shape[1])
        i = both.ravel()
        keep = i >= 0
        u, i = u[keep], i[keep]
        y = np.fromiter(
            ((a, b) in truth for a, b in zip(u.tolist(), i.tolist(), strict=True)),
            dtype=bool,
            count=len(u),
        )
    if len(u) == 0 or not y.any():
        raise ModelError(
            "cannot calibrate a user model: the held-out period has no usable interactions",
            hint="use a dataset with more events, or a demo shop (it has a ground truth)",
        )
    say(0.4, f"calibration: Platt scaling on {len(u):,} pairs ({int(y.sum()):,} positive)")
    a, b = platt(pair_z(scorer, u, i), y)

    say(0.6, f"calibration: refitting {name} on all events")
    full = make_model(name, params).fit(data)
    cart, buy = item_rates(events, data.item_ids)
    say(1.0, "user model ready")
    return CalibratedUserModel(
        full, a, b, cart, buy, labels, pairs=int(len(u)), base_rate=float(y.mean())
    )
