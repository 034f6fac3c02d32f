"""Hybrid neural collaborative filtering: the pointwise model of the original design (DESIGN §4).

He et al. 2017, "Neural Collaborative Filtering" (WWW), with content features on both sides.
``x`` is the user's behaviour representation (user id embedding, the masked means of the recent
history's item-id embeddings and frozen text vectors, segment embeddings) and ``y`` the item's
features (id, category, brand and price-band embeddings, frozen MiniLM text vector); see
:mod:`ltrec.models.keras_util`. The probability that the user interacts with the item is

    p(x, y) = sigma( w_h . relu(W1 x + W2 y + b) + w_g . (P x * Q y) + c )

``W1 x + W2 y + b`` is the design's ``sigma(W1 x_behaviour + W2 y_item_features + b)`` layer,
read as the first (ReLU) layer of NCF's MLP branch: taken literally, with a scalar output, the
expression is additively separable, so every user would get the same item ranking; the
element-wise product ``P x * Q y`` is NCF's generalised matrix factorisation branch (NeuMF),
which gives the user-item interaction its own term.

Training is pointwise binary cross-entropy: every training pair is a positive (weighted by
``1 + log`` of its event weight) and ``negatives`` items per positive are drawn uniformly from
the catalogue each epoch (seeded; a draw that the user did interact with is redrawn once).
As in the two-tower, the target is removed from the history input and ids are replaced by the
unknown id with probability ``id_dropout``, so items without events are scored from content.

Scoring is numpy over precomputed per-user ``(W1 x, P x * w_g)`` and per-item ``(W2 y + b,
Q y)``: ``logit = relu(a_u + b_i) . w_h + g_u . q_i + c``, blocked over users. ``score`` returns
the logit (monotone in p); :meth:`NCF.predict_proba` gives ``p`` for (user, item) pairs, the
input of the classification view (:meth:`NCF.classification`).

Repeat purchases: the pointwise model has no term for "bought this before" (uniform
negatives redraw bought items as often as any other). On repeat-purchase data its probability
is blended post hoc with the user's own purchase frequency and recent popularity, like the
baselines (:func:`ltrec.models.repeat.repeat_blend`, weights in
:class:`~ltrec.models.base.RepeatConfig`); elsewhere the scores are the logits, unchanged.

Early stopping (Prechelt 1998, "Early Stopping - But When?"): as in the two-tower, each of
``val_users`` users' most recent training item is held out of training (pairs and history
input); after every epoch recall@``val_k`` of those items is measured (ranked as evaluation
ranks: the users' other training items excluded unless the domain repeats), and training stops
after ``patience`` epochs without improvement, keeping the best epoch's weights. The id and GMF
embeddings memorise sparse logs within a few epochs (on the CC0 Complete Journey sample,
recall@10 falls from 0.038 after one epoch to 0.016 after ten).

Sparse data and speed (issue 18; measured 2026-12-04 on the shared 2-core machine, whose
1-minute load average is given with each wall time; ``benchmarks/bench_keras.py``):

* Speed, on the demo's 404,612 training events (57k pairs). Before (the code of commit a88a0f0):
  85.1 s wall, 79.2 CPU s, 8 epochs, load 2.4-4.9 (222 s wall at load ~9). After: 20.7 s wall, 30.1
  CPU s, 8 epochs, load 2.1 (57.8 s wall at load 6). A profile of one epoch: two traces of the step
  (the last, smaller batch retraced it; ~6 s each), and per step a gather of ``history x 384`` text
  floats per example for the history's mean text. Changes, each measured in CPU seconds per epoch
  after the first: the history's mean text from per-user sums
  (:func:`~ltrec.models.keras_util.user_inputs`; wall per epoch 27.7 -> 11-12 s at batch 1024); a
  fixed input signature (one trace); XLA (``xla``, 7.3 -> 3.6 CPU s per epoch at batch 1024, ~5 s
  more to compile: a 10-epoch fit 53.9 CPU s instead of ~80); batch 2048 with learning rate 0.005
  instead of 1024 / 0.003 (42.9 CPU s, early stop after 8 epochs; demo NDCG@10 0.185 vs 0.182 on the
  default split, CC0 0.063 either way). Negative sampling was already one vectorised draw per epoch.
* Quality (default splits, paired bootstrap ratios): demo NDCG@10 0.185 vs popularity 0.062 (x2.99,
  95% interval 2.73-3.29); CC0 0.063 vs 0.050 with the repeat blend (x1.25, 1.19-1.33) and 0.043
  alone (x0.87, 0.82-0.92): the model alone does not beat popularity there, and its validation
  hold-out does not show it (no data note: its best recall 0.069 is above popularity's). Its
  validation recall peaks at epoch 2 (0.069) and falls after (the id and GMF embeddings memorise:
  half of the CC0 items are seen by one user). On a small sparse log
  (``tests/models/test_keras_sparse.py``, median 3 users per item) NCF's top 10 overlaps
  popularity's by 0.80, a copy, at seeds 0-2: with uniform negatives a best-seller is a positive
  often and a negative rarely, and the thin per-item data gives the interaction terms nothing to
  add. Not tried: embedding widths, the number of negatives, popularity-proportional negatives.
  Where the model cannot beat popularity on its validation hold-out, :attr:`data_note_` says so
  (``train --json`` ``data_note``, the Model Lab), see :func:`~ltrec.models.keras_util.data_note`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from ltrec.evaluation.classification import classification_view
from ltrec.models.base import cosine_matrix
from ltrec.models.keras_util import (
    Examples,
    KerasConfig,
    KerasRecommender,
    Positives,
    item_inputs,
    keras,
    step_inputs,
    step_signature,
    tf,
)

if TYPE_CHECKING:
    from ltrec.evaluation.classification import ClassificationConfig, ClassificationResult
    from ltrec.models.data import InteractionData

#: Cells (users x items x hidden) per numpy scoring block: bounds the scratch memory.
_BLOCK = 16_000_000


class NCFConfig(KerasConfig):
    """Hyper-parameters of :class:`NCF` (every number bounded): those of
    :class:`~ltrec.models.keras_util.KerasConfig` (the repeat-blend knobs included) and these."""

    hidden: int = Field(32, ge=2, le=1024, description="Width of relu(W1 x + W2 y + b).")
    factors: int = Field(32, ge=1, le=512, description="Width of the GMF branch P x * Q y.")
    negatives: int = Field(4, ge=1, le=100, description="Uniform negatives per positive.")
    epochs: int = Field(10, ge=1, le=500)
    batch_size: int = Field(2048, ge=8, le=65536)
    learning_rate: float = Field(0.005, ge=1e-5, le=1.0)
    xla: bool = Field(
        True, description="Compile the training step with XLA (measured: half the CPU per epoch)."
    )


class NCFHead(keras.layers.Layer):
    """``w_h . relu(a + b) + w_g . (g * q) + c`` for per-pair parts (see module doc)."""

    def __init__(self, hidden: int, factors: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.w_h = self.add_weight(shape=(hidden,), initializer="glorot_uniform", name="w_h")
        self.w_g = self.add_weight(shape=(factors,), initializer="ones", name="w_g")
        self.c = self.add_weight(shape=(), initializer="zeros", name="c")

    def call(self, a, b, g, q):
        ops = keras.ops
        mlp = ops.sum(ops.relu(a + b) * self.w_h, axis=-1)
        return mlp + ops.sum(g * q * self.w_g, axis=-1) + self.c


class NCF(KerasRecommender[NCFConfig]):
    """Pointwise hybrid NCF trained with binary cross-entropy; see module doc."""

    name = "ncf"
    config_cls = NCFConfig
    note_name = "NCF"
    # On repeat-purchase data (see RepeatConfig; chosen on the CC0 validation split).
    popularity_default = 0.6

    # ------------------------------------------------------------------ network

    def _build_net(self, enc: dict[str, Any]) -> None:
        cfg = self._cfg
        x, y = enc["user"].output, enc["item"].output
        a = keras.layers.Dense(cfg.hidden, use_bias=False, name="W1")(x)
        g = keras.layers.Dense(cfg.factors, use_bias=False, name="P")(x)
        b = keras.layers.Dense(cfg.hidden, name="W2")(y)  # carries the bias b
        q = keras.layers.Dense(cfg.factors, use_bias=False, name="Q")(y)
        self.user_side_ = keras.Model(enc["user"].inputs, [a, g], name="ncf_user")
        self.item_side_ = keras.Model(enc["item"].inputs, [b, q], name="ncf_item")
        self.head_ = NCFHead(cfg.hidden, cfg.factors, name="head")
        logit = self.head_(a, b, g, q)
        self.net_ = keras.Model([*enc["user"].inputs, *enc["item"].inputs], logit, name="ncf")

    # ------------------------------------------------------------------ training

    def _examples(
        self, data: InteractionData, pos: Positives, rng: np.random.Generator
    ) -> Examples:
        """Every positive plus ``negatives`` uniform items per positive, drawn each epoch."""
        cfg = self._cfg
        m = data.matrix.tocoo()
        n_items = data.n_items
        # negatives avoid held-out pairs too: every training pair's key
        seen_keys = np.sort(m.row.astype(np.int64) * n_items + m.col.astype(np.int64))
        users, items = pos.users, pos.items
        self._hide_held_out(self._graph(), pos.val_u, pos.val_i)
        n_pos = len(users)
        label = np.concatenate([np.ones(n_pos), np.zeros(n_pos * cfg.negatives)]).astype(np.float32)
        weight = np.concatenate([pos.weight, np.ones(n_pos * cfg.negatives)]).astype(np.float32)

        def arrays(epoch: int) -> list[np.ndarray]:
            # Every positive plus `negatives` uniform items per positive, all drawn at once.
            neg_u = np.repeat(users, cfg.negatives)
            neg_i = rng.integers(0, n_items, len(neg_u))
            hit = _member(seen_keys, neg_u * n_items + neg_i)
            neg_i[hit] = rng.integers(0, n_items, int(hit.sum()))  # one redraw
            all_u = np.concatenate([users, neg_u]).astype(np.int32)
            all_i = np.concatenate([items, neg_i]).astype(np.int32)
            # The positive that a row's history must not contain: its own item if positive.
            target = np.where(label > 0, all_i, -1).astype(np.int32)
            order = rng.permutation(len(all_u))
            return [a[order] for a in (all_u, all_i, target, label, weight)]

        return Examples(arrays, cfg.batch_size)

    def _val_scores(self, val_u: np.ndarray) -> np.ndarray:
        """Logits of every item for the validation users (held-out items out of the history)."""
        up = self._heldout_user_outputs(self.user_side_, val_u)
        h = self._cfg.hidden
        self._item_parts()
        self.w_h_ = np.asarray(self.head_.w_h.numpy(), np.float32)
        self.c_ = np.float32(self.head_.c.numpy())
        w_g = np.asarray(self.head_.w_g.numpy(), np.float32)
        return self._logits(up[:, :h], up[:, h:] * w_g, None)

    def _item_parts(self) -> None:
        """``(W2 y + b, Q y)`` of every item into ``item_b_`` / ``item_q_``."""
        ip = self._item_outputs(self.item_side_)
        h = self._cfg.hidden
        self.item_b_, self.item_q_ = ip[:, :h], ip[:, h:]

    def _train_step_fn(self, opt: Any, variables: list[Any]) -> Any:
        cfg = self._cfg
        net = self.net_
        g = self._graph()

        i32, f32 = tf.int32, tf.float32

        sig = step_signature(i32, i32, i32, f32, f32)

        @tf.function(input_signature=sig, jit_compile=cfg.xla)
        def step(users, items, target, label, w, seed):
            user_in, iid = step_inputs(g, users, items, target, seed, cfg.id_dropout)
            inputs = [*user_in, *item_inputs(g, items, iid)]
            with tf.GradientTape() as tape:
                logit = net(inputs, training=True)
                bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=label, logits=logit)
                loss = tf.reduce_sum(w * bce) / tf.reduce_sum(w)
            grads = tape.gradient(loss, variables)
            opt.apply_gradients(zip(grads, variables, strict=True))
            return loss

        return step

    # ------------------------------------------------------------------ precomputed parts

    def _precompute(self) -> None:
        anon = np.diff(self.seen_.indptr) == 0
        h = self._cfg.hidden
        up = self._user_outputs(self.user_side_, np.arange(self.tables_.n_users), anon)
        self._item_parts()
        anon_part = self._anonymous_output(self.user_side_)
        w_h = np.asarray(self.head_.w_h.numpy(), np.float32)
        w_g = np.asarray(self.head_.w_g.numpy(), np.float32)
        self.c_ = np.float32(self.head_.c.numpy())
        self.w_h_ = w_h
        self.user_a_, self.user_g_ = up[:, :h], up[:, h:] * w_g
        self.anon_a_, self.anon_g_ = anon_part[:h], anon_part[h:] * w_g

    def _logits(self, a: np.ndarray, gu: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """``relu(a_u + b_i) . w_h + g_u . q_i + c`` for every (user row, item) cell."""
        b = self.item_b_ if items is None else self.item_b_[items]
        q = self.item_q_ if items is None else self.item_q_[items]
        out = gu @ q.T + self.c_
        block = max(1, _BLOCK // max(1, b.shape[0] * b.shape[1]))
        for lo in range(0, len(a), block):
            hid = np.maximum(a[lo : lo + block, None, :] + b[None, :, :], 0.0)
            out[lo : lo + block] += hid @ self.w_h_
        return out.astype(np.float32)

    # ------------------------------------------------------------------ scoring

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._logits(self.user_a_[users], self.user_g_[users], items)

    def _blend_transform(self, logit: np.ndarray) -> np.ndarray:
        """``p = sigma(logit)``, the pointwise model's own probability, for the repeat blend.

        The blend scales each user's scores by their maximum; a logit has an arbitrary offset
        (a user whose best logit is 0.1 and worst -12 would swamp the other terms), whereas the
        probability is what the binary cross-entropy fits and is positive.
        """
        return (1.0 / (1.0 + np.exp(-np.clip(logit, -60.0, 60.0)))).astype(np.float32)

    def _score_history(self, x: Any, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """The user side on the given history (:func:`history_inputs`), then :meth:`_logits`.

        How far this follows a change: the history's mean id embedding and mean text move with
        every new event at once; a known user's id embedding (``users``) still carries what
        training saw. A user new to training (id and segments "unknown", as id dropout
        trains) is represented by the history alone: on the conformance fixture such a user
        with uT's history gets uT's answer first (the mixin checks it for every live model).
        """
        up = self._history_outputs(self.user_side_, x, users)
        h = self._cfg.hidden
        w_g = np.asarray(self.head_.w_g.numpy(), np.float32)
        return self._logits(up[:, :h], up[:, h:] * w_g, items)

    def _contribution_matrix(self, x: Any, hist: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Cosine of the items' GMF factors ``Q y`` (the part of NCF that compares a user
        with an item by direction; the MLP part has no per-item direction of its own)."""
        return cosine_matrix(self.item_q_, items, hist)

    def _tower_fallback(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        known = (users >= 0)[:, None]
        a = np.where(known, self.user_a_[np.maximum(users, 0)], self.anon_a_)
        g = np.where(known, self.user_g_[np.maximum(users, 0)], self.anon_g_)
        return self._logits(a, g, items)

    def predict_proba(self, users: Any, items: Any) -> np.ndarray:
        """``p(user, item)`` for aligned arrays of pairs (the pointwise model's output).

        Users without history get the tower's id-0 representation (their segments), unknown
        users (-1) the anonymous one, whatever ``cold_users`` says about ranking.
        """
        self._check_fitted()
        u = self._users(users)
        i = self._items(items)
        if i is None or len(i) != len(u):
            raise ValueError("users and items must be aligned arrays of the same length")
        known = (u >= 0)[:, None]
        a = np.where(known, self.user_a_[np.maximum(u, 0)], self.anon_a_)
        g = np.where(known, self.user_g_[np.maximum(u, 0)], self.anon_g_)
        logit = np.maximum(a + self.item_b_[i], 0.0) @ self.w_h_
        logit += np.sum(g * self.item_q_[i], axis=1) + self.c_
        return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)

    def classification(
        self,
        data: InteractionData,
        pos_users: np.ndarray | None = None,
        pos_items: np.ndarray | None = None,
        config: ClassificationConfig | None = None,
    ) -> ClassificationResult:
        """The classification view (DESIGN §6): held-out positives vs sampled negatives.

        Defaults to the test pairs of ``data.split``; negatives are drawn among items the user
        never interacted with (train or test).
        """
        if pos_users is None or pos_items is None:
            if data.split is None:
                raise ValueError("give the positive pairs, or data built on a split")
            test = data.split.test
            pos_users = data.users_to_index(test["user_id"].astype(str).tolist())
            pos_items = data.items_to_index(test["item_id"].astype(str).tolist())
            ok = (pos_users >= 0) & (pos_items >= 0)
            pos_users, pos_items = pos_users[ok], pos_items[ok]
        pos_users = np.asarray(pos_users, np.int64)
        pos_items = np.asarray(pos_items, np.int64)
        held = sp.csr_matrix(
            (np.ones(len(pos_users), np.float32), (pos_users, pos_items)),
            shape=(data.n_users, data.n_items),
        )
        interacted = ((data.matrix > 0).astype(np.float32) + held).tocsr()
        return classification_view(self.predict_proba, pos_users, pos_items, interacted, config)

    def item_logits_for(
        self,
        users: np.ndarray,
        category: np.ndarray,
        brand: np.ndarray,
        price_band: np.ndarray,
        text: np.ndarray,
    ) -> np.ndarray:
        """Logits ``[len(users), n_new]`` of brand-new items from content alone (id unknown)."""
        out = self._new_item_outputs(self.item_side_, category, brand, price_band, text)
        h = self._cfg.hidden
        b, q = out[:, :h], out[:, h:]
        u = self._users(users)
        known = (u >= 0)[:, None]
        a = np.where(known, self.user_a_[np.maximum(u, 0)], self.anon_a_)
        g = np.where(known, self.user_g_[np.maximum(u, 0)], self.anon_g_)
        hid = np.maximum(a[:, None, :] + b[None], 0.0) @ self.w_h_
        return (hid + g @ q.T + self.c_).astype(np.float32)


def _member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``keys`` found in the sorted array ``sorted_keys``."""
    if not len(sorted_keys):
        return np.zeros(len(keys), bool)
    pos = np.searchsorted(sorted_keys, keys)
    pos = np.minimum(pos, len(sorted_keys) - 1)
    return sorted_keys[pos] == keys
