"""Two-tower: the conformance suite, the loss, content-only items, cold users, early stopping."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from ltrec.models.data import InteractionData
from ltrec.models.repeat import repeat_blend
from ltrec.models.two_tower import TwoTower, TwoTowerConfig, in_batch_loss
from tests.models.conformance import (
    RecommenderConformance,
    conformance_data,
    fixture_text_encoder,
)

SMALL = dict(
    dim=16,
    id_dim=8,
    side_dim=4,
    text_dim=8,
    hidden=32,
    history=5,
    epochs=40,
    batch_size=16,
    learning_rate=0.01,
    val_users=0,
    seed=11,  # the item text gained category and brand (one item_text): seed 7 put cold c0 first
    uniform_negatives=8,
)


class TestTwoTower(RecommenderConformance):
    history_reads_user = True  # the user tower reads the user id and segments too

    def make_model(self) -> TwoTower:
        return TwoTower(**SMALL)

    def test_contributions_are_item_vecs_cosines(self, model, data) -> None:  # noqa: ANN001
        """Embedding reasons: the history items nearest each listed item (item-tower vectors)."""
        row = data.matrix[data.user_index["uT"]]
        hist = row.indices
        items = np.array(self.ix(data, "a3", "b1", "c0"))
        v = model.item_vecs_ / np.linalg.norm(model.item_vecs_, axis=1, keepdims=True)
        cos = v[items] @ v[hist].T
        got = model.contributions(row, items, top=2)
        assert got.method == "embedding"
        for r, pairs in enumerate(got.rows):
            order = np.lexsort((hist, -cos[r]))[:2]
            want = [(int(hist[j]), float(cos[r, j])) for j in order if cos[r, j] > 1e-6]
            assert [j for j, _ in pairs] == [j for j, _ in want]
            np.testing.assert_allclose([c for _, c in pairs], [c for _, c in want], rtol=1e-5)

    def test_new_item_scored_from_content(self, model: TwoTower, data: InteractionData) -> None:
        # Brand-new items (not in the catalogue): only category, brand, price band and text.
        kitchen, shoes = data.category_names.index("kitchen"), data.category_names.index("shoes")
        text = fixture_text_encoder(
            [
                "Chef knife. Forged steel kitchen blade for slicing and dicing",
                "Running shoe. Lightweight trainer sneaker with cushioned sole for running",
            ]
        )
        v = model.item_vectors_for(np.array([kitchen, shoes]), np.zeros(2), np.ones(2), text)
        assert v.shape == (2, SMALL["dim"]) and np.isfinite(v).all()
        a_users = [data.user_index[f"uA{i}"] for i in range(5)] + [data.user_index["uT"]]
        b_users = [data.user_index[f"uB{i}"] for i in range(10)]
        s = model.user_vecs_ @ v.T
        assert (s[a_users, 0] > s[a_users, 1]).mean() >= 0.8  # kitchen people: the knife
        assert (s[b_users, 1] > s[b_users, 0]).mean() >= 0.8  # runners: the shoe

    def test_repeat_blend_reads_the_softmax(self, model: TwoTower, data: InteractionData) -> None:
        """The blend mixes p_ui / max_j p_uj = exp(s_ui - max_j s_uj) of the full softmax."""
        users = np.array([data.user_index["uT"], data.user_index["uA0"]])
        assert model.repeat_weight_ == model.popularity_weight_ == 0.0  # not a repeat domain
        blended = copy.copy(model)
        blended.config = TwoTowerConfig(**SMALL, repeat_weight=0.3, popularity_weight=0.5)
        s = model.score(users)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        want = repeat_blend(p, model.seen_[users], 0.3, model.pop_, 0.5)
        np.testing.assert_allclose(blended.score(users), want, rtol=1e-5, atol=1e-6)

    def test_cold_users_from_the_tower(self, model: TwoTower, data: InteractionData) -> None:
        tower = TwoTower(**{**SMALL, "cold_users": "tower"})
        # Same weights and tables: only the cold-user rule differs.
        tower.__dict__.update({k: v for k, v in model.__dict__.items() if k != "config"})
        un = data.user_index["uN"]
        s = tower.score(np.array([un, -1]))
        np.testing.assert_allclose(
            s[0], model.user_vecs_[un] @ model.item_vecs_.T, rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(s[1], model.anon_vec_ @ model.item_vecs_.T, rtol=1e-5, atol=1e-6)
        assert not np.allclose(s[0], s[1])  # segments (region, device) inform the vector


def test_in_batch_loss_matches_the_formula() -> None:
    rng = np.random.default_rng(0)
    b, m, d, tau = 4, 2, 3, 0.5
    u = rng.normal(size=(b, d)).astype(np.float32)
    v = rng.normal(size=(b + m, d)).astype(np.float32)
    items = np.array([0, 1, 0, 2], np.int32)  # item 0 twice: rows 0 and 2 mask each other
    cols = np.concatenate([items, np.array([2, 5], np.int32)])
    w = np.array([1.0, 2.0, 1.0, 1.0], np.float32)
    log_q = np.log(rng.uniform(0.1, 3.0, size=b + m)).astype(np.float32)

    logits = (u @ v.T) / tau - log_q[None, :]
    expected = []
    for r in range(b):
        row = logits[r].copy()
        for c in range(b + m):
            if c != r and cols[c] == items[r]:
                row[c] = -np.inf
        expected.append(-(row[r] - np.log(np.exp(row[np.isfinite(row)]).sum())))
    want = float((w * np.array(expected)).sum() / w.sum())
    got = float(in_batch_loss(u, v, items, cols, w, 1 / tau, log_q))
    assert got == pytest.approx(want, rel=1e-5)
    # Without the correction the loss differs (the correction is really applied).
    plain = float(in_batch_loss(u, v, items, cols, w, 1 / tau, None))
    assert plain != pytest.approx(got, rel=1e-3)


def _clustered(n_users: int = 60, n_items: int = 30, seed: int = 0) -> InteractionData:
    """Users who each buy within one of three item clusters (a learnable structure)."""
    rng = np.random.default_rng(seed)
    rows = []
    t0 = pd.Timestamp("2024-01-01")
    for u in range(n_users):
        c = u % 3
        pool = np.arange(c, n_items, 3)
        for j, i in enumerate(rng.choice(pool, 5, replace=False)):
            rows.append((f"u{u}", f"i{i:02d}", "view", t0 + pd.Timedelta(hours=u * 10 + j)))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts"])
    words = ["kitchen knife blade", "running shoe sneaker", "garden hose plant"]
    items = pd.DataFrame(
        {
            "item_id": [f"i{i:02d}" for i in range(n_items)],
            "title": [words[i % 3] + f" {i}" for i in range(n_items)],
            "category": [f"c{i % 3}" for i in range(n_items)],
        }
    )
    return InteractionData.from_frame(
        events, items, text_encoder=("bow", lambda t: fixture_text_encoder(t, 16))
    )


def test_early_stopping_and_progress() -> None:
    data = _clustered()
    calls: list[tuple[float, str]] = []
    cfg = {**SMALL, "epochs": 30, "val_users": 30, "patience": 2, "val_k": 5}
    model = TwoTower(**cfg).fit(data, progress=lambda d, m: calls.append((d, m)))
    epochs = [h for h in model.history_ if h["recall"] is not None]
    assert epochs and all(0.0 <= h["recall"] <= 1.0 for h in epochs)
    assert any("val recall@5" in m and "s left" in m for _, m in calls)
    best = max(h["recall"] for h in epochs)
    assert best > 5 / 30  # better than chance: the clusters are learnt
    if len(model.history_) < 30:  # stopped early: patience epochs without improvement
        assert any("early stop" in m for _, m in calls)
        tail = [h["recall"] for h in model.history_[-2:]]
        assert max(tail) <= best
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_logq_switch_changes_the_model() -> None:
    data = conformance_data()
    cfg = {**SMALL, "epochs": 3}
    on = TwoTower(**cfg).fit(data).score(np.arange(data.n_users))
    off = TwoTower(**{**cfg, "logq": False}).fit(data).score(np.arange(data.n_users))
    assert not np.allclose(on, off)


@pytest.mark.slow
def test_train_save_load_through_the_registry(data_dir) -> None:
    """The product path: store -> text vectors (cached) -> fit -> evaluate -> run -> reload."""
    from ltrec.models.registry import load_run
    from ltrec.models.train import train
    from ltrec.store import connect, writing
    from tests.models.conformance import conformance_frames

    events, items, users = conformance_frames()
    with writing("shop") as con:
        con.register("ev", events)
        con.execute("INSERT INTO events (user_id, item_id, event_type, ts) SELECT * FROM ev")
        con.register("it", items)
        con.execute(
            "INSERT INTO items (item_id, title, description, category, brand, price) "
            "SELECT item_id, title, description, category, brand, price FROM it"
        )
        con.register("us", users[["user_id"]])
        con.execute("INSERT INTO users SELECT * FROM us")
    res = train("shop", "two_tower", {**SMALL, "epochs": 5}, n_boot=20)
    assert set(res.to_dict()["metrics"]) >= {"recall@10", "ndcg@10", "aplt@10", "coverage@10"}
    # No validation hold-out (val_users=0): nothing measured, so no data note; the key is there.
    assert res.to_dict()["data_note"] is None and "data_note" in res.run.manifest
    con = connect("shop")
    (cached,) = con.execute("SELECT count(*) FROM embeddings").fetchall()[0]
    con.close()
    assert cached == len(items)  # every item's text vector is cached in the store
    run = load_run("shop", res.run_id)
    users_idx = np.arange(run.model.n_users_)
    np.testing.assert_array_equal(run.model.score(users_idx), res.model.score(users_idx))


def test_lookup_counts_known_answer() -> None:
    import scipy.sparse as sp

    from ltrec.models.two_tower import _count_table, lookup_counts

    counts = sp.csr_matrix(np.array([[0, 2, 0], [1, 0, 3]], np.float32))
    keys, n = _count_table(counts)
    users = np.array([[0], [1]], np.int32)
    items = np.array([[0, 1, 2]], np.int32)
    got = lookup_counts(keys, n, users, items, 3).numpy()
    np.testing.assert_array_equal(got, counts.toarray())
    empty_keys, empty_n = _count_table(sp.csr_matrix((2, 3), dtype=np.float32))
    assert not lookup_counts(empty_keys, empty_n, users, items, 3).numpy().any()


def test_sampled_softmax_without_batch_negatives() -> None:
    from ltrec.errors import ConfigError

    rng = np.random.default_rng(1)
    b, m, d = 3, 2, 4
    u = rng.normal(size=(b, d)).astype(np.float32)
    v = rng.normal(size=(b + m, d)).astype(np.float32)
    items = np.array([0, 1, 2], np.int32)
    cols = np.array([0, 1, 2, 7, 8], np.int32)
    w = np.ones(b, np.float32)
    logits = u @ v.T
    want = np.mean([-(logits[r, r] - np.log(np.exp(logits[r, [r, 3, 4]]).sum())) for r in range(b)])
    got = float(in_batch_loss(u, v, items, cols, w, 1.0, None, None, batch_negatives=False))
    assert got == pytest.approx(want, rel=1e-5)
    with pytest.raises(ConfigError, match="uniform_negatives"):
        TwoTower(batch_negatives=False)


def _repeat_buyers(n_users: int = 40, n_items: int = 24, seed: int = 0) -> InteractionData:
    """Each user buys a personal staple 4 times and 4 other random items once."""
    rng = np.random.default_rng(seed)
    rows = []
    t0 = pd.Timestamp("2024-01-01")
    for u in range(n_users):
        staple = u % n_items
        others = rng.choice(np.setdiff1d(np.arange(n_items), [staple]), 4, replace=False)
        for j, i in enumerate([staple] * 4 + others.tolist()):
            rows.append((f"u{u}", f"i{i:02d}", "purchase", t0 + pd.Timedelta(hours=u * 10 + j)))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts"])
    items = pd.DataFrame(
        {"item_id": [f"i{i:02d}" for i in range(n_items)], "title": ["thing"] * n_items}
    )
    return InteractionData.from_frame(
        events, items, text_encoder=("bow", lambda t: fixture_text_encoder(t, 16))
    )


def test_repeat_term(tmp_path) -> None:
    data = _repeat_buyers()
    cfg = {**SMALL, "epochs": 15, "uniform_negatives": 0}
    on = TwoTower(**cfg, repeat="on").fit(data)
    off = TwoTower(**cfg, repeat="off").fit(data)
    assert on.rho_ > 0 and off.rho_ == 0.0  # buying again is learnt to be likely
    users = np.arange(data.n_users)
    # score = <u, v> / tau + rho / tau * log(1 + n_ui), n in purchases (weight 5 each).
    n = data.matrix.toarray() / 5.0
    want = (on.user_vecs_ @ on.item_vecs_.T + on.rho_ * np.log1p(n)) / 0.05  # default tau
    np.testing.assert_allclose(on.score(users), want, rtol=1e-4, atol=1e-4)
    # "off" is the plain model: the cosine, no repeat term.
    np.testing.assert_allclose(off.score(users), off.user_vecs_ @ off.item_vecs_.T, rtol=1e-6)
    # "auto" on data that is not a repeat domain (its meta does not say so) is exactly "off".
    assert not data.repeat_domain
    np.testing.assert_array_equal(TwoTower(**cfg).fit(data).score(users), off.score(users))
    on.save(tmp_path / "m")
    again = TwoTower.load(tmp_path / "m")
    assert again.repeat_on_ and again.rho_ == pytest.approx(on.rho_)
    np.testing.assert_array_equal(again.score(users), on.score(users))
