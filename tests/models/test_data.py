"""InteractionData: vocabularies, weights, timestamps, features, fingerprint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltrec.errors import BadInputError
from ltrec.models.data import InteractionData
from tests.models.conformance import conformance_data, conformance_frames


def test_vocabularies_cover_catalogue_and_users() -> None:
    data = conformance_data()
    events, items, users = conformance_frames()
    assert data.item_ids.tolist() == sorted(items["item_id"])
    assert data.user_ids.tolist() == sorted(users["user_id"])
    assert data.users_to_index(["uT", "nobody"]).tolist() == [data.user_index["uT"], -1]
    # Cold items exist with zero popularity; the user without events has an empty row.
    c0 = data.item_index["c0"]
    assert data.item_pop[c0] == 0 and data.matrix[:, c0].nnz == 0
    assert data.matrix[data.user_index["uN"]].nnz == 0


def test_weights_sum_by_event_type_and_impressions_do_not_count() -> None:
    ev = pd.DataFrame(
        {
            "user_id": ["u", "u", "u", "u", "v"],
            "item_id": ["x", "x", "x", "y", "y"],
            "event_type": ["view", "cart", "purchase", "impression", "view"],
            "ts": pd.to_datetime(
                ["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-05", "2024-01-04"]
            ),
        }
    )
    data = InteractionData.from_frame(ev)
    u, x, y = data.user_index["u"], data.item_index["x"], data.item_index["y"]
    assert data.matrix[u, x] == pytest.approx(1 + 3 + 5)
    assert data.matrix[u, y] == 0 and data.matrix.nnz == 2  # impression only: not stored
    assert data.last_ts[u, x] == pd.Timestamp("2024-01-03").timestamp()
    assert data.item_pop.tolist() == [1, 1]
    custom = InteractionData.from_frame(ev, weights={"view": 2.0, "purchase": 1.0})
    assert custom.matrix[u, x] == pytest.approx(3.0)
    with pytest.raises(BadInputError):
        InteractionData.from_frame(ev, weights={"view": -1.0})


def test_history_most_recent_first() -> None:
    ev = pd.DataFrame(
        {
            "user_id": ["u"] * 3,
            "item_id": ["x", "y", "z"],
            "event_type": ["view"] * 3,
            "ts": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-01"]),
        }
    )
    data = InteractionData.from_frame(ev)
    assert data.item_ids[data.history(0)].tolist() == ["y", "x", "z"]
    assert data.recent_items(np.array([0, -1]), 4).tolist() == [
        [data.item_index[i] for i in "yxz"] + [-1],
        [-1] * 4,
    ]


def test_item_and_user_features() -> None:
    data = conformance_data()
    a0 = data.item_index["a0"]
    assert data.category_names[data.item_category[a0]] == "kitchen"
    assert data.brand_names[data.item_brand[a0]] == "acme"
    assert set(data.item_price_band.tolist()) <= set(range(1, 6))
    assert data.item_price_band[data.item_index["b2"]] == 5  # the dearest item
    assert data.item_texts[a0].startswith("Chef knife a0. kitchen. acme. Forged steel")
    assert data.item_text_emb is not None and data.item_text_emb.shape[0] == data.n_items
    assert set(data.user_features) == {"region", "device"}
    uT = data.user_index["uT"]
    assert data.user_feature_names["region"][data.user_features["region"][uT]] == "north"


def test_fingerprint_changes_with_data_only() -> None:
    events, items, users = conformance_frames()
    a = InteractionData.from_frame(events, items, users)
    b = InteractionData.from_frame(events.sample(frac=1.0, random_state=1), items, users)
    assert a.fingerprint == b.fingerprint  # row order does not matter
    c = InteractionData.from_frame(events.iloc[1:], items, users)
    assert c.fingerprint != a.fingerprint
    with pytest.raises(BadInputError):
        a.with_text(np.zeros((3, 2)), "x")


def test_last_ts_is_unix_seconds_whatever_the_datetime_unit() -> None:
    # DuckDB hands pandas datetime64[us]; the seconds must not depend on the unit.
    ts = pd.Series(pd.to_datetime(["2025-03-01 10:00:00"])).astype("datetime64[us]")
    ev = pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "event_type": ["view"], "ts": ts})
    data = InteractionData.from_frame(
        ev, pd.DataFrame({"item_id": ["i1"]}), pd.DataFrame({"user_id": ["u1"]})
    )
    assert data.last_ts.data[0] == pd.Timestamp("2025-03-01 10:00:00").timestamp()
