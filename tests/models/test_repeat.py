"""Repeat consumption: the own-frequency and popularity terms of item-kNN, EASE and ALS.

Fixture (a tiny grocery): household ``hR`` bought ``milk`` four times and ``bread`` once;
``h0..h2`` each bought ``bread`` and ``jam``; ``h3..h7`` each bought ``milk`` once. Distinct
buyers: milk 6, bread 4, jam 3, soap 0. Every collaborative signal points hR to ``jam`` (bread's
only co-bought item); on repeat-purchase data the blend must rank hR's own frequent (and
popular) item, milk, first. The same events on a non-repeat split must give exactly the plain
model's scores, with seen items excluded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from ltrec.errors import ConfigError
from ltrec.evaluation import SplitConfig, temporal_split
from ltrec.models.als import ALS
from ltrec.models.base import Recommender
from ltrec.models.data import InteractionData
from ltrec.models.ease import EASE
from ltrec.models.itemknn import ItemKNN
from ltrec.models.popularity import Popularity
from ltrec.models.repeat import repeat_blend

PLAIN = {"repeat_weight": 0.0, "popularity_weight": 0.0}


def grocery(repeat: bool) -> InteractionData:
    """The grocery; ``repeat``: its meta marks a repeat-purchase domain (the evaluation split
    keeps seen items as targets, as :func:`~ltrec.evaluation.split.default_split` does)."""
    t0 = pd.Timestamp("2024-01-01")
    rows = [("hR", "milk", t0 + pd.Timedelta(days=d)) for d in range(4)]
    rows.append(("hR", "bread", t0))
    for n in range(3):
        rows += [(f"h{n}", "bread", t0), (f"h{n}", "jam", t0)]
    rows += [(f"h{n}", "milk", t0) for n in range(3, 8)]
    # Test-period events so the split has targets; never trained on.
    late = t0 + pd.Timedelta(days=30)
    rows += [("hR", "milk", late), ("h0", "bread", late), ("h1", "soap", late)]
    ev = pd.DataFrame(rows, columns=["user_id", "item_id", "ts"])
    ev["event_type"] = "purchase"
    split = temporal_split(ev, SplitConfig(cutoff=late.to_pydatetime(), keep_seen=repeat))
    items = pd.DataFrame({"item_id": ["bread", "jam", "milk", "soap"]})
    return InteractionData.from_split(split, items, repeat_domain=repeat)


MODELS = {
    "itemknn": lambda **kw: ItemKNN(neighbours=10, shrinkage=1.0, **kw),
    "ease": lambda **kw: EASE(lambda_=1.0, **kw),
    "als": lambda **kw: ALS(factors=2, iterations=10, regularization=0.01, seed=1, **kw),
}


def test_repeat_blend_by_hand() -> None:
    scores = np.array([[2.0, -4.0, 1.0, 0.0]], dtype=np.float32)
    seen = sp.csr_matrix(np.array([[0.0, 5.0, 15.0, 0.0]], dtype=np.float32))  # 1 and 3 buys
    out = repeat_blend(scores, seen, 0.5)
    # s / max s = [1, -2, 0.5, 0]; f = log(1 + r) / log(16) = [0, log 6 / log 16, 1, 0].
    want = [0.5, -1.0 + 0.5 * np.log(6) / np.log(16), 0.25 + 0.5, 0.0]
    np.testing.assert_allclose(out[0], want, rtol=1e-6)
    # Weight 0 is the model alone (scaled); weight 1 the user's own frequency alone.
    np.testing.assert_allclose(repeat_blend(scores, seen, 0.0)[0], [1, -2, 0.5, 0])
    np.testing.assert_allclose(
        repeat_blend(scores, seen, 1.0)[0], [0, np.log(6) / np.log(16), 1, 0], rtol=1e-6
    )
    # The popularity term: g * pop / max pop; the model keeps 1 - w - g.
    both = repeat_blend(scores, seen, 0.5, np.array([0.0, 1.0, 2.0, 4.0]), 0.25)
    lg = np.log(6) / np.log(16)
    want = [0.25 * 1, 0.25 * -2 + 0.5 * lg + 0.25 * 0.25, 0.25 * 0.5 + 0.5 + 0.25 * 0.5, 0.25]
    np.testing.assert_allclose(both[0], want, rtol=1e-6)
    # A user whose scores are all <= 0 is scaled by max |s| instead.
    neg = repeat_blend(np.array([[-1.0, -4.0]]), sp.csr_matrix((1, 2)), 0.5)
    np.testing.assert_allclose(neg[0], [-0.125, -0.5])


def test_itemknn_blend_by_hand_on_the_grocery() -> None:
    data = grocery(repeat=True)
    model = ItemKNN(neighbours=10, shrinkage=1.0).fit(data)
    assert (model.repeat_weight_, model.popularity_weight_) == (0.3, 0.6)
    hr = int(data.users_to_index(["hR"])[0])
    # Binary cosine with shrinkage 1: norms bread 2, jam sqrt 3, milk sqrt 6.
    bread_jam = 3 / (2 * np.sqrt(3) + 1)
    bread_milk = 1 / (2 * np.sqrt(6) + 1)
    s = np.array([bread_milk, bread_jam, bread_milk, 0.0])  # bread, jam, milk, soap
    np.testing.assert_allclose(model._score(np.array([hr]), None)[0], s, rtol=1e-5)
    own = np.log1p([5.0, 0.0, 20.0, 0.0]) / np.log1p(20.0)  # bread once, milk 4 times
    # Distinct buyers, each counted 2 ** -(age / 60 days) from the last training day (day 3):
    # hR's last milk is on day 3, every other purchase on day 0.
    d = 2.0 ** (-3 / 60)
    pop = np.array([4 * d, 3 * d, 1 + 5 * d, 0.0])
    want = 0.1 * s / s.max() + 0.3 * own + 0.6 * pop / pop.max()
    np.testing.assert_allclose(model.score(hr), want, rtol=1e-5)
    assert model.recommend(hr, 4)[0].tolist() == [2, 0, 1, 3]  # milk, bread, jam, soap


@pytest.mark.parametrize("name", sorted(MODELS))
def test_repeat_term_ranks_own_frequent_item_first(name: str) -> None:
    data = grocery(repeat=True)
    assert data.repeat_domain
    hr, milk, jam = data.users_to_index(["hR"])[0], *data.items_to_index(["milk", "jam"])
    model = MODELS[name]().fit(data)
    assert model.repeat_ and model.repeat_weight_ == type(model).repeat_default > 0
    items, _ = model.recommend(int(hr), 2)  # repeat domain: seen items stay in the lists
    assert items[0] == milk
    if name != "als":  # item-item models: bread's neighbour jam beats milk without the terms
        plain = MODELS[name](**PLAIN).fit(data)
        assert plain.recommend(int(hr), 1)[0][0] == jam
    # The user's own frequency alone ranks by purchases: milk (4) before bread (1).
    own = MODELS[name](repeat_weight=1.0, popularity_weight=0.0).fit(data)
    assert own.recommend(int(hr), 2)[0].tolist() == [milk, data.items_to_index(["bread"])[0]]
    # A candidate subset scores exactly as those columns of the full row.
    cols = np.array([jam, milk])
    np.testing.assert_allclose(model.score(int(hr), cols), model.score(int(hr))[cols])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_non_repeat_data_is_unchanged(name: str) -> None:
    data = grocery(repeat=False)
    assert not data.repeat_domain
    model = MODELS[name]().fit(data)
    assert model.repeat_weight_ == model.popularity_weight_ == 0.0
    warm = np.flatnonzero(model.has_history(np.arange(data.n_users)))
    np.testing.assert_array_equal(model.score(warm), model._score(warm, None))
    # And seen items are excluded by default there, so milk cannot come back to hR.
    hr, milk = data.users_to_index(["hR"])[0], data.items_to_index(["milk"])[0]
    assert milk not in model.recommend(int(hr), 4)[0]


def test_explicit_weight_applies_anywhere_and_round_trips(tmp_path) -> None:  # noqa: ANN001
    data = grocery(repeat=False)
    model = ItemKNN(neighbours=10, shrinkage=1.0, repeat_weight=1.0).fit(data)
    assert model.popularity_weight_ == 0.0  # left at None: 0 on non-repeat data
    hr, milk = data.users_to_index(["hR"])[0], data.items_to_index(["milk"])[0]
    assert model.score(int(hr)).argmax() == milk  # own frequency alone
    model.save(tmp_path)
    again = type(model).load(tmp_path)
    np.testing.assert_array_equal(again.score(int(hr)), model.score(int(hr)))
    with pytest.raises(ConfigError, match="repeat_weight"):
        ItemKNN(repeat_weight=1.5)
    with pytest.raises(ConfigError, match="must be <= 1"):
        EASE(repeat_weight=0.5, popularity_weight=0.6)


def test_popularity_stays_unpersonalised_on_repeat_data() -> None:
    data = grocery(repeat=True)
    model: Recommender = Popularity().fit(data)
    assert model.repeat_weight_ == model.popularity_weight_ == 0.0
    s = model.score(np.arange(data.n_users))
    assert (s == s[0]).all()


# ---------------------------------------------------------------------------- time decay
#
# The grocery's training events by day: hR milk on days 0, 1, 2, 3 and bread on day 0; every
# other household's events on day 0. With a half-life of one day a purchase d days before the
# reference counts 2**-d (times its weight 5).

DECAYED = {"repeat_half_life_days": 1.0, "popularity_half_life_days": 1.0}


def test_decayed_frequency_by_hand() -> None:
    data = grocery(repeat=True)
    hr, h0 = data.users_to_index(["hR", "h0"])
    bread, jam, milk, soap = data.items_to_index(["bread", "jam", "milk", "soap"])
    user = data.decayed_matrix(1.0, "user")
    # Same sparsity as the summed weights (the blend reads its non-zeros as "seen").
    np.testing.assert_array_equal(user.indptr, data.matrix.indptr)
    np.testing.assert_array_equal(user.indices, data.matrix.indices)
    # hR's ages from its own last event (day 3): milk 3, 2, 1, 0 days; bread 3 days.
    assert user[hr, milk] == pytest.approx(5 * (1 / 8 + 1 / 4 + 1 / 2 + 1))
    assert user[hr, bread] == pytest.approx(5 / 8)
    # h0's last event is its own day 0: nothing is old for it.
    assert user[h0, bread] == pytest.approx(5.0) and user[h0, jam] == pytest.approx(5.0)
    # From the data's last event (day 3) h0's day-0 purchases are 3 days old.
    glob = data.decayed_matrix(1.0, "global")
    assert glob[h0, bread] == pytest.approx(5 / 8) and glob[hr, milk] == user[hr, milk]
    # A half-life far longer than the data is no decay at all.
    np.testing.assert_allclose(data.decayed_matrix(1e6).data, data.matrix.data, rtol=1e-5)
    # Distinct buyers, each counted 2**-(days since their last purchase of the item, to day 3):
    # milk hR day 3 (1) + h3..h7 day 0 (5/8); bread hR and h0..h2 all day 0 (4/8); jam 3/8.
    pop = data.decayed_popularity(1.0)
    np.testing.assert_allclose(pop[[bread, jam, milk, soap]], [0.5, 0.375, 1.625, 0.0])
    np.testing.assert_allclose(data.decayed_popularity(1e6), data.item_pop, rtol=1e-5)


def test_decay_without_per_event_times_uses_the_pairs_last_time() -> None:
    from dataclasses import replace

    full = grocery(repeat=True)
    # Stale per-event arrays (weights no longer summing to the matrix's) are not used either.
    stale = replace(full, event_weight=full.event_weight * 2)
    np.testing.assert_array_equal(
        stale.decayed_matrix(1.0).data,
        replace(full, event_pair=None, event_ts=None, event_weight=None).decayed_matrix(1.0).data,
    )
    data = replace(full, event_pair=None, event_ts=None, event_weight=None)
    hr, h0 = data.users_to_index(["hR", "h0"])
    bread, milk = data.items_to_index(["bread", "milk"])
    m = data.decayed_matrix(1.0, "user")
    assert m[hr, milk] == pytest.approx(20.0)  # all four purchases as if on day 3
    assert m[hr, bread] == pytest.approx(5 / 8) and m[h0, bread] == pytest.approx(5.0)
    with pytest.raises(Exception, match="half-life"):
        data.decayed_matrix(0.0)


def test_blend_with_decay_by_hand_and_round_trip(tmp_path) -> None:  # noqa: ANN001
    data = grocery(repeat=True)
    hr = int(data.users_to_index(["hR"])[0])
    model = ItemKNN(neighbours=10, shrinkage=1.0, **DECAYED).fit(data)
    s = model._score(np.array([hr]), None)[0]  # bread, jam, milk, soap
    r = np.array([5 / 8, 0.0, 5 * 1.875, 0.0])  # hR's decayed purchases (see above)
    own = np.log1p(r) / np.log1p(r.max())
    pop = np.array([0.5, 0.375, 1.625, 0.0])
    want = 0.1 * s / s.max() + 0.3 * own + 0.6 * pop / pop.max()
    np.testing.assert_allclose(model.score(hr), want, rtol=1e-5)
    model.save(tmp_path)
    again = ItemKNN.load(tmp_path)
    np.testing.assert_array_equal(again.score(hr), model.score(hr))
    # Without decay the frequency and popularity terms are the undecayed ones.
    plain = ItemKNN(
        neighbours=10, shrinkage=1.0, repeat_half_life_days=None, popularity_half_life_days=None
    ).fit(data)
    assert plain.freq_ is None and plain.blend_pop_ is None
    with pytest.raises(ConfigError, match="repeat_half_life_days"):
        ItemKNN(repeat_half_life_days=0.0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_decay_is_not_computed_where_nothing_blends(name: str) -> None:
    """Non-repeat data (the demo shop): w = g = 0, so the half-lives change nothing."""
    data = grocery(repeat=False)
    model = MODELS[name](**DECAYED).fit(data)
    assert model.freq_ is None and model.blend_pop_ is None
    warm = np.flatnonzero(model.has_history(np.arange(data.n_users)))
    np.testing.assert_array_equal(model.score(warm), model._score(warm, None))
