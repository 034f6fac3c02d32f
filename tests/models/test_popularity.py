"""Popularity baseline: the conformance suite plus its own exact answers."""

from __future__ import annotations

import numpy as np

from ltrec.models.popularity import Popularity
from tests.models.conformance import POPULARITY_ORDER, RecommenderConformance, conformance_data


class TestPopularity(RecommenderConformance):
    personalised = False

    def make_model(self) -> Popularity:
        return Popularity()


def test_by_weight_orders_by_summed_event_weight() -> None:
    data = conformance_data()
    model = Popularity(by="weight").fit(data)
    expected = np.lexsort((np.arange(data.n_items), -data.item_weight))
    items, _ = model.recommend(-1, data.n_items)
    assert items.tolist() == expected.tolist()
    assert items.tolist() != data.items_to_index(POPULARITY_ORDER).tolist()
