"""The repeat-purchase blend: one wrapper around any model's own scores (DESIGN §4).

In a repeat-purchase domain (groceries; ``InteractionData.repeat_domain``, read from the
dataset's meta by :func:`ltrec.store.profile.is_repeat_domain`) much of what a household buys
next is what it bought before. :class:`RepeatBlend` wraps a fitted
:class:`~ltrec.models.base.Recommender` and mixes its own scores with the user's purchase
frequency and recent popularity (:func:`repeat_blend`). It knows nothing of any one model:
the model's scores come through two hooks every model has, ``_score`` / ``_score_history``,
and ``_blend_transform`` (how the model's scores read as a positive, monotone input: NCF's
probability, the two-tower's softmax; the raw score elsewhere). The knobs are the
:class:`~ltrec.models.base.RepeatConfig` fields of the model's config (a model without them,
popularity, is never blended); their defaults apply on repeat-purchase data only, so elsewhere
the wrapper is inactive and every score is the model's own, unchanged.

The base class routes every score of a user with history through it
(:meth:`~ltrec.models.base.Recommender.score`, ``score_history``, ``recommend`` and hence
evaluation, the Studio, export, the API and the simulator), and trains it with the model
(:meth:`RepeatBlend.fit`: the time-decayed inputs, kept on the model as ``freq_`` and
``blend_pop_`` so that they are saved with it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from ltrec.models.base import Recommender
    from ltrec.models.data import InteractionData


class RepeatBlend:
    """The repeat-purchase blend around one model (see the module docstring).

    ``RepeatBlend(model)`` is a view: it holds no state of its own, so a change of the
    model's config (the weights) applies at once.
    """

    def __init__(self, model: Recommender) -> None:
        self.model = model

    @property
    def weight(self) -> float:
        """The weight w of the user's own frequency in use: the config's ``repeat_weight``,
        or when that is None the model's tuned default on repeat-purchase data, 0 elsewhere."""
        m = self.model
        w = getattr(m.config, "repeat_weight", None)
        if w is None:
            w = m.repeat_default if getattr(m, "repeat_", False) else 0.0
        return float(w)

    @property
    def pop_weight(self) -> float:
        """The weight g of global popularity in use, capped so that w + g <= 1."""
        m = self.model
        g = getattr(m.config, "popularity_weight", None)
        if g is None:
            g = m.popularity_default if getattr(m, "repeat_", False) else 0.0
        return float(min(g, 1.0 - self.weight))

    @property
    def active(self) -> bool:
        """Whether the scores are blended at all (w or g above 0)."""
        return self.weight > 0.0 or self.pop_weight > 0.0

    def fit(self, data: InteractionData) -> None:
        """The time-decayed inputs of the blend onto the model: ``freq_`` and ``blend_pop_``.

        Computed only when the config asks for a decay and the term is in use, so data that
        does not blend (w = g = 0, the demo shop) pays nothing and scores exactly as before.
        None means the undecayed input: ``seen_`` (summed event weights) and ``pop_``.
        """
        m, cfg = self.model, self.model.config
        h = getattr(cfg, "repeat_half_life_days", None)
        hp = getattr(cfg, "popularity_half_life_days", None)
        m.freq_, m.blend_pop_ = None, None
        if h is not None and self.weight > 0:
            ref: Literal["user", "global"] = getattr(cfg, "repeat_reference", "user")
            m.freq_ = data.decayed_matrix(h, ref)  # float32 CSR, the sparsity of seen_
        if hp is not None and self.pop_weight > 0:
            m.blend_pop_ = data.decayed_popularity(hp)  # float64 [n_items]

    def scores(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """The scores of known users with training history: the model's own (``_score``)
        when the blend is not :attr:`active`, else blended.

        The blend scales each user's scores over the whole catalogue, so the scores of a
        candidate subset are the same as those columns of the full row. Its frequency and
        popularity inputs are the decayed ones when the config sets half-lives (:meth:`fit`).
        """
        m = self.model
        if not self.active:
            return m._score(users, items)
        freq = m.seen_ if m.freq_ is None else m.freq_
        return self._apply(m._blend_transform(m._score(users, None)), freq[users], items)

    def history_scores(
        self, x: sp.csr_matrix, users: np.ndarray, items: np.ndarray | None
    ) -> np.ndarray:
        """The scores of history rows (each with events): the model's own
        (``_score_history``) when the blend is not :attr:`active`, else blended, the history
        being the frequency input.

        A live history has no timestamps, so with a repeat half-life set the frequency term
        is the undecayed history (the default config decays only popularity, which is global).
        """
        m = self.model
        if not self.active:
            return m._score_history(x, users, items)
        return self._apply(m._blend_transform(m._score_history(x, users, None)), x, items)

    def _apply(self, raw: np.ndarray, freq: sp.csr_matrix, items: np.ndarray | None) -> np.ndarray:
        """:func:`repeat_blend` of whole-catalogue scores ``raw`` with frequency rows ``freq``
        and the model's popularity input, then the ``items`` columns."""
        m = self.model
        pop = m.pop_ if m.blend_pop_ is None else m.blend_pop_
        full = repeat_blend(raw, freq, self.weight, pop, self.pop_weight)
        return full if items is None else full[:, items]


def repeat_blend(
    scores: np.ndarray,
    seen: sp.csr_matrix,
    weight: float,
    pop: np.ndarray | None = None,
    pop_weight: float = 0.0,
) -> np.ndarray:
    """Blend a model's scores with the users' own repeat frequency and global popularity.

    In repeat-purchase domains (groceries) much of what a household buys next is what it
    bought before, and how often it bought an item predicts a re-buy better than collaborative
    signals; what it buys new is mostly the staples everyone buys. The next-basket baselines of
    Li et al. 2023 ("A Next Basket Recommendation Reality Check", TOIS) are exactly these two
    terms: P-TopFreq (the user's most frequent items) backed off to G-TopFreq (global
    popularity), and they beat most neural models; TIFU-kNN (Hu et al. 2020, SIGIR) mixes the
    personal frequency vector with the neighbours' one by a weight. This mixes all three::

        score'_ui = (1 - w - g) * s_ui / max_j s_uj
                    + w * log(1 + r_ui) / max_j log(1 + r_uj)
                    + g * pop_i / max_j pop_j

    with ``r_ui`` the user's summed training event weight on item i (purchase 5 each, so it
    counts purchases; the log damps a few very frequent items) and ``pop`` the distinct buyers
    per item; the caller may pass time-decayed versions of both (see
    :class:`~ltrec.models.base.RepeatConfig`).
    Each term is scaled to at most 1 per user (``max_j |s_uj|`` replaces ``max_j s_uj`` when a
    user's scores are all <= 0), so the weights alone set how many slots go to re-buys,
    staples and the model's own picks. The popularity term matters most for
    models without item biases (implicit ALS), whose factors rank staples poorly.

    Args:
        scores: ``[n_users, n_items]`` model scores of the users (whole catalogue).
        seen: ``[n_users, n_items]`` CSR training weights of the same users.
        weight: ``w`` in [0, 1].
        pop: item popularity ``[n_items]`` (needed when ``pop_weight`` > 0).
        pop_weight: ``g`` in [0, 1 - w].

    Returns:
        float32 ``[n_users, n_items]``, a new array.
    """
    out = np.asarray(scores, dtype=np.float32)
    if out.shape[1]:
        # The user's best score sets the scale (not max |s|: EASE puts unfitted items far
        # below, which would squash the fitted ones); all-negative rows use max |s|.
        top = out.max(axis=1, keepdims=True)
        neg = ~(top > 0)
        top[neg] = np.abs(out[neg[:, 0]]).max(axis=1)
    else:
        top = np.ones((len(out), 1), dtype=np.float32)
    top[~(top > 0)] = 1.0
    out = (1.0 - weight - pop_weight) * (out / top)
    if pop_weight > 0 and pop is not None and len(pop):
        p = np.asarray(pop, dtype=np.float64)
        out += (pop_weight * p / max(float(p.max()), 1e-12)).astype(np.float32)
    seen = sp.csr_matrix(seen)
    counts = np.diff(seen.indptr)
    freq = np.log1p(np.maximum(seen.data, 0.0)).astype(np.float32)
    if weight > 0 and freq.size:
        rows = np.repeat(np.arange(len(counts)), counts)
        peak = np.zeros(len(counts), dtype=np.float32)
        np.maximum.at(peak, rows, freq)
        peak[peak <= 0] = 1.0
        out[rows, seen.indices] += weight * freq / peak[rows]
    return out.astype(np.float32, copy=False)
