"""Temporal split: no leakage, seen-item exclusion, cold users, last-N, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from pydantic import ValidationError

from ltrec.errors import BadInputError
from ltrec.evaluation import SplitConfig, load_events, temporal_split
from ltrec.store import connect, writing


def _ev(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts"]).assign(
        ts=lambda d: pd.to_datetime(d["ts"])
    )


EVENTS = _ev(
    [
        ("u1", "a", "view", "2024-01-01"),
        ("u1", "a", "purchase", "2024-01-02"),
        ("u1", "b", "impression", "2024-01-03"),
        ("u2", "c", "view", "2024-01-04"),
        ("u1", "a", "purchase", "2024-02-01"),  # repeat buy of a seen item
        ("u1", "b", "purchase", "2024-02-02"),  # only an impression before: not seen
        ("u1", "b", "purchase", "2024-02-03"),  # duplicate pair
        ("u2", "d", "view", "2024-02-04"),  # not a target type
        ("u2", "e", "purchase", "2024-02-05"),
        ("u3", "f", "purchase", "2024-02-06"),  # no history: cold
    ]
)
CUT = datetime(2024, 2, 1)


def test_global_cutoff_no_leakage_and_seen_excluded():
    s = temporal_split(EVENTS, SplitConfig(cutoff=CUT))
    assert (s.train["ts"] < s.cutoff).all()
    assert len(s.train) == 4
    assert list(s.train.columns[:4]) == ["user_id", "item_id", "event_type", "ts"]
    assert s.test.values.tolist() == [["u1", "b"], ["u2", "e"]]
    assert s.cold_users == ["u3"]
    assert s.stats == {"target_pairs": 4, "seen_pairs_dropped": 1, "cold_pairs_dropped": 1}
    # no test pair comes from an event before the cut-off
    test_ev = EVENTS.merge(s.test, on=["user_id", "item_id"])
    assert (test_ev[test_ev.event_type == "purchase"]["ts"].max()) >= s.cutoff


def test_cutoff_is_inclusive_on_test_side():
    s = temporal_split(EVENTS, SplitConfig(cutoff=datetime(2024, 2, 2)))
    assert ["u1", "b"] in s.test.values.tolist()
    assert (s.train["ts"] < pd.Timestamp("2024-02-02")).all()


def test_keep_seen_keeps_repeat_purchases():
    s = temporal_split(EVENTS, SplitConfig(cutoff=CUT, keep_seen=True))
    assert s.test.values.tolist() == [["u1", "a"], ["u1", "b"], ["u2", "e"]]
    assert s.stats["seen_pairs_dropped"] == 0


def test_tz_aware_cutoff_matches_naive_events():
    s = temporal_split(EVENTS, SplitConfig(cutoff=datetime(2024, 2, 1, tzinfo=UTC)))
    assert s.cutoff == pd.Timestamp("2024-02-01")


def test_target_types_and_min_train_events():
    s = temporal_split(EVENTS, SplitConfig(cutoff=CUT, target_events=("view", "purchase")))
    assert ["u2", "d"] in s.test.values.tolist()
    s2 = temporal_split(EVENTS, SplitConfig(cutoff=CUT, min_train_events=2))
    assert s2.cold_users == ["u2", "u3"]  # u2 has one training event
    assert s2.test["user_id"].unique().tolist() == ["u1"]


def test_share_cutoff():
    s = temporal_split(EVENTS, SplitConfig(test_share=0.6))
    # 10 events, floor(10 * 0.4) = index 4 -> 2024-02-01
    assert s.cutoff == pd.Timestamp("2024-02-01")
    assert len(s.train) == 4


def test_last_n_mode():
    s = temporal_split(EVENTS, SplitConfig(last_n=1, keep_seen=True))
    # u1's last purchase is b at 02-03; u2's is e; u3's f (cold: nothing before it)
    assert s.test.values.tolist() == [["u1", "b"], ["u2", "e"]]
    assert s.cold_users == ["u3"]
    u1_train = s.train[s.train.user_id == "u1"]
    assert (u1_train["ts"] < pd.Timestamp("2024-02-03")).all()
    assert len(u1_train) == 5  # every u1 event before 02-03 (incl. the first b purchase)
    assert s.cutoff == pd.Timestamp("2024-02-03")
    s2 = temporal_split(EVENTS, SplitConfig(last_n=2))
    # u1 holds out b@02-02 and b@02-03: train = events before 02-02, b was only an impression
    assert s2.test.values.tolist() == [["u1", "b"], ["u2", "e"]]


def test_clear_errors():
    with pytest.raises(BadInputError, match="no purchase events after the cut-off 2024-03-01"):
        temporal_split(EVENTS, SplitConfig(cutoff=datetime(2024, 3, 1)))
    with pytest.raises(BadInputError, match="no events before the cut-off"):
        temporal_split(EVENTS, SplitConfig(cutoff=datetime(2023, 1, 1)))
    with pytest.raises(BadInputError, match="no cart events in the data"):
        temporal_split(EVENTS, SplitConfig(cutoff=CUT, target_events=("cart",)))
    with pytest.raises(BadInputError, match="lack the column"):
        temporal_split(EVENTS.drop(columns="ts"))
    with pytest.raises(BadInputError, match="no events"):
        temporal_split(EVENTS.iloc[:0])
    only_seen = EVENTS[EVENTS.item_id.isin(["a"])]
    with pytest.raises(BadInputError, match="keep_seen"):
        temporal_split(only_seen, SplitConfig(cutoff=CUT))


def test_config_is_strict():
    with pytest.raises(ValidationError):
        SplitConfig(test_share=0.95)
    with pytest.raises(ValidationError):
        SplitConfig(target_events=("click",))
    with pytest.raises(ValidationError):
        SplitConfig(bogus=1)
    with pytest.raises(ValidationError):
        SplitConfig(last_n=0)


def test_load_events_from_store():
    with writing("shop") as con:
        con.executemany(
            "INSERT INTO events (user_id, item_id, event_type, ts) VALUES (?, ?, ?, ?)",
            [tuple(r) for r in EVENTS.itertuples(index=False)],
        )
    con = connect("shop")
    try:
        ev = load_events(con)
        assert len(ev) == len(EVENTS) and ev["ts"].is_monotonic_increasing
        assert len(load_events(con, event_types=("purchase",))) == 6
        s = temporal_split(ev, SplitConfig(cutoff=CUT))
        assert s.test.values.tolist() == [["u1", "b"], ["u2", "e"]]
    finally:
        con.close()


def test_load_events_from_a_plain_connection():
    import duckdb

    from ltrec.store.schema import create_schema

    con = duckdb.connect()
    create_schema(con)
    con.execute(
        "INSERT INTO events (user_id, item_id, event_type, ts) VALUES ('u', 'i', 'view', ?)",
        [datetime(2024, 1, 1)],
    )
    assert load_events(con)[["user_id", "item_id"]].values.tolist() == [["u", "i"]]
    with pytest.raises(BadInputError, match="no event types"):
        load_events(con, event_types=())
