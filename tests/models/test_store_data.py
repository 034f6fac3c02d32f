"""The store-built data (SQL split + GROUP BY matrix) equals the frame-built data.

``InteractionData.from_store`` computes the split and the matrix in DuckDB; before, it read every
event into pandas (``temporal_split(load_events(con))`` + ``from_split``). These tests hold the two
constructions equal on a hand-made fixture (known answer) and on random stores (hypothesis).
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrec.errors import BadInputError
from ltrec.evaluation.split import SplitConfig, load_events, store_split, temporal_split
from ltrec.models.data import InteractionData, load_catalogue

T0 = pd.Timestamp("2024-01-01")


def _store(events: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame) -> Any:
    """An in-memory DuckDB with the canonical tables (what a store connection sees)."""
    con = duckdb.connect()
    ev = events.assign(session_id=None, quantity=1, price=None, source=None)
    con.execute(
        "CREATE TABLE events (user_id VARCHAR, item_id VARCHAR, event_type VARCHAR, ts TIMESTAMP,"
        " session_id VARCHAR, quantity INTEGER, price DOUBLE, source VARCHAR)"
    )
    con.register("ev", ev)
    con.execute("INSERT INTO events SELECT * FROM ev")
    con.execute("CREATE TABLE items AS SELECT * FROM items")
    con.execute("CREATE TABLE users AS SELECT * FROM users")
    con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
    return con


def _hand_store() -> Any:
    day = pd.Timedelta(days=1)
    rows = [
        # user, item, type, day
        ("u1", "a", "view", 0),
        ("u1", "a", "purchase", 1),
        ("u1", "b", "impression", 1),  # impression only: in the item vocab, not in the matrix
        ("u1", "c", "cart", 2),
        ("u2", "a", "view", 2),
        ("u2", "d", "view", 3),  # d is not in the items table: an event-only item
        ("u1", "b", "view", 8),  # test: u1 -> b
        ("u1", "a", "view", 8),  # seen in training: dropped from the test
        ("u2", "c", "purchase", 9),  # test: u2 -> c
        ("u3", "a", "view", 9),  # u3 has no training event: cold
        ("u4", "a", "impression", 9),  # after the cut-off, not a target: u4 not in the vocab
        (None, "a", "view", 1),  # no user: ignored
    ]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "d"])
    events["ts"] = T0 + events.pop("d") * day
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "z"],  # z: no event at all (a cold item)
            "title": ["A", "B", "C", "Z"],
            "category": ["k1", "k1", "k2", None],
            "brand": ["x", None, "x", "y"],
            "price": [1.0, 2.0, 3.0, 4.0],
            "description": ["", "", "", ""],
        }
    )
    users = pd.DataFrame({"user_id": ["u1", "u2", "u5"], "region": ["n", "s", "n"]})
    return _store(events, items, users)


def _frame_built(con: Any, config: SplitConfig) -> InteractionData:
    """The previous construction: every event through pandas."""
    split = temporal_split(load_events(con), config)
    items, users = load_catalogue(con)
    return InteractionData.from_split(split, items, users)


def _assert_same(a: InteractionData, b: InteractionData) -> None:
    assert a.user_ids.tolist() == b.user_ids.tolist()
    assert a.item_ids.tolist() == b.item_ids.tolist()
    for m, n in ((a.matrix, b.matrix), (a.last_ts, b.last_ts)):
        assert m.shape == n.shape and m.dtype == n.dtype
        assert np.array_equal(m.indptr, n.indptr) and np.array_equal(m.indices, n.indices)
        assert np.array_equal(m.data, n.data)
    assert np.array_equal(a.item_pop, b.item_pop)
    assert np.array_equal(a.item_weight, b.item_weight)
    for name in ("item_category", "item_brand", "item_price_band"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.item_texts == b.item_texts
    assert {k: v.tolist() for k, v in a.user_features.items()} == {
        k: v.tolist() for k, v in b.user_features.items()
    }
    # The events behind the pairs, as a multiset (their order is free).
    ea = sorted(
        zip(a.event_pair.tolist(), a.event_ts.tolist(), a.event_weight.tolist(), strict=True)
    )
    eb = sorted(
        zip(b.event_pair.tolist(), b.event_ts.tolist(), b.event_weight.tolist(), strict=True)
    )
    assert ea == eb
    assert a.fingerprint == b.fingerprint
    assert a.split is not None and b.split is not None
    assert a.split.summary() == b.split.summary()
    pd.testing.assert_frame_equal(a.split.test, b.split.test)
    assert a.split.cold_users == b.split.cold_users
    cols = ["user_id", "item_id", "event_type", "ts"]
    pd.testing.assert_frame_equal(
        a.split.train[cols].sort_values(cols, ignore_index=True),
        b.split.train[cols].sort_values(cols, ignore_index=True),
    )


@pytest.fixture(scope="module")
def hand() -> Any:
    con = _hand_store()
    yield con
    con.close()


def test_store_built_matrix_known_answer(hand: Any) -> None:
    config = SplitConfig(cutoff=T0 + pd.Timedelta(days=5), target_events=("view", "purchase"))
    data = InteractionData.from_store(hand, config)
    # Users: the users table, the training users and the test/cold users (not u4).
    assert data.user_ids.tolist() == ["u1", "u2", "u3", "u5"]
    assert data.item_ids.tolist() == ["a", "b", "c", "d", "z"]
    dense = data.matrix.toarray().tolist()
    assert dense == [
        [1 + 5, 0, 3, 0, 0],  # u1: a viewed and bought, c carted; b only an impression
        [1, 0, 0, 1, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    assert data.last_ts[0, 0] == (T0 + pd.Timedelta(days=1)).timestamp()
    assert data.item_pop.tolist() == [2, 0, 1, 1, 0]
    assert data.split is not None
    assert data.split.test.values.tolist() == [["u1", "b"], ["u2", "c"]]
    assert data.split.cold_users == ["u3"]
    assert data.split.n_train == 6
    assert data.split.summary()["seen_pairs_dropped"] == 1
    fewer = data.split.replace(train=data.split.train.iloc[:2])
    assert fewer.n_train == 2 and fewer.test is data.split.test and fewer.cutoff == config.cutoff
    _assert_same(data, _frame_built(hand, config))


def test_store_split_share_cutoff_and_all_data(hand: Any) -> None:
    config = SplitConfig(test_share=0.4, target_events=("view", "cart", "purchase"))
    _assert_same(InteractionData.from_store(hand, config), _frame_built(hand, config))
    everything = InteractionData.from_query(hand, "TRUE")
    before = InteractionData.from_frame(load_events(hand), *load_catalogue(hand))
    assert np.array_equal(everything.matrix.toarray(), before.matrix.toarray())
    assert everything.fingerprint == before.fingerprint


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (SplitConfig(target_events=("cart",), cutoff=T0 + pd.Timedelta(days=5)), "no cart events"),
        (SplitConfig(cutoff=T0), "no events before the cut-off"),
        (SplitConfig(cutoff=T0 + pd.Timedelta(days=30)), "after the cut-off"),
    ],
)
def test_store_split_refuses_as_the_frame_split(
    hand: Any, config: SplitConfig, message: str
) -> None:
    with pytest.raises(BadInputError) as sql:
        store_split(hand, config)
    with pytest.raises(BadInputError) as frame:
        temporal_split(load_events(hand), config)
    assert message in sql.value.message
    assert sql.value.message == frame.value.message


_ids = st.sampled_from(["u1", "u2", "u3", "u10", "ü"])
_items = st.sampled_from(["a", "b", "c", "A", "007"])
_types = st.sampled_from(["impression", "view", "cart", "purchase"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(_ids, _items, _types, st.integers(0, 20)),  # distinct days: no tie order
        min_size=4,
        max_size=40,
        unique_by=lambda r: r[3],
    ),
    share=st.sampled_from([0.2, 0.5]),
    keep_seen=st.booleans(),
)
def test_store_built_equals_frame_built(
    rows: list[tuple[str, str, str, int]], share: float, keep_seen: bool
) -> None:
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "d"])
    events["ts"] = T0 + pd.to_timedelta(events.pop("d"), unit="D")
    items = pd.DataFrame({"item_id": ["a", "z"], "title": ["A", "Z"]})
    users = pd.DataFrame({"user_id": ["u1", "u9"]})
    con = _store(events, items, users)
    config = SplitConfig(
        test_share=share, target_events=("view", "cart", "purchase"), keep_seen=keep_seen
    )
    try:
        try:
            before = _frame_built(con, config)
        except BadInputError as err:
            with pytest.raises(BadInputError) as sql:
                InteractionData.from_store(con, config)
            assert sql.value.message == err.message
            return
        _assert_same(InteractionData.from_store(con, config), before)
    finally:
        con.close()
