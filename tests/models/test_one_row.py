"""The one-user path of Recommender.recommend (seen items masked from the user's row without a
CSR block) gives exactly the rows of the batch path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltrec.models.base import make_model
from ltrec.models.data import InteractionData


def _data() -> InteractionData:
    rng = np.random.default_rng(5)
    n = 3000
    ev = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 120, n)],
            "item_id": [f"i{i}" for i in rng.zipf(1.6, n) % 300],
            "event_type": rng.choice(["view", "cart", "purchase"], n),
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 9e6, n), "s"),
        }
    )
    return InteractionData.from_frame(ev)


# (ALS and EASE are left out: their one-user scoring (GEMV, gathered rows) and the batch
# product differ in float32 rounding, a known difference outside this path.)
@pytest.mark.parametrize("name", ["popularity", "itemknn"])
@pytest.mark.parametrize("exclude_seen", [None, True, False])
def test_one_user_equals_its_batch_row(name: str, exclude_seen: bool | None) -> None:
    data = _data()
    model = make_model(name, {}).fit(data)
    users = np.arange(-1, data.n_users)  # -1: a user unknown to training
    items, scores = model.recommend(users, 15, exclude_seen=exclude_seen)
    for r, u in enumerate(users.tolist()):
        one_i, one_s = model.recommend(u, 15, exclude_seen=exclude_seen)
        assert np.array_equal(one_i, items[r])
        assert np.array_equal(one_s, scores[r])
        arr_i, _ = model.recommend(np.array([u]), 15, exclude_seen=exclude_seen)
        assert np.array_equal(arr_i[0], items[r])
    if exclude_seen is not False:  # the data is not a repeat domain: seen items never listed
        seen = data.matrix
        for r, u in enumerate(users.tolist()[1:], 1):
            row = set(seen.indices[seen.indptr[u] : seen.indptr[u + 1]].tolist())
            assert not row & set(items[r].tolist())
