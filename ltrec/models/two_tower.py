"""Two-tower retrieval model in Keras 3 with log-Q corrected in-batch softmax (DESIGN §4).

Yi et al. 2019, "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
Recommendations" (RecSys). A user tower ``u(x)`` and an item tower ``v(y)`` map features to
unit vectors; relevance is ``s(x, y) = <u(x), v(y)> / tau``. A batch of B training pairs
``(x_b, y_b)`` uses the other positives of the batch as negatives:

    logit[b, j] = s(x_b, y_j) - log(B * p_j)        (log-Q correction, ``logq=True``)
    loss        = - sum_b w_b log softmax(logit[b])[b] / sum_b w_b

where ``p_j`` is item j's share of the training pairs, so ``B * p_j`` is its expected count in a
batch. In-batch negatives are drawn in proportion to item frequency, so without the correction a
popular item is used as a negative far more often than under a full softmax and its score is
pushed down (the uncorrected model is implicitly popularity-discounted); the correction makes
the sampled softmax a consistent estimate of the full one. Which of the two gives the larger
tail share is an empirical question: ``benchmarks/bench_keras_models.py`` measures it.

Optional uniform negatives (Yang et al. 2020, "Mixed Negative Sampling") add M
catalogue-uniform items per batch; with them the correction uses the mixture's expected count
``B * p_j + M / n_items``. Pairs of the batch with the same item as the row's positive are
masked (they are not negatives). ``batch_negatives=False`` masks the other rows' positives too:
a plain sampled softmax over the row's positive and the M uniform items (Jean et al. 2015),
whose proposal is uniform, so the correction is a constant shift with no effect.

Features: see :mod:`ltrec.models.keras_util`. The user tower reads the user id, the masked mean
of the recent history's item-id embeddings (shared with the item tower) and of its frozen text
vectors, and the segment embeddings; the item tower reads the item id, category, brand, price
band and the frozen text vector (MiniLM). During training the target item is removed from the
user's history (no label leak), and ids are replaced by the "unknown" id 0 with probability
``id_dropout``, so both towers also learn to work from content alone: items without training
events (tail and cold items) get meaningful vectors, and users without history are scored from
their segments (``cold_users="tower"``).

Repeat purchases (``repeat``; on by default when the data is a repeat-purchase domain,
``data.repeat_domain`` from the dataset's meta): a user's own purchase count of an item is the
strongest single signal of buying it again (Bhagat et al. 2018, "Buy It Again", KDD; Hu et al. 2020,
"Modeling Personalized Item Frequency Information for Next-basket Recommendation", SIGIR), and a
tower that mixes the history into one mean vector cannot express it per item. The logits get a
learned term

    logit[b, j] += rho / tau * log(1 + n_bj)

where ``n_uj`` is user u's training count of item j in purchase units (summed event weight /
the largest event weight) and ``rho`` a learned scalar. Leave-one-out keeps it leak-free: on
the diagonal the event being predicted is not its own history (``n - 1``), and the target stays
in the history input only when an earlier occurrence remains (``n - 1 >= 1``). At scoring time
every training purchase precedes the test period, so the full count is used and the score is
``<u, v> / tau + rho / tau * log(1 + n_ui)``. Off (and identical to the plain model) elsewhere.
On repeat-purchase data the model's softmax ``p_ui / max_j p_uj`` is also blended with the
user's own frequency and recent popularity like the baselines' scores
(:func:`ltrec.models.repeat.repeat_blend`; weights chosen on the CC0 validation split, see
:class:`~ltrec.models.base.RepeatConfig`): the learned term knows the user's counts but not
which products sell lately, and the blend's popularity term is decayed by time.

Sparse data (issue 18; measured 2026-12-04, ``benchmarks/bench_keras.py``, default splits): NDCG@10
on the demo 0.194 vs popularity 0.062 (x3.12, paired 95% interval 2.86-3.44); on CC0 0.062 vs 0.050
with the repeat blend (x1.23, 1.14-1.34) and 0.057 without it (x1.13, 1.04-1.24; the learned repeat
term); its top-10 overlap with popularity's lists on CC0 is 0.32. On a small sparse log
(``tests/models/test_keras_sparse.py``, median 3 users per item, a popularity copy overlaps 0.80)
the overlap is 0.29, 0.46, 0.51 at seeds 0-2 with log-Q and 0.23, 0.10, 0.32 without: the model
follows the user's cluster, not the best-sellers. Validation recall peaks within 1-2 epochs on CC0
(0.083), so early stopping matters more than the epoch count. Where the model cannot beat
popularity on its validation hold-out, :attr:`data_note_` says so (see
:func:`~ltrec.models.keras_util.data_note`). The training step is not compiled with XLA (only NCF's
was measured; the repeat term's ``searchsorted`` lookup was not tried under XLA).

Scoring: item vectors are computed once after training; ``score`` is a numpy matrix product.
Early stopping watches recall@K of each validation user's most recent training item (held out
from training). Saved as ``model.weights.h5`` (architecture rebuilt from code) plus the
feature tables in ``state.npz``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from ltrec.models.base import cosine_matrix
from ltrec.models.keras_util import (
    Examples,
    KerasConfig,
    KerasRecommender,
    Positives,
    graph_tables,
    item_id_inputs,
    item_inputs,
    keras,
    step_inputs,
    step_signature,
    tf,
)

if TYPE_CHECKING:
    from ltrec.models.data import InteractionData


class TwoTowerConfig(KerasConfig):
    """Hyper-parameters of :class:`TwoTower` (every number bounded): those of
    :class:`~ltrec.models.keras_util.KerasConfig` (the repeat-blend knobs included) and these."""

    dim: int = Field(64, ge=4, le=512, description="Width of the user and item vectors.")
    hidden: int = Field(128, ge=4, le=2048, description="Hidden layer width of each tower.")
    temperature: float = Field(0.05, ge=0.005, le=10.0, description="Softmax temperature tau.")
    logq: bool = Field(True, description="Subtract log sampling probability (Yi et al. 2019).")
    uniform_negatives: int = Field(0, ge=0, le=4096, description="Extra uniform negatives.")
    batch_negatives: bool = Field(
        True,
        description="Other rows' positives are negatives (in-batch); False: uniform negatives "
        "only (plain sampled softmax; needs uniform_negatives > 0).",
    )
    repeat: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Learned repeat-purchase term beta*log(1+n_ui); 'auto': on when the "
        "data is a repeat-purchase domain.",
    )

    @model_validator(mode="after")
    def _some_negatives(self) -> TwoTowerConfig:
        if not self.batch_negatives and self.uniform_negatives == 0:
            raise ValueError("batch_negatives=false needs uniform_negatives > 0 (no negatives)")
        return self


def in_batch_loss(
    u, v, items, cols, w, inv_tau: float, log_q=None, offset=None, batch_negatives: bool = True
):
    """Weighted in-batch softmax cross-entropy (see module doc), as TensorFlow ops.

    Args:
        u: ``[B, d]`` user vectors; v: ``[C, d]`` item vectors, the first B the rows' positives
            (C > B with uniform negatives appended).
        items: ``[B]`` positive item indices; cols: ``[C]`` item index of every column.
        w: ``[B]`` example weights; inv_tau: 1 / temperature.
        log_q: ``[C]`` log expected count of each column's item per batch, or None (no
            correction).
        offset: ``[B, C]`` added to the logits (the repeat term), or None.
        batch_negatives: False masks the other rows' positives (columns < B off the diagonal),
            leaving the sampled softmax over the row's positive and the appended negatives.
    """
    b = tf.shape(u)[0]
    logits = tf.matmul(u, v, transpose_b=True) * inv_tau
    if log_q is not None:
        logits -= log_q[None, :]
    if offset is not None:
        logits += offset
    # The row's own positive item in another column is not a negative: mask it.
    same = tf.equal(items[:, None], cols[None, :])
    col = tf.range(tf.shape(cols)[0])[None, :]
    diag = tf.range(b)[:, None] == col
    off = same | (col < b) if not batch_negatives else same
    logits = tf.where(off & ~diag, tf.constant(-1e9, logits.dtype), logits)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.range(b), logits)
    return tf.reduce_sum(w * ce) / tf.reduce_sum(w)


def _count_table(counts: sp.csr_matrix) -> tuple[tf.Tensor, tf.Tensor]:
    """``(keys, n)``: sorted int64 keys ``u * n_items + i`` of the non-zeros and their counts."""
    c = counts.tocoo()
    keys = c.row.astype(np.int64) * counts.shape[1] + c.col.astype(np.int64)
    order = np.argsort(keys, kind="stable")
    keys, n = keys[order], c.data[order].astype(np.float32)
    if not len(keys):  # a sentinel no real key equals, so lookups need no special case
        keys, n = np.array([-1], np.int64), np.zeros(1, np.float32)
    return tf.constant(keys), tf.constant(n)


def lookup_counts(keys, n, users, items, n_items: int):
    """Count of every (user, item) pair (broadcast) in a :func:`_count_table`; 0 if absent."""
    q = tf.cast(users, tf.int64) * n_items + tf.cast(items, tf.int64)
    shape = tf.shape(q)
    flat = tf.reshape(q, [1, -1])
    pos = tf.minimum(tf.searchsorted(keys[None, :], flat), tf.size(keys) - 1)[0]
    hit = tf.equal(tf.gather(keys, pos), flat[0])
    return tf.reshape(tf.where(hit, tf.gather(n, pos), 0.0), shape)


def add_repeat_term(
    s: np.ndarray, counts: sp.csr_matrix, users: np.ndarray, items: np.ndarray | None, coef: float
) -> np.ndarray:
    """``s += coef * log(1 + counts[users][:, items])`` in place (only the non-zeros)."""
    sub = counts[users] if items is None else counts[users][:, items]
    c = sub.tocoo()
    s[c.row, c.col] += np.float32(coef) * np.log1p(c.data).astype(np.float32)
    return s


class TwoTower(KerasRecommender[TwoTowerConfig]):
    """User/item towers trained with (log-Q corrected) in-batch softmax; see module doc."""

    name = "two_tower"
    config_cls = TwoTowerConfig
    note_name = "The two-tower"
    popularity_default = 0.4

    # ------------------------------------------------------------------ networks

    def _build_net(self, enc: dict[str, Any]) -> None:
        cfg = self._cfg
        layers = keras.layers

        def head(features: Any, name: str) -> Any:
            x = layers.Dense(cfg.hidden, activation="relu", name=f"{name}_hidden")(features.output)
            x = layers.Dense(cfg.dim, name=f"{name}_out")(x)
            x = layers.UnitNormalization(axis=-1, name=f"{name}_norm")(x)
            return keras.Model(features.inputs, x, name=f"{name}_tower")

        self.user_tower_ = head(enc["user"], "user")
        self.item_tower_ = head(enc["item"], "item")
        # One container for saving: both towers and their shared layers.
        self.net_ = keras.Model(
            [*self.user_tower_.inputs, *self.item_tower_.inputs],
            [self.user_tower_.outputs[0], self.item_tower_.outputs[0]],
            name="two_tower",
        )

    # ------------------------------------------------------------------ training

    def _examples(
        self, data: InteractionData, pos: Positives, rng: np.random.Generator
    ) -> Examples:
        """Every training pair once per epoch, shuffled; the step adds the negatives."""
        cfg = self._cfg
        tables = self.tables_
        users, items = pos.users.astype(np.int32), pos.items.astype(np.int32)
        val_u, val_i = pos.val_u, pos.val_i
        n, n_items = len(users), data.n_items
        self.repeat_on_ = cfg.repeat == "on" or (cfg.repeat == "auto" and data.repeat_domain)
        self.repeat_unit_ = float(max([v for v in data.weights.values() if v > 0], default=1.0))
        self.rho_ = tf.Variable(0.0, dtype=tf.float32, name="repeat_rho")
        # Purchase counts the repeat term reads; a validation pair loses the held-out event.
        counts = sp.csr_matrix(data.matrix, dtype=np.float32, copy=True)
        counts.sort_indices()
        counts.data /= self.repeat_unit_
        if len(val_u):
            counts = counts + sp.csr_matrix(
                (np.full(len(val_u), -1.0, np.float32), (val_u, val_i)), shape=counts.shape
            )
            counts.data = np.maximum(counts.data, 0.0)
            counts.sort_indices()
        self._val_counts: sp.csr_matrix | None = counts
        batch = int(min(cfg.batch_size, max(2, n)))
        freq = np.bincount(items, minlength=n_items).astype(np.float64) / max(1, n)
        # log of each item's expected count among a batch's columns (Yi et al. 2019).
        expected = batch * freq * cfg.batch_negatives + cfg.uniform_negatives / n_items
        log_q = np.log(np.maximum(expected, 1e-12)).astype(np.float32)

        g = graph_tables(tables, item_id_inputs(self.seen_))
        g["log_q"] = tf.constant(log_q)
        drop = np.ones(len(val_u), bool)  # the held-out items leave the history input...
        if self.repeat_on_ and len(val_u):  # ...unless an earlier purchase remains (leave-one-out)
            drop = np.asarray(counts[val_u, val_i]).ravel() < 1.0
        self._hide_held_out(g, val_u[drop], val_i[drop])
        g["rep_keys"], g["rep_n"] = _count_table(counts)
        self._g = g
        weight = pos.weight

        def arrays(epoch: int) -> list[np.ndarray]:
            order = rng.permutation(n)
            return [users[order], items[order], weight[order]]

        return Examples(arrays, batch, min_batch=2)

    def _variables(self) -> list[Any]:
        variables = super()._variables()
        return [*variables, self.rho_] if self.repeat_on_ else variables

    def _weights(self) -> Any:
        return self.net_.get_weights(), float(self.rho_.numpy())

    def _set_weights(self, state: Any) -> None:
        self.net_.set_weights(state[0])
        self.rho_.assign(state[1])

    def _end_fit(self) -> None:
        self._val_counts = None
        self.rho_ = float(self.rho_.numpy())  # plain state from here on (saved in state.npz)

    def _train_step_fn(self, opt: Any, variables: list[Any]) -> Any:
        cfg = self._cfg
        g = self._graph()
        n_items = self.tables_.n_items
        user_tower, item_tower = self.user_tower_, self.item_tower_
        inv_tau = 1.0 / cfg.temperature
        n_uniform = cfg.uniform_negatives
        repeat, rho = self.repeat_on_, self.rho_

        @tf.function(input_signature=step_signature(tf.int32, tf.int32, tf.float32))
        def step(users, items, w, seed):
            b = tf.shape(users)[0]
            earlier = None
            if repeat:  # the target stays in the history if an earlier purchase remains
                n_pos = lookup_counts(g["rep_keys"], g["rep_n"], users, items, n_items)
                earlier = n_pos >= 2.0
            user_in, iid = step_inputs(g, users, items, items, seed, cfg.id_dropout, earlier)
            cols = items
            if n_uniform:
                neg = tf.random.stateless_uniform(
                    [n_uniform], seed + [0, 1 << 21], 0, n_items, dtype=tf.int32
                )
                cols = tf.concat([items, neg], 0)
                iid = tf.concat([iid, tf.gather(g["item_id"], neg)], 0)
            with tf.GradientTape() as tape:
                u = user_tower(user_in, training=True)
                v = item_tower(item_inputs(g, cols, iid), training=True)
                log_q = tf.gather(g["log_q"], cols) if cfg.logq else None
                if repeat:
                    n_bc = lookup_counts(
                        g["rep_keys"], g["rep_n"], users[:, None], cols[None, :], n_items
                    )
                    # Leave-one-out: the predicted event is not its own history.
                    diag = tf.eye(b, tf.shape(cols)[0], dtype=tf.float32)
                    offset = rho * inv_tau * tf.math.log1p(tf.maximum(n_bc - diag, 0.0))
                else:
                    offset = None
                loss = in_batch_loss(
                    u, v, items, cols, w, inv_tau, log_q, offset, cfg.batch_negatives
                )
            grads = tape.gradient(loss, variables)
            opt.apply_gradients(zip(grads, variables, strict=True))
            return loss

        return step

    # ------------------------------------------------------------------ state

    def _state(self) -> dict[str, np.ndarray]:
        rep = [float(self.repeat_on_), self.repeat_unit_, self._rho]
        return {**super()._state(), "repeat": np.asarray(rep, np.float64)}

    def _set_state(self, arrays) -> None:
        super()._set_state(arrays)
        # Runs saved before the repeat term existed have none: off.
        on, unit, rho = (float(x) for x in arrays.get("repeat", np.array([0.0, 1.0, 0.0])))
        self.repeat_on_, self.repeat_unit_, self.rho_ = bool(on), max(unit, 1e-12), rho

    # ------------------------------------------------------------------ vectors

    def _val_scores(self, val_u: np.ndarray) -> np.ndarray:
        """``<u, v>`` of every item for the validation users (held-out items out of the
        history); with the repeat term, scaled by 1 / tau plus the term on the leave-one-out
        counts."""
        iv = self._item_outputs(self.item_tower_)
        s = self._heldout_user_outputs(self.user_tower_, val_u) @ iv.T
        if self.repeat_on_:
            s *= np.float32(self._inv_tau)
            counts = cast(sp.csr_matrix, self._val_counts)  # set while a fit validates
            add_repeat_term(s, counts, val_u, None, self._rho * self._inv_tau)
        return s

    @property
    def _inv_tau(self) -> float:
        return 1.0 / self._cfg.temperature

    @property
    def _rho(self) -> float:
        return float(self.rho_.numpy()) if hasattr(self.rho_, "numpy") else float(self.rho_)

    def _precompute(self) -> None:
        """Item and user vectors for scoring (users without history: id 0, no history)."""
        self.counts_ = sp.csr_matrix(self.seen_ / np.float32(self.repeat_unit_), dtype=np.float32)
        anon = np.diff(self.seen_.indptr) == 0
        self.item_vecs_ = self._item_outputs(self.item_tower_)
        self.user_vecs_ = self._user_outputs(
            self.user_tower_, np.arange(self.tables_.n_users), anon
        )
        # A user unknown to training: id 0, no history, every segment "unknown" (code 0).
        self.anon_vec_ = self._anonymous_output(self.user_tower_)

    # ------------------------------------------------------------------ scoring

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        iv = self.item_vecs_ if items is None else self.item_vecs_[items]
        s = self.user_vecs_[users] @ iv.T
        if not self.repeat_on_:
            return s
        # <u, v> / tau + rho / tau * log(1 + n_ui): every training purchase is prior history.
        s *= np.float32(self._inv_tau)
        return add_repeat_term(s, self.counts_, users, items, self._rho * self._inv_tau)

    def _blend_transform(self, s: np.ndarray) -> np.ndarray:
        """``exp(s_ui - max_j s_uj)`` = ``p_ui / max_j p_uj`` under the model's full softmax.

        The softmax probability is what the (log-Q corrected) in-batch loss estimates; scaled
        by the user's top item it lies in (0, 1], so the repeat blend can mix it with the
        frequency and popularity terms (a raw ``<u, v> / tau`` has an arbitrary offset).
        """
        return np.exp(s - s.max(axis=1, keepdims=True)).astype(np.float32)

    def _score_history(
        self, x: sp.csr_matrix, users: np.ndarray, items: np.ndarray | None
    ) -> np.ndarray:
        """The user tower on the given history (:func:`history_inputs`), then as :meth:`_score`
        with the history's purchase counts in the repeat term.

        A known user (``users``) keeps their id embedding and segments, so a new event moves
        the history part of the tower only; a user new to training gets id 0 and "unknown"
        segments (what id dropout trains for) and is represented by the history alone.
        """
        uv = self._ann_history_vectors(x, users)
        iv = self.item_vecs_ if items is None else self.item_vecs_[items]
        s = uv @ iv.T
        if not self.repeat_on_:
            return s
        s *= np.float32(self._inv_tau)
        counts = sp.csr_matrix(x / np.float32(self.repeat_unit_), dtype=np.float32)
        rows = np.arange(len(users))
        return add_repeat_term(s, counts, rows, items, self._rho * self._inv_tau)

    # Without the repeat term scores are <u, v>: the ANN index (ltrec.models.ann) searches the
    # item-tower vectors (the repeat term adds a per-user count to some items: exact path).
    def _ann_item_vectors(self) -> np.ndarray | None:
        return None if self.repeat_on_ else self.item_vecs_

    def _ann_user_vectors(self, users: np.ndarray) -> np.ndarray:
        return self.user_vecs_[users]

    def _ann_history_vectors(self, x: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        """The user tower on history rows (:func:`history_inputs`), float32 ``[n, d]``."""
        return self._history_outputs(self.user_tower_, x, users)

    def _contribution_matrix(
        self, x: sp.csr_matrix, hist: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """Cosine of the item-tower vectors of each listed item and each history item."""
        return cosine_matrix(self.item_vecs_, items, hist)

    def _tower_fallback(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        iv = self.item_vecs_ if items is None else self.item_vecs_[items]
        uv = np.where((users >= 0)[:, None], self.user_vecs_[np.maximum(users, 0)], self.anon_vec_)
        return uv @ iv.T

    def item_vectors_for(
        self,
        category: np.ndarray,
        brand: np.ndarray,
        price_band: np.ndarray,
        text: np.ndarray,
    ) -> np.ndarray:
        """Item-tower vectors of brand-new items from content alone (id = unknown).

        Codes are the training vocabularies' (0 = unknown); ``text`` is ``[n, d_text]`` from
        the same encoder. Score them against :attr:`user_vecs_` with a dot product.
        """
        return self._new_item_outputs(self.item_tower_, category, brand, price_band, text)
