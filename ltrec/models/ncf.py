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
baselines (:func:`ltrec.models.base.repeat_blend`, weights in
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

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from ltrec.models.base import Progress, Recommender, RepeatConfig, cosine_matrix
from ltrec.models.keras_util import (
    EarlyStop,
    FeatureTables,
    KerasPersistence,
    anonymous_inputs,
    batched,
    build_encoders,
    data_note,
    graph_tables,
    history_inputs,
    hold_out,
    inference,
    item_id_inputs,
    item_inputs,
    keras,
    new_item_inputs,
    popularity_val_recall,
    remove_from_history,
    seed_everything,
    set_history,
    step_signature,
    tf,
    train_epochs,
    user_inputs,
    validation_pairs,
)

if TYPE_CHECKING:
    from ltrec.evaluation.classification import ClassificationConfig, ClassificationResult
    from ltrec.models.data import InteractionData

#: Cells (users x items x hidden) per numpy scoring block: bounds the scratch memory.
_BLOCK = 16_000_000


class NCFConfig(RepeatConfig):
    """Hyper-parameters of :class:`NCF` (every number bounded); the repeat-blend knobs of
    :class:`~ltrec.models.base.RepeatConfig` included."""

    id_dim: int = Field(32, ge=2, le=512, description="Width of the id embeddings.")
    side_dim: int = Field(8, ge=2, le=128, description="Width of category/brand/segment codes.")
    text_dim: int = Field(32, ge=2, le=512, description="Width of the projected text vector.")
    hidden: int = Field(32, ge=2, le=1024, description="Width of relu(W1 x + W2 y + b).")
    factors: int = Field(32, ge=1, le=512, description="Width of the GMF branch P x * Q y.")
    history: int = Field(20, ge=1, le=200, description="Recent items in the user features.")
    negatives: int = Field(4, ge=1, le=100, description="Uniform negatives per positive.")
    id_dropout: float = Field(0.2, ge=0.0, le=0.9, description="Train ids as unknown this often.")
    epochs: int = Field(10, ge=1, le=500)
    batch_size: int = Field(2048, ge=8, le=65536)
    learning_rate: float = Field(0.005, ge=1e-5, le=1.0)
    weight_decay: float = Field(1e-5, ge=0.0, le=1.0)
    event_weighting: Literal["none", "log"] = Field(
        "log", description="'log': a positive's loss weighs 1 + log(summed event weight)."
    )
    val_users: int = Field(2000, ge=0, le=1_000_000, description="0: no early stopping.")
    patience: int = Field(3, ge=1, le=100, description="Epochs without improvement to stop.")
    val_k: int = Field(20, ge=1, le=1000, description="K of the validation recall.")
    cold_users: Literal["popularity", "tower"] = Field(
        "popularity", description="How users without history are scored."
    )
    deterministic: bool = Field(True, description="TensorFlow op determinism (reproducible).")
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


class NCF(KerasPersistence, Recommender):
    """Pointwise hybrid NCF trained with binary cross-entropy; see module doc."""

    name = "ncf"
    config_cls = NCFConfig
    content_model = True
    # The user side reads the recent history as the two-tower's does: score_history runs it
    # on the given history (id and segments: the user's when ``users`` names one, else
    # "unknown"); see _score_history for how far that follows a change.
    live_history = True
    contribution_method = "embedding"  # nearest history items by the GMF item factor Q y
    # On repeat-purchase data (see RepeatConfig; chosen on the CC0 validation split).
    repeat_default = 0.3
    popularity_default = 0.6

    # ------------------------------------------------------------------ network

    def _build(self, tables: FeatureTables, n_users: int) -> None:
        cfg: NCFConfig = self.config  # type: ignore[assignment]
        layers = keras.layers
        enc = build_encoders(
            tables, n_users, id_dim=cfg.id_dim, side_dim=cfg.side_dim, text_dim=cfg.text_dim
        )
        x, y = enc["user"].output, enc["item"].output
        a = layers.Dense(cfg.hidden, use_bias=False, name="W1")(x)
        g = layers.Dense(cfg.factors, use_bias=False, name="P")(x)
        b = layers.Dense(cfg.hidden, name="W2")(y)  # carries the bias b
        q = layers.Dense(cfg.factors, use_bias=False, name="Q")(y)
        self.user_side_ = keras.Model(enc["user"].inputs, [a, g], name="ncf_user")
        self.item_side_ = keras.Model(enc["item"].inputs, [b, q], name="ncf_item")
        self.head_ = NCFHead(cfg.hidden, cfg.factors, name="head")
        logit = self.head_(a, b, g, q)
        self.net_ = keras.Model([*enc["user"].inputs, *enc["item"].inputs], logit, name="ncf")
        self.tables_ = tables
        self._g = None

    def _graph(self) -> dict[str, Any]:
        if getattr(self, "_g", None) is None:
            self._g = graph_tables(self.tables_, item_id_inputs(self.seen_))
        return self._g

    # ------------------------------------------------------------------ training

    def _fit(self, data: InteractionData, progress: Progress | None) -> None:
        cfg: NCFConfig = self.config  # type: ignore[assignment]
        seed_everything(cfg.seed, cfg.deterministic)
        rng = np.random.default_rng(cfg.seed)
        self._build(FeatureTables.from_data(data, cfg.history), data.n_users)
        m = data.matrix.tocoo()
        users, items = m.row.astype(np.int64), m.col.astype(np.int64)
        w = (
            1.0 + np.log(np.maximum(m.data, 1.0))
            if cfg.event_weighting == "log"
            else m.data * 0 + 1
        )
        n_items = data.n_items
        seen_keys = np.sort(users * n_items + items)  # negatives avoid held-out pairs too
        val_u, val_i = validation_pairs(data, cfg.val_users, rng)
        keep = hold_out(users, items, val_u, val_i)
        users, items, w = users[keep], items[keep], w[keep]
        g = self._graph()
        if len(val_u):  # validation items must not appear in any training input
            hist = remove_from_history(self.tables_.user_history, val_u, val_i)
            set_history(g, self.tables_, hist)
        opt = keras.optimizers.AdamW(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay)
        variables = self.net_.trainable_variables
        opt.build(variables)
        step_fn = self._train_step_fn(g, opt, variables)
        n_pos = len(users)
        label = np.concatenate([np.ones(n_pos), np.zeros(n_pos * cfg.negatives)]).astype(np.float32)
        weight = np.concatenate([w, np.ones(n_pos * cfg.negatives)]).astype(np.float32)

        def epoch_arrays(epoch: int) -> list[np.ndarray]:
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

        stop = EarlyStop(progress, cfg.epochs, cfg.patience, cfg.val_k)
        self.history_ = train_epochs(
            step_fn,
            epoch_arrays,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            stop=stop,
            validate=lambda: self._val_recall(data, val_u, val_i) if len(val_u) else None,
            get_state=self.net_.get_weights,
            set_state=self.net_.set_weights,
        )
        self.data_note_ = None  # why the model cannot beat popularity here (see data_note)
        if len(val_u):
            pop = popularity_val_recall(data, users, items, val_u, val_i, cfg.val_k)
            self.data_note_ = data_note(
                "NCF", stop.best, pop, cfg.val_k, data.matrix, data.repeat_domain
            )
        self._g = None  # the scoring tables: the full history
        self._precompute()

    def _val_recall(self, data: InteractionData, val_u: np.ndarray, val_i: np.ndarray) -> float:
        """Recall@val_k of each held-out item, ranked as evaluation ranks (see module doc)."""
        k = self.config.val_k  # type: ignore[attr-defined]
        g = self._graph()  # its history table has the held-out items removed
        u = tf.constant(val_u.astype(np.int32))
        a, gu = self.user_side_(user_inputs(g, u, u + 1, tf.gather(g["hist"], u)), training=False)
        self._item_parts()
        self.w_h_ = np.asarray(self.head_.w_h.numpy(), np.float32)
        self.c_ = np.float32(self.head_.c.numpy())
        w_g = np.asarray(self.head_.w_g.numpy(), np.float32)
        s = self._logits(a.numpy(), gu.numpy() * w_g, None)
        if not data.repeat_domain:
            seen = data.matrix[val_u].tocoo()
            own = seen.col != val_i[seen.row]
            s[seen.row[own], seen.col[own]] = -np.inf
        target = s[np.arange(len(val_u)), val_i]
        return float(((s > target[:, None]).sum(axis=1) < k).mean())

    def _item_parts(self) -> None:
        """``(W2 y + b, Q y)`` of every item into ``item_b_`` / ``item_q_``."""
        g = self._graph()

        def items_part(lo, hi):
            i = tf.constant(np.arange(lo, hi, dtype=np.int32))
            out = self.item_side_(item_inputs(g, i, tf.gather(g["item_id"], i)), training=False)
            return np.concatenate([o.numpy() for o in out], axis=1)

        n, h = self.tables_.n_items, self.config.hidden  # type: ignore[attr-defined]
        ip = batched(items_part, n).reshape(n, -1).astype(np.float32)
        self.item_b_, self.item_q_ = ip[:, :h], ip[:, h:]

    def _train_step_fn(self, g, opt, variables):
        cfg: NCFConfig = self.config  # type: ignore[assignment]
        net = self.net_

        i32, f32 = tf.int32, tf.float32

        sig = step_signature(i32, i32, i32, f32, f32)

        @tf.function(input_signature=sig, jit_compile=cfg.xla)
        def step(users, items, target, label, w, seed):
            b = tf.shape(users)[0]
            hist = tf.gather(g["hist"], users)
            leak = hist == tf.expand_dims(target + 1, 1)
            hist = tf.where(leak, 0, hist)  # no label leak
            dropped = tf.where(tf.reduce_any(leak, axis=1), target + 1, 0)
            drop_u = tf.random.stateless_uniform([b], seed) < cfg.id_dropout
            drop_i = tf.random.stateless_uniform([b], seed + [0, 1 << 20]) < cfg.id_dropout
            uid = tf.where(drop_u, 0, users + 1)
            iid = tf.where(drop_i, 0, tf.gather(g["item_id"], items))
            inputs = [*user_inputs(g, users, uid, hist, dropped), *item_inputs(g, items, iid)]
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
        g = self._graph()
        t = self.tables_
        anon = np.diff(self.seen_.indptr) == 0

        def users_part(lo, hi):
            u = tf.constant(np.arange(lo, hi, dtype=np.int32))
            a = tf.constant(anon[lo:hi])
            ids = tf.where(a, 0, u + 1)
            hist = tf.where(a[:, None], 0, tf.gather(g["hist"], u))
            out = self.user_side_(user_inputs(g, u, ids, hist), training=False)
            return np.concatenate([o.numpy() for o in out], axis=1)

        h = self.config.hidden  # type: ignore[attr-defined]
        up = batched(users_part, t.n_users).reshape(t.n_users, -1).astype(np.float32)
        self._item_parts()
        anon_out = self.user_side_(anonymous_inputs(t), training=False)
        anon_part = np.concatenate([o.numpy() for o in anon_out], axis=1)[0].astype(np.float32)
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
        inputs = history_inputs(self.tables_, self.seen_, x, users)
        h = self.config.hidden  # type: ignore[attr-defined]
        side = inference(self.user_side_)

        def run(lo: int, hi: int) -> np.ndarray:
            out = side(*(a[lo:hi] for a in inputs))
            return np.concatenate([o.numpy() for o in out], axis=1)

        up = batched(run, len(users)).reshape(len(users), -1).astype(np.float32)
        w_g = np.asarray(self.head_.w_g.numpy(), np.float32)
        return self._logits(up[:, :h], up[:, h:] * w_g, items)

    def _contribution_matrix(self, x: Any, hist: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Cosine of the items' GMF factors ``Q y`` (the part of NCF that compares a user
        with an item by direction; the MLP part has no per-item direction of its own)."""
        return cosine_matrix(self.item_q_, items, hist)

    def _fallback(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        if self.config.cold_users == "popularity":  # type: ignore[attr-defined]
            return super()._fallback(users, items)
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
        import scipy.sparse as sp

        from ltrec.evaluation.classification import classification_view

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
        self._check_fitted()
        b, q = self.item_side_(
            new_item_inputs(self.tables_, category, brand, price_band, text), training=False
        )
        u = self._users(users)
        known = (u >= 0)[:, None]
        a = np.where(known, self.user_a_[np.maximum(u, 0)], self.anon_a_)
        g = np.where(known, self.user_g_[np.maximum(u, 0)], self.anon_g_)
        hid = np.maximum(a[:, None, :] + b.numpy()[None], 0.0) @ self.w_h_
        return (hid + g @ q.numpy().T + self.c_).astype(np.float32)


def _member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``keys`` found in the sorted array ``sorted_keys``."""
    if not len(sorted_keys):
        return np.zeros(len(keys), bool)
    pos = np.searchsorted(sorted_keys, keys)
    pos = np.minimum(pos, len(sorted_keys) - 1)
    return sorted_keys[pos] == keys
