"""Scoring from an arbitrary history (interface contract A): exact answers beyond the mixin.

The conformance mixin checks every model's ``score_history`` against ``score`` for training
rows; here: the repeat blend, a live change worked out by hand, ALS against ``implicit``'s own
``recalculate_user``, the Keras models' recent-history rule, and invariants under Hypothesis.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrec.errors import ModelError
from ltrec.models.als import ALS
from ltrec.models.ease import EASE
from ltrec.models.itemknn import ItemKNN
from ltrec.models.popularity import Popularity
from tests.models.conformance import conformance_data

DATA = conformance_data()
WARM = np.flatnonzero(np.diff(DATA.matrix.indptr) > 0)


def ix(*ids: str) -> list[int]:
    return [DATA.item_index[i] for i in ids]


@pytest.fixture(scope="module")
def knn() -> ItemKNN:
    return ItemKNN(neighbours=5, shrinkage=1.0, binary=False).fit(DATA)


@pytest.fixture(scope="module")
def ease() -> EASE:
    return EASE(lambda_=1.0).fit(DATA)


@pytest.mark.parametrize(
    "model",
    [
        ItemKNN(neighbours=5, shrinkage=1.0, repeat_weight=0.3, popularity_weight=0.5),
        EASE(lambda_=1.0, repeat_weight=0.2, popularity_weight=0.6),
    ],
    ids=["itemknn", "ease"],
)
def test_repeat_blend_follows_the_history(model) -> None:  # noqa: ANN001
    """With the repeat blend on, a training row still scores exactly as ``score`` (the history
    is the blend's frequency input; popularity is decayed by time, globally)."""
    model.fit(DATA)
    assert model.repeat_weight_ > 0 and model.blend_pop_ is not None
    want = model.score(WARM)
    np.testing.assert_allclose(model.score_history(DATA.matrix[WARM]), want, rtol=1e-6, atol=1e-6)
    # uT buys a0 (seen) again: the binary model part is unchanged, so unseen items keep their
    # scores; a0's frequency becomes the user's largest, which scales a1 and a2 down.
    u = DATA.user_index["uT"]
    row = DATA.matrix[u].toarray()[0]
    more = row.copy()
    more[ix("a0")] = row[ix("a0")] + 10.0
    diff = model.score_history(more) - model.score_history(row)
    seen = ix("a0", "a1", "a2")
    assert np.flatnonzero(np.abs(diff) > 1e-6).tolist() == seen
    assert diff[seen[0]] > 0 and (diff[seen[1:]] < 0).all()


def test_a_live_event_adds_its_similarity_row(knn: ItemKNN) -> None:
    """score(h + 3 e_b0) - score(h) = 3 S[b0, :], exactly (weighted item-kNN)."""
    u = DATA.user_index["uT"]
    row = DATA.matrix[u].toarray()[0]
    cart = row.copy()
    cart[ix("b0")] += 3.0  # a cart event on b0
    diff = knn.score_history(cart) - knn.score_history(row)
    np.testing.assert_allclose(diff, 3.0 * knn.sim_[ix("b0")[0]].toarray()[0], atol=1e-6)
    items, _ = knn.recommend_history(cart, DATA.n_items)
    assert ix("b0")[0] not in items.tolist(), "the new event's item is now seen"


def test_exclude_seen_none_is_the_data_rule(knn: ItemKNN) -> None:
    rows = DATA.matrix[WARM]
    a = knn.recommend_history(rows, 5, exclude_seen=None)
    b = knn.recommend_history(rows, 5, exclude_seen=not DATA.repeat_domain)
    np.testing.assert_array_equal(a[0], b[0])


def test_repeat_domain_keeps_seen_items_in_both_paths() -> None:
    """On repeat-purchase data ``recommend`` keeps seen items by default, and so does
    ``recommend_history``: the live and the training path give the same lists."""
    model = ItemKNN(neighbours=5, shrinkage=1.0, repeat_weight=0.0, popularity_weight=0.0)
    model.fit(DATA)
    model.repeat_ = True  # what fit sets on repeat-purchase data (data.repeat_domain)
    want = model.recommend(WARM, DATA.n_items)
    got = model.recommend_history(DATA.matrix[WARM], DATA.n_items)
    np.testing.assert_array_equal(got[0], want[0])
    assert (got[0] >= 0).all(), "nothing excluded: every item listed"


def test_popularity_ignores_the_history() -> None:
    model = Popularity().fit(DATA)
    s = model.score_history(DATA.matrix[WARM])
    np.testing.assert_array_equal(s, np.broadcast_to(model.score(-1), s.shape))
    assert Popularity.live_history


def test_als_solves_like_implicit() -> None:
    """The history factor is implicit's ``recalculate_user`` (same closed form)."""
    from implicit.cpu.als import AlternatingLeastSquares

    model = ALS(factors=4, iterations=10, regularization=0.01, alpha=5.0, seed=3).fit(DATA)
    ref = AlternatingLeastSquares(factors=4, regularization=0.01, alpha=5.0)
    ref.user_factors = model.user_factors_.copy()
    ref.item_factors = model.item_factors_.copy()
    rows = DATA.matrix[WARM].astype(np.float32)
    want = ref.recalculate_user(WARM, rows)
    np.testing.assert_allclose(model.history_factors(rows), want, atol=1e-4)
    np.testing.assert_allclose(
        model.score_history(rows), want @ model.item_factors_.T, rtol=1e-4, atol=1e-4
    )


def test_bad_history_inputs(knn: ItemKNN) -> None:
    with pytest.raises(ModelError, match="finite"):
        knn.score_history(np.full((1, DATA.n_items), np.nan))
    with pytest.raises(ModelError, match="numeric"):
        knn.score_history(np.array([["x"] * DATA.n_items]))
    with pytest.raises(ModelError, match="positive integer"):
        knn.recommend_history(DATA.matrix[WARM], 0)
    with pytest.raises(ModelError, match="out of range"):
        knn.recommend_history(DATA.matrix[WARM], 3, candidates=[DATA.n_items])
    with pytest.raises(ModelError, match="not trained"):
        ItemKNN().score_history(DATA.matrix[WARM])


weights = st.lists(st.sampled_from([0.0, 0.0, 0.0, 1.0, 3.0, 5.0, 6.0]), min_size=10, max_size=10)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(weights, min_size=1, max_size=4), k=st.integers(1, 12))
def test_history_scores_are_the_linear_models(knn: ItemKNN, ease: EASE, rows, k) -> None:  # noqa: ANN001
    """Any history: item-kNN scores h @ S and EASE binary(h) @ B exactly; the lists hold every
    unseen item once, best first, then -1 / -inf padding."""
    h = np.asarray(rows, np.float32)
    warm = (h > 0).any(axis=1)  # an empty row is scored by the fallback (the mixin checks it)
    np.testing.assert_allclose(
        knn.score_history(sp.csr_matrix(h))[warm],
        (h @ knn.sim_.toarray())[warm],
        rtol=1e-5,
        atol=1e-5,
    )
    active = ease.active_
    got = ease.score_history(h)[:, active]
    want = (h[:, active] > 0).astype(np.float32) @ ease.b_
    np.testing.assert_allclose(got[warm], want[warm], rtol=1e-5, atol=1e-5)
    items, scores = knn.recommend_history(h, k)
    for r in range(len(h)):
        unseen = np.flatnonzero(h[r] == 0)
        n_valid = min(k, len(unseen))
        assert set(items[r, :n_valid].tolist()) <= set(unseen.tolist())
        assert len(set(items[r, :n_valid].tolist())) == n_valid
        assert (items[r, n_valid:] == -1).all() and np.isneginf(scores[r, n_valid:]).all()
        assert np.all(np.diff(scores[r, :n_valid]) <= 0)


def test_recent_history_rule_of_the_keras_models() -> None:
    """New events first (by weight, then index), then the training recency list where still
    present, then the rest; an unchanged row gives the training list exactly."""
    from ltrec.models.keras_util import FeatureTables, history_inputs

    n_items = 6
    # User 0's training items 1, 2, 4, 5 (most recent first: 4, 1, 5 with a window of 3).
    seen = sp.csr_matrix(np.array([[0, 1, 3, 0, 5, 1]], np.float32))
    tables = FeatureTables(
        item_category=np.zeros(n_items, np.int32),
        item_brand=np.zeros(n_items, np.int32),
        item_band=np.zeros(n_items, np.int32),
        item_text=np.eye(n_items, dtype=np.float32),
        user_history=np.array([[5, 2, 6, 0]], np.int32),  # item + 1: items 4, 1, 5
        user_segments=np.array([[3]], np.int32),
        segment_sizes=np.array([4], np.int64),
        n_categories=1,
        n_brands=1,
        n_bands=1,
    )
    same = history_inputs(tables, seen, seen, np.array([0]))
    assert same[0].tolist() == [1] and same[3].tolist() == [[3]]
    assert same[1].tolist() == [[5, 2, 6, 3]]  # the list, then item 2 (not in the window)
    # The history text input is the mean text vector of those items.
    np.testing.assert_allclose(same[2][0], tables.item_text[[4, 1, 5, 2]].mean(axis=0))
    # A cart on item 0 (new) and a purchase of item 5 (weight grew): both first, by weight.
    live = sp.csr_matrix(np.array([[3, 1, 3, 0, 5, 6]], np.float32))
    got = history_inputs(tables, seen, live, np.array([0]))
    assert got[1].tolist() == [[6, 1, 5, 2]]  # items 5 (+5), 0 (+3), then 4, 1
    # Anonymous: id 0, segments 0, by weight then index.
    anon = history_inputs(tables, seen, live, np.array([-1]))
    assert anon[0].tolist() == [0] and anon[3].tolist() == [[0]]
    assert anon[1].tolist() == [[6, 5, 1, 3]]  # weights 6, 5, 3 (items 0 < 2), 3
