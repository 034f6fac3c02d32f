"""The content-collaborative blend: conformance suite and hand-computed similarities."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ltrec.errors import ModelError
from ltrec.models.base import get_model_class
from ltrec.models.content import ContentBlend, text_neighbours
from ltrec.models.data import InteractionData
from tests.models.conformance import RecommenderConformance

#: Text vectors by title: a and n are close (0.8), b sits between a and c, n is cold.
VECTORS = {"a": [1.0, 0.0], "b": [0.6, 0.8], "c": [0.0, 1.0], "n": [0.8, 0.6]}


class TestContentBlend(RecommenderConformance):
    def make_model(self) -> ContentBlend:
        return ContentBlend(mix=0.5, neighbours=5, shrinkage=1.0)


def lookup_encoder(texts: list[str]) -> np.ndarray:
    return np.array([VECTORS[t.split(".")[0].strip()] for t in texts], dtype=np.float32)


def small_data(text: bool = True) -> InteractionData:
    """u0: a b; u1: a c; t: a. Item n has no events (cold)."""
    pairs = [("u0", "a"), ("u0", "b"), ("u1", "a"), ("u1", "c"), ("t", "a")]
    events = pd.DataFrame(pairs, columns=["user_id", "item_id"]).assign(
        event_type="view", ts=pd.Timestamp("2024-01-01")
    )
    items = pd.DataFrame({"item_id": list("abcn"), "title": list("abcn")})
    enc = ("lookup", lookup_encoder) if text else None
    return InteractionData.from_frame(events, items, text_encoder=enc)


def test_hand_computed_blend_scores_a_cold_item_by_its_text() -> None:
    # Co-occurrence cosine (0/1, no shrinkage): a has 3 users, b and c one each, shared with a
    # once: cos(a, b) = cos(a, c) = 1 / sqrt(3); n has no events. Text cosines: a.b 0.6,
    # a.c 0, a.n 0.8. With mix 0.5, t (history a) scores b 0.5/sqrt(3) + 0.3, n 0.4, c
    # 0.5/sqrt(3): the cold n ranks above the co-bought c.
    data = small_data()
    t = data.user_index["t"]
    a, b, c, n = (data.item_index[i] for i in "abcn")
    model = ContentBlend(mix=0.5, neighbours=10, shrinkage=0.0).fit(data)
    items, scores = model.recommend(t, 3)
    assert items.tolist() == [b, n, c]
    r3 = 1.0 / math.sqrt(3.0)
    np.testing.assert_allclose(scores, [0.5 * r3 + 0.3, 0.4, 0.5 * r3], rtol=1e-6)
    # mix 1 is co-occurrence alone: n (no events) scores 0; mix 0 is text alone: n first.
    cooc = ContentBlend(mix=1.0, neighbours=10, shrinkage=0.0).fit(data).score(t)
    np.testing.assert_allclose(cooc[[b, c, n]], [r3, r3, 0.0], rtol=1e-6, atol=1e-7)
    text = ContentBlend(mix=0.0, neighbours=10, shrinkage=0.0).fit(data)
    assert text.recommend(t, 3)[0].tolist() == [n, b, c]
    assert model.sim_[a, a] == 0.0


def test_neighbours_keep_the_most_similar_per_item() -> None:
    # neighbours=2, mix 0.5: each part keeps its top 2 per item, the blend the top 2 of that
    # union. Text top 2: a {n .8, b .6}, b {n .96, c .8}, c {b .8, n .6}, n {b .96, a .8};
    # co-occurrence top 2: a {b, c} (1/sqrt(3) each), b {a}, c {a}, n {}. Blended columns:
    # a: b .3 + .289, n .4, c .289 -> {b, n}; b: n .48, c .4, a .289 -> {c, n}; c: b .4,
    # n .3, a .289 -> {b, n}; n: b .48, a .4 -> {a, b}. So t (history a) scores only n (0.4).
    data = small_data()
    t = data.user_index["t"]
    a, b, c, n = (data.item_index[i] for i in "abcn")
    model = ContentBlend(mix=0.5, neighbours=2, shrinkage=0.0).fit(data)
    s = model.sim_.toarray()
    kept = {i: set(np.flatnonzero(s[:, i]).tolist()) for i in (a, b, c, n)}
    assert kept == {a: {b, n}, b: {c, n}, c: {b, n}, n: {a, b}}
    np.testing.assert_allclose(s[[b, n], a], [0.5 / math.sqrt(3.0) + 0.3, 0.4], rtol=1e-6)
    np.testing.assert_allclose(model.score(t)[[b, c, n]], [0.0, 0.0, 0.4], rtol=1e-6)


def test_text_neighbours_positive_cosines_only() -> None:
    emb = np.array([[1.0, 0.0], [-1.0, 0.0], [2.0, 2.0], [0.0, 0.0]], dtype=np.float32)
    t = text_neighbours(emb, 5).toarray()
    # Item 0 and 1 point opposite ways (cosine -1): not neighbours; the zero row has none.
    expected = np.zeros((4, 4))
    expected[0, 2] = expected[2, 0] = math.sqrt(0.5)
    expected[1, 2] = expected[2, 1] = 0.0  # cosine -sqrt(0.5): dropped
    np.testing.assert_allclose(t, expected, atol=1e-6)


def test_without_text_vectors_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="text vectors") as err:
        ContentBlend().fit(small_data(text=False))
    assert "ltrec train" in (err.value.hint or "")


def test_registered() -> None:
    assert get_model_class("content") is ContentBlend
    assert ContentBlend.content_model and ContentBlend.live_history


def test_contributions_are_the_exact_shares_of_the_blend() -> None:
    # u0 (history a, b) scores c by S[a, c] + S[b, c] = 0.5/sqrt(3) (co-occurrence only: the
    # text cosine of a and c is 0) + 0.5 * 0.8 (text only: b and c share no user).
    data = small_data()
    a, b, c = (data.item_index[i] for i in "abc")
    model = ContentBlend(mix=0.5, neighbours=10, shrinkage=0.0).fit(data)
    history = data.matrix[data.user_index["u0"]]
    sa, sb = 0.5 / math.sqrt(3.0), 0.4
    out = model.contributions(history, [c])
    assert out.method == "exact"
    (((first, share_b), (second, share_a)),) = out.rows
    assert (first, second) == (b, a)
    np.testing.assert_allclose([share_b, share_a], [sb / (sa + sb), sa / (sa + sb)], rtol=1e-6)


def test_repeat_domain_blends_the_own_frequency() -> None:
    from tests.models.test_repeat import PLAIN, grocery

    data = grocery(repeat=True)
    # Text: jam reads like bread, milk like soap.
    data = data.with_text(np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], np.float32), "toy")
    assert data.item_ids.tolist() == ["bread", "jam", "milk", "soap"]
    hr = int(data.users_to_index(["hR"])[0])
    milk, jam = data.items_to_index(["milk", "jam"])
    model = ContentBlend().fit(data)
    assert (model.repeat_weight_, model.popularity_weight_) == (0.3, 0.6)
    assert model.recommend(hr, 1)[0].tolist() == [milk]  # bought 4 times: first again
    assert ContentBlend(**PLAIN).fit(data).recommend(hr, 1)[0].tolist() == [jam]
