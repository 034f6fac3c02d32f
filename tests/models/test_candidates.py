"""Candidate pools: exact pools on a hand-made shop, properties on random ones."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrec.errors import BadInputError, ConfigError, ModelError
from ltrec.models.candidates import candidate_pool, pool_tail_recall
from ltrec.models.data import InteractionData
from ltrec.models.itemknn import ItemKNN
from ltrec.models.popularity import Popularity
from tests.models.conformance import fixture_text_encoder

ITEMS = ["h0", "h1", "t0", "t1", "t2", "t3"]
TAIL = np.array([False, False, True, True, True, True])
#: Text vectors by item: q's history h0 points like t0, then t3 (0.8), t2 (0.6); t1 is apart.
VECTORS = {
    "h0": [1.0, 0.0],
    "h1": [0.0, 1.0],
    "t0": [1.0, 0.0],
    "t1": [0.0, 1.0],
    "t2": [0.6, 0.8],
    "t3": [0.8, 0.6],
}


def lookup(texts: list[str]) -> np.ndarray:
    return np.array([VECTORS[t.split(".")[0].strip()] for t in texts], dtype=np.float32)


def shop(text: bool = True) -> InteractionData:
    """Six users. Distinct users: h0 5, h1 3, t0 2, t1 1, t2 1, t3 1; total weights: h0 5
    (views), t1 1 (view), t2 5 (purchase), t3 3 (cart), so popularity's scores (distinct
    users + 0.5 * weight / (5 + 1)) rank the single-user tail items t2 > t3 > t1."""
    pairs = [
        ("u0", "h0", "view"), ("u0", "t0", "view"),
        ("u1", "h0", "view"), ("u1", "t0", "view"), ("u1", "t1", "view"),
        ("u2", "h0", "view"), ("u2", "h1", "view"),
        ("u3", "h1", "view"), ("u3", "t2", "purchase"),
        ("u4", "h0", "view"), ("u4", "h1", "view"), ("u4", "t3", "cart"),
        ("q", "h0", "view"),
    ]  # fmt: skip
    events = pd.DataFrame(pairs, columns=["user_id", "item_id", "event_type"])
    events["ts"] = pd.Timestamp("2024-01-01")
    items = pd.DataFrame({"item_id": ITEMS, "title": ITEMS})
    return InteractionData.from_frame(
        events, items, text_encoder=("lookup", lookup) if text else None
    )


@pytest.fixture(scope="module")
def data() -> InteractionData:
    return shop()


@pytest.fixture(scope="module")
def pop(data: InteractionData) -> Popularity:
    return Popularity().fit(data)


def ix(data: InteractionData, *ids: str) -> list[int]:
    return [data.item_index[i] if i != "-" else -1 for i in ids]


def test_no_tail_pool_is_the_model_top_m(data: InteractionData, pop: Popularity) -> None:
    users = np.array([data.user_index["q"], -1])
    items, scores = candidate_pool(pop, data, users, 2)
    ref_items, ref_scores = pop.recommend(users, 2)
    np.testing.assert_array_equal(items, ref_items)
    np.testing.assert_array_equal(scores, ref_scores)


# q (history h0): the popularity top 2 is h1, t0. Eligible tail items: t1, t2, t3; their base
# scores, best first: t2 1 + 2.5/6, t3 1 + 1.5/6, t1 1 + 0.5/6 (the reference scale).
# Co-occurrence with h0 (users u0 u1 u2 u4 q): t1 via u1 and t3 via u4, 1/sqrt(5) each (tie:
# lower index t1 first); t2 never with h0, so not proposed. Text: t3 0.8, t2 0.6, t1 0.
# Both: round-robin t1, t3, (t3), t2.
T2, T3, T1 = 1 + 2.5 / 6, 1 + 1.5 / 6, 1 + 0.5 / 6
H1, T0 = 3 + 1.5 / 6, 2 + 1 / 6
EXPECTED = {
    "cooccurrence": (["h1", "t0", "t1", "t3", "-"], [H1, T0, T2, T3, -math.inf]),
    "text": (["h1", "t0", "t3", "t2", "-"], [H1, T0, T2, T3, -math.inf]),
    "both": (["h1", "t0", "t1", "t3", "t2"], [H1, T0, T2, T3, T1]),
}


@pytest.mark.parametrize("source", list(EXPECTED))
def test_exact_pools_with_calibrated_scores(
    data: InteractionData, pop: Popularity, source: str
) -> None:
    q = data.user_index["q"]
    items, scores = candidate_pool(
        pop, data, np.array([q]), 2, tail_pool=3, tail_source=source, tail_mask=TAIL
    )
    want_items, want_scores = EXPECTED[source]
    assert items.shape == scores.shape == (1, 5)
    assert items[0].tolist() == ix(data, *want_items)
    np.testing.assert_allclose(scores[0], want_scores, rtol=1e-6)


def test_seen_tail_items_never_return(data: InteractionData, pop: Popularity) -> None:
    # u1 has h0, t0, t1: base top 2 = h1, t2. Co-occurrence proposes t3 (with h0, via u4)
    # and nothing else unseen; the only eligible tail item left is t3, so it keeps its own
    # base score. An unknown user (-1) has no history: no tail candidates.
    users = np.array([data.user_index["u1"], -1])
    items, scores = candidate_pool(
        pop, data, users, 2, tail_pool=3, tail_source="cooccurrence", tail_mask=TAIL
    )
    assert items.tolist() == [ix(data, "h1", "t2", "t3", "-", "-"), ix(data, "h0", "h1", *"---")]
    np.testing.assert_allclose(scores[0, :3], [H1, T2, T3], rtol=1e-6)
    assert np.isneginf(scores[0, 3:]).all() and np.isneginf(scores[1, 2:]).all()


def test_live_history_pool(data: InteractionData, pop: Popularity) -> None:
    # A new user whose live history is t3 only: popularity's top 2 are h0, h1; co-occurrence
    # with t3 (user u4: h0, h1, t3) finds no other tail item; text finds t0 (0.8), t2 (0.96).
    history = sp.csr_matrix(([3.0], ([0], [data.item_index["t3"]])), shape=(1, data.n_items))
    items, scores = candidate_pool(
        pop,
        data,
        np.array([-1]),
        2,
        tail_pool=2,
        tail_source="text",
        tail_mask=TAIL,
        history=history,
    )
    # Reference: eligible tail items t0, t1, t2 (t3 seen) by base score: t0, t2, t1.
    assert items[0].tolist() == ix(data, "h0", "h1", "t2", "t0")
    np.testing.assert_allclose(scores[0], [5 + 2.5 / 6, H1, T0, T2], rtol=1e-6)


@pytest.mark.parametrize("model_cls", [Popularity, ItemKNN])
def test_training_rows_as_history_give_the_same_pools(
    data: InteractionData, model_cls: type
) -> None:
    model = model_cls().fit(data)
    users = np.arange(data.n_users)
    kw = {"tail_pool": 3, "tail_source": "both", "tail_mask": TAIL}
    by_index = candidate_pool(model, data, users, 2, **kw)
    by_history = candidate_pool(model, data, users, 2, history=data.matrix[users], **kw)
    np.testing.assert_array_equal(by_history[0], by_index[0])
    np.testing.assert_allclose(by_history[1], by_index[1], rtol=1e-6)


def test_default_tail_mask_is_the_last_bucket(data: InteractionData, pop: Popularity) -> None:
    from ltrec.config import get_settings
    from ltrec.definitions import tail_mask

    q = np.array([data.user_index["q"]])
    default = candidate_pool(pop, data, q, 2, tail_pool=3)
    explicit = candidate_pool(
        pop, data, q, 2, tail_pool=3, tail_mask=tail_mask(data.item_pop, get_settings().bucket_cuts)
    )
    np.testing.assert_array_equal(default[0], explicit[0])


def test_bad_arguments_are_clear_errors(data: InteractionData, pop: Popularity) -> None:
    q = np.array([data.user_index["q"]])
    with pytest.raises(ModelError, match="positive"):
        candidate_pool(pop, data, q, 0)
    with pytest.raises(ConfigError, match="tail_pool"):
        candidate_pool(pop, data, q, 2, tail_pool=1001)
    with pytest.raises(ConfigError, match="tail_source"):
        candidate_pool(pop, data, q, 2, tail_pool=2, tail_source="magic")  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match="tail_mask"):
        candidate_pool(pop, data, q, 2, tail_pool=2, tail_mask=TAIL[:3])
    with pytest.raises(BadInputError, match="history"):
        candidate_pool(pop, data, q, 2, tail_pool=2, history=sp.csr_matrix((2, data.n_items)))
    bare = shop(text=False)
    with pytest.raises(ModelError, match="text vectors"):
        candidate_pool(Popularity().fit(bare), bare, q, 2, tail_pool=2, tail_source="text")
    # "both" without text falls back to co-occurrence alone.
    both = candidate_pool(Popularity().fit(bare), bare, q, 2, tail_pool=3, tail_mask=TAIL)
    assert both[0][0].tolist() == ix(bare, *EXPECTED["cooccurrence"][0])


def test_pool_tail_recall_counts_tail_test_items_in_the_pool() -> None:
    tail = np.array([False, True, True, True])
    pools = np.array([[0, 1, -1], [2, 0, 3], [0, 1, 2]])
    test = [np.array([1, 2]), np.array([0]), np.array([3, 2, 0])]
    # user 0: tail tests {1, 2}, pool has 1: 1/2; user 1: no tail test item (NaN);
    # user 2: tail tests {3, 2}, pool has 2: 1/2.
    per_user = pool_tail_recall(pools, test, tail, per_user=True)
    np.testing.assert_allclose(per_user, [0.5, np.nan, 0.5])
    assert pool_tail_recall(pools, test, tail) == 0.5
    assert math.isnan(pool_tail_recall(pools[1:2], test[1:2], tail))


# ---------------------------------------------------------------------------- properties


@st.composite
def random_shops(draw: st.DrawFn) -> tuple[InteractionData, np.ndarray, int, int, str]:
    n_users = draw(st.integers(2, 12))
    n_items = draw(st.integers(3, 14))
    cells = draw(
        st.sets(
            st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)),
            min_size=1,
            max_size=n_users * n_items,
        )
    )
    kinds = draw(
        st.lists(st.sampled_from(["view", "cart", "purchase"]), min_size=len(cells),
                 max_size=len(cells))
    )  # fmt: skip
    events = pd.DataFrame(
        [(f"u{u}", f"i{i:02d}", k) for (u, i), k in zip(sorted(cells), kinds, strict=True)],
        columns=["user_id", "item_id", "event_type"],
    )
    events["ts"] = pd.Timestamp("2024-01-01")
    items = pd.DataFrame(
        {
            "item_id": [f"i{i:02d}" for i in range(n_items)],
            "title": [draw(st.sampled_from(["red mug", "blue mug", "tea pot", "shoe"]))
                      for _ in range(n_items)],
        }
    )  # fmt: skip
    data = InteractionData.from_frame(
        events, items, text_encoder=("fixture-hash-bow", fixture_text_encoder)
    )
    tail = np.array(draw(st.lists(st.booleans(), min_size=n_items, max_size=n_items)))
    m = draw(st.integers(1, n_items + 2))
    tail_pool = draw(st.integers(0, n_items + 2))
    source = draw(st.sampled_from(["cooccurrence", "text", "both"]))
    return data, tail, m, tail_pool, source


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_shops())
def test_pool_properties(case: tuple[InteractionData, np.ndarray, int, int, str]) -> None:
    data, tail, m, tail_pool, source = case
    model = ItemKNN(neighbours=5, shrinkage=1.0).fit(data)
    users = np.array([*range(data.n_users), -1])
    items, scores = candidate_pool(
        model, data, users, m, tail_pool=tail_pool, tail_source=source, tail_mask=tail
    )
    base, _ = model.recommend(users, m)
    assert items.shape == scores.shape == (len(users), m + tail_pool)
    for r, u in enumerate(users):
        valid = items[r][items[r] >= 0]
        assert len(valid) == len(set(valid.tolist())), "no duplicates"
        assert (items[r][len(valid) :] == -1).all() and np.isneginf(scores[r][len(valid) :]).all()
        assert np.all(np.diff(scores[r][: len(valid)]) <= 0), "best first"
        seen = set(data.matrix[u].indices.tolist()) if u >= 0 else set()
        assert not seen & set(valid.tolist()), "never a seen item"
        own = set(base[r][base[r] >= 0].tolist())
        assert own <= set(valid.tolist()), "the model's top m stay in the pool"
        added = set(valid.tolist()) - own
        assert len(added) <= tail_pool and all(tail[i] for i in added)
        if u < 0 or not seen:
            assert not added, "no history, no tail candidates"
        if added and len(own) == m:
            # Calibrated on the scores of the tail items just outside the model's top m.
            pos = {int(i): j for j, i in enumerate(items[r])}
            top_min = min(scores[r][pos[i]] for i in own)
            assert max(scores[r][pos[i]] for i in added) <= top_min
    # A pool with tail candidates holds at least the model's top m's share of the tail.
    test = [np.flatnonzero(tail)[:2] for _ in users]
    with_tail = pool_tail_recall(items, test, tail, per_user=True)
    alone = pool_tail_recall(base, test, tail, per_user=True)
    ok = ~np.isnan(alone)
    assert (with_tail[ok] >= alone[ok]).all()
