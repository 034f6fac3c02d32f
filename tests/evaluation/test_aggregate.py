"""Bootstrap intervals, paired tests, comparisons, segment breakdowns, Pareto fronts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltrec.errors import BadInputError
from ltrec.evaluation import compare, evaluate, paired_test, pareto_front
from ltrec.evaluation.aggregate import bc_interval, boot_counts, boot_means


def _run(seed: int, n_users: int = 300, n_items: int = 40, k: int = 5, shift: int = 0):
    rng = np.random.default_rng(seed)
    pop = np.sort(rng.zipf(1.5, n_items).astype(float))[::-1]
    scores = rng.random((n_users, n_items)) + shift * np.linspace(1, 0, n_items)
    recs = np.argsort(-scores, axis=1)[:, :k]
    test = [rng.choice(n_items, size=3, replace=False) for _ in range(n_users)]
    return recs, test, pop


def test_boot_counts_resample_n_users_each_and_are_seeded():
    chunks = list(boot_counts(50, 130, seed=3))
    c = np.concatenate(chunks)
    assert c.shape == (130, 50) and np.all(c.sum(axis=1) == 50)
    again = np.concatenate(list(boot_counts(50, 130, seed=3)))
    assert np.array_equal(c, again)
    assert not np.array_equal(c, np.concatenate(list(boot_counts(50, 130, seed=4))))


def test_boot_means_match_a_plain_bootstrap():
    rng = np.random.default_rng(0)
    v = rng.normal(1.0, 2.0, 400)
    mean, low, high, n = boot_means(v, n_boot=2000, seed=1)
    assert mean[0] == pytest.approx(v.mean()) and n[0] == 400
    se = v.std(ddof=1) / np.sqrt(400)
    # percentile interval close to the normal interval mean +- 1.96 se
    assert low[0] == pytest.approx(v.mean() - 1.96 * se, abs=0.35 * se)
    assert high[0] == pytest.approx(v.mean() + 1.96 * se, abs=0.35 * se)
    m2 = boot_means(np.where(np.arange(400) % 2 == 0, v, np.nan), n_boot=100, seed=1)
    assert m2[3][0] == 200 and m2[0][0] == pytest.approx(v[::2].mean())


def test_bc_interval_recentres_a_biased_bootstrap():
    samples = np.linspace(1.0, 2.0, 1001)  # mean 1.5; the estimate 1.0 sits below every sample
    lo, hi = bc_interval(samples, 1.0)  # bias 0.5: the percentile interval shifted down by it
    assert lo == pytest.approx(1.025 - 0.5, abs=1e-3) and hi == pytest.approx(1.975 - 0.5, abs=1e-3)
    lo2, hi2 = bc_interval(samples, 1.5)  # unbiased: the plain percentile interval
    assert lo2 == pytest.approx(1.025, abs=1e-3) and hi2 == pytest.approx(1.975, abs=1e-3)


def test_evaluate_is_reproducible_and_intervals_contain_means():
    recs, test, pop = _run(0)
    a = evaluate(recs, test, item_pop=pop, k=5, n_boot=200, seed=7)
    b = evaluate(recs, test, item_pop=pop, k=5, n_boot=200, seed=7)
    assert a.to_dict() == b.to_dict()
    for name, mv in a.metrics.items():
        if mv.low is not None:
            assert mv.low <= mv.mean <= mv.high, name


def test_paired_test_detects_a_real_difference_and_not_a_null_one():
    recs, test, pop = _run(1)
    base = evaluate(recs, test, item_pop=pop, k=5, n_boot=100)
    # a setting that puts a test item first for every user: much better NDCG
    better = recs.copy()
    better[:, 0] = [t[0] for t in test]
    better = np.where((better == better[:, :1]) & (np.arange(5) > 0), -1, better)
    good = evaluate(better, test, item_pop=pop, k=5, n_boot=100)
    t = paired_test(base, good, "ndcg@5", n_boot=200)
    assert t.delta > 0 and t.p_value < 1e-6 and t.low > 0 and t.n == 300
    same = paired_test(base, base, "ndcg")
    assert same.p_value == 1.0 and same.delta == 0.0
    with pytest.raises(BadInputError):
        paired_test(base.per_user["ndcg"].iloc[:0], base, "ndcg")


def test_compare_gives_deltas_with_paired_intervals():
    recs, test, pop = _run(2)
    base = evaluate(recs, test, item_pop=pop, k=5, n_boot=100)
    boosted = np.argsort(-np.random.default_rng(9).random((300, 40)), axis=1)[:, :5]
    other = evaluate(boosted, test, item_pop=pop, k=5, n_boot=100)
    df = compare(other, base, n_boot=100)
    assert list(df.columns) == [
        "metric",
        "base",
        "value",
        "delta",
        "low",
        "high",
        "rel_delta",
        "p_value",
        "higher_is_better",
    ]
    row = df.set_index("metric").loc["ndcg@5"]
    assert row["delta"] == pytest.approx(other["ndcg"].mean - base["ndcg"].mean)
    assert row["low"] <= row["delta"] <= row["high"]
    gini = df.set_index("metric").loc["gini@5"]
    assert gini["low"] is not None and not gini["higher_is_better"]
    assert compare(base, base, n_boot=50)["delta"].abs().max() == 0.0


def test_segment_breakdown_suppresses_small_cells():
    recs, test, pop = _run(3, n_users=60)
    seg = pd.DataFrame(
        {
            "user_id": np.arange(60),
            "region": ["north"] * 30 + ["south"] * 25 + ["east"] * 5,
            "tier": ["gold"] * 10 + ["basic"] * 49 + [None],
        }
    )
    r = evaluate(recs, test, item_pop=pop, k=5, n_boot=50, segments=seg, small_cell_k=10)
    s = r.segments
    east = s[(s.dimension == "region") & (s.segment == "east")]
    assert len(east) == 1 and east["suppressed"].item() and pd.isna(east["n_users"].item())
    assert east["mean"].isna().all()
    north = s[(s.dimension == "region") & (s.segment == "north")].set_index("metric")
    assert north.loc["ndcg@5", "n_users"] == 30
    assert north.loc["ndcg@5", "mean"] == pytest.approx(r.per_user["ndcg"].iloc[:30].mean())
    assert "gini@5" in north.index  # catalogue metrics per segment too
    unknown = s[(s.dimension == "tier") & (s.segment == "(unknown)")]
    assert unknown["suppressed"].all()
    # default threshold from the settings (10)
    r2 = evaluate(recs, test, item_pop=pop, k=5, n_boot=0, segments=seg[["user_id", "region"]])
    assert r2.segments.query("segment == 'east'")["suppressed"].all()
    with pytest.raises(BadInputError):
        from ltrec.evaluation import segment_breakdown

        segment_breakdown(r.per_user, seg, k=5, columns=["nope"])


def test_pareto_front():
    pts = np.array([[0.30, 0.10], [0.28, 0.30], [0.20, 0.50], [0.25, 0.25], [0.20, 0.50]])
    assert pareto_front(pts).tolist() == [True, True, True, False, True]
    # minimising the second objective instead
    assert pareto_front(pts, (True, False)).tolist() == [True, False, False, False, False]
    assert pareto_front(np.array([[np.nan, 1.0], [0.1, 0.2]])).tolist() == [False, True]
    with pytest.raises(BadInputError):
        pareto_front(pts, (True,))
