"""The Recommender protocol, the config base class and the name -> model class registry (DESIGN §4).

Every model follows the scikit-learn habit: ``__init__`` stores a validated pydantic config and
nothing else; ``fit(data)`` learns the state (attributes ending in ``_``) and returns ``self``.
Subclasses implement three hooks and inherit everything else:

* ``_fit(data, progress)``: learn the model state from an :class:`InteractionData`.
* ``_score(users, items)``: scores for *known users with training history* (indices valid,
  at least one training interaction); ``items`` is ``None`` (whole catalogue) or an index array.
* ``_state()`` / ``_set_state(arrays)``: the learned state as a dict of numpy arrays (written to
  ``state.npz``, read back with ``allow_pickle=False``). Keras models override :meth:`save` and
  :meth:`load` as well, to add a weights file (see :mod:`ltrec.models.registry`).

The base class supplies the rest, identically for every model:

* **Fallback.** A user index of ``-1`` (unknown to training) or a user with no training
  interaction is scored by item popularity (distinct training users per item, ties broken by
  total event weight). Content models may override :meth:`_fallback` to use segment features.
* **recommend** = score, mask seen items (``exclude_seen``) and non-candidates, top-k with ties
  broken by the lower item index, padded with ``-1`` / ``-inf`` when fewer than k items remain.
* **save / load** of the config (JSON) and state (``.npz``, no pickle).

Scoring from an arbitrary history (live events, users unknown to training; interface contract
section A). ``score_history(history)`` scores users described by rows of event weights (the
weighting of ``InteractionData.matrix``) instead of by index; ``recommend_history`` is
``recommend`` over those scores (one shared top-k path, :meth:`Recommender._top_blocks`).
A model that can follow a changed history without refitting implements the hook
``_score_history(x, users, items)`` and sets :attr:`Recommender.live_history`; its
``_score(users, items)`` should then be ``_score_history(seen_[users], users, items)`` so that a
user whose history equals their training row scores the same both ways (the conformance mixin
checks it). Without the hook a known user keeps the fitted score and anyone else gets the
fallback. ``contributions(history, items)`` names the history items behind each listed item
(hook ``_contribution_matrix``; see :class:`Contributions`).

Model classes are registered by name with a lazy ``"module:Class"`` path, so listing or
configuring the baselines never imports TensorFlow.
"""

from __future__ import annotations

import abc
import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, Self, TypeVar, cast

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, Field, ValidationError, model_validator

from ltrec.config import ConfigBase
from ltrec.errors import ConfigError, ModelError, RegistryError
from ltrec.models import ann
from ltrec.models.ann import AnnIndex
from ltrec.models.repeat import RepeatBlend
from ltrec.progress import Progress, report

if TYPE_CHECKING:
    from ltrec.evaluation.metrics import AnySparse
    from ltrec.models.data import InteractionData

CONFIG_FILE = "config.json"
STATE_FILE = "state.npz"
#: Users scored per block in :meth:`Recommender.recommend`: bounds the dense score matrix.
_BLOCK_CELLS = 8_000_000
#: Contributions (shares, cosines) at or below this are float noise, not reasons: an EASE
#: weight that is 0 in exact arithmetic comes out as +-1e-17.
_MIN_SHARE = 1e-6


class ModelConfig(ConfigBase):
    """Base of every model config: unknown keys are refused, every number is bounded."""

    seed: int = Field(42, ge=0, le=2**32 - 1, description="Random seed (reproducible fits).")


class RepeatConfig(ModelConfig):
    """A model config with the repeat-consumption knobs (the blend:
    :class:`~ltrec.models.repeat.RepeatBlend`, :func:`~ltrec.models.repeat.repeat_blend`).

    ``repeat_weight`` (w, the user's own frequency) and ``popularity_weight`` (g, global
    popularity): None (default) means the model's tuned default (:attr:`Recommender.
    repeat_default`, :attr:`Recommender.popularity_default`) when the training data is a
    repeat-purchase domain (``repeat_``), and 0 otherwise, so non-repeat data keeps the
    collaborative score alone, unchanged. A number forces that weight on any data. The model's
    own score gets ``1 - w - g``, so w + g must stay <= 1. ``repeat_weight=0,
    popularity_weight=0`` gives the model alone.

    Time (only read when the term it decays is in use): ``repeat_half_life_days`` decays the
    user's own purchases by age (TIFU-kNN's time-decayed frequency, Hu et al. 2020;
    :meth:`~ltrec.models.data.InteractionData.decayed_matrix`), measured from
    ``repeat_reference``; ``popularity_half_life_days`` counts each distinct buyer by how
    recently they bought (:meth:`~ltrec.models.data.InteractionData.decayed_popularity`).
    None: no decay.

    How the defaults were chosen: on the *validation* split of the CC0 Complete Journey sample
    (its training events split again by time, the last 20% as targets; the test split was not
    used), ``benchmarks/bench_models.py --tune``, recall@10, coordinate search:

    1. Half-lives, shared by every model (they describe the data), at the models' weights
       (0.3, 0.6): own frequency h in {None, 7, 14, 30, 60, 120, 240} days x reference
       {user, global}, popularity h in {None, 7, 14, 30, 60, 120}, mean recall of item-kNN,
       EASE, ALS, NCF and two-tower. Best: no decay of the own frequency, popularity 60 days
       (mean 0.0631; no decay at all 0.0628, popularity 120 d 0.0630). Decaying the own
       frequency lost at every half-life (7 d: 0.049-0.053; 240 d: 0.061-0.062), and so did
       decaying the history that item-kNN and EASE score from (tried apart from the grid;
       item-kNN alone 0.032 at 3 d, 0.049 at 120 d, 0.050 undecayed): the sample is a random
       subset of each household's transactions (~25 per household over 10 months), so a
       product bought once months ago is still among the best guesses.
    2. Weights per model at those half-lives: w in {0.1, ..., 0.5} x g in {0, 0.2, 0.4, 0.5,
       0.6, 0.7, 0.8} with w + g <= 0.9 (the model keeps at least 10%: with 0 it is the "own
       frequency + popularity, no model" baseline, which the bench reports on its own).
       item-kNN, EASE, ALS and NCF: (0.3, 0.6), at that bound (validation recall 0.0635,
       0.0627, 0.0622, 0.0635); two-tower: (0.3, 0.4) (0.0648).

    That the baselines' own scores keep only 0.1 says what the sample is like: 2.4k
    households, ~23 products each, 20k products, so re-buys and staples carry most of the
    signal (as Li et al. 2023 found for next-basket data).
    """

    repeat_weight: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Weight w of the user's own repeat frequency (None: tuned default on "
        "repeat-purchase data, 0 elsewhere).",
    )
    popularity_weight: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Weight g of global item popularity in the repeat blend (None: tuned "
        "default on repeat-purchase data, 0 elsewhere).",
    )

    repeat_half_life_days: float | None = Field(
        None,  # validation: every half-life tried lost to no decay (see the class doc)
        gt=0.0,
        le=3650.0,
        description="Half-life in days of the user's own purchases in the repeat term "
        "(TIFU-kNN's time decay); None: every purchase counts the same, however old.",
    )
    repeat_reference: Literal["user", "global"] = Field(
        "user",
        description="Ages of the user's purchases are measured from the user's own last "
        "training event ('user') or from the last training event of the data ('global').",
    )
    popularity_half_life_days: float | None = Field(
        60.0,
        gt=0.0,
        le=3650.0,
        description="Half-life in days of the popularity term in the repeat blend (items "
        "bought lately count more); None: all-time distinct buyers.",
    )

    @model_validator(mode="after")
    def _weights_sum(self) -> Self:
        if (self.repeat_weight or 0.0) + (self.popularity_weight or 0.0) > 1.0:
            raise ValueError("repeat_weight + popularity_weight must be <= 1")
        return self


def csr_to_arrays(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as plain arrays (for ``.npz`` without pickle)."""
    m = sp.csr_matrix(m)
    return {
        f"{prefix}_data": m.data,
        f"{prefix}_indices": m.indices,
        f"{prefix}_indptr": m.indptr,
        f"{prefix}_shape": np.asarray(m.shape, dtype=np.int64),
    }


def csr_from_arrays(prefix: str, arrays: Mapping[str, np.ndarray]) -> sp.csr_matrix:
    try:
        # two entries in a sound file; csr_matrix refuses any other (ValueError below)
        shape = cast("tuple[int, int]", tuple(int(x) for x in arrays[f"{prefix}_shape"]))
        return sp.csr_matrix(
            (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
            shape=shape,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise RegistryError(
            f"saved model state lacks a valid '{prefix}' matrix ({exc})",
            hint="the run is damaged or from another version; train it again",
        ) from exc


def validation_message(exc: ValidationError, cls: type[BaseModel]) -> str:
    """One line per error, plus the list of valid keys when a key is unknown."""
    lines = []
    unknown = False
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(config)"
        if err["type"] == "extra_forbidden":
            unknown = True
            lines.append(f"unknown key '{loc}'")
        else:
            lines.append(f"{loc}: {err['msg']}")
    msg = "; ".join(lines)
    if unknown:
        msg += f" (valid keys: {', '.join(cls.model_fields)})"
    return msg


class Recommender(abc.ABC):
    """Base class of every model. See the module docstring for the contract."""

    #: Registry name (``popularity``, ``itemknn``, ...).
    name: ClassVar[str] = ""
    #: The pydantic config class of this model.
    config_cls: ClassVar[type[ModelConfig]] = ModelConfig
    #: True when item content (text, category, ...) lets items without events be scored.
    content_model: ClassVar[bool] = False
    #: Weights of the user's own frequency and of global popularity on repeat-purchase data
    #: when the config leaves them at None (models whose config is a :class:`RepeatConfig`;
    #: tuned per model, see its docstring).
    repeat_default: ClassVar[float] = 0.0
    popularity_default: ClassVar[float] = 0.0
    #: True when :meth:`_score` returns a new array on every call (never a view of the
    #: model's state), so :meth:`score` may hand it out (it is masked in place) uncopied.
    fresh_scores: ClassVar[bool] = False
    #: The repeat blend's time-decayed inputs (:meth:`RepeatBlend.fit`); None: undecayed.
    freq_: sp.csr_matrix | None = None
    blend_pop_: np.ndarray | None = None

    def __init__(self, config: ModelConfig | Mapping[str, Any] | None = None, **params: Any):
        if isinstance(config, ModelConfig) and not params:
            if not isinstance(config, self.config_cls):
                raise ConfigError(
                    f"{type(config).__name__} is not a config for model '{self.name}'",
                    hint=f"use {self.config_cls.__name__}",
                )
            self.config = config
            return
        base = config.model_dump() if isinstance(config, ModelConfig) else dict(config or {})
        self.config = make_config(self.config_cls, {**base, **params})

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ training

    def fit(self, data: InteractionData, progress: Progress | None = None) -> Self:
        """Learn the model from training interactions; returns ``self``.

        Args:
            data: the training interactions, features and vocabularies.
            progress: optional ``progress(done, message)`` callback, ``done`` in [0, 1].
        """
        if data.n_items == 0:
            raise ModelError("there are no items to train on", hint="import a catalogue first")
        if data.matrix.nnz == 0:
            raise ModelError(
                "there are no training interactions (views, carts or purchases)",
                hint="check the split cut-off and the event types of the data",
            )
        self.n_users_ = int(data.n_users)
        self.n_items_ = int(data.n_items)
        self.seen_ = sp.csr_matrix(data.matrix, dtype=np.float32)
        self.seen_.sort_indices()
        self.pop_ = popularity_scores(data.item_pop, data.item_weight)
        self.repeat_ = bool(data.repeat_domain)
        self.blend.fit(data)
        report(progress, 0.0, f"training {self.name}")
        self._fit(data, progress)
        if self.build_ann():
            report(progress, 1.0, f"{self.name}: ANN index of {self.n_items_:,} items built")
        report(progress, 1.0, f"{self.name} trained")
        return self

    @abc.abstractmethod
    def _fit(self, data: InteractionData, progress: Progress | None) -> None:
        """Learn the model-specific state."""

    # ------------------------------------------------------------------ scoring

    def _check_fitted(self) -> None:
        if not hasattr(self, "seen_"):
            raise ModelError(
                f"the {self.name} model is not trained", hint="call fit(data) or load a saved run"
            )

    def _users(self, users: Any) -> np.ndarray:
        arr = np.asarray(users)
        if arr.dtype.kind not in "iu":
            raise ModelError(f"user indices must be integers, got {arr.dtype}")
        arr = arr.reshape(-1).astype(np.int64, copy=False)
        bad = (arr < -1) | (arr >= self.n_users_)
        if bad.any():
            raise ModelError(
                f"user index {int(arr[bad][0])} is out of range (0..{self.n_users_ - 1}, "
                "or -1 for a user unknown to training)"
            )
        return arr

    def _items(self, items: Any) -> np.ndarray | None:
        if items is None:
            return None
        arr = np.asarray(items)
        if arr.size and arr.dtype.kind not in "iu":
            raise ModelError(f"item indices must be integers, got {arr.dtype}")
        arr = arr.reshape(-1).astype(np.int64, copy=False)
        bad = (arr < 0) | (arr >= self.n_items_)
        if bad.any():
            raise ModelError(
                f"item index {int(arr[bad][0])} is out of range (0..{self.n_items_ - 1})"
            )
        return arr

    def has_history(self, users: np.ndarray) -> np.ndarray:
        """True for users known to training with at least one interaction."""
        users = np.asarray(users, dtype=np.int64)
        ok = users >= 0
        out = np.zeros(users.shape, dtype=bool)
        ptr, known = self.seen_.indptr, users[ok]
        out[ok] = ptr[known + 1] > ptr[known]  # only these users' rows (not every user's count)
        return out

    def score(self, users: Any, items: Any = None) -> np.ndarray:
        """Scores of items for users; higher is better.

        Args:
            users: one user index or an array of them (``-1``: unknown to training).
            items: item indices to score (``None``: the whole catalogue, in index order).

        Returns:
            float32 ``[n_users, n_items or len(items)]`` (1-D for a scalar user). Users unknown
            to training or without history get :meth:`_fallback` scores (popularity).
        """
        self._check_fitted()
        scalar = np.ndim(users) == 0
        u = self._users(users)
        cols = self._items(items)
        n_cols = self.n_items_ if cols is None else len(cols)
        warm = self.has_history(u)
        if warm.all():
            res = self._warm_score(u, cols)
            if self.fresh_scores and res.dtype == np.float32 and res.shape == (len(u), n_cols):
                return res[0] if scalar else res  # already a new array: no copy
            out = np.empty((len(u), n_cols), dtype=np.float32)
            out[:] = res
        else:
            out = np.empty((len(u), n_cols), dtype=np.float32)
            if warm.any():
                out[warm] = self._warm_score(u[warm], cols)
            out[~warm] = self._fallback(u[~warm], cols)
        return out[0] if scalar else out

    @property
    def blend(self) -> RepeatBlend:
        """The repeat-purchase blend wrapped around this model (:mod:`ltrec.models.repeat`)."""
        return RepeatBlend(self)

    @property
    def repeat_weight_(self) -> float:
        """The weight w of the user's own frequency in use (see :class:`RepeatConfig`)."""
        return self.blend.weight

    @property
    def popularity_weight_(self) -> float:
        """The weight g of global popularity in use, capped so that w + g <= 1."""
        return self.blend.pop_weight

    def _blend_transform(self, scores: np.ndarray) -> np.ndarray:
        """The model's own scores as the blend reads them: unchanged by default; a model whose
        scores have an arbitrary offset (logits) returns a monotone transform that is positive
        (see :class:`ltrec.models.ncf.NCF`)."""
        return scores

    def _warm_score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """:meth:`_score` through the repeat blend (:class:`RepeatBlend`; unchanged when it
        is not active)."""
        return self.blend.scores(users, items)

    @abc.abstractmethod
    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """Scores ``[len(users), n_cols]`` for known users with training history."""

    def _fallback(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """Scores for users without history: item popularity, the same for every such user."""
        pop = self.pop_ if items is None else self.pop_[items]
        return np.broadcast_to(pop.astype(np.float32), (len(users), len(pop)))

    def recommend(
        self,
        users: Any,
        k: int,
        exclude_seen: bool | None = None,
        candidates: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items per user.

        Args:
            users: one user index or an array of them (``-1``: unknown to training).
            k: list length (>= 1).
            exclude_seen: drop items the user interacted with in training. ``None`` (default):
                the training data's rule, i.e. drop them unless the dataset is a
                repeat-purchase domain (groceries), where buying again is the common case.
            candidates: restrict the lists to these item indices (one array shared by all users).

        Returns:
            ``(items, scores)``: int64 item indices and float32 scores, ``[n_users, k]`` (1-D for
            a scalar user), best first, ties broken by the lower item index; padded with ``-1``
            and ``-inf`` when fewer than k items are available.
        """
        self._check_fitted()
        k = self._k(k)
        scalar = np.ndim(users) == 0
        u = self._users(users)
        if self.ann_ is not None and candidates is None:
            ptr, ind = self.seen_.indptr, self.seen_.indices
            items, scores = self._ann_top(
                k,
                self.has_history(u),
                lambda rows: self._ann_user_vectors(u[rows]),
                lambda r: ind[ptr[u[r]] : ptr[u[r] + 1]],
                exclude_seen,
                lambda rows: self._exact_recommend(u[rows], k, exclude_seen, None),
            )
        else:
            items, scores = self._exact_recommend(u, k, exclude_seen, candidates)
        return (items[0], scores[0]) if scalar else (items, scores)

    def _exact_recommend(
        self, u: np.ndarray, k: int, exclude_seen: bool | None, candidates: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend` of user indices ``u`` by scoring every item (or ``candidates``)."""

        def seen(lo: int, hi: int) -> tuple[np.ndarray, Any]:
            if hi - lo == 1 and u[lo] >= 0:  # one user (a request): its row's items, no CSR
                ptr = self.seen_.indptr
                a, b = ptr[u[lo]], ptr[u[lo] + 1]
                return _ONE_ROW, _Row(np.array([0, b - a]), self.seen_.indices[a:b])
            known = u[lo:hi] >= 0
            return np.flatnonzero(known), _take_rows(self.seen_, u[lo:hi][known])

        return self._top_blocks(
            len(u),
            k,
            lambda lo, hi, cols: self.score(u[lo:hi], cols),  # a fresh array: masked in place
            seen,
            exclude_seen,
            candidates,
        )

    def _k(self, k: Any) -> int:
        if not isinstance(k, int | np.integer) or k < 1:
            raise ModelError(f"k must be a positive integer, got {k!r}")
        return int(k)

    def _top_blocks(
        self,
        n: int,
        k: int,
        score: Callable[[int, int, np.ndarray | None], np.ndarray],
        seen: Callable[[int, int], tuple[np.ndarray, sp.csr_matrix]],
        exclude_seen: bool | None,
        candidates: Any,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The one top-k path of :meth:`recommend` and :meth:`recommend_history`.

        ``score(lo, hi, cols)``: a fresh float32 ``[hi - lo, n_cols]`` array for rows lo:hi
        (masked in place); ``seen(lo, hi)``: ``(rows, csr)``, the rows of the block that have
        seen items and those items. Rows are scored in blocks of at most ``_BLOCK_CELLS``
        cells, so the dense score matrix stays bounded.
        """
        if exclude_seen is None:
            exclude_seen = not self.repeat_
        cols = self._items(candidates)
        if cols is not None:
            cols = np.unique(cols)  # sorted: ties still go to the lower item index
        n_cols = self.n_items_ if cols is None else len(cols)
        items_out = np.full((n, k), -1, dtype=np.int64)
        scores_out = np.full((n, k), -np.inf, dtype=np.float32)
        pos = None
        if cols is not None and exclude_seen:
            pos = np.full(self.n_items_, -1, dtype=np.int64)
            pos[cols] = np.arange(len(cols))
        block = max(1, _BLOCK_CELLS // max(1, n_cols))
        for lo in range(0, n, block):
            hi = min(n, lo + block)
            s = score(lo, hi, cols)
            if not np.isfinite(s).all():
                s[~np.isfinite(s)] = -np.inf
            if exclude_seen:
                _mask_seen(s, *seen(lo, hi), pos)
            idx, val = top_k(s, k)
            if cols is not None:
                idx = np.where(idx >= 0, cols[np.maximum(idx, 0)], -1)
            items_out[lo:hi, : idx.shape[1]] = idx
            scores_out[lo:hi, : val.shape[1]] = val
        return items_out, scores_out

    # ------------------------------------------------------------------ scoring from a history

    #: True when :meth:`score_history` follows a changed history without refitting (the model
    #: scores from the history itself). False: a known user keeps the fitted score and anyone
    #: else gets the fallback (see :meth:`_score_history`).
    live_history: ClassVar[bool] = False

    def _history(self, history: Any) -> tuple[sp.csr_matrix, bool]:
        """``(rows, was_1d)``: history rows as a fresh float32 CSR (zeros dropped, sorted)."""
        scalar = False
        if sp.issparse(history):
            x = sp.csr_matrix(cast("AnySparse", history), dtype=np.float32, copy=True)
        else:
            arr = np.asarray(history)
            if arr.dtype.kind not in "biuf":
                raise ModelError(f"history must hold numeric event weights, got {arr.dtype}")
            scalar = arr.ndim == 1
            if arr.ndim not in (1, 2):
                raise ModelError(f"history must be 1-D or 2-D, got {arr.ndim} dimensions")
            x = sp.csr_matrix(np.atleast_2d(arr).astype(np.float32))
        if x.shape[1] != self.n_items_:
            raise ModelError(
                f"history must have one column per item ({self.n_items_}), got shape {x.shape}"
            )
        if x.nnz and (not np.isfinite(x.data).all() or (x.data < 0).any()):
            raise ModelError("history weights must be finite and >= 0 (view 1, cart 3, ...)")
        x.sum_duplicates()
        x.eliminate_zeros()
        x.sort_indices()
        return x, scalar

    def _history_users(self, users: Any, n: int) -> np.ndarray:
        if users is None:
            return np.full(n, -1, dtype=np.int64)
        u = self._users(users)
        if len(u) != n:
            raise ModelError(f"users has {len(u)} entries for {n} history rows")
        return u

    def score_history(self, history: Any, items: Any = None, users: Any = None) -> np.ndarray:
        """Scores of users described by their history (live events, users new to training).

        Args:
            history: ``[n, n_items]`` event weights per row (CSR or dense; the weighting of
                ``InteractionData.matrix``: view 1, cart 3, purchase 5, summed per item). A 1-D
                array is one history and gives 1-D scores.
            items: item indices to score (``None``: the whole catalogue, in index order).
            users: optional user index per row (``-1``: unknown to training). Models whose
                user representation also reads who the user is (the Keras models' id
                embedding and segments) use it; the others ignore it. None: every row is
                anonymous.

        Returns:
            float32 ``[n, n_items or len(items)]``. A row equal to a known user's training row
            scores as :meth:`score` does for that user (exactly, or within the tolerance the
            model documents: ALS); a row without events gets :meth:`_fallback`.
        """
        self._check_fitted()
        x, scalar = self._history(history)
        u = self._history_users(users, x.shape[0])
        out = self._history_block(x, u, self._items(items))
        return out[0] if scalar else out

    def _history_block(
        self, x: sp.csr_matrix, users: np.ndarray, cols: np.ndarray | None
    ) -> np.ndarray:
        n_cols = self.n_items_ if cols is None else len(cols)
        out = np.empty((x.shape[0], n_cols), dtype=np.float32)
        warm = np.diff(x.indptr) > 0
        if warm.all():
            out[:] = self._warm_history(x, users, cols)
        else:
            if warm.any():
                out[warm] = self._warm_history(x[warm], users[warm], cols)
            out[~warm] = self._fallback(users[~warm], cols)
        return out

    def recommend_history(
        self,
        history: Any,
        k: int,
        exclude_seen: bool | None = None,
        candidates: Any = None,
        users: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend` for users described by their history (see :meth:`score_history`).

        Same masking, tie rule (lower item index) and ``-1`` / ``-inf`` padding as
        :meth:`recommend` (one shared path); the seen items are the history's non-zeros.
        ``exclude_seen`` defaults to the training data's rule, as in :meth:`recommend` (drop
        seen items unless the data is a repeat-purchase domain), so both give the same lists.
        """
        self._check_fitted()
        k = self._k(k)
        x, scalar = self._history(history)
        u = self._history_users(users, x.shape[0])

        def exact(x: sp.csr_matrix, u: np.ndarray, cand: Any) -> tuple[np.ndarray, np.ndarray]:
            return self._top_blocks(
                x.shape[0],
                k,
                lambda lo, hi, cols: self._history_block(x[lo:hi], u[lo:hi], cols),
                lambda lo, hi: (np.arange(hi - lo), x[lo:hi]),
                exclude_seen,
                cand,
            )

        if self.ann_ is not None and candidates is None:
            items, scores = self._ann_top(
                k,
                np.diff(x.indptr) > 0,
                lambda rows: self._ann_history_vectors(_take_rows(x, rows), u[rows]),
                lambda r: x.indices[x.indptr[r] : x.indptr[r + 1]],
                exclude_seen,
                lambda rows: exact(_take_rows(x, rows), u[rows], None),
            )
        else:
            items, scores = exact(x, u, candidates)
        return (items[0], scores[0]) if scalar else (items, scores)

    def _warm_history(
        self, x: sp.csr_matrix, users: np.ndarray, items: np.ndarray | None
    ) -> np.ndarray:
        """:meth:`_score_history` through the repeat blend, as :meth:`_warm_score` (the history
        being the frequency input)."""
        return self.blend.history_scores(x, users, items)

    def _score_history(
        self, x: sp.csr_matrix, users: np.ndarray, items: np.ndarray | None
    ) -> np.ndarray:
        """The model's own scores from history rows (each with at least one event).

        Default, for a model that cannot score from a history: a known user with training
        history keeps the fitted score (:meth:`_score`; stale when the history changed, which
        ``live_history = False`` says), every other row gets the fallback.
        """
        warm = self.has_history(users)
        n_cols = self.n_items_ if items is None else len(items)
        out = np.empty((len(users), n_cols), dtype=np.float32)
        if warm.any():
            out[warm] = self._score(users[warm], items)
        if not warm.all():
            out[~warm] = self._fallback(users[~warm], items)
        return out

    # ------------------------------------------------------------------ ANN retrieval

    #: The approximate nearest-neighbour index of the item vectors (:mod:`ltrec.models.ann`),
    #: built at training for big catalogues; None: exact retrieval (every item scored).
    ann_: Any = None

    def _ann_item_vectors(self) -> np.ndarray | None:
        """Item vectors ``y`` ``[n_items, d]`` when the model's own score is the inner product
        ``<q_u, y_i>`` (hook); None: it is not (the default), so no index is built."""
        return None

    def _ann_user_vectors(self, users: np.ndarray) -> np.ndarray:
        """Query vectors ``q_u`` ``[n, d]`` of known users with training history (hook of
        inner-product models: ``_score(users, items)`` is ``q_u . y_items``)."""
        raise NotImplementedError

    def _ann_history_vectors(self, x: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
        """Query vectors of history rows (each with events): ``_score_history`` is
        ``q . y_items`` (hook of inner-product models)."""
        raise NotImplementedError

    def build_ann(self, min_items: int | None = None, threads: int | None = None) -> bool:
        """Build the ANN index when the catalogue has at least ``min_items`` items (None: the
        ``LTREC_ANN_MIN_ITEMS`` setting; 0: never) and the scores in use are a plain inner
        product (no repeat blend). ``threads``: build threads (None: all cores; the index is
        the same on any count). Returns whether an index was built (else ``ann_`` is None)."""
        self._check_fitted()
        self.ann_ = None
        limit = ann.min_items() if min_items is None else int(min_items)
        if limit <= 0 or self.n_items_ < limit:
            return False
        if self.blend.active:
            return False  # the blend rescales per user and adds terms: not an inner product
        y = self._ann_item_vectors()
        if y is None:
            return False
        self.ann_ = ann.build_index(y, threads=threads)
        return True

    def _ann_top(
        self,
        k: int,
        warm: np.ndarray,
        queries: Callable[[np.ndarray], np.ndarray],
        seen_of: Callable[[int], np.ndarray],
        exclude_seen: bool | None,
        exact: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k through the ANN index: THE approximate counterpart of :meth:`_top_blocks`.

        Rows with history (``warm``) ask the index for ``k + seen`` items (over-fetch: the
        user's seen items may be among the nearest; seen rounded up to a power of two), score
        those exactly (``q . y``: the model's own score), mask the seen ones and keep the top
        k, ties to the lower item index as in the exact path. The other rows (the fallback)
        go to ``exact(rows)``.
        """
        if exclude_seen is None:
            exclude_seen = not self.repeat_
        n = len(warm)
        items_out = np.full((n, k), -1, dtype=np.int64)
        scores_out = np.full((n, k), -np.inf, dtype=np.float32)
        cold = np.flatnonzero(~warm)
        if len(cold):
            ci, cs = exact(cold)
            items_out[cold], scores_out[cold] = ci, cs
        rows = np.flatnonzero(warm)
        if not len(rows):
            return items_out, scores_out
        y = self._ann_item_vectors()
        if y is None or y.shape != (self.n_items_, self.ann_.dim):
            raise ModelError(
                "the model's ANN index does not match its item vectors",
                hint="train the model again",
            )
        q = np.asarray(queries(rows), dtype=np.float32)
        seen = [seen_of(int(r)) if exclude_seen else None for r in rows]
        # Over-fetch by the row's seen count, rounded up to a power of two so that rows of
        # similar history share one search (one heavy user does not deepen everyone's search).
        extra = np.array([0 if s is None else len(s) for s in seen], dtype=np.int64)
        fetch = np.minimum(self.n_items_, k + (1 << np.ceil(np.log2(extra + 1)).astype(np.int64)))
        cand: list[np.ndarray] = [np.empty(0, np.int64)] * len(rows)
        for f in np.unique(fetch).tolist():
            group = np.flatnonzero(fetch == f)
            for j, c in zip(group.tolist(), self.ann_.search(q[group], f), strict=True):
                cand[j] = c
        for j, r in enumerate(rows.tolist()):
            c = np.unique(cand[j][cand[j] >= 0])  # ascending: ties go to the lower index
            seen_j = seen[j]
            if seen_j is not None and len(seen_j):
                c = c[~np.isin(c, seen_j)]
            s = y[c] @ q[j]
            s[~np.isfinite(s)] = -np.inf
            idx, val = top_k(s[None, :], k)
            w = idx.shape[1]
            items_out[r, :w] = np.where(idx[0] >= 0, c[np.maximum(idx[0], 0)], -1)
            scores_out[r, :w] = val[0]
        return items_out, scores_out

    # ------------------------------------------------------------------ contributions

    def contributions(self, history: Any, items: Any, top: int = 2) -> Contributions:
        """The ``top`` history items behind each listed item (interface contract A).

        Args:
            history: one history, ``[1, n_items]`` (or 1-D) event weights.
            items: the listed item indices.
            top: history items per listed item (>= 1).

        Returns:
            :class:`Contributions`: per listed item, ``(history item, value)`` pairs, largest
            first (ties: lower item index), values above 1e-6 only (noise is no reason), never
            the item itself.
        """
        self._check_fitted()
        top = self._k(top)
        x, _ = self._history(history)
        if x.shape[0] != 1:
            raise ModelError(f"contributions explain one history, got {x.shape[0]} rows")
        cols = self._items(items)
        cols = np.empty(0, np.int64) if cols is None else cols
        hist = x.indices.astype(np.int64)  # ascending: stable sorts prefer the lower index
        method = self.contribution_method
        if not len(hist) or not len(cols) or method == "none":
            return Contributions(method, tuple(() for _ in cols))
        m = np.array(self._contribution_matrix(x, hist, cols), dtype=np.float64)
        m[cols[:, None] == hist[None, :]] = 0.0  # an item does not explain itself
        m[~np.isfinite(m)] = 0.0
        rows = []
        for r in range(len(cols)):
            order = np.argsort(-m[r], kind="stable")[:top]
            pairs = ((int(hist[j]), float(m[r, j])) for j in order if m[r, j] > _MIN_SHARE)
            rows.append(tuple(pairs))
        return Contributions(method, tuple(rows))

    #: What :meth:`contributions` reports: "exact" (a decomposition of the model's own score),
    #: "embedding" (nearest history items by an item embedding) or "none".
    contribution_method: ClassVar[str] = "none"

    def _contribution_matrix(
        self, x: sp.csr_matrix, hist: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """``m[r, j]``: what history item ``hist[j]`` contributes to listed item ``items[r]``
        (``x``: the one history row). Only called when :attr:`contribution_method` is not
        "none"."""
        raise NotImplementedError

    # ------------------------------------------------------------------ persistence

    def _state(self) -> dict[str, np.ndarray]:
        """The model-specific learned state as plain numeric arrays."""
        return {}

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`_state` returned."""
        return None

    def _base_state(self) -> dict[str, np.ndarray]:
        out = {
            **csr_to_arrays("base_seen", self.seen_),
            "base_pop": self.pop_,
            "base_shape": np.asarray([self.n_users_, self.n_items_], dtype=np.int64),
            "base_repeat": np.asarray(self.repeat_, dtype=np.bool_),
        }
        if self.freq_ is not None:
            out.update(csr_to_arrays("base_freq", self.freq_))
        if self.blend_pop_ is not None:
            out["base_blend_pop"] = self.blend_pop_
        return out

    def _set_base_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        try:
            self.n_users_, self.n_items_ = (int(x) for x in arrays["base_shape"])
            self.pop_ = np.asarray(arrays["base_pop"], dtype=np.float64)
            self.repeat_ = bool(arrays.get("base_repeat", False))
        except (KeyError, ValueError) as exc:
            raise RegistryError(
                "saved model state is incomplete", hint="train the model again"
            ) from exc
        self.seen_ = csr_from_arrays("base_seen", arrays)
        if self.seen_.shape != (self.n_users_, self.n_items_) or len(self.pop_) != self.n_items_:
            raise RegistryError("saved model state has inconsistent shapes", hint="retrain")
        # Runs saved before the decay existed (or without it) have neither: undecayed.
        self.freq_ = csr_from_arrays("base_freq", arrays) if "base_freq_data" in arrays else None
        bp = arrays.get("base_blend_pop")
        self.blend_pop_ = None if bp is None else np.asarray(bp, dtype=np.float64)
        if (self.freq_ is not None and self.freq_.shape != self.seen_.shape) or (
            self.blend_pop_ is not None and len(self.blend_pop_) != self.n_items_
        ):
            raise RegistryError("saved model state has inconsistent shapes", hint="retrain")

    def save(self, path: Path | str) -> list[Path]:
        """Write ``config.json`` and ``state.npz`` into ``path`` (created); returns the files."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        cfg = path / CONFIG_FILE
        cfg.write_text(
            json.dumps({"model": self.name, "params": self.config.model_dump(mode="json")})
        )
        state = path / STATE_FILE
        extra = {} if self.ann_ is None else {"ann_meta": self.ann_.meta()}
        with open(state, "wb") as fh:
            np.savez(fh, **self._base_state(), **self._state(), **extra)  # type: ignore[arg-type]  # numpy's stub checks **arrays against allow_pickle
        return [cfg, state] + ([] if self.ann_ is None else [self.ann_.save(path)])

    @classmethod
    def load(cls, path: Path | str) -> Self:
        """Rebuild a model saved by :meth:`save`. Never unpickles: arrays and JSON only."""
        path = Path(path)
        name, params = read_model_config(path)
        if name != cls.name:
            raise RegistryError(f"{path} holds a '{name}' model, not '{cls.name}'")
        model = cls(params)
        arrays = read_npz(path / STATE_FILE)
        model._set_base_state(arrays)
        model._set_state(arrays)
        if "ann_meta" in arrays:
            model.ann_ = AnnIndex.load(path, arrays["ann_meta"])
            if model.ann_.n_items != model.n_items_:
                raise RegistryError(
                    f"the run's ANN index holds {model.ann_.n_items} items, the model "
                    f"{model.n_items_}",
                    hint="the run is damaged; train the model again",
                )
        return model


def _take_rows(m: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``m[rows]``; a few rows (one user per request) by slicing, without the fixed cost of
    scipy's fancy indexing, which is most of a one-user list's masking time."""
    if len(rows) > 8:
        return m[rows]
    lo, hi = m.indptr[rows], m.indptr[rows + 1]
    indptr = np.zeros(len(rows) + 1, dtype=m.indptr.dtype)
    np.cumsum(hi - lo, out=indptr[1:])
    parts = [slice(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
    indices = np.concatenate([m.indices[p] for p in parts]) if parts else m.indices[:0]
    data = np.concatenate([m.data[p] for p in parts]) if parts else m.data[:0]
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), m.shape[1]))


class _Row(NamedTuple):
    """One row of seen items as :func:`_mask_seen` reads it (``indptr``, ``indices``)."""

    indptr: np.ndarray
    indices: np.ndarray


_ONE_ROW = np.zeros(1, dtype=np.int64)
_ONE_ROW.flags.writeable = False  # shared: row 0 of a one-user block


def _mask_seen(
    s: np.ndarray, rows: np.ndarray, seen: sp.csr_matrix | _Row, pos: np.ndarray | None
) -> None:
    """``s[rows[r], j] = -inf`` for every item j in row r of ``seen`` (``pos``: item index ->
    column of ``s`` when ``s`` holds candidate columns only, -1 for non-candidates)."""
    if not len(rows):
        return
    counts = np.diff(seen.indptr)
    r = np.repeat(rows, counts)
    c = seen.indices.astype(np.int64)
    if pos is not None:
        c = pos[c]
        r, c = r[c >= 0], c[c >= 0]
    s[r, c] = -np.inf


@dataclass(frozen=True)
class Contributions:
    """Which history items lie behind each listed item (interface contract A).

    Attributes:
        method: "exact" (``value`` = the history item's share of the listed item's own model
            score, before any repeat blend: item-kNN, EASE, RP3beta, ALS), "embedding"
            (``value`` = cosine similarity of the two items' embeddings: two-tower, NCF,
            content) or "none" (popularity: no history item explains a popularity score).
        rows: per listed item, ``((history item index, value), ...)``, largest value first,
            positive values only (an exact share can exceed 1 when other history items pull
            the score down: EASE weights can be negative).
    """

    method: str
    rows: tuple[tuple[tuple[int, float], ...], ...]


def score_shares(contrib: np.ndarray) -> np.ndarray:
    """Each term's share of its row's total, ``contrib / contrib.sum(axis=1)``; rows whose
    total is <= 0 (nothing positive to explain) give zeros."""
    c = np.asarray(contrib, dtype=np.float64)
    total = c.sum(axis=1, keepdims=True)
    return np.divide(c, total, out=np.zeros_like(c), where=total > 0)


def item_item_shares(
    x: sp.csr_matrix, sim: AnySparse, hist: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """Exact contributions of a model scoring ``x @ sim`` (item-kNN, RP3beta, the content
    blend): score(i) = sum_j x_j sim[j, i], so history item j's share of item i's score is
    ``x_j sim[j, i] / score(i)``. ``x``: the one history row *as the model reads it* (binary
    or weighted); returns ``[len(items), len(hist)]``."""
    xj = np.asarray(x[:, hist].toarray()[0], dtype=np.float64)
    terms = sp.csr_matrix(sim)[hist][:, items].toarray().T.astype(np.float64) * xj[None, :]
    return score_shares(terms)


class SimilarityModel(Recommender):
    """A model that scores ``input(history) @ S`` with an item x item CSR matrix ``sim_``
    (RP3beta, the content blend): scoring from any history, exact contributions and the saved
    state are the same for all of them. Subclasses fit ``sim_`` and say how a history row is
    read (:meth:`_input`: binary, or the event weights)."""

    sim_: sp.csr_matrix

    @abc.abstractmethod
    def _input(self, x: sp.csr_matrix) -> sp.csr_matrix:
        """The history rows as the model reads them (a new matrix: never modify ``x``)."""

    def _score_history(
        self, x: sp.csr_matrix, users: np.ndarray, items: np.ndarray | None
    ) -> np.ndarray:
        sim = self.sim_ if items is None else self.sim_[:, items]
        return np.asarray((self._input(x) @ sim).todense(), dtype=np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._score_history(self.seen_[users], users, items)

    def _contribution_matrix(
        self, x: sp.csr_matrix, hist: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        """Exact shares of score = input(x) @ S (every term >= 0)."""
        return item_item_shares(self._input(x), self.sim_, hist, items)

    def _state(self) -> dict[str, np.ndarray]:
        return csr_to_arrays("sim", self.sim_)

    def _set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.sim_ = csr_from_arrays("sim", arrays)


def cosine_matrix(vectors: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``cos(v_a, v_b)`` for every pair of rows ``a`` x ``b`` (zero vectors give 0)."""
    va = np.asarray(vectors[a], dtype=np.float64)
    vb = np.asarray(vectors[b], dtype=np.float64)
    na = np.linalg.norm(va, axis=1, keepdims=True)
    nb = np.linalg.norm(vb, axis=1, keepdims=True)
    den = na * nb.T
    dot = va @ vb.T
    return np.divide(dot, den, out=np.zeros_like(dot), where=den > 0)


def read_model_config(path: Path) -> tuple[str, dict[str, Any]]:
    """``(model name, params)`` from a saved model's ``config.json``."""
    try:
        raw = json.loads((Path(path) / CONFIG_FILE).read_text())
        name, params = raw["model"], raw["params"]
        if not isinstance(name, str) or not isinstance(params, dict):
            raise TypeError("bad types")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RegistryError(
            f"{path / CONFIG_FILE} is missing or not a model config ({exc.__class__.__name__})",
            hint="the run is damaged; train it again",
        ) from exc
    return name, params


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, read with ``allow_pickle=False`` after its headers are
    checked (:func:`ltrec.models.registry.check_npz`: no array larger than the file)."""
    # lazy: cycle models.base <-> models.registry
    from ltrec.models.registry import check_npz  # registry imports this module

    check_npz(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise RegistryError(
            f"{path.name} cannot be read as plain arrays ({exc.__class__.__name__}: {exc})",
            hint="the run is damaged or not an ltrec run; train it again",
        ) from exc


def popularity_scores(item_pop: np.ndarray, item_weight: np.ndarray) -> np.ndarray:
    """Distinct users per item, ties broken by total event weight (adds less than 0.5)."""
    w = np.asarray(item_weight, dtype=np.float64)
    top = float(w.max()) if len(w) else 0.0
    return np.asarray(item_pop, dtype=np.float64) + 0.5 * w / (top + 1.0)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a 2-D array: ``(indices, values)``, best first, ties -> lower index.

    ``-inf`` entries are never returned (index ``-1``, value ``-inf`` instead); the result has
    ``min(k, n_cols)`` columns. Cost: the two passes of a bare ``argpartition`` (negate,
    partition) plus work on k + 1 entries per row: partitioning at k puts the k largest first
    and the (k+1)-th largest right after them, so a tie at the boundary (which the partition
    alone would settle arbitrarily) is seen without another pass; only rows with such a tie
    take the exact path (every entry above the k-th value, then the lowest tied indices).
    """
    n, m = scores.shape
    kk = min(k, m)
    if kk == 0:
        return np.empty((n, 0), np.int64), np.empty((n, 0), np.float32)
    if kk < m:
        part = np.argpartition(-scores, kk, axis=1)[:, : kk + 1]
        top = np.take_along_axis(scores, part, axis=1)
        kth = top[:, :kk].min(axis=1)
        idx = part[:, :kk]
        tied = top[:, kk] == kth  # the (k+1)-th largest equals the k-th: the lower index wins
        if tied.any():
            rows = scores[tied]
            chosen = rows > kth[tied, None]
            tie = rows == kth[tied, None]
            need = kk - chosen.sum(axis=1)
            tie &= np.cumsum(tie, axis=1) <= need[:, None]
            idx[tied] = np.nonzero(chosen | tie)[1].reshape(len(rows), kk)
        idx.sort(axis=1)  # ascending index, so the stable sort below breaks ties by it
    else:
        idx = np.broadcast_to(np.arange(m), (n, m)).copy()
    vals = np.take_along_axis(scores, idx, axis=1)
    o = np.argsort(-vals, axis=1, kind="stable")  # stable: equal scores keep the lower index
    idx, vals = np.take_along_axis(idx, o, axis=1), np.take_along_axis(vals, o, axis=1)
    idx[np.isneginf(vals)] = -1
    return idx, vals.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------- registry

#: Model name -> ``"module:Class"``; imported on first use (TensorFlow only for Keras models).
MODELS: dict[str, str] = {
    "popularity": "ltrec.models.popularity:Popularity",
    "itemknn": "ltrec.models.itemknn:ItemKNN",
    "ease": "ltrec.models.ease:EASE",
    "als": "ltrec.models.als:ALS",
    "two_tower": "ltrec.models.two_tower:TwoTower",
    "ncf": "ltrec.models.ncf:NCF",
    "rp3beta": "ltrec.models.rp3beta:RP3beta",
    "content": "ltrec.models.content:ContentBlend",
}


def register_model(name: str, path: str) -> None:
    """Register (or re-point) a model class by name: ``path`` is ``"module:Class"``."""
    if ":" not in path:
        raise ValueError("path must be 'module:Class'")
    MODELS[name] = path


def model_names() -> list[str]:
    return list(MODELS)


def get_model_class(name: str) -> type[Recommender]:
    """The model class registered under ``name`` (imported now)."""
    if name not in MODELS:
        raise ConfigError(
            f"unknown model '{name}'", hint=f"choose one of: {', '.join(model_names())}"
        )
    module, _, attr = MODELS[name].partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ModelError(
            f"model '{name}' is not available ({exc.__class__.__name__}: {exc})",
            hint="check that its dependencies are installed",
        ) from exc
    return cls


_Config = TypeVar("_Config", bound=ConfigBase)


def make_config(cls: type[_Config], params: Mapping[str, Any]) -> _Config:
    """Validate params against a config class (a model's, or any ConfigBase such as the split's);
    errors become :class:`ConfigError` (exit 2)."""
    try:
        return cls(**dict(params))
    except ValidationError as exc:
        raise ConfigError(
            f"invalid {cls.__name__}: {validation_message(exc, cls)}",
            hint=f"valid keys: {', '.join(cls.model_fields)}",
        ) from None


def make_model(name: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """A new, untrained model by registry name with validated params."""
    cls = get_model_class(name)
    return cls(make_config(cls.config_cls, params or {}))


def load_model(path: Path | str) -> Recommender:
    """Load any saved model: reads its ``config.json`` to pick the class."""
    name, _ = read_model_config(Path(path))
    if name not in MODELS:
        raise RegistryError(f"{path} holds an unknown model '{name}'")
    return get_model_class(name).load(path)
