"""The conformance test mixin every recommender passes (DESIGN §4).

Use it by inheriting and providing the model::

    class TestEASE(RecommenderConformance):
        def make_model(self):
            return EASE(lambda_=10.0)

Class attributes tune what is checked:

* ``personalised`` (True): the known answer is "the item that co-occurs with the user's history
  ranks first"; ``False`` (popularity): the exact popularity order.
* ``fallback_is_popularity`` (True): users without history get the popularity order exactly.
  A content model whose fallback uses segment features sets it to False.
* ``score_rtol`` / ``repro_atol``: tolerances for batch-vs-single and seed reproducibility.
* ``history_tol`` (None): ``score_history`` of a user's training row equals ``score`` of the
  user within ``score_rtol`` and ``recommend_history`` equals ``recommend``; a number (ALS,
  which re-solves the user factor) allows that absolute difference per unit of the user's
  largest |score| and checks the lists against ``score_history`` only.
* ``history_reads_user`` (False): the model's user representation also reads the user id and
  segments (Keras models), so the equality holds when ``users=`` names the user; otherwise
  it must hold for anonymous rows too.

The fixture (:func:`conformance_data`): two clusters of items, A (kitchen) and B (shoes). Ten B
users make the B items the most popular; five A users buy into A, and all of them have ``a3``.
The target user ``uT`` has ``a0, a1, a2`` and so must get ``a3`` first from any personalised
model. ``c0`` (kitchen text) and ``c1`` (shoe text) have no events (cold), and ``uN`` is in the
users table with no events at all.

Distinct training users per item: b0 10, b1 9, b2 8, b3 7, a0 6, a3 5, a1 4, a2 3, c0 0, c1 0,
so popularity's exact order is b0 b1 b2 b3 a0 a3 a1 a2 c0 c1 (cold ties: lower index first).
"""

from __future__ import annotations

import hashlib
import math
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from ltrec.errors import ConfigError
from ltrec.models.base import Recommender, load_model
from ltrec.models.data import InteractionData

ITEMS = ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3", "c0", "c1"]
TEXT = {
    "a": ("Chef knife", "Forged steel kitchen blade for slicing and dicing"),
    "b": ("Running shoe", "Lightweight trainer sneaker with cushioned sole for running"),
}
POPULARITY_ORDER = ["b0", "b1", "b2", "b3", "a0", "a3", "a1", "a2", "c0", "c1"]


def fixture_text_encoder(texts: list[str], dim: int = 16) -> np.ndarray:
    """A deterministic hashed bag-of-words encoder (L2-normalised): a stand-in for MiniLM
    that still puts kitchen texts near kitchen texts and far from shoes."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for r, text in enumerate(texts):
        for word in text.lower().replace(".", " ").split():
            h = int(hashlib.sha256(word.encode()).hexdigest()[:8], 16)
            out[r, h % dim] += 1.0 if (h >> 8) % 2 else -1.0
        n = np.linalg.norm(out[r])
        out[r] /= n if n > 0 else 1.0
    return out


def conformance_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(events, items, users) of the known-answer fixture."""
    who: dict[str, list[str]] = {}
    a_users = [f"uA{i}" for i in range(5)]
    b_users = [f"uB{i}" for i in range(10)]
    for n, item in zip((10, 9, 8, 7), ("b0", "b1", "b2", "b3"), strict=True):
        who[item] = b_users[:n]
    who["a0"] = a_users + ["uT"]  # 6
    who["a3"] = list(a_users)  # 5
    who["a1"] = a_users[:3] + ["uT"]  # 4
    who["a2"] = a_users[:2] + ["uT"]  # 3
    rows = []
    t0 = pd.Timestamp("2024-01-01")
    n = 0
    for item in ITEMS:
        for user in who.get(item, []):
            # Mostly views; every third interaction is a purchase, to exercise the weights.
            kind = "purchase" if n % 3 == 0 else "view"
            rows.append((user, item, kind, t0 + pd.Timedelta(minutes=n)))
            n += 1
    # Impressions weigh 0: they must not count as interactions (uT never "saw" b0).
    rows.append(("uT", "b0", "impression", t0 + pd.Timedelta(minutes=n)))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts"])
    items = pd.DataFrame(
        {
            "item_id": ITEMS,
            "title": [
                f"{TEXT[i[0] if i[0] != 'c' else ('a' if i == 'c0' else 'b')][0]} {i}"
                for i in ITEMS
            ],
            "description": [
                TEXT[i[0] if i[0] != "c" else ("a" if i == "c0" else "b")][1] for i in ITEMS
            ],
            "category": ["kitchen"] * 4 + ["shoes"] * 4 + ["kitchen", "shoes"],
            "brand": [
                "acme",
                "acme",
                "forge",
                "forge",
                "swift",
                "swift",
                "stride",
                "stride",
                "acme",
                "swift",
            ],
            "price": [20.0, 35.0, 50.0, 80.0, 60.0, 90.0, 120.0, 45.0, 25.0, 70.0],
        }
    )
    all_users = a_users + b_users + ["uT", "uN"]
    users = pd.DataFrame(
        {
            "user_id": all_users,
            "region": ["north"] * 5 + ["south"] * 10 + ["north", "north"],
            "device": ["mobile", "desktop"] * 8 + ["mobile"],
        }
    )
    return events, items, users


def conformance_data() -> InteractionData:
    events, items, users = conformance_frames()
    return InteractionData.from_frame(
        events, items, users, text_encoder=("fixture-hash-bow", fixture_text_encoder)
    )


def _close_lists(
    items_a: np.ndarray,
    scores_a: np.ndarray,
    items_b: np.ndarray,
    scores_b: np.ndarray,
    rtol: float,
) -> None:
    """Same lists, allowing only float-noise reorderings of (near-)tied items."""
    np.testing.assert_allclose(scores_a, scores_b, rtol=rtol, atol=rtol)
    differ = items_a != items_b
    if differ.any():
        # Different items at a position are only allowed when their scores tie.
        np.testing.assert_allclose(scores_a[differ], scores_b[differ], rtol=rtol, atol=rtol)


class RecommenderConformance:
    """Mix into a test class and implement :meth:`make_model`."""

    personalised: ClassVar[bool] = True
    fallback_is_popularity: ClassVar[bool] = True
    score_rtol: ClassVar[float] = 1e-5
    repro_atol: ClassVar[float] = 0.0
    history_tol: ClassVar[float | None] = None
    history_reads_user: ClassVar[bool] = False

    def make_model(self) -> Recommender:
        raise NotImplementedError

    def make_data(self) -> InteractionData:
        return conformance_data()

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture(scope="class")
    def data(self) -> InteractionData:
        return self.make_data()

    @pytest.fixture(scope="class")
    def model(self, data: InteractionData) -> Recommender:
        m = self.make_model()
        calls: list[tuple[float, str]] = []
        out = m.fit(data, progress=lambda done, msg: calls.append((done, msg)))
        assert out is m, "fit must return self"
        assert calls and all(0.0 <= d <= 1.0 for d, _ in calls), "progress must be in [0, 1]"
        assert calls[-1][0] == 1.0
        return m

    @staticmethod
    def ix(data: InteractionData, *ids: str) -> list[int]:
        return [data.item_index[i] for i in ids]

    # ------------------------------------------------------------------ tests

    def test_known_answer(self, model: Recommender, data: InteractionData) -> None:
        u = data.user_index["uT"]
        if self.personalised:
            items, scores = model.recommend(u, 1)
            assert items.tolist() == self.ix(data, "a3"), (
                "the item that co-occurs with the whole history must rank first"
            )
            # And the kitchen cluster beats the popular shoes among unseen items.
            s = model.score(u)
            a3, b0 = self.ix(data, "a3", "b0")
            assert s[a3] > s[b0]
        else:
            items, _ = model.recommend(u, data.n_items, exclude_seen=False)
            assert items.tolist() == self.ix(data, *POPULARITY_ORDER)

    def test_batch_equals_one_by_one(self, model: Recommender, data: InteractionData) -> None:
        users = np.array([*range(data.n_users), -1])
        k = 5
        b_items, b_scores = model.recommend(users, k)
        all_scores = model.score(users)
        assert b_items.shape == (len(users), k) and b_scores.shape == (len(users), k)
        assert b_items.dtype.kind == "i" and all_scores.shape == (len(users), data.n_items)
        for r, u in enumerate(users):
            items, scores = model.recommend(int(u), k)
            assert items.shape == (k,)
            _close_lists(b_items[r], b_scores[r], items, scores, self.score_rtol)
            np.testing.assert_allclose(
                model.score(int(u)), all_scores[r], rtol=self.score_rtol, atol=self.score_rtol
            )

    def test_scores_finite_and_item_subset(self, model: Recommender, data: InteractionData) -> None:
        users = np.arange(data.n_users)
        full = model.score(users)
        assert full.dtype == np.float32 and np.isfinite(full).all()
        sub = np.array(self.ix(data, "c1", "a0", "b2"))
        np.testing.assert_allclose(
            model.score(users, sub), full[:, sub], rtol=self.score_rtol, atol=self.score_rtol
        )

    def test_seen_items_excluded(self, model: Recommender, data: InteractionData) -> None:
        users = np.arange(data.n_users)
        items, scores = model.recommend(users, data.n_items)
        for u in users:
            seen = set(data.matrix[u].indices.tolist())
            got = items[u][items[u] >= 0].tolist()
            assert not seen & set(got), f"user {data.user_ids[u]} got seen items"
            assert len(got) == len(set(got)) == data.n_items - len(seen)
            assert np.all(np.diff(scores[u][np.isfinite(scores[u])]) <= 0), "best first"
        # Without exclusion every item is listed.
        u = data.user_index["uT"]
        items, _ = model.recommend(u, data.n_items, exclude_seen=False)
        assert sorted(items.tolist()) == list(range(data.n_items))
        # An impression is not an interaction: b0 stays recommendable to uT.
        assert self.ix(data, "b0")[0] in model.recommend(u, data.n_items)[0]

    def test_candidates_respected(self, model: Recommender, data: InteractionData) -> None:
        u = data.user_index["uT"]
        cand = np.array(self.ix(data, "b3", "a0", "a3", "c0", "b1"))  # a0 is seen by uT
        items, scores = model.recommend(u, 10, candidates=cand)
        valid = items[items >= 0]
        assert set(valid.tolist()) == set(cand.tolist()) - set(self.ix(data, "a0"))
        assert (items[len(valid) :] == -1).all() and np.isneginf(scores[len(valid) :]).all()
        # Same order as the full ranking restricted to the candidates.
        full, _ = model.recommend(u, data.n_items)
        expected = [i for i in full.tolist() if i in set(valid.tolist())]
        s = model.score(u)
        assert [round(float(s[i]), 4) for i in valid] == [round(float(s[i]), 4) for i in expected]
        # Batch with candidates equals one-by-one.
        users = np.arange(data.n_users)
        b_items, b_scores = model.recommend(users, 3, candidates=cand)
        for r in users:
            i1, s1 = model.recommend(int(r), 3, candidates=cand)
            _close_lists(b_items[r], b_scores[r], i1, s1, self.score_rtol)
            assert set(i1[i1 >= 0].tolist()) <= set(cand.tolist())

    def test_k_larger_than_catalogue(self, model: Recommender, data: InteractionData) -> None:
        u = data.user_index["uT"]
        k = data.n_items + 7
        items, scores = model.recommend(u, k)
        n_seen = data.matrix[u].nnz
        n_valid = data.n_items - n_seen
        assert items.shape == (k,) and scores.shape == (k,)
        assert (items[:n_valid] >= 0).all() and np.isfinite(scores[:n_valid]).all()
        assert (items[n_valid:] == -1).all() and np.isneginf(scores[n_valid:]).all()
        batch_items, _ = model.recommend(np.array([u, -1]), k)
        assert batch_items.shape == (2, k)
        assert (batch_items[1] >= 0).sum() == data.n_items  # unknown user: nothing seen

    def test_user_without_history(self, model: Recommender, data: InteractionData) -> None:
        for u in (data.user_index["uN"], -1):
            s = model.score(u)
            assert s.shape == (data.n_items,) and np.isfinite(s).all()
            items, scores = model.recommend(u, 4)
            assert (items >= 0).all() and np.isfinite(scores).all()
            if self.fallback_is_popularity:
                assert items.tolist() == self.ix(data, *POPULARITY_ORDER[:4])

    def test_cold_items(self, model: Recommender, data: InteractionData) -> None:
        users = np.arange(data.n_users)
        cold = np.array(self.ix(data, "c0", "c1"))
        s = model.score(users, cold)
        assert np.isfinite(s).all(), "items without events must get finite scores"
        if type(model).content_model:
            # A brand-new item with text only is scored from its content: the kitchen-text
            # item c0 must not be scored identically to the shoe-text item c1 for everyone.
            assert not np.allclose(s[:, 0], s[:, 1]), "content must inform cold-item scores"

    def test_save_load_round_trip(
        self, model: Recommender, data: InteractionData, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        path = tmp_path_factory.mktemp("saved") / "model"
        files = model.save(path)
        assert files and all(p.exists() for p in files)
        for loaded in (type(model).load(path), load_model(path)):
            assert type(loaded) is type(model) and loaded.config == model.config
            users = np.array([*range(data.n_users), -1])
            np.testing.assert_array_equal(loaded.score(users), model.score(users))
            np.testing.assert_array_equal(
                loaded.recommend(users, 4)[0], model.recommend(users, 4)[0]
            )
        for p in path.rglob("*"):
            allowed = {".json", ".npz", ".keras", ".h5", ".faiss"}  # .faiss: an ANN index
            assert p.suffix in allowed, f"unexpected file {p.name}"

    def test_reproducible_with_seed(self, model: Recommender, data: InteractionData) -> None:
        again = self.make_model().fit(data)
        users = np.arange(data.n_users)
        np.testing.assert_allclose(again.score(users), model.score(users), atol=self.repro_atol)

    def test_config_bounded(self) -> None:
        model = self.make_model()
        cls = type(model.config)
        assert cls.model_config.get("extra") == "forbid"
        with pytest.raises(ConfigError, match="valid keys"):
            type(model)(**{"no_such_key": 1})
        for name, field in cls.model_fields.items():
            ann = field.annotation
            if ann not in (int, float):
                continue
            lo = [getattr(m, a) for m in field.metadata for a in ("ge", "gt") if hasattr(m, a)]
            hi = [getattr(m, a) for m in field.metadata for a in ("le", "lt") if hasattr(m, a)]
            assert lo and hi, f"{cls.__name__}.{name} must have both bounds"
            for bad in (lo[0] - 1, hi[0] + 1):
                with pytest.raises(ConfigError, match=name):
                    type(model)(**{name: bad})
            if ann is float:
                with pytest.raises(ConfigError):
                    type(model)(**{name: math.nan})

    def test_not_fitted_is_a_clear_error(self) -> None:
        from ltrec.errors import ModelError

        with pytest.raises(ModelError, match="not trained"):
            self.make_model().recommend(0, 3)

    def test_bad_indices_are_clear_errors(self, model: Recommender, data: InteractionData) -> None:
        from ltrec.errors import ModelError

        with pytest.raises(ModelError, match="out of range"):
            model.score(data.n_users)
        with pytest.raises(ModelError, match="out of range"):
            model.recommend(0, 3, candidates=[data.n_items])
        with pytest.raises(ModelError, match="positive"):
            model.recommend(0, 0)

    # ------------------------------------------------------------------ scoring from a history

    def _history_close(self, got: np.ndarray, want: np.ndarray) -> None:
        if self.history_tol is None:
            np.testing.assert_allclose(got, want, rtol=self.score_rtol, atol=self.score_rtol)
        else:
            scale = np.abs(want).max(axis=-1, keepdims=True)
            assert (np.abs(got - want) <= self.history_tol * scale).all()

    def test_score_history_of_training_row(self, model: Recommender, data: InteractionData) -> None:
        users = np.flatnonzero(np.diff(data.matrix.indptr) > 0)
        rows = data.matrix[users]
        want = model.score(users)
        self._history_close(model.score_history(rows, users=users), want)
        sub = np.array(self.ix(data, "c1", "a0", "b2"))
        self._history_close(model.score_history(rows, sub, users=users), want[:, sub])
        if not self.history_reads_user:  # the history alone decides
            self._history_close(model.score_history(rows), want)
        # One 1-D history gives 1-D scores, equal to its row of the batch.
        u = data.user_index["uT"]
        one = model.score_history(data.matrix[u].toarray()[0], users=[u])
        assert one.shape == (data.n_items,)
        self._history_close(one, want[list(users).index(u)])
        assert isinstance(type(model).live_history, bool)

    def test_recommend_history_equals_recommend(
        self, model: Recommender, data: InteractionData
    ) -> None:
        users = np.flatnonzero(np.diff(data.matrix.indptr) > 0)
        rows = data.matrix[users]
        cand = np.array(self.ix(data, "b3", "a0", "a3", "c0", "b1"))
        for kwargs in ({}, {"candidates": cand}, {"exclude_seen": False}):
            k = data.n_items + 2
            got_i, got_s = model.recommend_history(rows, k, users=users, **kwargs)
            assert got_i.shape == got_s.shape == (len(users), k)
            if self.history_tol is None:
                want_i, want_s = model.recommend(users, k, **kwargs)
                for r in range(len(users)):
                    _close_lists(got_i[r], got_s[r], want_i[r], want_s[r], self.score_rtol)
            # Always: the lists are score_history's order, seen items masked, -1 padded.
            s = model.score_history(rows, users=users)
            allowed = np.ones_like(s, dtype=bool)
            if kwargs.get("exclude_seen", not data.repeat_domain):
                allowed[rows.nonzero()] = False
            if "candidates" in kwargs:
                keep = np.zeros(data.n_items, bool)
                keep[cand] = True
                allowed &= keep[None, :]
            for r in range(len(users)):
                valid = got_i[r][got_i[r] >= 0]
                assert sorted(valid.tolist()) == np.flatnonzero(allowed[r]).tolist()
                assert (got_i[r][len(valid) :] == -1).all()
                assert np.isneginf(got_s[r][len(valid) :]).all()
                # atol: float32 scores near 0 (an NCF logit) differ in the last bits between
                # row batches of different sizes (BLAS kernels), which rtol alone rejects.
                np.testing.assert_allclose(
                    got_s[r][: len(valid)], s[r, valid], rtol=1e-6, atol=1e-6
                )
                assert np.all(np.diff(got_s[r][: len(valid)]) <= 0), "best first"

    def test_history_without_events_is_the_fallback(
        self, model: Recommender, data: InteractionData
    ) -> None:
        empty = np.zeros((2, data.n_items), np.float32)
        np.testing.assert_array_equal(model.score_history(empty), model.score(np.array([-1, -1])))
        items, _ = model.recommend_history(empty, 4)
        np.testing.assert_array_equal(items, model.recommend(np.array([-1, -1]), 4)[0])

    def test_anonymous_history_like_the_target_user(
        self, model: Recommender, data: InteractionData
    ) -> None:
        """A user new to training whose live history is uT's (a0, a1, a2) gets a3 first."""
        if not (self.personalised and type(model).live_history):
            return
        row = np.zeros(data.n_items, np.float32)
        row[self.ix(data, "a0", "a1", "a2")] = 1.0
        items, _ = model.recommend_history(row, 1)
        assert items.tolist() == self.ix(data, "a3")

    def test_history_bad_input_is_a_clear_error(
        self, model: Recommender, data: InteractionData
    ) -> None:
        from ltrec.errors import ModelError

        with pytest.raises(ModelError, match="one column per item"):
            model.score_history(np.ones((1, data.n_items + 1)))
        bad = np.zeros((1, data.n_items))
        bad[0, 0] = -1.0
        with pytest.raises(ModelError, match=">= 0"):
            model.score_history(bad)
        with pytest.raises(ModelError, match="entries"):
            model.score_history(np.ones((2, data.n_items)), users=[0])

    def test_contributions(self, model: Recommender, data: InteractionData) -> None:
        u = data.user_index["uT"]
        row = data.matrix[u]
        hist = set(row.indices.tolist())
        items = np.array(self.ix(data, "a3", "b0", "a0", "c0"))
        got = model.contributions(row, items, top=2)
        assert got.method == type(model).contribution_method
        assert got.method in {"exact", "embedding", "none"}
        assert len(got.rows) == len(items)
        for item, pairs in zip(items.tolist(), got.rows, strict=True):
            assert len(pairs) <= 2
            assert all(j in hist and j != item and v > 0 for j, v in pairs)
            assert [v for _, v in pairs] == sorted((v for _, v in pairs), reverse=True)
        if got.method == "none":
            assert all(r == () for r in got.rows)
        if got.method == "exact":
            # a3 co-occurs with every item of uT's history: it is explained.
            assert len(got.rows[0]) == 2
        assert model.contributions(np.zeros(data.n_items), items).rows == ((),) * len(items)
