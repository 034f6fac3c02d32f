"""RP3beta: the conformance suite, a hand-computed walk, and the dense formula."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from ltrec.errors import ConfigError
from ltrec.models.base import get_model_class, make_model
from ltrec.models.data import InteractionData
from ltrec.models.rp3beta import RP3beta, prune_rows
from tests.models.conformance import RecommenderConformance, conformance_data


class TestRP3beta(RecommenderConformance):
    def make_model(self) -> RP3beta:
        return RP3beta(alpha=1.0, beta=0.5, neighbours=5)


def walk_data() -> InteractionData:
    """Items h, p, q. u0: h p q; u1: p; u2: p; u3: h p; t: h (every event a view)."""
    pairs = [
        ("u0", "h"), ("u0", "p"), ("u0", "q"), ("u1", "p"), ("u2", "p"),
        ("u3", "h"), ("u3", "p"), ("t", "h"),
    ]  # fmt: skip
    events = pd.DataFrame(pairs, columns=["user_id", "item_id"]).assign(
        event_type="view", ts=pd.Timestamp("2024-01-01")
    )
    return InteractionData.from_frame(events)


def test_hand_computed_walk_and_the_popularity_penalty() -> None:
    # Degrees: users u0 3, u1 1, u2 1, u3 2, t 1; items h 3, p 4, q 1.
    # Walk from h: to a user (u0, u3, t: 1/3 each), then to an item of that user:
    #   (h->p) = 1/3 * 1/3 (via u0) + 1/3 * 1/2 (via u3) = 5/18
    #   (h->q) = 1/3 * 1/3 (via u0)                      = 2/18
    # beta = 0 (P3alpha): p before q. beta = 1: p 5/18 / 4 = 5/72, q 2/18 / 1 = 8/72: q first.
    data = walk_data()
    t = data.user_index["t"]
    h, p, q = (data.item_index[i] for i in ("h", "p", "q"))
    plain = RP3beta(alpha=1.0, beta=0.0).fit(data)
    items, scores = plain.recommend(t, 2)
    assert items.tolist() == [p, q]
    np.testing.assert_allclose(scores, [5 / 18, 2 / 18], rtol=1e-6)
    penalised = RP3beta(alpha=1.0, beta=1.0).fit(data)
    items, scores = penalised.recommend(t, 2)
    assert items.tolist() == [q, p]
    np.testing.assert_allclose(scores, [8 / 72, 5 / 72], rtol=1e-6)
    # The zero diagonal: h is never its own neighbour.
    assert penalised.sim_[h, h] == 0.0


def dense_rp3beta(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """The formula of the module docstring, dense and unpruned."""
    x = (x > 0).astype(np.float64)
    du, di = x.sum(axis=1, keepdims=True), x.sum(axis=0, keepdims=True)
    p_ui = np.divide(x, du, out=np.zeros_like(x), where=du > 0) ** alpha
    p_iu = np.divide(x.T, di.T, out=np.zeros_like(x.T), where=di.T > 0) ** alpha
    pen = np.divide(1.0, di**beta, out=np.zeros_like(di), where=di > 0)
    w = (p_iu @ p_ui) * pen
    np.fill_diagonal(w, 0.0)
    return w


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.5), (0.5, 0.8), (2.0, 0.0)])
def test_matches_the_dense_formula(alpha: float, beta: float) -> None:
    data = conformance_data()
    model = RP3beta(alpha=alpha, beta=beta, neighbours=1000).fit(data)
    w = dense_rp3beta(data.matrix.toarray(), alpha, beta)
    np.testing.assert_allclose(model.sim_.toarray(), w, rtol=1e-5, atol=1e-7)
    warm = np.flatnonzero(np.diff(data.matrix.indptr) > 0)
    x = (data.matrix.toarray() > 0).astype(np.float64)
    np.testing.assert_allclose(model.score(warm), (x @ w)[warm], rtol=1e-5, atol=1e-6)


def test_neighbours_prune_each_row_to_its_largest() -> None:
    data = conformance_data()
    full = dense_rp3beta(data.matrix.toarray(), 1.0, 0.5)
    model = RP3beta(alpha=1.0, beta=0.5, neighbours=2).fit(data)
    w = model.sim_.toarray()
    for i in range(data.n_items):
        kept = np.flatnonzero(w[i])
        assert len(kept) == min(2, np.count_nonzero(full[i]))
        if len(kept):
            assert full[i, kept].min() >= np.sort(full[i])[-2] - 1e-7


def test_prune_rows_ties_go_to_the_lower_column() -> None:
    m = sp.csr_matrix(np.array([[0.0, 0.5, 0.5, 0.5, 0.9], [0.2, 0.0, 0.0, 0.0, 0.0]]))
    out = prune_rows(m, 2).toarray()
    assert out.tolist() == [[0.0, 0.5, 0.0, 0.0, 0.9], [0.2, 0.0, 0.0, 0.0, 0.0]]


def test_registered_and_bounded() -> None:
    assert get_model_class("rp3beta") is RP3beta
    assert make_model("rp3beta", {"beta": 0.7}).config.beta == 0.7
    for bad in ({"alpha": -0.1}, {"beta": 2.5}, {"neighbours": 0}):
        with pytest.raises(ConfigError):
            make_model("rp3beta", bad)


def test_contributions_are_the_exact_shares_of_the_walk() -> None:
    # beta = 0: u3 (history h, p) scores q by W[h, q] + W[p, q]. W[h, q] = 2/18 (above);
    # W[p, q]: p -> u0, u1, u2, u3 (1/4 each) -> q only via u0 (1/3) = 1/12. Score 7/36, so
    # h holds (1/9) / (7/36) = 4/7 of it and p 3/7.
    data = walk_data()
    model = RP3beta(alpha=1.0, beta=0.0).fit(data)
    h, p, q = (data.item_index[i] for i in ("h", "p", "q"))
    history = data.matrix[data.user_index["u3"]]
    np.testing.assert_allclose(model.score_history(history, [q]), [[7 / 36]], rtol=1e-6)
    out = model.contributions(history, [q])
    assert out.method == "exact"
    (((first, share_h), (second, share_p)),) = out.rows
    assert (first, second) == (h, p)
    np.testing.assert_allclose([share_h, share_p], [4 / 7, 3 / 7], rtol=1e-6)


def test_repeat_domain_blends_the_own_frequency() -> None:
    from tests.models.test_repeat import PLAIN, grocery

    data = grocery(repeat=True)
    hr = int(data.users_to_index(["hR"])[0])
    milk, jam = data.items_to_index(["milk", "jam"])
    model = RP3beta().fit(data)
    assert (model.repeat_weight_, model.popularity_weight_) == (0.3, 0.6)
    assert model.recommend(hr, 1)[0].tolist() == [milk]  # bought 4 times: first again
    # The walk alone: hR's bread leads to jam (bought with bread by h0-h2), not to milk.
    assert RP3beta(**PLAIN).fit(data).recommend(hr, 1)[0].tolist() == [jam]
