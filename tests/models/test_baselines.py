"""Item-kNN, EASE and ALS: the conformance suite plus model-specific answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ltrec.errors import ModelError
from ltrec.models.als import ALS
from ltrec.models.ease import EASE, max_items
from ltrec.models.itemknn import ItemKNN
from tests.models.conformance import RecommenderConformance, conformance_data


class TestItemKNN(RecommenderConformance):
    def make_model(self) -> ItemKNN:
        return ItemKNN(neighbours=5, shrinkage=1.0)


class TestEASE(RecommenderConformance):
    def make_model(self) -> EASE:
        return EASE(lambda_=1.0)


class TestALS(RecommenderConformance):
    # score_history re-solves the user factor exactly; the fit's factor came from a few CG
    # steps against the previous sweep's item factors (measured max 0.05 of the scale here).
    history_tol = 0.1

    def make_model(self) -> ALS:
        return ALS(factors=4, iterations=10, regularization=0.01, alpha=5.0, seed=3)


def test_itemknn_matches_dense_shrunk_cosine() -> None:
    data = conformance_data()
    h = 2.0
    model = ItemKNN(neighbours=1000, shrinkage=h, binary=False).fit(data)
    x = data.matrix.toarray().astype(np.float64)
    dot = x.T @ x
    norms = np.sqrt(np.diag(dot))
    sim = dot / (np.outer(norms, norms) + h)
    np.fill_diagonal(sim, 0.0)
    np.testing.assert_allclose(model.sim_.toarray(), sim, rtol=1e-5, atol=1e-6)
    warm = np.flatnonzero(np.diff(data.matrix.indptr) > 0)  # the others get the fallback
    np.testing.assert_allclose(
        model.score(warm), (x @ sim)[warm].astype(np.float32), rtol=1e-5, atol=1e-5
    )


def test_itemknn_prunes_to_top_neighbours() -> None:
    data = conformance_data()
    model = ItemKNN(neighbours=2, shrinkage=0.0).fit(data)
    assert (np.diff(model.sim_.tocsc().indptr) <= 2).all()
    full = ItemKNN(neighbours=1000, shrinkage=0.0).fit(data).sim_.toarray()
    pruned = model.sim_.toarray()
    for i in range(data.n_items):
        kept = np.flatnonzero(pruned[:, i])
        if len(kept):  # the kept neighbours are the most similar ones
            assert full[kept, i].min() >= np.sort(full[:, i])[-2] - 1e-6


def test_ease_matches_the_closed_form() -> None:
    data = conformance_data()
    lam = 3.0
    model = EASE(lambda_=lam, precision="float64").fit(data)
    x = (data.matrix.toarray() > 0).astype(np.float64)
    active = np.flatnonzero(x.sum(axis=0) > 0)
    xa = x[:, active]
    p = np.linalg.inv(xa.T @ xa + lam * np.eye(len(active)))
    b = np.eye(len(active)) - p / np.diag(p)
    np.testing.assert_allclose(model.b_, b, rtol=1e-4, atol=1e-5)
    assert np.allclose(np.diag(model.b_), 0.0)
    single = EASE(lambda_=lam, precision="float32").fit(data)
    np.testing.assert_allclose(single.b_, b, rtol=1e-3, atol=1e-4)


def test_ease_max_items_fits_the_most_popular_and_ranks_the_rest_by_popularity() -> None:
    data = conformance_data()
    lam = 3.0
    model = EASE(lambda_=lam, max_items=4, precision="float64").fit(data)
    # Distinct users: b0 10, b1 9, b2 8, b3 7, a0 6, ... so the four b items are fitted.
    assert data.item_ids[model.active_].tolist() == ["b0", "b1", "b2", "b3"]
    x = (data.matrix.toarray() > 0).astype(np.float64)
    xa = x[:, model.active_]
    p = np.linalg.inv(xa.T @ xa + lam * np.eye(4))
    np.testing.assert_allclose(model.b_, np.eye(4) - p / np.diag(p), rtol=1e-4, atol=1e-5)
    u = int(data.users_to_index(["uT"])[0])
    s = model.score(u)
    rest = np.setdiff1d(np.arange(data.n_items), model.active_)
    assert np.isfinite(s).all() and s[rest].max() < s[model.active_].min()
    # Unfitted items keep the popularity order among themselves.
    order = rest[np.argsort(-s[rest], kind="stable")]
    assert order.tolist() == rest[np.lexsort((rest, -model.pop_[rest]))].tolist()


def test_ease_refuses_beyond_memory_budget() -> None:
    n = max_items(0.01, "float32") + 1
    rows = np.arange(n) % 7
    m = sp.csr_matrix((np.ones(n, np.float32), (rows, np.arange(n))), shape=(7, n))
    import pandas as pd

    from ltrec.models.data import InteractionData

    ev = pd.DataFrame(
        {
            "user_id": [f"u{r}" for r in rows],
            "item_id": [f"i{c:06d}" for c in range(n)],
            "event_type": "view",
            "ts": pd.Timestamp("2024-01-01"),
        }
    )
    data = InteractionData.from_frame(ev)
    assert data.matrix.nnz == m.nnz
    with pytest.raises(ModelError, match=rf"{n:,} items in a 0.01 GB memory budget") as err:
        EASE(max_memory_gb=0.01).fit(data)
    assert "max_memory_gb" in str(err.value)


def test_als_is_reproducible_and_seed_sensitive() -> None:
    data = conformance_data()
    a = ALS(factors=4, iterations=3, seed=1).fit(data)
    b = ALS(factors=4, iterations=3, seed=1).fit(data)
    c = ALS(factors=4, iterations=3, seed=2).fit(data)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.allclose(a.item_factors_, c.item_factors_)
