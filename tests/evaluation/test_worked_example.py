"""A worked example: 3 users, 6 items, K = 3. Every number below is computed by hand.

Catalogue (training popularity φ, category, 2-d embedding):

    item   φ    category  embedding
    0     15    a         ( 1,  0)
    1      7    a         ( 1,  0)
    2      3    b         ( 0,  1)
    3      1    b         ( 0,  1)
    4      0    c         (-1,  0)
    5      0    c         ( 0, -1)

Buckets (cut 0.8; total φ = 26): sorted descending, share of strictly more popular items:
item 0: 0 -> head; item 1: 15/26 = 0.577 -> head; item 2: 22/26 = 0.846 >= 0.8 -> tail;
item 3: 25/26 -> tail; items 4, 5: zero popularity -> tail. Head {0, 1}; tail Γ = {2, 3, 4, 5}.

Popularity rank (1 = most popular, ties by item index): 1, 2, 3, 4, 5, 6.
Smoothed share p(i) = (φ + 1) / (26 + 6) = 16/32, 8/32, 4/32, 2/32, 1/32, 1/32,
so novelty -log2 p(i) = 1, 2, 3, 4, 5, 5 bits.

Lists (K = 3, -1 = padding), test items, base lists:

    user  list        test     base
    u0    [0, 2, 1]   {2, 3}   [0, 1, 2]
    u1    [3, 0, -]   {0}      [0, 3, 5]
    u2    [4, 5, 1]   {}       [1, 2, 3]

Hits: u0 [0, 1, 0]; u1 [0, 1]; u2 has no test items (excluded from accuracy means).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ltrec.definitions import popularity_buckets
from ltrec.evaluation import evaluate
from ltrec.evaluation import metrics as M

POP = np.array([15, 7, 3, 1, 0, 0])
CAT = ["a", "a", "b", "b", "c", "c"]
EMB = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [-1, 0], [0, -1]], dtype=float)
RECS = np.array([[0, 2, 1], [3, 0, -1], [4, 5, 1]])
TEST = [np.array([2, 3]), np.array([0]), np.array([], dtype=int)]
BASE = np.array([[0, 1, 2], [0, 3, 5], [1, 2, 3]])
L3 = math.log2(3)  # log2(r + 1) at rank 2


@pytest.fixture(scope="module")
def res():
    return evaluate(
        RECS,
        TEST,
        item_pop=POP,
        k=3,
        item_category=CAT,
        item_embedding=EMB,
        base_recs=BASE,
        user_ids=["u0", "u1", "u2"],
        n_boot=200,
    )


def test_buckets():
    assert popularity_buckets(POP).tolist() == [0, 0, 1, 1, 1, 1]


# Expected per-user values (NaN = excluded from the mean), with the arithmetic.
EXPECTED = {
    # Precision@3 = hits / K: u0 1/3, u1 1/3 -> mean 1/3
    "precision": ([1 / 3, 1 / 3, None], 1 / 3),
    # Recall@3 = hits / |T|: u0 1/2, u1 1/1 -> mean 0.75
    "recall": ([0.5, 1.0, None], 0.75),
    # NDCG: u0 DCG = 1/log2(3); IDCG = 1 + 1/log2(3) (min(|T|, K) = 2) -> 0.386853
    #       u1 DCG = 1/log2(3); IDCG = 1 -> 0.630930; mean 0.508891
    "ndcg": ([(1 / L3) / (1 + 1 / L3), 1 / L3, None], ((1 / L3) / (1 + 1 / L3) + 1 / L3) / 2),
    # AP@3: u0 one hit at rank 2, P@2 = 1/2, / min(2, 3) = 2 -> 0.25; u1 P@2 = 1/2, / 1 -> 0.5
    "map": ([0.25, 0.5, None], 0.375),
    # HitRate: both test users have a hit
    "hit_rate": ([1.0, 1.0, None], 1.0),
    # MRR: first hit at rank 2 for both -> 1/2
    "mrr": ([0.5, 0.5, None], 0.5),
    # Tail recall: u0 tail test items {2, 3}, hit 2 -> 1/2; u1's only test item (0) is head
    "tail_recall": ([0.5, None, None], 0.5),
    # APLT = tail items / |L|: u0 {2} 1/3; u1 {3} of 2 -> 1/2; u2 {4, 5} 2/3; mean 0.5
    "aplt": ([1 / 3, 0.5, 2 / 3], 0.5),
    # ACLT = tail count: 1, 1, 2 -> 4/3
    "aclt": ([1.0, 1.0, 2.0], 4 / 3),
    # ARP = mean φ: u0 (15+3+7)/3 = 25/3; u1 (1+15)/2 = 8; u2 (0+0+7)/3 = 7/3; mean 56/9
    "arp": ([25 / 3, 8.0, 7 / 3], 56 / 9),
    # Popularity rank: u0 (1+3+2)/3 = 2; u1 (4+1)/2 = 2.5; u2 (5+6+2)/3 = 13/3
    "pop_rank": ([2.0, 2.5, 13 / 3], (2 + 2.5 + 13 / 3) / 3),
    # Novelty: u0 (1+3+2)/3 = 2; u1 (4+1)/2 = 2.5; u2 (5+5+2)/3 = 4; mean 8.5/3
    "novelty": ([2.0, 2.5, 4.0], 8.5 / 3),
    # ILD (embedding): u0 cos(0,2)=0, cos(0,1)=1, cos(2,1)=0 -> 1 - 1/3 = 2/3
    #   u1 cos(3,0) = 0 -> 1; u2 cos(4,5)=0, cos(4,1)=-1, cos(5,1)=0 -> 1 + 1/3 = 4/3; mean 1
    "ild_embedding": ([2 / 3, 1.0, 4 / 3], 1.0),
    # ILD (category): u0 a,b,a -> 2 of 3 pairs differ; u1 b,a -> 1; u2 c,c,a -> 2/3; mean 7/9
    "ild_category": ([2 / 3, 1.0, 2 / 3], 7 / 9),
    # Overlap = shared / max(|L|, |B|): u0 3/3; u1 {3,0} vs {0,3,5} 2/3; u2 {1} 1/3; mean 2/3
    "overlap": ([1.0, 2 / 3, 1 / 3], 2 / 3),
    # RBO (p = 0.9), X_d = shared items in the top d, s = 3:
    #   RBO = (X_3/3) 0.9^3 + (0.1/0.9) * sum_d (X_d/d) 0.9^d
    #   u0 X = 1, 1, 3: 0.729 + (0.9 + 0.405 + 0.729)/9 = 0.729 + 0.226 = 0.955
    #   u1 X = 0, 2, 2: (2/3)0.729 + (0 + 0.81 + 0.486)/9 = 0.486 + 0.144 = 0.630
    #   u2 X = 0, 0, 1: (1/3)0.729 + (0.243)/9 = 0.243 + 0.027 = 0.270; mean 0.618333
    "rbo": ([0.955, 0.63, 0.27], 1.855 / 3),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_per_user_metric(res, name):
    per_user, mean = EXPECTED[name]
    got = res.per_user[name].to_numpy()
    want = np.array([np.nan if v is None else v for v in per_user])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    mv = res[f"{name}@3"]
    assert mv.mean == pytest.approx(mean, rel=1e-9)
    assert mv.n == sum(v is not None for v in per_user)
    assert mv.low <= mv.mean + 1e-12 and mv.mean - 1e-12 <= mv.high


def test_catalogue_metrics(res):
    w = 1 / L3
    # Coverage: items shown {0, 2, 1, 3, 4, 5} = all 6 -> 1; tail {2, 3, 4, 5} all shown -> 1
    assert res["coverage"].mean == 1.0 and res["tail_coverage"].mean == 1.0
    assert res["coverage"].low is None  # no interval for coverage (see aggregate docstring)
    # Count exposure: item 0 (u0, u1) 2, item 1 (u0, u2) 2, others 1 -> x = [2, 2, 1, 1, 1, 1]
    # ascending [1,1,1,1,2,2], coefficients 2i - 7 = -5,-3,-1,1,3,5: sum = -9 + 1 + 16 = 8
    # Gini = 8 / (6 * 8) = 1/6
    assert res["gini"].mean == pytest.approx(1 / 6)
    # Position exposure, weights 1, 1/log2(3) = w, 1/2:
    #   item 0: 1 (u0) + w (u1); item 1: 1/2 (u0) + 1/2 (u2) = 1; item 2: w; item 3: 1;
    #   item 4: 1; item 5: w. Sum = 4 + 3w + ... = (1+w) + 1 + w + 1 + 1 + w = 4 + 3w.
    #   ascending [w, w, 1, 1, 1, 1+w]: sum (2i-7)x = -5w - 3w - 1 + 1 + 3 + 5(1+w) = 8 - 3w
    x = np.array([1 + w, 1, w, 1, 1, w])
    np.testing.assert_allclose(M.exposure(RECS, 6, "position"), x)
    assert res["gini_position"].mean == pytest.approx((8 - 3 * w) / (6 * (4 + 3 * w)))
    # Entropy of count exposure: p = 1/4, 1/4, 1/8 x 4 -> 2 * (1/4 * 2) + 4 * (1/8 * 3) = 2.5 bits
    assert res["entropy"].mean == pytest.approx(2.5)
    # PopRSP: head recommendations u0 2 (items 0, 1), u1 1 (0), u2 1 (1) = 4 of 3 users x 2 head
    #   items = 6 -> P_head = 2/3; tail recs 1 + 1 + 2 = 4 of 3 x 4 = 12 -> P_tail = 1/3;
    #   PopRSP = |2/3 - 1/3| / (2/3 + 1/3) = 1/3
    assert res["pop_rsp"].mean == pytest.approx(1 / 3)
    # PopREO: head test items: u1's item 0, hit at rank 2 -> 1/1 = 1;
    #   tail test items: u0's {2, 3}, 2 hit -> 1/2; PopREO = |1 - 1/2| / (1 + 1/2) = 1/3
    assert res["pop_reo"].mean == pytest.approx(1 / 3)
    # every catalogue metric counts the three lists
    assert res["gini"].n == 3


def test_pop_rsp_with_seen_items():
    # u0 has trained on item 3 (tail), u2 on item 0 (head): the denominators shrink to
    # head 2 + 2 + 1 = 5, tail 3 + 4 + 4 = 11: P_head = 4/5, P_tail = 4/11,
    # PopRSP = (4/5 - 4/11) / (4/5 + 4/11) = (44 - 20) / (44 + 20) = 24/64 = 0.375
    import scipy.sparse as sp

    seen = sp.csr_matrix(([1, 1], ([0, 2], [3, 0])), shape=(3, 6))
    assert M.pop_rsp(M.clean_recs(RECS, 3, 6), popularity_buckets(POP) == 1, seen) == (
        pytest.approx(0.375)
    )
    r = evaluate(RECS, TEST, item_pop=POP, k=3, seen=seen, n_boot=0)
    assert r["pop_rsp"].mean == pytest.approx(0.375)


def test_to_dict_and_table(res):
    d = res.to_dict()
    assert d["ndcg@3"]["n"] == 2 and set(d["ndcg@3"]) == {"mean", "low", "high", "n"}
    assert d["coverage@3"]["low"] is None
    t = res.table()
    assert list(t.columns) == ["metric", "mean", "low", "high", "n"]
    assert t["metric"].iloc[0] == "precision@3" and len(t) == len(d)
    assert list(res.per_user.index) == ["u0", "u1", "u2"]
    assert res.per_user["n_test"].tolist() == [2, 1, 0]
    assert res.per_user["list_len"].tolist() == [3, 2, 3]
