"""Edge cases, hypothesis properties, and a cross-check against plain-loop reference code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ltrec.definitions import popularity_buckets
from ltrec.errors import BadInputError
from ltrec.evaluation import evaluate
from ltrec.evaluation import metrics as M

# --------------------------------------------------------------------------------------------
# edge cases


def test_empty_lists_score_zero_but_count():
    recs = np.full((2, 3), -1)
    r = evaluate(recs, [np.array([0]), np.array([1])], item_pop=np.ones(4), k=3, n_boot=10)
    assert r["ndcg"].mean == 0.0 and r["ndcg"].n == 2  # users with test items and no list: 0
    assert np.isnan(r["aplt"].mean) and r["aplt"].n == 0  # per-list metrics skip empty lists
    assert r["coverage"].mean == 0.0
    assert np.isnan(r["gini"].mean)  # no exposure at all: Gini undefined
    assert r.to_dict()["gini@3"]["mean"] is None


def test_users_without_test_items_are_excluded_from_accuracy():
    recs = np.array([[0, 1], [0, 1]])
    r = evaluate(recs, [np.array([0]), np.array([], int)], item_pop=np.ones(3), k=2, n_boot=0)
    assert r["precision"].mean == 0.5 and r["precision"].n == 1
    assert r["aplt"].n == 2  # but their lists count for the long-tail metrics
    assert r["ndcg"].low is None  # n_boot = 0: no interval


def test_k_one():
    recs = np.array([[2, 0], [1, 0]])
    r = evaluate(recs, [np.array([2, 0]), np.array([0])], item_pop=np.ones(3), k=1, n_boot=0)
    assert r.per_user["precision"].tolist() == [1.0, 0.0]
    assert r.per_user["recall"].tolist() == [0.5, 0.0]
    assert r.per_user["ndcg"].tolist() == [1.0, 0.0]  # IDCG over min(|T|, 1) = 1 position
    assert r.per_user["map"].tolist() == [1.0, 0.0]
    assert list(r.metrics)[0] == "precision@1"


def test_k_larger_than_catalogue():
    # 3 items, K = 5: every list has at most 3 real items, padded with -1.
    recs = np.array([[1, 0, 2, -1, -1]])
    r = evaluate(recs, [np.array([0, 1, 2])], item_pop=np.array([3, 2, 1]), k=5, n_boot=0)
    assert r["recall"].mean == 1.0 and r["ndcg"].mean == pytest.approx(1.0)
    assert r["map"].mean == pytest.approx(1.0)
    assert r["precision"].mean == pytest.approx(3 / 5)  # denominator K, stated in the docs
    assert r["coverage"].mean == 1.0


def test_repeated_items_and_bad_indices():
    clean = M.clean_recs(np.array([[1, 1, 2, 1]]), 4, 3)
    assert clean.tolist() == [[1, -1, 2, -1]]
    with pytest.raises(BadInputError, match="outside the catalogue"):
        M.clean_recs(np.array([[0, 5]]), 2, 3)
    with pytest.raises(BadInputError):
        evaluate(np.array([[0]]), [np.array([0])], item_pop=np.ones(2), k=0)
    with pytest.raises(BadInputError, match="test has 2 users"):
        evaluate(np.array([[0]]), [np.array([0]), np.array([1])], item_pop=np.ones(2), k=1)


def test_test_matrix_input_equals_lists():
    recs = np.array([[0, 1], [2, 0]])
    lists = [np.array([1]), np.array([0, 2])]
    mat = sp.csr_matrix(([1, 1, 1], ([0, 1, 1], [1, 0, 2])), shape=(2, 3))
    a = evaluate(recs, lists, item_pop=np.ones(3), k=2, n_boot=50)
    b = evaluate(recs, mat, item_pop=np.ones(3), k=2, n_boot=50)
    assert a.to_dict() == b.to_dict()


def test_bucket_ties_and_cold():
    # all equal: 0, 1/3, 2/3 of the mass comes before each item -> head; zero popularity -> tail
    assert popularity_buckets(np.array([2, 2, 2, 0])).tolist() == [0, 0, 0, 1]
    # exact boundary: 8/10 reached by the first two items -> the third starts the tail
    assert popularity_buckets(np.array([4, 4, 1, 1])).tolist() == [0, 0, 1, 1]
    # a tie group straddling the cut is split by index (the SQL's item_id order)
    p = np.array([4, 1, 1, 1, 1, 0, 2])
    assert popularity_buckets(p).tolist() == [0, 0, 0, 1, 1, 1, 0]
    assert popularity_buckets(np.zeros(3)).tolist() == [1, 1, 1]
    # sorted 4(i0) 2(i6) 1(i1) 1(i2) 1(i3) 1(i4): mass before = 0 .4 .6 .7 .8 .9 of 10
    assert popularity_buckets(p, (0.5, 0.8)).tolist() == [0, 1, 1, 2, 2, 2, 0]
    with pytest.raises(BadInputError):
        popularity_buckets(np.array([1.0, -1.0]))
    with pytest.raises(BadInputError):
        popularity_buckets(np.ones(3), (0.8, 0.5))


def test_entropy_known_values():
    assert M.entropy(np.ones(8)) == pytest.approx(3.0)
    assert M.entropy(np.array([0, 5.0])) == 0.0


def test_rbo_and_overlap_extremes():
    a = np.array([[0, 1, 2], [0, 1, 2]])
    b = np.array([[0, 1, 2], [3, 4, 5]])
    np.testing.assert_allclose(M.rbo(a, b), [1.0, 0.0])
    # the same short list, padded: still identical
    short = np.array([[4, 2, -1]])
    assert M.rbo(short, short)[0] == pytest.approx(1.0)
    assert np.isnan(M.rbo(np.full((1, 2), -1), np.full((1, 2), -1))[0])
    with pytest.raises(BadInputError):
        M.rbo(a, b, p=1.0)


# --------------------------------------------------------------------------------------------
# hypothesis properties


@st.composite
def runs(draw, max_users=8, max_items=12, max_k=8):
    n_items = draw(st.integers(1, max_items))
    n_users = draw(st.integers(1, max_users))
    k = draw(st.integers(1, max_k))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    recs = np.full((n_users, k), -1, dtype=np.int64)
    test = []
    for u in range(n_users):
        m = int(rng.integers(0, min(k, n_items) + 1))
        recs[u, :m] = rng.permutation(n_items)[:m]
        t = int(rng.integers(0, n_items + 1))
        test.append(np.sort(rng.permutation(n_items)[:t]))
    pop = rng.integers(0, 20, n_items).astype(float)
    return recs, test, pop, k


BOUNDED = [m for m in M.UNIT_BOUNDED]


@settings(max_examples=60, deadline=None)
@given(runs())
def test_bounded_metrics_within_bounds(run):
    recs, test, pop, k = run
    emb = np.random.default_rng(0).random((len(pop), 3))  # non-negative -> ILD in [0, 1]
    cats = np.arange(len(pop)) % 3
    base = np.roll(recs, 1, axis=0)
    r = evaluate(
        recs,
        test,
        item_pop=pop,
        k=k,
        item_embedding=emb,
        item_category=cats,
        base_recs=base,
        n_boot=20,
    )
    n_items = len(pop)
    for name, mv in r.metrics.items():
        b = name.split("@")[0]
        vals = [mv.mean] + ([] if b not in r.per_user else r.per_user[b].dropna().tolist())
        for v in vals:
            if v is None or np.isnan(v):
                continue
            if b in BOUNDED or b == "ild_embedding":
                assert -1e-9 <= v <= 1 + 1e-9, (name, v)
            if b == "entropy":
                assert -1e-9 <= v <= math.log2(n_items) + 1e-9
            if b in ("gini", "gini_position"):
                assert v <= (n_items - 1) / n_items + 1e-9
            if b == "aclt":
                assert 0 <= v <= k
            if b == "novelty":
                assert v >= 0
            if b == "pop_rank":
                assert 1 <= v <= n_items
        if mv.low is not None:
            assert mv.low <= mv.high


@settings(max_examples=60, deadline=None)
@given(runs())
def test_recall_non_decreasing_in_k_and_ndcg_at_most_one(run):
    recs, test, pop, k = run
    truth = M.as_truth(test, len(recs), len(pop))
    n_rel = np.diff(truth.indptr)
    prev = None
    for kk in range(1, k + 1):
        r = M.clean_recs(recs, kk, len(pop))
        hits = M.hit_matrix(r, truth)
        rec = np.nan_to_num(M.recall(hits, n_rel), nan=0.0)
        assert np.all(np.nan_to_num(M.ndcg(hits, n_rel)) <= 1 + 1e-12)
        if prev is not None:
            assert np.all(rec >= prev - 1e-12)
        prev = rec


@settings(max_examples=60, deadline=None)
@given(runs())
def test_position_exposure_sums_to_the_weights(run):
    recs, _, pop, k = run
    r = M.clean_recs(recs, k, len(pop))
    w = 1 / np.log2(np.arange(2, k + 2))
    want = sum(w[c] for u, c in zip(*np.nonzero(r >= 0), strict=True))
    assert M.exposure(r, len(pop), "position").sum() == pytest.approx(want)
    assert M.exposure(r, len(pop), "count").sum() == (r >= 0).sum()


@settings(max_examples=80, deadline=None)
@given(
    arrays(np.int64, st.integers(1, 40), elements=st.integers(0, 30)),
    st.lists(st.floats(0.05, 0.95), min_size=1, max_size=3, unique=True).map(sorted),
)
def test_buckets_partition_the_catalogue(pop, cuts):
    b = popularity_buckets(pop, cuts)
    assert b.shape == pop.shape and b.min() >= 0 and b.max() <= len(cuts)
    # monotone: a more popular item is never in a later bucket than a less popular one
    order = np.argsort(-pop, kind="stable")
    assert np.all(np.diff(b[order]) >= 0)
    assert np.all(b[pop == 0] == len(cuts))
    if pop.sum() > 0:
        # the head reaches the first cut: its share is >= cuts[0]
        assert pop[b == 0].sum() / pop.sum() >= cuts[0] - 1e-9


# --------------------------------------------------------------------------------------------
# cross-check against obviously-correct loops


def _loop_metrics(lst: list[int], rel: set[int], k: int) -> tuple[float, float, float]:
    # -1 is an empty slot: it keeps its rank and never hits (the documented convention)
    hits = [1 if i >= 0 and i in rel else 0 for i in lst[:k]]
    recall = sum(hits) / len(rel)
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    idcg = sum(1 / math.log2(r + 2) for r in range(min(len(rel), k)))
    ap, found = 0.0, 0
    for r, h in enumerate(hits):
        if h:
            found += 1
            ap += found / (r + 1)
    return dcg / idcg, recall, ap / min(len(rel), k)


@pytest.mark.parametrize("seed", range(5))
def test_cross_check_against_loops(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, k = 200, 60, 10
    recs = np.array([rng.permutation(n_items)[:k] for _ in range(n_users)])
    recs[rng.random((n_users, k)) < 0.05] = -1  # some holes
    test = [rng.choice(n_items, size=rng.integers(1, 15), replace=False) for _ in range(n_users)]
    r = evaluate(recs, test, item_pop=rng.integers(0, 9, n_items), k=k, n_boot=0)
    want = np.array([_loop_metrics(list(recs[u]), set(test[u]), k) for u in range(n_users)])
    np.testing.assert_allclose(r.per_user["ndcg"], want[:, 0], rtol=1e-12)
    np.testing.assert_allclose(r.per_user["recall"], want[:, 1], rtol=1e-12)
    np.testing.assert_allclose(r.per_user["map"], want[:, 2], rtol=1e-12)
