"""Each re-ranker reproduces a small worked example: exact lists, and exact final scores where the
strategy defines them (greedy strategies: the marginal objective when the item was chosen).

Every example is computed by hand in its docstring, step by step, from the paper's definition;
rel(i) is the min-max normalised base score of the pool (``ltrec.rerank.base.minmax``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ltrec.rerank import Candidates, Context, build
from ltrec.rerank.fair import m_table


def _ids(r) -> list[int]:
    return r.items.tolist()


# ------------------------------------------------------------------------------------- xQuAD


def _xquad_shop(history: list[list[int]]) -> tuple[Context, Candidates]:
    # Items 0..4, tail = {2, 4}; base scores 1, .8, .6, .4, 0 -> rel = 1, .8, .6, .4, 0.
    ctx = Context.from_data(
        [90, 80, 5, 70, 3], tail=[False, False, True, False, True], history=history
    )
    return ctx, Candidates(np.arange(5), np.array([1.0, 0.8, 0.6, 0.4, 0.0]))


def test_xquad_personalised_smooth() -> None:
    """Abdollahpouri, Burke & Mobasher 2019, eq. 4, smooth coverage, lambda = 0.5:

    score(v) = (1 - l) rel(v) + l * sum_c P(c|u) P(v|c) cov(c|S), cov = 1 - |S ∩ c| / |S|.
    History {0, 1, 3, 2}: one tail item of four, P(tail|u) = .25, P(head|u) = .75.

    step 1 (S empty, cov 1): head 0: .5 + .5*.75 = .875;  tail 2: .3 + .5*.25 = .425 -> 0
    step 2 (cov head 0, tail 1): head 1: .4;  tail 2: .3 + .125 = .425                -> 2
    step 3 (cov .5, .5): head 1: .4 + .5*.75*.5 = .5875;  tail 4: 0 + .0625           -> 1
    step 4 (cov 1/3, 2/3): head 3: .2 + .125 = .325;  tail 4: .5*.25*2/3 = .0833      -> 3
    step 5 (tail cov 1 - 1/4): tail 4: .5*.25*.75 = .09375                            -> 4
    """
    ctx, cand = _xquad_shop([[0, 1, 3, 2]])
    r = build({"strategy": "xquad", "lambda": 0.5}).rerank(cand, ctx, 0, 5)
    assert _ids(r) == [0, 2, 1, 3, 4]
    assert r.scores.tolist() == pytest.approx([0.875, 0.425, 0.5875, 0.325, 0.09375], abs=1e-12)


def test_xquad_binary_global() -> None:
    """Binary coverage (1 until the aspect has an item in S), P(tail|u) = 1/2, lambda = 0.8:

    step 1: head 0: .2*1 + .8*.5 = .6;  tail 2: .2*.6 + .4 = .52     -> 0
    step 2 (head covered): head 1: .16;  tail 2: .12 + .4 = .52      -> 2
    steps 3..5 (both covered): plain relevance .16, .08, 0           -> 1, 3, 4
    """
    ctx, cand = _xquad_shop([[0, 1, 3, 2]])
    cfg = {"strategy": "xquad", "lambda": 0.8, "personalised": False, "smooth": False}
    r = build(cfg).rerank(cand, ctx, 0, 5)
    assert _ids(r) == [0, 2, 1, 3, 4]
    assert r.scores.tolist() == pytest.approx([0.6, 0.52, 0.16, 0.08, 0.0], abs=1e-12)


def test_xquad_personal_and_its_shrinkage() -> None:
    """The personalised variant for a user whose one history item is a tail item.

    Plain (shrink 0): P(tail|u) = 1/1 = 1, P(head|u) = 0, lambda = .5, smooth:
      step 1: head 0: .5;  tail 2: .3 + .5 = .8                 -> 2
      step 2 (cov head 1, tail 0): head 0: .5;  tail 4: 0       -> 0
      step 3 (cov .5, .5): head 1: .4;  tail 4: .5*.5 = .25      -> 1
      step 4 (head 2 of 3: cov tail 2/3): head 3: .2;  tail 4: .5*2/3 = .3333 -> 4
      step 5: head 3: .2                                         -> 3
    Shrunk (m = 3): the other user's history {0, 1, 3} has no tail item, so p0 = 1/4 of all
    four history items; P(tail|u) = (1 + 3 * 1/4) / (1 + 3) = .4375, P(head|u) = .5625:
      step 1: head 0: .5 + .28125 = .78125;  tail 2: .3 + .21875 = .51875     -> 0
      step 2: head 1: .4;  tail 2: .51875                                     -> 2
      step 3: head 1: .4 + .5*.5625*.5 = .540625;  tail 4: .109375            -> 1
      step 4: head 3: .2 + .5*.5625/3 = .29375;  tail 4: .5*.4375*2/3 = .1458 -> 3
      step 5: tail 4: .5*.4375*.75 = .1640625                                 -> 4
    """
    ctx, cand = _xquad_shop([[4], [0, 1, 3]])
    plain = build({"strategy": "xquad_personal", "lambda": 0.5}).rerank(cand, ctx, 0, 5)
    assert _ids(plain) == [2, 0, 1, 4, 3]
    assert plain.scores.tolist() == pytest.approx([0.8, 0.5, 0.4, 1 / 3, 0.2], abs=1e-12)
    cfg = {"strategy": "xquad_personal", "lambda": 0.5, "shrink": 3}
    shrunk = build(cfg).rerank(cand, ctx, 0, 5)
    assert _ids(shrunk) == [0, 2, 1, 3, 4]
    assert shrunk.scores.tolist() == pytest.approx(
        [0.78125, 0.51875, 0.540625, 0.29375, 0.1640625], abs=1e-12
    )


# --------------------------------------------------------------------------------------- MMR


def test_mmr_by_embedding() -> None:
    """Carbonell & Goldstein 1998, with lambda on the similarity (0.5 here):

    MMR = argmax_i (1 - l) rel(i) - l max_{j in S} cos(i, j). Embeddings e0 = e1 = (1, 0),
    e2 = (0, 1), e3 = (1, 1)/sqrt 2; rel = 1, .9, .5, 0.
    step 1: .5 rel -> 0 (.5); max sim to S = (1, 1, 0, .7071)
    step 2: 1: .45 - .5 = -.05;  2: .25 - 0 = .25;  3: 0 - .3536 -> 2 (.25)
            max sim = (1, 1, 1, .7071)
    step 3: 1: -.05;  3: -.3536                                  -> 1
    step 4: 3: -.3536                                            -> 3
    """
    emb = np.array([[1, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)
    ctx = Context.from_data([4, 3, 2, 1], tail=[False] * 4, embedding=emb, n_users=1)
    cand = Candidates(np.arange(4), np.array([1.0, 0.9, 0.5, 0.0]))
    r = build({"strategy": "mmr", "lambda": 0.5}).rerank(cand, ctx, 0, 4)
    assert _ids(r) == [0, 2, 1, 3]
    half_sqrt2 = math.sqrt(2) / 4
    assert r.scores.tolist() == pytest.approx([0.5, 0.25, -0.05, -half_sqrt2], abs=1e-6)
    assert r.reasons[1] == "moved up for diversity (max similarity 0.00)"


def test_mmr_by_category() -> None:
    """The same pool with categories A, A, B, A (similarity 1 within a category), lambda .5:

    step 1: 0 (.5);  step 2: 1: .45 - .5 = -.05;  2: .25;  3: 0 - .5 -> 2;
    step 3: 1: -.05 against 3: -.5 -> 1;  step 4: 3 (-.5).
    """
    ctx = Context.from_data([4, 3, 2, 1], tail=[False] * 4, category=["A", "A", "B", "A"])
    cand = Candidates(np.arange(4), np.array([1.0, 0.9, 0.5, 0.0]))
    r = build({"strategy": "mmr", "lambda": 0.5, "by": "category"}).rerank(cand, ctx, None, 4)
    assert _ids(r) == [0, 2, 1, 3]
    assert r.scores.tolist() == pytest.approx([0.5, 0.25, -0.05, -0.5], abs=1e-12)


# ------------------------------------------------------------------------------- calibration


def test_calibration_steck() -> None:
    """Steck 2018: maximise (1 - l) sum rel - l KL(p || q~), q~ = (1 - a) q + a p, a = .01.

    Buckets head/tail; history 2 head + 2 tail items: p = (.5, .5). Pool rel = 1, .9 (head),
    .5, 0 (tail); lambda = .5. With K(x) = KL(p || q~) for q = (x, 1 - x):
      K(1) = .5 ln(.5/.995) + .5 ln(.5/.005) = 1.9585178;  K(1/2) = 0;
      K(2/3) = .5 ln(.5/.665) + .5 ln(.5/.335) = .0576493.
    step 1: {0}: .5 - .5 K(1) = -.4792589;  {2}: .25 - .5 K(0) (same K) -> 0
    step 2: {0,1}: .5*1.9 - .5 K(1) = -.0293;  {0,2}: .5*1.5 - 0 = .75    -> 2
    step 3: {0,2,1}: 1.2 - .5 K(2/3) = 1.1712;  {0,2,3}: .75 - .5 K(1/3) -> 1
    step 4: 3.
    Final scores = marginals (1 - l) rel(i) - l (K after - K before):
      -.4792589, .25 + .5 K(1) = 1.2292589, .45 - .5 K(2/3) = .4211753, .5 K(2/3) = .0288247.
    """
    ctx = Context.from_data(
        [9, 8, 7, 6, 1, 1, 1, 1],
        tail=[False] * 4 + [True] * 4,
        history=[[2, 3, 6, 7]],
    )
    cand = Candidates(np.array([0, 1, 4, 5]), np.array([1.0, 0.9, 0.5, 0.0]))
    r = build({"strategy": "calibration", "lambda": 0.5}).rerank(cand, ctx, 0, 4)
    assert _ids(r) == [0, 4, 1, 5]
    k1 = 0.5 * math.log(0.5 / 0.995) + 0.5 * math.log(0.5 / 0.005)
    k23 = 0.5 * math.log(0.5 / 0.665) + 0.5 * math.log(0.5 / 0.335)
    want = [0.5 - 0.5 * k1, 0.25 + 0.5 * k1, 0.45 - 0.5 * k23, 0.5 * k23]
    assert r.scores.tolist() == pytest.approx(want, abs=1e-12)
    assert want == pytest.approx([-0.4792589, 1.2292589, 0.4211753, 0.0288247], abs=1e-7)


def test_calibrated_popularity() -> None:
    """Abdollahpouri et al. 2021 (CP): maximise (1 - l) sum rel - l JS(p, q(S)), JS in bits.

    Popularity 50, 30, 8, 4, 3, 2, 2, 1 (100 interactions): head = item 0 (the first 20%),
    mid = item 1 (up to 80%), tail = items 2..7. History {0, 5, 6, 7}: p = (.25, 0, .75).
    Pool items 0 (H, rel 1), 1 (M, .9), 2 (T, .5), 3 (T, .3), 4 (T, 0); lambda = .5.
    step 1: q = H (1,0,0): JS = .5487949 -> .5 - .2743975 = .2256025
            q = M (0,1,0): JS = 1        -> .45 - .5 = -.05
            q = T (0,0,1): JS = .1379254 -> .25 - .0689627 = .1810373       -> 0
    step 2: H+M (.5,.5,0): JS = .6556391 -> .45 - .3278195 = .1221805
            H+T (.5,0,.5): JS = .0487949 -> .25 - .0243975 = .2256025       -> 2
    step 3: H+T+M (1/3 each): JS = .2302922 -> .45 - .1151461 = .3348539
            H+T+T (1/3,0,2/3): JS = .0060775 -> .15 - .0030387 = .1469613   -> 1
    step 4: only tail left: 3 (rel .3), q = (.25,.25,.5), JS = .1431559       -> 3
    Final scores (marginals): .2256025, .25 - .5(.0487949 - .5487949) = .5,
    .45 - .5(.2302922 - .0487949) = .3592514, .15 - .5(.1431559 - .2302922) = .1935681.
    """
    ctx = Context.from_data(
        [50, 30, 8, 4, 3, 2, 2, 1], tail=[False, False] + [True] * 6, history=[[0, 5, 6, 7]]
    )
    cand = Candidates(np.arange(5), np.array([1.0, 0.9, 0.5, 0.3, 0.0]))
    r = build({"strategy": "calibrated_popularity", "lambda": 0.5}).rerank(cand, ctx, 0, 4)
    assert _ids(r) == [0, 2, 1, 3]
    assert r.scores.tolist() == pytest.approx([0.2256025, 0.5, 0.3592514, 0.1935681], abs=1e-7)
    assert r.reasons[1] == "moved up for calibrated popularity (tail: 75% of the user's history)"


# ------------------------------------------------------------------------------------- FA*IR


def test_fair_zehlike() -> None:
    """Zehlike et al. 2017, Algorithm 2 (FA*IR), p = .5, alpha = .1, k = 10.

    m(k) from the paper's Table 2 (p = .5): 0 0 0 1 1 1 2 2 3 3. The pool holds six head items
    (base ranks 1..6) above six tail items (base ranks 7..12): position r takes the best tail
    item when the prefix has fewer than m(r) tail items, else the better queue head.
      r 1..3: m = 0 -> head 1, 2, 3;  r 4: m = 1, none yet -> tail 7;  r 5, 6: head 4, 5;
      r 7: m = 2 -> tail 8;  r 8: head 6;  r 9: m = 3 -> tail 9;  r 10: head queue empty -> 10.
    Final scores are rel of the chosen items: (s - 1) / 11 with base scores 12 .. 1.
    """
    assert m_table(10, 0.5, 0.1) == (0, 0, 0, 1, 1, 1, 2, 2, 3, 3)
    tail = [False] * 6 + [True] * 6
    ctx = Context.from_data(np.arange(12, 0, -1), tail=tail, n_users=1)
    cand = Candidates(np.arange(12), np.arange(12, 0, -1).astype(float))
    r = build({"strategy": "fair", "p": 0.5, "alpha": 0.1}).rerank(cand, ctx, 0, 10)
    assert _ids(r) == [0, 1, 2, 6, 3, 4, 7, 5, 8, 9]
    assert r.base_ranks.tolist() == [1, 2, 3, 7, 4, 5, 8, 6, 9, 10]
    want = [(12 - i - 1) / 11 for i in [0, 1, 2, 6, 3, 4, 7, 5, 8, 9]]
    assert r.scores.tolist() == pytest.approx(want, abs=1e-12)
    assert r.reasons[3] == "moved up: FA*IR needs 1 tail items in the top 4"


# ------------------------------------------------------------------- base order and tail boost


def _boost_shop() -> tuple[Context, Candidates]:
    # Items 0..4, tail = {2, 3, 4}; popularity 255, 15, 3, 0, 1, so log(1 + pop) is 8, 4, 2, 0
    # and 1 times ln 2 and 1 - log(1 + pop) / log(1 + max pop) = 0, .5, .75, 1, .875.
    # Base scores 1, .8, .6, .4, 0 -> rel = 1, .8, .6, .4, 0.
    ctx = Context.from_data([255, 15, 3, 0, 1], tail=[False, False, True, True, True], n_users=1)
    return ctx, Candidates(np.arange(5), np.array([1.0, 0.8, 0.6, 0.4, 0.0]))


def test_base_order() -> None:
    """No strategy: the pool's first K in base order, with the base model's own scores."""
    ctx = Context.from_data([5, 4, 3, 2, 1], tail=[False, False, True, True, True], n_users=1)
    cand = Candidates(np.arange(5), np.array([5.0, 4.0, 3.0, 2.0, 1.0]))
    r = build({"strategy": "none"}).rerank(cand, ctx, 0, 3)
    assert _ids(r) == [0, 1, 2]
    assert r.scores.tolist() == [5.0, 4.0, 3.0]
    assert list(r.reasons) == ["base rank"] * 3


def test_tail_boost_by_tail_flag() -> None:
    """s'(i) = rel(i) + beta * 1[i in tail], beta = .5:

    s' = 1, .8, .6 + .5 = 1.1, .4 + .5 = .9, 0 + .5 = .5 -> 2, 0, 3, 1, 4.
    """
    ctx, cand = _boost_shop()
    r = build({"strategy": "tail_boost", "beta": 0.5}).rerank(cand, ctx, 0, 5)
    assert _ids(r) == [2, 0, 3, 1, 4]
    assert r.scores.tolist() == pytest.approx([1.1, 1.0, 0.9, 0.8, 0.5], abs=1e-12)
    assert r.base_ranks.tolist() == [3, 1, 4, 2, 5]
    assert list(r.reasons) == [
        "boosted: tail item (+0.50)",
        "moved down from 1",
        "boosted: tail item (+0.50)",
        "moved down from 2",
        "base rank",
    ]


def test_tail_boost_by_log_popularity() -> None:
    """s'(i) = rel(i) + beta * (1 - log(1 + pop) / log(1 + max pop)), beta = 1:

    s' = 1 + 0, .8 + .5 = 1.3, .6 + .75 = 1.35, .4 + 1 = 1.4, 0 + .875 -> 3, 2, 1, 0, 4.
    """
    ctx, cand = _boost_shop()
    cfg = {"strategy": "tail_boost", "beta": 1.0, "signal": "log_popularity"}
    r = build(cfg).rerank(cand, ctx, 0, 5)
    assert _ids(r) == [3, 2, 1, 0, 4]
    assert r.scores.tolist() == pytest.approx([1.4, 1.35, 1.3, 1.0, 0.875], abs=1e-12)
    assert list(r.reasons) == [
        "boosted: low popularity (+1.00)",
        "boosted: low popularity (+0.75)",
        "moved down from 2",
        "moved down from 1",
        "base rank",
    ]


def test_tail_select_by_log_popularity() -> None:
    """The same boost selects K = 3 items {3, 2, 1}; tail_select lists them in base order
    (1, 2, 3) with their rel as final scores .8, .6, .4."""
    ctx, cand = _boost_shop()
    cfg = {"strategy": "tail_select", "beta": 1.0, "signal": "log_popularity"}
    r = build(cfg).rerank(cand, ctx, 0, 3)
    assert _ids(r) == [1, 2, 3]
    assert r.scores.tolist() == pytest.approx([0.8, 0.6, 0.4], abs=1e-12)
    assert list(r.reasons) == [  # each is above its base rank 2, 3, 4: moved up
        "selected: low popularity (+0.50)",
        "selected: low popularity (+0.75)",
        "selected: low popularity (+1.00)",
    ]
