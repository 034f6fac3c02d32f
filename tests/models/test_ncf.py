"""Hybrid NCF: the conformance suite, numpy scoring == the Keras graph, classification view."""

from __future__ import annotations

import copy

import numpy as np

from ltrec.models.data import InteractionData
from ltrec.models.keras_util import graph_tables, item_id_inputs, item_inputs, tf, user_inputs
from ltrec.models.ncf import NCF, NCFConfig
from ltrec.models.repeat import repeat_blend
from tests.models.conformance import RecommenderConformance, fixture_text_encoder

SMALL = dict(
    id_dim=8,
    side_dim=4,
    text_dim=8,
    hidden=16,
    factors=8,
    history=5,
    negatives=4,
    epochs=30,
    batch_size=64,
    learning_rate=0.01,
    seed=5,
)


class TestNCF(RecommenderConformance):
    history_reads_user = True  # the user tower reads the user id and segments too

    def make_model(self) -> NCF:
        return NCF(**SMALL)

    def test_contributions_are_item_q_cosines(self, model, data) -> None:  # noqa: ANN001
        """Embedding reasons: the history items nearest each listed item by the GMF item factors."""
        row = data.matrix[data.user_index["uT"]]
        hist = row.indices
        items = np.array(self.ix(data, "a3", "b1", "c0"))
        v = model.item_q_ / np.linalg.norm(model.item_q_, axis=1, keepdims=True)
        cos = v[items] @ v[hist].T
        got = model.contributions(row, items, top=2)
        assert got.method == "embedding"
        for r, pairs in enumerate(got.rows):
            order = np.lexsort((hist, -cos[r]))[:2]
            want = [(int(hist[j]), float(cos[r, j])) for j in order if cos[r, j] > 1e-6]
            assert [j for j, _ in pairs] == [j for j, _ in want]
            np.testing.assert_allclose([c for _, c in pairs], [c for _, c in want], rtol=1e-5)

    def test_numpy_scores_equal_the_keras_graph(self, model: NCF, data: InteractionData) -> None:
        users = np.array([data.user_index["uT"], data.user_index["uA0"], data.user_index["uB3"]])
        items = np.arange(data.n_items)
        uu, ii = np.repeat(users, len(items)), np.tile(items, len(users))
        g = graph_tables(model.tables_, item_id_inputs(model.seen_))
        uu32, ii32 = uu.astype(np.int32), ii.astype(np.int32)
        hist = np.asarray(g["hist"])[uu]
        inputs = [
            *user_inputs(g, uu32, tf.constant(uu32 + 1), tf.constant(hist)),
            *item_inputs(g, ii32, tf.gather(g["item_id"], ii32)),
        ]
        logit = np.asarray(model.net_(inputs, training=False)).reshape(len(users), -1)
        np.testing.assert_allclose(model.score(users), logit, rtol=1e-4, atol=1e-5)
        p = model.predict_proba(uu, ii).reshape(len(users), -1)
        np.testing.assert_allclose(p, 1 / (1 + np.exp(-logit)), rtol=1e-4, atol=1e-6)

    def test_repeat_blend_reads_the_probability(self, model: NCF, data: InteractionData) -> None:
        """The blend mixes p = sigma(logit), not the logit (whose offset is arbitrary)."""
        users = np.array([data.user_index["uT"], data.user_index["uA0"]])
        assert model.repeat_weight_ == model.popularity_weight_ == 0.0  # not a repeat domain
        blended = copy.copy(model)
        blended.config = NCFConfig(**SMALL, repeat_weight=0.3, popularity_weight=0.5)
        p = 1 / (1 + np.exp(-model.score(users)))
        want = repeat_blend(p, model.seen_[users], 0.3, model.pop_, 0.5)
        np.testing.assert_allclose(blended.score(users), want, rtol=1e-5, atol=1e-6)

    def test_classification_view(self, model: NCF, data: InteractionData) -> None:
        # The conformance fixture's known answer, as held-out positives: (uT, a3) etc.
        pos_u = np.array([data.user_index["uT"]] * 1 + [data.user_index["uB9"]] * 2)
        pos_i = np.array([data.item_index[i] for i in ("a3", "b1", "b2")])
        res = model.classification(data, pos_u, pos_i)
        assert res.n_pos == 3 and res.n_neg > 0
        for v in (res.accuracy, res.precision, res.recall, res.f1):
            assert 0.0 <= v <= 1.0

    def test_new_item_scored_from_content(self, model: NCF, data: InteractionData) -> None:
        kitchen, shoes = data.category_names.index("kitchen"), data.category_names.index("shoes")
        text = fixture_text_encoder(
            [
                "Chef knife. Forged steel kitchen blade for slicing and dicing",
                "Running shoe. Lightweight trainer sneaker with cushioned sole for running",
            ]
        )
        a_users = np.array([data.user_index[f"uA{i}"] for i in range(5)])
        b_users = np.array([data.user_index[f"uB{i}"] for i in range(10)])
        args = (np.array([kitchen, shoes]), np.zeros(2), np.ones(2), text)
        sa, sb = model.item_logits_for(a_users, *args), model.item_logits_for(b_users, *args)
        assert np.isfinite(sa).all() and sa.shape == (5, 2)
        assert (sa[:, 0] > sa[:, 1]).mean() >= 0.8 and (sb[:, 1] > sb[:, 0]).mean() >= 0.8


def test_early_stopping_on_validation_recall() -> None:
    from tests.models.test_two_tower import _clustered

    data = _clustered()
    calls: list[tuple[float, str]] = []
    cfg = {**SMALL, "epochs": 30, "val_users": 30, "patience": 2, "val_k": 5}
    model = NCF(**cfg).fit(data, progress=lambda d, m: calls.append((d, m)))
    recalls = [h["recall"] for h in model.history_]
    assert recalls and all(r is not None and 0.0 <= r <= 1.0 for r in recalls)
    assert max(recalls) > 5 / 30  # better than chance: the clusters are learnt
    assert any("val recall@5" in m for _, m in calls)
    if len(recalls) < 30:  # stopped: the last `patience` epochs did not beat the best
        assert any("early stop" in m for _, m in calls)
        assert max(recalls[-2:]) <= max(recalls[:-2])
    # Without validation users nothing is held out and every epoch runs.
    plain = NCF(**{**cfg, "val_users": 0, "epochs": 3}).fit(data)
    assert [h["recall"] for h in plain.history_] == [None, None, None]
