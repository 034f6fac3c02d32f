"""Ground-truth preferences of the demo shop: the user model that generated its log.

The demo generator (:mod:`ltrec.synth.demo`) decides every click, add-to-cart and purchase
with the functions below, and stores their inputs in the dataset, so the feedback-loop
simulator (DESIGN §7) can decide what users do with *recommended* items under the very same
model. Nothing here depends on how an item was exposed: exposure (which items a user is
shown) is popularity-biased in the log, responses are not.

The model
---------
Every user ``u`` has a unit taste vector ``t_u`` in R^d and three response offsets
(``click_bias``, ``cart_bias``, ``buy_bias``, from the user's device, tier and an individual
term); every item ``i`` has a unit latent factor ``f_i`` in R^d (its leaf category's centre plus
noise) and an appeal scalar ``a_i`` ~ N(0, 1), drawn independently of the item's popularity.
With the match ``m_ui = t_u . f_i`` (cosine, in [-1, 1]) and ``s(x) = 1 / (1 + e^-x)``:

- click (view given an impression):  ``P(view | imp) = s(c0 + c_m m + c_a a_i + click_bias_u)``
- add to cart given a view:          ``P(cart | view) = s(k0 + k_m m + k_a a_i + cart_bias_u)``
- purchase given a cart:             ``P(buy | cart) = s(b0 + b_m m + buy_bias_u)``
- purchase given a view:             ``purchase_prob = P(cart | view) * P(buy | cart)``
- position bias for ranked lists:    ``P(examine | rank r) = r^-eta`` (r = 1, 2, ...), which a
  simulator multiplies into the click probability (the examination hypothesis of the cascade
  and position-based click models, Craswell et al. 2008).

Popularity appears nowhere in these formulas: a tail item that matches a user converts as well
as a head item that matches equally. That is the "hidden gem" the app looks for.

Store layout: ``truth_users(user_id, user_idx, taste FLOAT[], click_bias, cart_bias, buy_bias,
activity, niche)``, ``truth_items(item_id, item_idx, factor FLOAT[], appeal, popularity, leaf)``
and ``meta['truth_model']`` (the :class:`PreferenceModel` as JSON). :func:`load_truth` reads
them back into a :class:`GroundTruth`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ltrec.errors import BadInputError

TRUTH_META_KEY = "truth_model"


class PreferenceModel(BaseModel):
    """Coefficients of the response model (see the module docstring for the formulas)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: int = Field(16, ge=2, le=128, description="Dimension d of tastes and item factors.")
    click_base: float = Field(-2.7, ge=-10, le=10)
    click_match: float = Field(2.6, ge=0, le=20)
    click_appeal: float = Field(0.0, ge=0, le=5)
    cart_base: float = Field(-5.05, ge=-15, le=10)
    cart_match: float = Field(3.2, ge=0, le=20)
    cart_appeal: float = Field(0.5, ge=0, le=5)
    buy_base: float = Field(-2.45, ge=-10, le=10)
    buy_match: float = Field(2.0, ge=0, le=20)
    examine_decay: float = Field(0.8, ge=0, le=5, description="eta in P(examine | r) = r^-eta.")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Latent tastes and item factors with the response probabilities they imply.

    Index arguments are integer numpy arrays (or scalars) of user and item *indices* (rows of
    ``user_ids`` / ``item_ids``); they broadcast against each other, so
    ``click_prob(u[:, None], items[None, :])`` scores every item for every user in ``u``.
    """

    user_ids: np.ndarray  # (U,) str
    item_ids: np.ndarray  # (I,) str
    taste: np.ndarray  # (U, d) float32, unit rows
    factor: np.ndarray  # (I, d) float32, unit rows
    appeal: np.ndarray  # (I,) float32
    click_bias: np.ndarray  # (U,) float32
    cart_bias: np.ndarray  # (U,) float32
    buy_bias: np.ndarray  # (U,) float32
    model: PreferenceModel = field(default_factory=PreferenceModel)
    popularity: np.ndarray | None = None  # (I,) exposure propensity used by the generator
    niche: np.ndarray | None = None  # (U,) bool: user drawn with niche tastes

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    # ------------------------------------------------------------------ id <-> index

    def user_index(self, ids) -> np.ndarray:
        """Indices of user ids (raises :class:`BadInputError` for unknown ids)."""
        return _lookup(self.user_ids, ids, "user")

    def item_index(self, ids) -> np.ndarray:
        """Indices of item ids (raises :class:`BadInputError` for unknown ids)."""
        return _lookup(self.item_ids, ids, "item")

    # ------------------------------------------------------------------ probabilities

    def match(self, user_idx, item_idx) -> np.ndarray:
        """m_ui = t_u . f_i, broadcast over the index arrays."""
        u = np.asarray(user_idx)
        i = np.asarray(item_idx)
        return np.einsum("...d,...d->...", self.taste[u], self.factor[i], dtype=np.float32)

    def click_prob(self, user_idx, item_idx, match: np.ndarray | None = None) -> np.ndarray:
        """P(view | impression) = s(c0 + c_m m + c_a a_i + click_bias_u); no position bias."""
        p = self.model
        m = self.match(user_idx, item_idx) if match is None else match
        x = (
            p.click_base
            + p.click_match * m
            + p.click_appeal * self.appeal[np.asarray(item_idx)]
            + self.click_bias[np.asarray(user_idx)]
        )
        return _sigmoid(x)

    def cart_prob(self, user_idx, item_idx, match: np.ndarray | None = None) -> np.ndarray:
        """P(cart | view) = s(k0 + k_m m + k_a a_i + cart_bias_u)."""
        p = self.model
        m = self.match(user_idx, item_idx) if match is None else match
        x = (
            p.cart_base
            + p.cart_match * m
            + p.cart_appeal * self.appeal[np.asarray(item_idx)]
            + self.cart_bias[np.asarray(user_idx)]
        )
        return _sigmoid(x)

    def buy_prob(self, user_idx, item_idx, match: np.ndarray | None = None) -> np.ndarray:
        """P(purchase | cart) = s(b0 + b_m m + buy_bias_u)."""
        p = self.model
        m = self.match(user_idx, item_idx) if match is None else match
        return _sigmoid(p.buy_base + p.buy_match * m + self.buy_bias[np.asarray(user_idx)])

    def purchase_prob(self, user_idx, item_idx, match: np.ndarray | None = None) -> np.ndarray:
        """P(purchase | view) = P(cart | view) * P(purchase | cart)."""
        m = self.match(user_idx, item_idx) if match is None else match
        return self.cart_prob(user_idx, item_idx, m) * self.buy_prob(user_idx, item_idx, m)

    def examine_prob(self, rank) -> np.ndarray:
        """Position bias P(examine | rank r) = r^-eta for 1-based ranks."""
        r = np.asarray(rank, dtype=np.float64)
        if np.any(r < 1):
            raise BadInputError("ranks are 1-based", hint="pass rank = position + 1")
        return r ** (-self.model.examine_decay)


def _lookup(vocab: np.ndarray, ids, kind: str) -> np.ndarray:
    order = np.argsort(vocab, kind="stable")
    keys = vocab[order]
    arr = np.asarray(ids, dtype=object).astype(str)
    pos = np.searchsorted(keys, arr)
    pos = np.clip(pos, 0, len(keys) - 1)
    found = keys[pos] == arr
    if not np.all(found):
        missing = arr[~found].ravel()[:5].tolist()
        raise BadInputError(
            f"unknown {kind} id(s): {', '.join(missing)}",
            hint=f"use ids from the dataset's {kind}s table",
        )
    return order[pos]


def has_truth(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the dataset on ``con`` carries a ground-truth model (only demo shops do)."""
    row = con.execute("SELECT value FROM meta WHERE key = ?", [TRUTH_META_KEY]).fetchone()
    return row is not None


def _matrix(con: duckdb.DuckDBPyConnection, table: str, column: str, dim: int) -> np.ndarray:
    idx = "user_idx" if table == "truth_users" else "item_idx"
    lists = con.sql(f"SELECT {column} FROM {table} ORDER BY {idx}").to_arrow_table()  # noqa: S608 - fixed names
    col = lists.column(0).combine_chunks() if lists.num_rows else None
    if col is None:
        return np.zeros((0, dim), dtype=np.float32)
    flat = col.flatten().to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(np.asarray(flat, dtype=np.float32).reshape(-1, dim))


def load_truth(con: duckdb.DuckDBPyConnection) -> GroundTruth:
    """Read the ground truth of a demo dataset.

    Raises:
        BadInputError: the dataset has no ground truth (it was imported, not generated).
    """
    row = con.execute("SELECT value FROM meta WHERE key = ?", [TRUTH_META_KEY]).fetchone()
    if row is None:
        raise BadInputError(
            "this dataset has no ground-truth preference model (only demo shops have one)",
            hint="build one with `ltrec demo`, or simulate with a model fitted on the data",
        )
    model = PreferenceModel(**json.loads(row[0]))
    users = con.execute(
        "SELECT user_id, click_bias, cart_bias, buy_bias, niche FROM truth_users ORDER BY user_idx"
    ).fetchnumpy()
    items = con.execute(
        "SELECT item_id, appeal, popularity FROM truth_items ORDER BY item_idx"
    ).fetchnumpy()
    return GroundTruth(
        user_ids=np.asarray(users["user_id"], dtype=str),
        item_ids=np.asarray(items["item_id"], dtype=str),
        taste=_matrix(con, "truth_users", "taste", model.dim),
        factor=_matrix(con, "truth_items", "factor", model.dim),
        appeal=np.asarray(items["appeal"], dtype=np.float32),
        click_bias=np.asarray(users["click_bias"], dtype=np.float32),
        cart_bias=np.asarray(users["cart_bias"], dtype=np.float32),
        buy_bias=np.asarray(users["buy_bias"], dtype=np.float32),
        model=model,
        popularity=np.asarray(items["popularity"], dtype=np.float64),
        niche=np.asarray(users["niche"], dtype=bool),
    )
