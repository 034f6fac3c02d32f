"""The classification view: sampled negatives and confusion-matrix metrics, labelled."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ltrec.errors import BadInputError
from ltrec.evaluation.classification import (
    LABEL,
    ClassificationConfig,
    classification_metrics,
    classification_view,
    sample_negatives,
)


def test_metrics_by_hand():
    # y:    1    1    1    0    0    0
    # p:   .9   .6   .4   .7   .2   .1   threshold .5
    # pred: 1    1    0    1    0    0 -> TP 2, FN 1, FP 1, TN 2
    # accuracy 4/6; precision 2/3; recall 2/3; F1 2/3
    # AUC: positive > negative pairs: .9 beats 3, .6 beats 2 (.2, .1), .4 beats 2 -> 7/9
    r = classification_metrics(
        np.array([1, 1, 1, 0, 0, 0]), np.array([0.9, 0.6, 0.4, 0.7, 0.2, 0.1])
    )
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.precision == pytest.approx(2 / 3) and r.recall == pytest.approx(2 / 3)
    assert r.f1 == pytest.approx(2 / 3) and r.auc == pytest.approx(7 / 9)
    assert r.label == LABEL and "not a ranking metric" in r.to_dict()["label"]


def test_sampled_negatives_avoid_interactions_and_are_seeded():
    dense = np.random.default_rng(0).random((50, 30)) < 0.6
    dense[3] = True  # user 3 interacted with everything: gets no negative
    inter = sp.csr_matrix(dense)
    users = np.repeat(np.arange(50), 4)
    nu, ni = sample_negatives(users, inter, per_positive=2, seed=5)
    assert 3 not in nu and len(nu) == (50 - 1) * 4 * 2
    assert not np.asarray(inter[nu, ni]).any()
    nu2, ni2 = sample_negatives(users, inter, per_positive=2, seed=5)
    assert np.array_equal(ni, ni2)


def test_view_with_a_perfect_and_a_random_model():
    inter = sp.csr_matrix(np.eye(20, 40, dtype=bool))
    pos_u, pos_i = np.arange(20), np.arange(20)

    def perfect(u, i):
        return (i == u).astype(float)

    r = classification_view(perfect, pos_u, pos_i, inter, ClassificationConfig(seed=1))
    assert r.accuracy == 1.0 and r.auc == 1.0 and r.n_pos == 20 and r.n_neg == 20
    r2 = classification_view(lambda u, i: np.full(len(u), 0.5), pos_u, pos_i, inter)
    assert r2.auc == 0.5 and r2.recall == 1.0
    with pytest.raises(BadInputError):
        classification_view(perfect, np.array([], int), np.array([], int), inter)
    with pytest.raises(BadInputError):
        classification_view(lambda u, i: np.ones(3), pos_u, pos_i, inter)
