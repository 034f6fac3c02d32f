"""The byte-bounded page cache (ltrec.ui.bytecache): it evicts by bytes, least recently used
first, hands out copies, and never keeps a value over a quarter of its budget."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as hst

from ltrec.ui.bytecache import ByteCache, bounded


def _size(value: object) -> int:
    return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def test_evicts_the_least_recently_used_by_bytes() -> None:
    blob = bytes(200)
    each = _size(blob)
    cache = ByteCache(max_bytes=8 * each)
    for key in range(8):
        assert cache.put(key, blob)
    assert cache.nbytes == 8 * each
    assert cache.get(0) == blob  # 0 is now the most recently used
    cache.put(8, blob)  # over budget: 1 (least recently used) goes, 0 stays
    assert [k for k in range(9) if k in cache] == [0, 2, 3, 4, 5, 6, 7, 8]
    assert cache.nbytes == 8 * each
    # a value of nearly two makes room by dropping the two least recent (bytes, not a count)
    big = bytes(400)
    assert each < _size(big) <= 2 * each
    cache.put("big", big)
    assert [k for k in [*range(9), "big"] if k in cache] == [0, 4, 5, 6, 7, 8, "big"]
    assert cache.nbytes == 6 * each + _size(big)


def test_a_value_over_a_quarter_of_the_budget_is_not_kept() -> None:
    cache = ByteCache(max_bytes=4000)
    cache.put("small", bytes(100))
    assert not cache.put("big", bytes(1000))
    assert "big" not in cache
    assert cache.get("small") == bytes(100)
    assert cache.nbytes == _size(bytes(100))


def test_frames_come_back_equal_and_as_copies() -> None:
    frame = pd.DataFrame({"item_id": ["007", "x"], "n": np.array([1, 2])})
    cache = ByteCache(max_bytes=10**6)
    cache.put("f", frame)
    got = cache.get("f")
    pd.testing.assert_frame_equal(got, frame)
    got.loc[0, "n"] = 99  # a page that changes its copy does not change the cache
    assert cache.get("f").loc[0, "n"] == 1


def test_bounded_computes_each_key_once_and_clears() -> None:
    calls: list[tuple[str, int]] = []

    @bounded(max_mb=1)
    def square(name: str, x: int) -> np.ndarray:
        calls.append((name, x))
        return np.full(10, x * x)

    assert square("a", 3).tolist() == [9] * 10
    assert square("a", 3).tolist() == [9] * 10
    assert square("a", 4).tolist() == [16] * 10
    assert calls == [("a", 3), ("a", 4)]
    square.clear()
    square("a", 3)
    assert calls == [("a", 3), ("a", 4), ("a", 3)]


@settings(max_examples=60, deadline=None)
@given(
    budget=hst.integers(200, 5000),
    ops=hst.lists(hst.tuples(hst.integers(0, 9), hst.integers(0, 900)), max_size=40),
)
def test_never_over_budget_and_keeps_the_newest(budget: int, ops: list[tuple[int, int]]) -> None:
    cache = ByteCache(max_bytes=budget)
    for key, n in ops:
        kept = cache.put(key, bytes(n))
        assert cache.nbytes <= budget
        assert kept == (_size(bytes(n)) * 4 <= budget)
        if kept:  # the value just put is always there, whole
            assert cache.get(key) == bytes(n)
    assert cache.nbytes == sum(_size(cache.get(k)) for k in range(10) if k in cache)
