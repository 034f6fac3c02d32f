"""Shared pieces of the Keras models (two-tower, NCF): environment, seeding, feature encoders.

Import this module only where a Keras model is built or loaded: importing it imports
TensorFlow (seconds). The model registry names the Keras models lazily, so nothing else pays.

Both models read the same features, described by :class:`FeatureTables`:

* item: id (index + 1; 0 = "unknown", the row cold and brand-new items use), category, brand
  and price-band codes (0 = unknown), and the frozen text embedding (MiniLM vectors are input
  features; the encoder itself is not fine-tuned).
* user: id (index + 1; 0 = unknown), the ``history`` most recent training items (index + 1,
  0 = padding), the mean text vector of those items, and the segment codes of every user
  feature (region, device, tier, ...).

The history's text enters the user features as one mean vector (``text_proj`` is linear, so
projecting the mean is the mean of the projections). Training computes it from per-user sums
(:func:`graph_tables`) minus the text of an item taken out of the history (the target, against
label leaks) instead of gathering ``history x d_text`` floats per example: with MiniLM's 384
dimensions that gather was most of an NCF step (see :class:`ltrec.models.ncf.NCF`).

Both models derive from :class:`KerasRecommender`, which holds everything they share: the
hyper-parameters of :class:`KerasConfig`, the training loop (:meth:`KerasRecommender._fit`:
seeding, the weighted training pairs and the validation hold-out of :class:`Positives`, the
optimiser, :func:`train_epochs` with numpy batches through one compiled step, validation recall
and early stopping after every epoch with the best epoch's weights kept, the progress messages
of :class:`EarlyStop`, the data note), scoring of users without history, scoring from a live
history and save/load. A model keeps its architecture (``_build``), its example builder
(``_examples``, what one epoch feeds the step), its training step and its scoring.
"""

from __future__ import annotations

import abc
import os
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, cast

import numpy as np
from pydantic import Field

from ltrec.errors import RegistryError
from ltrec.models.base import ModelConfig, Recommender, RepeatConfig
from ltrec.models.data import PRICE_BANDS
from ltrec.models.registry import load_keras_weights, save_keras_weights
from ltrec.progress import Progress, report

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

if TYPE_CHECKING:
    from ltrec.models.data import InteractionData

ops = keras.ops


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, numpy and TensorFlow (``keras.utils.set_random_seed``).

    With ``deterministic`` TensorFlow's op determinism is switched on (process-wide, and it
    cannot be switched off again): on the CPU it costs little and makes two fits with one seed
    give identical weights.
    """
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


class KerasConfig(RepeatConfig):
    """Hyper-parameters both Keras models share (every number bounded); the repeat-blend knobs
    of :class:`~ltrec.models.base.RepeatConfig` included. A model adds its architecture's and
    may re-declare a field with its own default (epochs, batch size, learning rate)."""

    id_dim: int = Field(32, ge=2, le=512, description="Width of the id embeddings.")
    side_dim: int = Field(8, ge=2, le=128, description="Width of category/brand/segment codes.")
    text_dim: int = Field(32, ge=2, le=512, description="Width of the projected text vector.")
    history: int = Field(20, ge=1, le=200, description="Recent items in the user features.")
    id_dropout: float = Field(0.2, ge=0.0, le=0.9, description="Train ids as unknown this often.")
    epochs: int = Field(20, ge=1, le=500)
    batch_size: int = Field(512, ge=8, le=65536)
    learning_rate: float = Field(0.003, ge=1e-5, le=1.0)
    weight_decay: float = Field(1e-5, ge=0.0, le=1.0)
    event_weighting: Literal["none", "log"] = Field(
        "log", description="'log': a training pair's loss weighs 1 + log(summed event weight)."
    )
    val_users: int = Field(2000, ge=0, le=1_000_000, description="0: no early stopping.")
    patience: int = Field(3, ge=1, le=100, description="Epochs without improvement to stop.")
    val_k: int = Field(20, ge=1, le=1000, description="K of the validation recall.")
    cold_users: Literal["popularity", "tower"] = Field(
        "popularity", description="How users without history are scored."
    )
    deterministic: bool = Field(True, description="TensorFlow op determinism (reproducible).")


@dataclass
class FeatureTables:
    """Dense feature tables of users and items, as the towers read them (see module doc)."""

    item_category: np.ndarray  # int32 [n_items]
    item_brand: np.ndarray  # int32 [n_items]
    item_band: np.ndarray  # int32 [n_items]
    item_text: np.ndarray  # float32 [n_items, d_text] (zeros when there is no text)
    user_history: np.ndarray  # int32 [n_users, history] item index + 1, 0 = padding
    user_segments: np.ndarray  # int32 [n_users, n_segments], offset codes (see segment_sizes)
    segment_sizes: np.ndarray  # int64 [n_segments] codes per segment (incl. 0 = unknown)
    n_categories: int
    n_brands: int
    n_bands: int

    @property
    def n_items(self) -> int:
        return len(self.item_category)

    @property
    def n_users(self) -> int:
        return len(self.user_history)

    @property
    def d_text(self) -> int:
        return int(self.item_text.shape[1])

    @classmethod
    def from_data(cls, data: InteractionData, history: int) -> FeatureTables:
        """Tables of ``data``; without text embeddings the text input is one zero column."""
        text = data.item_text_emb
        if text is None:
            text = np.zeros((data.n_items, 1), np.float32)
        hist = data.recent_items(np.arange(data.n_users), history) + 1
        names = sorted(data.user_features)
        sizes = np.array([len(data.user_feature_names[n]) for n in names], np.int64)
        segs = np.zeros((data.n_users, len(names)), np.int32)
        for c, n in enumerate(names):
            segs[:, c] = data.user_features[n]
        return cls(
            item_category=np.asarray(data.item_category, np.int32),
            item_brand=np.asarray(data.item_brand, np.int32),
            item_band=np.asarray(data.item_price_band, np.int32),
            item_text=np.ascontiguousarray(text, np.float32),
            user_history=hist.astype(np.int32),
            user_segments=segs,
            segment_sizes=sizes,
            n_categories=len(data.category_names),
            n_brands=len(data.brand_names),
            n_bands=PRICE_BANDS + 1,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for ``state.npz``."""
        return {
            "ft_item_category": self.item_category,
            "ft_item_brand": self.item_brand,
            "ft_item_band": self.item_band,
            "ft_item_text": self.item_text,
            "ft_user_history": self.user_history,
            "ft_user_segments": self.user_segments,
            "ft_segment_sizes": self.segment_sizes,
            "ft_sizes": np.array([self.n_categories, self.n_brands, self.n_bands], np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> FeatureTables:
        try:
            n_cat, n_brand, n_band = (int(x) for x in arrays["ft_sizes"])
            out = cls(
                item_category=np.asarray(arrays["ft_item_category"], np.int32),
                item_brand=np.asarray(arrays["ft_item_brand"], np.int32),
                item_band=np.asarray(arrays["ft_item_band"], np.int32),
                item_text=np.asarray(arrays["ft_item_text"], np.float32),
                user_history=np.asarray(arrays["ft_user_history"], np.int32),
                user_segments=np.asarray(arrays["ft_user_segments"], np.int32),
                segment_sizes=np.asarray(arrays["ft_segment_sizes"], np.int64),
                n_categories=n_cat,
                n_brands=n_brand,
                n_bands=n_band,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise RegistryError(
                f"saved model state lacks its feature tables ({exc})", hint="retrain the model"
            ) from exc
        out.check()
        return out

    def check(self) -> None:
        """Codes within their vocabularies (a damaged state must not index out of range)."""
        n = self.n_items
        ok = (
            self.item_brand.shape == (n,)
            and self.item_band.shape == (n,)
            and self.item_text.ndim == 2
            and self.item_text.shape[0] == n
            and self.user_segments.shape == (self.n_users, len(self.segment_sizes))
            and _within(self.item_category, self.n_categories)
            and _within(self.item_brand, self.n_brands)
            and _within(self.item_band, self.n_bands)
            and _within(self.user_history, n + 1)
            and all(
                _within(self.user_segments[:, c], int(s)) for c, s in enumerate(self.segment_sizes)
            )
        )
        if not ok:
            raise RegistryError("saved feature tables are inconsistent", hint="retrain the model")


def _within(codes: np.ndarray, size: int) -> bool:
    return codes.size == 0 or (int(codes.min()) >= 0 and int(codes.max()) < size)


def build_encoders(
    tables: FeatureTables,
    n_users: int,
    *,
    id_dim: int,
    side_dim: int,
    text_dim: int,
) -> dict[str, Any]:
    """Keras sub-models turning raw features into one vector each (shared by both towers).

    Returns:
        ``{"user": Model(user inputs -> x_user), "item": Model(item inputs -> y_item),
        "item_id_emb": the item id embedding layer}``. ``x_user`` concatenates the user id
        embedding, the masked mean of the history's id embeddings, the history's mean text
        vector (projected), and one embedding per segment; ``y_item`` concatenates the item id,
        category, brand and price-band embeddings and the projected text vector.
    """
    layers = keras.layers
    n_items, d_text = tables.n_items, tables.d_text
    item_id_emb = layers.Embedding(n_items + 1, id_dim, name="item_id_emb")
    text_proj = layers.Dense(text_dim, name="text_proj")

    i_id = keras.Input((), dtype="int32", name="item_id")
    i_cat = keras.Input((), dtype="int32", name="category")
    i_brand = keras.Input((), dtype="int32", name="brand")
    i_band = keras.Input((), dtype="int32", name="price_band")
    i_text = keras.Input((d_text,), dtype="float32", name="text")
    y = layers.Concatenate(name="item_features")(
        [
            item_id_emb(i_id),
            layers.Embedding(tables.n_categories, side_dim, name="category_emb")(i_cat),
            layers.Embedding(tables.n_brands, side_dim, name="brand_emb")(i_brand),
            layers.Embedding(tables.n_bands, max(2, side_dim // 2), name="band_emb")(i_band),
            text_proj(i_text),
        ]
    )
    item = keras.Model([i_id, i_cat, i_brand, i_band, i_text], y, name="item_features")

    u_id = keras.Input((), dtype="int32", name="user_id")
    u_hist = keras.Input((tables.user_history.shape[1],), dtype="int32", name="history")
    u_hist_text = keras.Input((d_text,), name="history_text")  # mean text of the history
    u_seg = keras.Input((tables.user_segments.shape[1],), dtype="int32", name="segments")
    mean = MaskedMean(name="history_mean")
    parts = [
        layers.Embedding(n_users + 1, id_dim, name="user_id_emb")(u_id),
        mean(item_id_emb(u_hist), u_hist),
        text_proj(u_hist_text),
    ]
    if len(tables.segment_sizes):
        offsets = np.concatenate([[0], np.cumsum(tables.segment_sizes)[:-1]]).astype(np.int32)
        seg = OffsetEmbedding(int(tables.segment_sizes.sum()), side_dim, offsets, name="seg_emb")
        parts.append(seg(u_seg))
    x = layers.Concatenate(name="user_features")(parts)
    user = keras.Model([u_id, u_hist, u_hist_text, u_seg], x, name="user_features")
    return {"user": user, "item": item, "item_id_emb": item_id_emb}


class MaskedMean(keras.layers.Layer):
    """Mean over axis 1 of ``values`` where ``ids > 0`` (zeros when nothing is left)."""

    def call(self, values, ids):
        m = ops.cast(ops.greater(ids, 0), values.dtype)[:, :, None]
        total = ops.sum(values * m, axis=1)
        return total / ops.maximum(ops.sum(m, axis=1), 1.0)


class OffsetEmbedding(keras.layers.Layer):
    """One embedding table for several categorical columns: code + column offset, flattened."""

    def __init__(self, size: int, dim: int, offsets: np.ndarray, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.offsets = np.asarray(offsets, np.int32)
        self.emb = keras.layers.Embedding(max(1, size), dim)

    def call(self, codes):
        e = self.emb(ops.add(codes, ops.convert_to_tensor(self.offsets)))
        return ops.reshape(e, (-1, e.shape[1] * e.shape[2]))


def item_id_inputs(seen: Any) -> np.ndarray:
    """Id input of every item: index + 1, or 0 ("unknown") for items without training events.

    An item nobody interacted with has nothing in its id embedding but noise (or, as a sampled
    negative, "never chosen"), so it is represented by the unknown id, whose embedding id
    dropout trains to stand for "judge me by my content".
    """
    counts = np.diff(seen.tocsc().indptr)
    return np.where(counts > 0, np.arange(1, len(counts) + 1), 0).astype(np.int32)


def history_text_sums(text: np.ndarray, hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``hist`` (item index + 1, 0 = padding): the sum of its items' text vectors
    ``[n, d_text]`` and the number of items ``[n]`` (float32), in chunks of rows."""
    sums = np.zeros((len(hist), text.shape[1]), np.float32)
    step = max(1, 2_000_000 // max(1, hist.shape[1] * text.shape[1]))
    for lo in range(0, len(hist), step):
        h = hist[lo : lo + step]
        sums[lo : lo + step] = (text[np.maximum(h - 1, 0)] * (h > 0)[:, :, None]).sum(axis=1)
    return sums, (hist > 0).sum(axis=1).astype(np.float32)


def history_text_mean(text: np.ndarray, hist: np.ndarray) -> np.ndarray:
    """The ``history_text`` input: mean text vector of each row's items (zeros when empty)."""
    sums, n = history_text_sums(text, hist)
    return sums / np.maximum(n, 1.0)[:, None]


def graph_tables(t: FeatureTables, item_ids: np.ndarray) -> dict[str, Any]:
    """The feature tables as TensorFlow constants, for gathering inside ``tf.function``.

    ``item_ids``: the id input per item (:func:`item_id_inputs`). The history table (and its
    text sums) can be replaced with :func:`set_history`.
    """
    text = np.vstack([np.zeros((1, t.d_text), np.float32), t.item_text])  # row 0: padding
    g = {
        "item_id": tf.constant(np.asarray(item_ids, np.int32)),
        "cat": tf.constant(t.item_category),
        "brand": tf.constant(t.item_brand),
        "band": tf.constant(t.item_band),
        "text": tf.constant(t.item_text),
        "text_pad": tf.constant(text),
        "seg": tf.constant(t.user_segments),
    }
    set_history(g, t, t.user_history)
    return g


def set_history(g: dict[str, Any], t: FeatureTables, hist: np.ndarray) -> None:
    """Put the history table ``hist`` (and its text sums and lengths) into the graph tables."""
    sums, n = history_text_sums(t.item_text, hist)
    g["hist"], g["hist_text_sum"], g["hist_n"] = (tf.constant(a) for a in (hist, sums, n))


def item_inputs(g: Mapping[str, Any], items: Any, ids: Any) -> list[Any]:
    """Item-feature model inputs for item indices ``items`` with id inputs ``ids``."""
    return [
        ids,
        tf.gather(g["cat"], items),
        tf.gather(g["brand"], items),
        tf.gather(g["band"], items),
        tf.gather(g["text"], items),
    ]


def user_inputs(
    g: Mapping[str, Any], users: Any, ids: Any, hist: Any, dropped: Any = None
) -> list[Any]:
    """User-feature model inputs: id inputs, history (item index + 1), its mean text, segments.

    ``hist`` is the users' row of ``g["hist"]``, except that ``dropped`` (``[B]`` item index
    + 1, 0 = none) may have been taken out of it: its text leaves the mean too. Rows whose
    history is all padding get a zero text mean.
    """
    total = tf.gather(g["hist_text_sum"], users)
    n = tf.gather(g["hist_n"], users)
    if dropped is not None:
        total -= tf.gather(g["text_pad"], dropped)
        n -= tf.cast(dropped > 0, tf.float32)
    mean = total / tf.maximum(n, 1.0)[:, None]
    mean = tf.where(tf.reduce_any(hist > 0, axis=1)[:, None], mean, 0.0)
    return [ids, hist, mean, tf.gather(g["seg"], users)]


def step_inputs(
    g: Mapping[str, Any],
    users: Any,
    items: Any,
    target: Any,
    seed: Any,
    id_dropout: float,
    leak_ok: Any = None,
) -> tuple[list[Any], Any]:
    """The user-feature inputs and the item id inputs of a training batch (inside a step).

    ``target`` (``[B]`` item index, -1 = none) is taken out of each row's history, no label
    leak, except where ``leak_ok`` (``[B]`` bool, or None) says an earlier occurrence may
    stay; user and item ids become the unknown id 0 with probability ``id_dropout`` (two
    stateless draws from ``seed``), so both sides also learn to work from content alone.
    """
    b = tf.shape(users)[0]
    hist = tf.gather(g["hist"], users)
    leak = hist == tf.expand_dims(target + 1, 1)
    if leak_ok is not None:
        leak &= tf.expand_dims(~leak_ok, 1)
    hist = tf.where(leak, 0, hist)
    dropped = tf.where(tf.reduce_any(leak, axis=1), target + 1, 0)
    drop_u = tf.random.stateless_uniform([b], seed) < id_dropout
    drop_i = tf.random.stateless_uniform([b], seed + [0, 1 << 20]) < id_dropout
    uid = tf.where(drop_u, 0, users + 1)
    iid = tf.where(drop_i, 0, tf.gather(g["item_id"], items))
    return user_inputs(g, users, uid, hist, dropped), iid


def validation_pairs(
    data: InteractionData, n_users: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n_users`` users (with >= 2 training items) and each one's most recent item.

    The early-stopping hold-out of the Keras models (none when fewer than 20 users qualify).
    """
    counts = np.diff(data.matrix.indptr)
    eligible = np.flatnonzero(counts >= 2)
    if n_users == 0 or len(eligible) < 20:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    chosen = np.sort(rng.choice(eligible, min(n_users, len(eligible)), replace=False))
    last = np.array([data.history(int(u))[0] for u in chosen], np.int64)
    return chosen, last


class EarlyStop:
    """Per-epoch progress message and early stopping on validation recall (both Keras models).

    :meth:`epoch` reports ``epoch e/E: loss L, val recall@k R, ~Ns left`` and says whether the
    epoch is the best so far (the caller keeps its weights) and whether ``patience`` epochs in
    a row have not improved (the caller stops). Without a validation recall (no hold-out),
    no epoch is best and training never stops early.
    """

    def __init__(self, progress: Progress | None, epochs: int, patience: int, k: int) -> None:
        self.progress, self.epochs, self.patience, self.k = progress, epochs, patience, k
        self.best, self.bad = -1.0, 0
        self.t0 = time.perf_counter()

    def epoch(self, epoch: int, loss: float, recall: float | None) -> tuple[bool, bool]:
        """Report epoch ``epoch`` (0-based); return ``(best so far, stop now)``."""
        done = epoch + 1
        left = (time.perf_counter() - self.t0) / done * (self.epochs - done)
        msg = f"epoch {done}/{self.epochs}: loss {loss:.4f}"
        if recall is not None:
            msg += f", val recall@{self.k} {recall:.4f}"
        report(self.progress, done / self.epochs, f"{msg}, ~{left:.0f}s left")
        if recall is None:
            return False, False
        if recall > self.best:
            self.best, self.bad = recall, 0
            return True, False
        self.bad += 1
        if self.bad < self.patience:
            return False, False
        report(self.progress, 1.0, f"early stop at epoch {done}: best {self.best:.4f}")
        return False, True


def step_signature(*dtypes: Any) -> list[Any]:
    """``tf.function`` input signature of a training step: one ``[batch]`` vector per dtype,
    then the ``[2]`` int32 seed. Fixed shapes trace the step once (the last, smaller batch
    of an epoch would trace it again: ~6 s of a loaded 2-core machine per trace)."""
    return [tf.TensorSpec([None], d) for d in dtypes] + [tf.TensorSpec([2], tf.int32)]


def train_epochs(
    step: Any,
    epoch_arrays: Any,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    stop: EarlyStop,
    validate: Any,
    get_state: Any,
    set_state: Any,
    min_batch: int = 1,
) -> list[dict[str, Any]]:
    """The training loop of both Keras models: numpy batches through one compiled step.

    Args:
        step: ``step(*batch_tensors, seed) -> loss``, a ``tf.function`` (``seed``: int32
            ``[seed, step number]`` for its stateless random draws).
        epoch_arrays: ``epoch_arrays(epoch) -> list of aligned numpy arrays``, already in the
            epoch's (shuffled) order; consecutive ``batch_size`` slices are the batches.
        validate: ``validate() -> recall or None`` after every epoch (see :class:`EarlyStop`).
        get_state / set_state: the weights of the best epoch are taken with ``get_state()``
            and put back with ``set_state(state)`` at the end.
        min_batch: smaller (last) batches are skipped.

    Returns:
        One dict per epoch run: ``epoch, loss, recall, train_s, examples``.
    """
    history: list[dict[str, Any]] = []
    best_state, n_step = None, 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        arrays = epoch_arrays(epoch)
        n = len(arrays[0])
        total = 0.0
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            if hi - lo < min_batch:
                continue
            loss = step(*(a[lo:hi] for a in arrays), np.array([seed, n_step], np.int32))
            total += float(loss) * (hi - lo)
            n_step += 1
        train_s = time.perf_counter() - t0
        recall = validate()
        mean = total / max(1, n)
        history.append(
            {"epoch": epoch + 1, "loss": mean, "recall": recall, "train_s": train_s, "examples": n}
        )
        best, halt = stop.epoch(epoch, mean, recall)
        if best:
            best_state = get_state()
        if halt:
            break
    if best_state is not None:
        set_state(best_state)
    return history


def item_support(matrix: Any) -> tuple[float, float]:
    """``(median, share_once)``: the median number of training users per item among items
    with any, and the share of those items that only one user interacted with."""
    counts = np.diff(matrix.tocsc().indptr)
    counts = counts[counts > 0]
    if not len(counts):
        return 0.0, 0.0
    return float(np.median(counts)), float((counts == 1).mean())


def popularity_val_recall(
    data: InteractionData,
    users: np.ndarray,
    items: np.ndarray,
    val_u: np.ndarray,
    val_i: np.ndarray,
    k: int,
) -> float:
    """Recall@k of the held-out validation items under popularity (distinct training users of
    the pairs ``(users, items)`` left in training), ranked as the models rank them: the user's
    other training items excluded unless the domain repeats."""
    pop = np.bincount(items, minlength=data.n_items).astype(np.float64)
    s = np.broadcast_to(pop, (len(val_u), data.n_items)).copy()
    return heldout_recall(s, data, val_u, val_i, k)


def heldout_recall(
    s: np.ndarray, data: InteractionData, val_u: np.ndarray, val_i: np.ndarray, k: int
) -> float:
    """Recall@k of held-out item ``val_i[r]`` in score row ``s[r]`` (user ``val_u[r]``;
    ``s`` is modified), ranked as evaluation ranks: the user's other training items excluded
    unless the domain repeats; ties count for the held-out item."""
    if not data.repeat_domain:
        seen = data.matrix[val_u].tocoo()
        own = seen.col != val_i[seen.row]
        s[seen.row[own], seen.col[own]] = -np.inf
    target = s[np.arange(len(val_u)), val_i]
    return float(((s > target[:, None]).sum(axis=1) < k).mean())


def data_note(
    model: str, best: float, popularity: float, k: int, matrix: Any, repeat: bool = False
) -> str | None:
    """Why a Keras model cannot beat popularity on this data, as a sentence (None if it does).

    The measured condition: the model's best validation recall@k (its own hold-out) is not
    above popularity's on the same held-out items. The sentence adds how much data each item
    has (:func:`item_support`), the usual cause: an item's id embedding is learnt from its
    own events, and an item seen once is a guess (the text features carry those items).
    ``repeat``: a repeat-purchase domain, where the figure is the model's alone (the repeat
    blend of the user's own purchases and popularity is added to it afterwards).
    """
    if best < 0 or best > popularity:
        return None
    median, once = item_support(matrix)
    alone = " alone (before the repeat blend)" if repeat else ""
    return (
        f"{model}{alone} cannot beat popularity on this data: its validation recall@{k} "
        f"({best:.4f}) is not above popularity's ({popularity:.4f}). Too little data per "
        f"item: a median of {median:g} training users per item, {once:.0%} of the items "
        "seen by one user only; compare popularity, item-kNN or EASE here, or collect more events."
    )


def hold_out(
    users: np.ndarray, items: np.ndarray, val_u: np.ndarray, val_i: np.ndarray
) -> np.ndarray:
    """Boolean mask of the (user, item) training pairs that are not validation pairs."""
    if not len(val_u):
        return np.ones(len(users), bool)
    # one int64 key per pair, compared in numpy (a Python set lookup per pair took seconds
    # on millions of training pairs)
    width = int(max(items.max(initial=0), val_i.max(initial=0))) + 1
    keys = users.astype(np.int64) * width + items
    held = val_u.astype(np.int64) * width + val_i
    return ~np.isin(keys, held)


def remove_from_history(hist: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """A copy of the history table with ``items[k]`` removed from row ``users[k]``."""
    out = hist.copy()
    if len(users):
        rows = out[users]
        rows[rows == (np.asarray(items) + 1)[:, None]] = 0
        out[users] = rows
    return out


def anonymous_inputs(t: FeatureTables) -> list[np.ndarray]:
    """User-feature inputs of a user unknown to training: id 0, no history, segments 0."""
    n_hist, n_seg = t.user_history.shape[1], t.user_segments.shape[1]
    return [
        np.zeros(1, np.int32),
        np.zeros((1, n_hist), np.int32),
        np.zeros((1, t.d_text), np.float32),
        np.zeros((1, n_seg), np.int32),
    ]


def new_item_inputs(
    t: FeatureTables, category: Any, brand: Any, price_band: Any, text: Any
) -> list[np.ndarray]:
    """Item-feature inputs of brand-new items (id 0); codes outside the vocabularies -> 0."""
    n = len(category)
    text = np.asarray(text, np.float32).reshape(n, t.d_text)

    def clip(a: Any, size: int) -> np.ndarray:
        a = np.asarray(a).astype(np.int64)
        return np.where((a >= 0) & (a < size), a, 0).astype(np.int32)

    return [
        np.zeros(n, np.int32),
        clip(category, t.n_categories),
        clip(brand, t.n_brands),
        clip(price_band, t.n_bands),
        text,
    ]


def batched(fn: Any, n: int, size: int = 4096) -> np.ndarray:
    """``fn(lo, hi) -> ndarray`` over ``range(n)`` in fixed chunks, concatenated.

    Fixed chunk boundaries make the result bit-identical between a fit and a reload.
    """
    parts = [np.asarray(fn(lo, min(n, lo + size))) for lo in range(0, n, size)]
    return np.concatenate(parts) if parts else np.zeros((0,), np.float32)


#: Keras weights file stem inside a saved model folder.
WEIGHTS = "model"


_INFER: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def inference(model: Any) -> Any:
    """``model(inputs, training=False)`` as a cached ``tf.function`` (H-explain).

    An eager call of a functional Keras model costs ~50 ms of Python dispatch on these
    machines; the traced graph runs a one-user history through the user tower in a few ms,
    which is what live scoring (:meth:`~ltrec.models.base.Recommender.score_history`) needs.
    """
    fn = _INFER.get(model)
    if fn is None:
        fn = tf.function(lambda *xs: model(list(xs), training=False), reduce_retracing=True)
        _INFER[model] = fn
    return fn


def history_inputs(t: FeatureTables, seen: Any, x: Any, users: np.ndarray) -> list[np.ndarray]:
    """User-feature inputs of users described by history rows ``x`` (live events; H-explain).

    Id and segments: the known user's (``users[r] >= 0``), else 0 ("unknown", which id dropout
    trains for). The recent-history input (``t.user_history.shape[1]`` items) has no
    timestamps to go by, so: items whose weight grew beyond the training row (new events)
    first, by weight then index; then the user's training recency list (``t.user_history``),
    kept where still in ``x``; then the rest by weight then index. A row equal to the user's
    training row therefore gives exactly the fitted inputs.
    """
    n_hist = t.user_history.shape[1]
    hist = np.zeros((len(users), n_hist), np.int32)
    for r, u in enumerate(np.asarray(users, np.int64)):
        lo, hi = x.indptr[r], x.indptr[r + 1]
        items, w = x.indices[lo:hi].astype(np.int64), x.data[lo:hi]
        before = np.zeros(len(items), np.float64)
        recent = np.empty(0, np.int64)
        if u >= 0:
            row = seen[int(u)]
            before = np.asarray(row[:, items].toarray()[0], np.float64)
            recent = t.user_history[u][t.user_history[u] > 0].astype(np.int64) - 1
            recent = recent[np.isin(recent, items)]
        grew = w > before
        new = items[grew][np.lexsort((items[grew], -(w - before)[grew]))]
        rest = items[~grew & ~np.isin(items, recent)]
        rest = rest[np.lexsort((rest, -w[~grew & ~np.isin(items, recent)]))]
        order = np.concatenate([new, recent, rest])[:n_hist]
        hist[r, : len(order)] = order + 1
    known = np.asarray(users) >= 0
    ids = np.where(known, np.asarray(users) + 1, 0).astype(np.int32)
    segs = np.zeros((len(users), t.user_segments.shape[1]), np.int32)
    segs[known] = t.user_segments[np.asarray(users)[known]]
    return [ids, hist, history_text_mean(t.item_text, hist), segs]


def _arrays(out: Any) -> np.ndarray:
    """A Keras model's output as one array: several outputs side by side (axis 1)."""
    if isinstance(out, list | tuple):
        return np.concatenate([o.numpy() for o in out], axis=1)
    return out.numpy()


@dataclass
class Positives:
    """The training pairs of a Keras fit and its validation hold-out.

    Attributes:
        users, items: int64 index of every (user, item) pair of the training matrix except
            the held-out ones, in the matrix's (row-major) order.
        weight: float32 loss weight of each pair: ``1 + log(summed event weight)`` or 1.
        val_u, val_i: the hold-out (:func:`validation_pairs`), left out of ``users, items``.
    """

    users: np.ndarray
    items: np.ndarray
    weight: np.ndarray
    val_u: np.ndarray
    val_i: np.ndarray

    @classmethod
    def from_data(
        cls,
        data: InteractionData,
        event_weighting: str,
        val_users: int,
        rng: np.random.Generator,
    ) -> Positives:
        m = data.matrix.tocoo()
        users, items = m.row.astype(np.int64), m.col.astype(np.int64)
        w = m.data
        weight = 1.0 + np.log(np.maximum(w, 1.0)) if event_weighting == "log" else np.ones_like(w)
        val_u, val_i = validation_pairs(data, val_users, rng)
        keep = hold_out(users, items, val_u, val_i)
        return cls(users[keep], items[keep], weight[keep].astype(np.float32), val_u, val_i)


@dataclass
class Examples:
    """What a model's example builder gives the training loop.

    Attributes:
        arrays: ``arrays(epoch) -> aligned numpy arrays`` in the epoch's (shuffled) order,
            the training step's inputs before its seed (see :func:`train_epochs`).
        batch_size: examples per step.
        min_batch: a smaller (last) batch is skipped.
    """

    arrays: Callable[[int], list[np.ndarray]]
    batch_size: int
    min_batch: int = 1


#: The config class of a Keras model.
C = TypeVar("C", bound=KerasConfig)


class KerasRecommender(Recommender, Generic[C]):
    """What the Keras models share: the training loop, scoring helpers and save/load.

    :meth:`_fit` is the one training loop. In order (the order of the seeded draws, so a seed
    gives the same weights): seed everything, build the network (:meth:`_build`), draw the
    validation hold-out and weigh the training pairs (:class:`Positives`), the model's
    examples (:meth:`_examples`: its graph tables and ``arrays(epoch)``), an AdamW optimiser
    over :meth:`_variables`, the model's step (:meth:`_train_step_fn`), :func:`train_epochs`
    with :class:`EarlyStop` on the hold-out's recall (:meth:`_val_scores` ranked by
    :func:`heldout_recall`), the data note, then :meth:`_precompute` of the scoring state.

    Saved as the feature tables in ``state.npz`` (via ``_state``) plus ``model.weights.h5``;
    the architecture is rebuilt from code (``_build``), never deserialised.
    """

    config_cls: ClassVar[type[ModelConfig]] = KerasConfig
    content_model = True
    # The user side reads the recent history: score_history runs it on the given history
    # (id and segments: the user's when ``users`` names a known one, else "unknown").
    live_history = True
    contribution_method = "embedding"  # nearest history items by an item-side vector
    # On repeat-purchase data (see RepeatConfig; chosen on the CC0 validation split).
    repeat_default = 0.3
    #: The model as the data note names it at the start of a sentence.
    note_name: ClassVar[str] = ""

    tables_: FeatureTables
    net_: Any
    _g: dict[str, Any] | None = None

    @property
    def _cfg(self) -> C:
        """The config as the model's own config class."""
        return cast(C, self.config)

    # ------------------------------------------------------------------ model hooks

    def _build(self, tables: FeatureTables, n_users: int) -> None:
        """The feature encoders (:func:`build_encoders`) and the model's network on them."""
        cfg = self._cfg
        enc = build_encoders(
            tables, n_users, id_dim=cfg.id_dim, side_dim=cfg.side_dim, text_dim=cfg.text_dim
        )
        self._build_net(enc)
        self.tables_ = tables
        self._g = None

    @abc.abstractmethod
    def _build_net(self, enc: dict[str, Any]) -> None:
        """The model's network on the encoders' outputs (``net_``: every weight, for
        saving)."""

    @abc.abstractmethod
    def _examples(
        self, data: InteractionData, pos: Positives, rng: np.random.Generator
    ) -> Examples:
        """The epoch's training examples (and any graph tables the step reads)."""

    @abc.abstractmethod
    def _train_step_fn(self, opt: Any, variables: list[Any]) -> Any:
        """The compiled step: ``step(*arrays, seed) -> loss`` (see :func:`train_epochs`)."""

    @abc.abstractmethod
    def _val_scores(self, val_u: np.ndarray) -> np.ndarray:
        """Scores ``[len(val_u), n_items]`` of the validation users, their held-out items
        out of the history input (the graph tables of :meth:`_examples`)."""

    @abc.abstractmethod
    def _precompute(self) -> None:
        """The scoring state after training or loading (user and item parts)."""

    @abc.abstractmethod
    def _tower_fallback(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """Scores of users without history from their segments (``cold_users="tower"``)."""

    def _variables(self) -> list[Any]:
        """What the optimiser trains."""
        return list(self.net_.trainable_variables)

    def _weights(self) -> Any:
        """The trained state the best epoch keeps (:meth:`_set_weights` puts it back)."""
        return self.net_.get_weights()

    def _set_weights(self, state: Any) -> None:
        self.net_.set_weights(state)

    def _end_fit(self) -> None:
        """Turn training-only state into plain scoring state (after the last epoch)."""

    # ------------------------------------------------------------------ training

    def _fit(self, data: InteractionData, progress: Progress | None) -> None:
        cfg = self._cfg
        seed_everything(cfg.seed, cfg.deterministic)
        rng = np.random.default_rng(cfg.seed)
        self._build(FeatureTables.from_data(data, cfg.history), data.n_users)
        pos = Positives.from_data(data, cfg.event_weighting, cfg.val_users, rng)
        examples = self._examples(data, pos, rng)
        opt = keras.optimizers.AdamW(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay)
        variables = self._variables()
        opt.build(variables)
        val_u, val_i = pos.val_u, pos.val_i

        def validate() -> float | None:
            if not len(val_u):
                return None
            return heldout_recall(self._val_scores(val_u), data, val_u, val_i, cfg.val_k)

        stop = EarlyStop(progress, cfg.epochs, cfg.patience, cfg.val_k)
        self.history_ = train_epochs(
            self._train_step_fn(opt, variables),
            examples.arrays,
            epochs=cfg.epochs,
            batch_size=examples.batch_size,
            seed=cfg.seed,
            stop=stop,
            validate=validate,
            get_state=self._weights,
            set_state=self._set_weights,
            min_batch=examples.min_batch,
        )
        self.data_note_: str | None = None  # why the model cannot beat popularity here
        if len(val_u):
            pop = popularity_val_recall(data, pos.users, pos.items, val_u, val_i, cfg.val_k)
            self.data_note_ = data_note(
                self.note_name, stop.best, pop, cfg.val_k, data.matrix, data.repeat_domain
            )
        self._end_fit()
        self._g = None  # the scoring tables: the full history
        self._precompute()

    # ------------------------------------------------------------------ shared scoring parts

    def _graph(self) -> dict[str, Any]:
        """The feature tables as graph constants (:func:`graph_tables`), built once."""
        if self._g is None:
            self._g = graph_tables(self.tables_, item_id_inputs(self.seen_))
        return self._g

    def _heldout_user_outputs(self, model: Any, val_u: np.ndarray) -> np.ndarray:
        """``model`` (a user-side model) on the validation users, whose history input has
        their held-out items removed (the graph tables of :meth:`_examples`)."""
        g = self._graph()
        u = tf.constant(val_u.astype(np.int32))
        out = model(user_inputs(g, u, u + 1, tf.gather(g["hist"], u)), training=False)
        return _arrays(out).astype(np.float32)

    def _hide_held_out(self, g: dict[str, Any], val_u: np.ndarray, val_i: np.ndarray) -> None:
        """Validation items must not appear in any training input: item ``val_i[k]`` leaves
        user ``val_u[k]``'s row of the graph tables' history (and its text sums)."""
        if len(val_u):
            hist = remove_from_history(self.tables_.user_history, val_u, val_i)
            set_history(g, self.tables_, hist)

    def _item_outputs(
        self, model: Any, items: np.ndarray | None = None, known: bool = True
    ) -> np.ndarray:
        """``model`` (an item-side model) on ``items`` (None: all), in fixed chunks; ``known``
        False gives every item the unknown id 0."""
        g = self._graph()
        idx_all = np.arange(self.tables_.n_items) if items is None else np.asarray(items)

        def run(lo: int, hi: int) -> np.ndarray:
            idx = tf.constant(idx_all[lo:hi].astype(np.int32))
            ids = tf.gather(g["item_id"], idx) if known else tf.zeros_like(idx)
            return _arrays(model(item_inputs(g, idx, ids), training=False))

        n = len(idx_all)
        return batched(run, n).reshape(n, -1).astype(np.float32)

    def _user_outputs(self, model: Any, users: np.ndarray, anonymous: np.ndarray) -> np.ndarray:
        """``model`` (a user-side model) on ``users`` in fixed chunks; ``anonymous`` rows use
        id 0 and no history (segments kept)."""
        g = self._graph()

        def run(lo: int, hi: int) -> np.ndarray:
            u = tf.constant(users[lo:hi].astype(np.int32))
            anon = tf.constant(anonymous[lo:hi])
            ids = tf.where(anon, 0, u + 1)
            hist = tf.where(anon[:, None], 0, tf.gather(g["hist"], u))
            return _arrays(model(user_inputs(g, u, ids, hist), training=False))

        return batched(run, len(users)).reshape(len(users), -1).astype(np.float32)

    def _anonymous_output(self, model: Any) -> np.ndarray:
        """``model`` (a user-side model) for a user unknown to training
        (:func:`anonymous_inputs`)."""
        return _arrays(model(anonymous_inputs(self.tables_), training=False))[0].astype(np.float32)

    def _new_item_outputs(
        self, model: Any, category: Any, brand: Any, price_band: Any, text: Any
    ) -> np.ndarray:
        """``model`` (an item-side model) on brand-new items from content alone (id unknown;
        :func:`new_item_inputs`)."""
        self._check_fitted()
        inputs = new_item_inputs(self.tables_, category, brand, price_band, text)
        return _arrays(model(inputs, training=False)).astype(np.float32)

    def _history_outputs(self, model: Any, x: Any, users: np.ndarray) -> np.ndarray:
        """``model`` (a user-side model) on users described by history rows ``x``
        (:func:`history_inputs`), through the cached :func:`inference` graph."""
        inputs = history_inputs(self.tables_, self.seen_, x, users)
        fn = inference(model)
        out = batched(lambda lo, hi: _arrays(fn(*(a[lo:hi] for a in inputs))), len(users))
        return out.reshape(len(users), -1).astype(np.float32)

    def _fallback(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        if self._cfg.cold_users == "popularity":
            return super()._fallback(users, items)
        return self._tower_fallback(users, items)

    # ------------------------------------------------------------------ persistence

    def _state(self) -> dict[str, np.ndarray]:
        return self.tables_.to_arrays()

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.tables_ = FeatureTables.from_arrays(arrays)

    def save(self, path: Any) -> list[Any]:
        files = super().save(path)
        return files + save_keras_weights(self.net_, path, WEIGHTS, {"keras": keras.__version__})

    @classmethod
    def load(cls, path: Any) -> Any:
        model = super().load(path)
        if model.tables_.n_users != model.n_users_ or model.tables_.n_items != model.n_items_:
            raise RegistryError("saved feature tables do not match the model", hint="retrain")
        model._build(model.tables_, model.n_users_)
        load_keras_weights(model.net_, path, WEIGHTS)
        model._g = None
        model._precompute()
        return model
