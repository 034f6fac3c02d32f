"""ltrec.definitions: hand-computed fixtures for every definition, and their invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ltrec import definitions as D
from ltrec.errors import BadInputError

# ----------------------------------------------------------------------------- Gini


def test_gini_hand_computed() -> None:
    # x ascending (0, 1, 3): coefficients 2i - n - 1 = (-2, 0, 2) -> (0 + 0 + 6) / (3 * 4) = 0.5
    assert D.gini([3, 0, 1]) == pytest.approx(0.5)
    assert D.gini([2, 2, 2, 2]) == 0.0
    assert D.gini([0, 0, 0, 7]) == pytest.approx(3 / 4)  # (n - 1) / n: one item gets it all


def test_gini_all_zero_and_empty_are_nan() -> None:
    # An all-zero input has no concentration to measure: NaN, never 0 ("perfectly equal").
    assert math.isnan(D.gini([0, 0, 0]))
    assert math.isnan(D.gini([]))
    assert D.fmt("gini_exposure", D.gini([0, 0])) == "–"


def test_gini_batch_rows() -> None:
    g = D.gini(np.array([[0, 0, 0], [3, 0, 1], [1, 1, 1]]))
    assert np.isnan(g[0]) and g[1] == pytest.approx(0.5) and g[2] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 50), st.floats(0.1, 100))
def test_gini_uniform_zero_and_all_on_one(n: int, v: float) -> None:
    assert D.gini(np.full(n, v)) == pytest.approx(0.0, abs=1e-12)
    x = np.zeros(n)
    x[n // 2] = v
    assert D.gini(x) == pytest.approx((n - 1) / n)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 1000), min_size=1, max_size=60), st.integers(0, 30))
def test_gini_is_the_mean_absolute_difference(x: list[int], zeros: int) -> None:
    # the same as sum |xi - xj| / (2 n^2 mean), zero items included
    a = np.asarray(x + [0] * zeros, dtype=float)
    n = a.size
    mad = np.abs(a[:, None] - a[None, :]).sum() / (2 * n * n * a.mean())
    assert D.gini(a) == pytest.approx(mad, abs=1e-9)


def test_gini_rejects_negative_counts() -> None:
    with pytest.raises(BadInputError, match="non-negative"):
        D.gini([1, -1, 2])


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, st.integers(1, 40), elements=st.floats(0, 1e6)))
def test_gini_bounds(x: np.ndarray) -> None:
    g = D.gini(x)
    if x.sum() == 0:
        assert math.isnan(g)
    else:
        assert -1e-12 <= g <= (x.size - 1) / x.size + 1e-9


# ----------------------------------------------------------------------------- popularity rank


def test_popularity_rank_ties_by_item_index() -> None:
    # pop (3, 5, 3, 0, 5): order 1, 4 (the 5s, lower index first), 0, 2 (the 3s), 3
    assert D.popularity_rank([3, 5, 3, 0, 5]).tolist() == [3, 1, 4, 5, 2]
    assert D.popularity_rank([0, 0, 0]).tolist() == [1, 2, 3]


@settings(max_examples=80, deadline=None)
@given(arrays(np.int64, st.integers(0, 50), elements=st.integers(0, 6)))
def test_popularity_rank_is_a_permutation_in_popularity_order(pop: np.ndarray) -> None:
    r = D.popularity_rank(pop)
    assert sorted(r.tolist()) == list(range(1, pop.size + 1))
    by_rank = np.argsort(r)
    assert (np.diff(pop[by_rank]) <= 0).all()  # more popular never ranks below less popular


# ----------------------------------------------------------------------------- buckets


def test_buckets_hand_computed() -> None:
    # pop (50, 30, 10, 10, 0), total 100; shares before: 0, .5, .8, .9, 1
    pop = [50, 30, 10, 10, 0]
    assert D.popularity_buckets(pop, (0.8,)).tolist() == [0, 0, 1, 1, 1]
    assert D.popularity_buckets(pop, (0.5, 0.8)).tolist() == [0, 1, 2, 2, 2]
    # a tie straddling the cut goes by item index: item 1 is ranked above item 2
    assert D.popularity_buckets([40, 20, 20, 20], (0.6,)).tolist() == [0, 0, 1, 1]


def test_buckets_all_zero_is_all_tail() -> None:
    assert D.popularity_buckets([0, 0, 0], (0.8,)).tolist() == [1, 1, 1]
    assert D.tail_mask([0, 0], (0.5, 0.8)).tolist() == [True, True]


def test_bucket_cuts_checked() -> None:
    for bad in [(), (0.8, 0.5), (1.0,), (0.0,)]:
        with pytest.raises(BadInputError):
            D.popularity_buckets([1, 2], bad)


def test_bucket_names_and_colours() -> None:
    assert D.bucket_names(1) == ["head", "tail"]
    assert D.bucket_names(2) == ["head", "mid", "tail"]
    assert D.bucket_names(3) == ["head", "mid1", "mid2", "tail"]
    for n in range(1, 9):
        names = D.bucket_names(n)
        assert len({D.bucket_colour(b) for b in names}) == len(names)  # distinguishable
    assert D.bucket_tint("tail") == "rgba(148, 103, 189, 0.18)"


@settings(max_examples=80, deadline=None)
@given(
    arrays(np.int64, st.integers(1, 40), elements=st.integers(0, 9)),
    st.sampled_from([(0.8,), (0.5, 0.8), (0.2, 0.5, 0.9)]),
)
def test_head_is_the_smallest_prefix_reaching_the_cut(pop: np.ndarray, cuts) -> None:
    b = D.popularity_buckets(pop, cuts)
    ranks = D.popularity_rank(pop)
    assert (np.diff(b[np.argsort(ranks)]) >= 0).all()  # buckets follow the rank order
    if pop.sum():
        head = b == 0
        assert pop[head].sum() >= cuts[0] * pop.sum() - 1e-9
        without_last = pop[head].sum() - pop[head].min()
        assert without_last < cuts[0] * pop.sum() - 1e-9 or pop[head].min() == 0


# ----------------------------------------------------------------------------- overlap


def test_list_overlap_hand_computed() -> None:
    assert D.list_overlap([1, 2, 3], [3, 4, 5]) == pytest.approx(1 / 3)
    assert D.list_overlap([1, 2, 3], [3, 2, 1]) == 1.0
    assert D.list_overlap([1, 2, -1], [2, 7, 8]) == pytest.approx(1 / 3)  # / max(2, 3)
    assert D.list_overlap([1, 2], [2]) == pytest.approx(1 / 2)
    assert math.isnan(D.list_overlap([-1, -1], [-1, -1]))
    m = D.list_overlap(np.array([[1, 2], [3, 4]]), np.array([[2, 1], [5, 6]]))
    assert m.tolist() == [1.0, 0.0]


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_list_overlap_bounds_and_symmetry(data) -> None:
    k = data.draw(st.integers(1, 8))
    a = data.draw(st.lists(st.integers(0, 15), min_size=1, max_size=k, unique=True))
    b = data.draw(st.lists(st.integers(0, 15), min_size=1, max_size=k, unique=True))
    o = D.list_overlap(a, b)
    assert 0.0 <= o <= 1.0
    assert o == pytest.approx(D.list_overlap(b, a))
    assert o == pytest.approx(len(set(a) & set(b)) / max(len(a), len(b)))


# ----------------------------------------------------------------------------- text, exposure


def test_item_text() -> None:
    assert D.item_text("Chef  knife", "Kitchen > Knives", None, "Sharp.\n") == (
        "Chef knife. Kitchen > Knives. Sharp."
    )
    assert D.item_text("A", float("nan"), "B", "C", with_description=False) == "A. B"


def test_exposure_event() -> None:
    assert D.exposure_event(["view", "impression", "purchase"]) == "impression"
    assert D.exposure_event(["purchase", "view"]) == "view"
    assert D.exposure_event(["purchase"]) is None


# ----------------------------------------------------------------------------- records, formats


def test_pct_is_the_one_percentage_format() -> None:
    assert D.pct(0.6262) == "62.6%"
    assert D.pct(0.64) == "64.0%"
    assert D.pct(1) == "100.0%"
    assert D.pct(None) == "–" and D.pct(float("nan")) == "–"
    assert D.pct(0.6262, digits=0) == "63%"


def test_fmt_by_record() -> None:
    assert D.fmt("ndcg@10", 0.12345) == "0.123"
    assert D.fmt("aplt", 0.6262) == "62.6%"
    assert D.fmt("arp", 1234.56) == "1,234.6"
    assert D.fmt("gini", float("nan")) == "–"
    with pytest.raises(BadInputError, match="known metrics"):
        D.fmt("no_such_metric", 1.0)


def test_every_record_is_complete() -> None:
    for key, m in D.METRICS.items():
        assert m.key == key
        assert m.name and m.formula and m.unit
        assert m.direction in ("higher", "lower", "neutral")
        assert m.fmt == "pct" or m.format(0.5) != "–"
        assert m.help.startswith(m.formula)
        if m.unit == "share":
            assert m.fmt == "pct", key  # shares are always shown as percentages
    assert D.METRICS["gini"].higher_is_better is False
    assert D.metric("ndcg@10").label(10) == "NDCG@10"
    assert D.definitions_json(["ndcg@10"])["ndcg"]["reference"].startswith("Järvelin")
    assert D.definitions_json(["exposure_gini", "users"]) == {
        "exposure_gini": D.METRICS["gini"].to_json()
    }
    assert set(D.definitions_json()) == set(D.METRICS)
