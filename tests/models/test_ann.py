"""The ANN index of big catalogues (issue 19 §3, :mod:`ltrec.models.ann`).

One ALS fit on a seeded 20,000-item log (module scope) with its index built on one thread (a
seeded sample and seeded k-means: the same index on every build), so every figure below is the
same on every run. With ltrec's settings the 20,000 items get 512 cells and a query scans all of
them (nprobe 512): the lists hold the exact items; the recall test scans a quarter of the cells.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tests.models.test_baselines as baselines
from ltrec.errors import RegistryError
from ltrec.models import ann
from ltrec.models.als import ALS
from ltrec.models.base import load_model
from ltrec.models.candidates import candidate_pool
from ltrec.models.data import InteractionData
from ltrec.models.registry import list_runs, load_run, save_run
from tests.models.conformance import conformance_data

N_ITEMS = 20_000
N_USERS = 1_500


def big_log(seed: int = 0) -> InteractionData:
    """20,000 items in 200 taste groups (Zipf-like popularity inside each); 1,500 users with
    one or two tastes and 10-40 views, carts and purchases each."""
    rng = np.random.default_rng(seed)
    group = np.arange(N_ITEMS) % 200
    members = [np.flatnonzero(group == g) for g in range(200)]
    rows = []
    for u in range(N_USERS):
        tastes = rng.choice(200, size=rng.integers(1, 3), replace=False)
        for _ in range(int(rng.integers(10, 41))):
            pool = members[int(rng.choice(tastes))]
            rank = min(int(rng.zipf(1.3)) - 1, len(pool) - 1)
            rows.append((f"u{u}", f"i{pool[rank]}", rng.choice(["view", "cart", "purchase"])))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type"])
    events["ts"] = pd.Timestamp("2026-01-01")
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(N_ITEMS)]})
    return InteractionData.from_frame(events, items)


@pytest.fixture(scope="module")
def data() -> InteractionData:
    return big_log()


@pytest.fixture(scope="module")
def model(data: InteractionData) -> ALS:
    m = ALS(factors=32, iterations=4, seed=1).fit(data)
    assert m.ann_ is None  # 20,000 items: under the default threshold (200,000), exact
    assert m.build_ann(min_items=N_ITEMS, threads=1)
    return m


def with_index(model: ALS, index: ann.AnnIndex | None) -> ALS:
    twin = ALS(model.config)
    twin.__dict__.update(model.__dict__)
    twin.ann_ = index
    return twin


def exact_copy(model: ALS) -> ALS:
    return with_index(model, None)


def recall_at(got: np.ndarray, want: np.ndarray) -> float:
    k = want.shape[1]
    return float(np.mean([len(np.intersect1d(g, w)) / k for g, w in zip(got, want, strict=True)]))


def test_the_fixture_index_has_ltrecs_settings(model: ALS) -> None:
    assert (model.ann_.nlist, model.ann_.nprobe, model.ann_.train_points) == (512, 512, N_ITEMS)
    assert ann.cells_for(N_ITEMS) == 512 and ann.cells_for(1_000_000) == 4000


def test_recall_at_200_against_exact(model: ALS, data: InteractionData) -> None:
    """A quarter of the cells scanned (128 of 512): the pools keep at least 95% of the exact
    top 200 (the issue's bound; 0.984 with this seed, 0.936 with an eighth, 0.998 with half)."""
    users = np.arange(N_USERS)
    quarter = with_index(model, dataclasses.replace(model.ann_, nprobe=128))
    got, _ = candidate_pool(quarter, data, users, 200)
    want, _ = candidate_pool(exact_copy(model), data, users, 200)
    assert recall_at(got, want) >= 0.95, recall_at(got, want)


def test_every_cell_scanned_gives_the_exact_lists(model: ALS) -> None:
    """ltrec's settings on this catalogue scan every cell (recall 1): each list holds the exact
    path's items with its scores (to float32 rounding: the index path scores its candidates
    alone, so two items a rounding apart can trade places)."""
    users = np.arange(0, N_USERS, 3)
    got, got_s = model.recommend(users, 200)
    want, want_s = exact_copy(model).recommend(users, 200)
    assert all(set(g) == set(w) for g, w in zip(got, want, strict=True))
    np.testing.assert_allclose(got_s, want_s, rtol=0, atol=1e-6)


def test_a_search_fills_k_when_the_probed_cells_hold_fewer(model: ALS) -> None:
    """One cell probed holds about 40 items; asking for 5,000 widens the probe until full."""
    one = dataclasses.replace(model.ann_, nprobe=1)
    idx = one.search(model.user_factors_[:3], 5000)
    assert idx.shape == (3, 5000) and (idx >= 0).all()
    assert all(len(np.unique(row)) == 5000 for row in idx)


@given(st.integers(1, 50_000_000))
def test_cells_stay_between_one_and_a_cell_per_39_items(n: int) -> None:
    cells = ann.cells_for(n)
    assert 1 <= cells <= max(1, n // ann.MIN_CELL_ITEMS)
    assert cells <= ann.CELLS_PER_SQRT * np.sqrt(n)


def test_lists_exclude_seen_and_carry_the_model_scores(model: ALS) -> None:
    users = np.arange(0, N_USERS, 7)
    items, scores = model.recommend(users, 50)
    for u, row, s in zip(users, items, scores, strict=True):
        seen = model.seen_[u].indices
        assert (row >= 0).all() and not np.isin(row, seen).any()
        # The model's scores of the listed items (y[c] @ q: the last float32 bit may differ
        # from the whole-catalogue product's).
        np.testing.assert_allclose(s, model.score(u, row), rtol=1e-6)
        assert (np.diff(s) <= 0).all()


def test_history_lists_use_the_index(model: ALS, data: InteractionData) -> None:
    """A live history (recommend_history, the API's path) is searched with the re-solved user
    factor and its own items excluded; every cell scanned: the exact path's top 10 (items and
    scores to float32 rounding, as in the test above)."""
    rows = data.matrix[:40]
    got, got_s = model.recommend_history(rows, 10)
    want, want_s = exact_copy(model).recommend_history(rows, 10)
    for r in range(40):
        assert not np.isin(got[r], rows[r].indices).any()
        assert set(got[r]) == set(want[r])
    np.testing.assert_allclose(got_s, want_s, rtol=0, atol=1e-6)


def test_users_without_history_and_candidate_lists_stay_exact(model: ALS) -> None:
    twin = exact_copy(model)
    for args in (([-1], 20), ([0, 5], 5)):
        kw = {"candidates": np.arange(0, N_ITEMS, 3)} if args[0] == [0, 5] else {}
        a, b = (
            model.recommend(np.array(args[0]), args[1], **kw),
            twin.recommend(np.array(args[0]), args[1], **kw),
        )
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_save_load_round_trip(model: ALS, tmp_path: Path) -> None:
    files = model.save(tmp_path / "m")
    assert sorted(p.name for p in files) == ["ann.faiss", "config.json", "state.npz"]
    loaded = load_model(tmp_path / "m")
    assert loaded.ann_ is not None and loaded.ann_.n_items == N_ITEMS
    users = np.arange(0, N_USERS, 5)
    for got, want in zip(loaded.recommend(users, 200), model.recommend(users, 200), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.fixture(scope="module")
def run(model: ALS, data: InteractionData, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("runs")
    info = save_run(model, dataset="big", data=data, extra={"data_import_id": "x"}, data_dir=root)
    return root, info


def test_the_run_lists_and_loads_its_index(run) -> None:
    root, info = run
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert "model/ann.faiss" in manifest["files"]
    loaded = load_run("big", info.run_id, root, allow_stale=True)
    assert loaded.model.ann_ is not None


def _copy(run, name: str) -> Path:
    root, info = run
    target = info.path.parent / name
    shutil.copytree(info.path, target)
    return target


@pytest.mark.parametrize("damage", ["truncated", "swapped", "missing"])
def test_a_damaged_index_file_refuses_the_run(run, model: ALS, damage: str) -> None:
    root, _ = run
    folder = _copy(run, f"r-{damage}")
    before = sorted(p.name for p in folder.rglob("*"))
    index = folder / "model" / "ann.faiss"
    if damage == "truncated":
        index.write_bytes(index.read_bytes()[:1000])
        message = "model/ann.faiss has the wrong size"
    elif damage == "swapped":
        # A valid index of the same shape (another model's items): same size, other bytes.
        size = index.stat().st_size
        ann.build_index(-model.item_factors_, threads=1).save(index.parent)
        assert index.stat().st_size == size
        message = "model/ann.faiss does not match its checksum"
    else:
        index.unlink()
        message = "file model/ann.faiss is missing"
        before.remove("ann.faiss")
    with pytest.raises(RegistryError, match=message):
        load_run("big", folder.name, root, allow_stale=True)
    assert sorted(p.name for p in folder.rglob("*")) == before  # nothing repaired or removed
    assert folder.name in [r.run_id for r in list_runs("big", root)]


def test_a_bad_index_file_is_a_clear_error_when_loaded_directly(model: ALS, tmp_path: Path) -> None:
    """Without the registry's checksums (load_model on a folder): faiss's own reader refuses
    the bytes, and a missing file is named."""
    folder = tmp_path / "m"
    model.save(folder)
    index = folder / ann.ANN_FILE
    index.write_bytes(b"not a faiss index" * 10)
    with pytest.raises(RegistryError, match="ANN index file ann.faiss cannot be read"):
        load_model(folder)
    index.unlink()
    with pytest.raises(RegistryError, match="ANN index file ann.faiss is missing"):
        load_model(folder)


def test_an_index_of_other_items_is_refused(model: ALS, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    model.save(folder)
    other = ann.build_index(np.eye(8, 32, dtype=np.float32), threads=1)
    other.save(folder)
    with pytest.raises(RegistryError, match="does not match the model"):
        load_model(folder)


def test_an_earlier_hnsw_run_is_refused_with_the_remedy(model: ALS, tmp_path: Path) -> None:
    """A run saved by the earlier ltrec (an HNSW graph, ann_meta layout 1) is refused by name,
    with the remedy, before its file is parsed."""
    import faiss

    folder = tmp_path / "m"
    model.save(folder)
    old = faiss.IndexHNSWFlat(model.ann_.dim, 32, faiss.METRIC_INNER_PRODUCT)
    old.add(np.ascontiguousarray(model.item_factors_, dtype=np.float32))
    faiss.write_index(old, str(folder / ann.ANN_FILE))
    with np.load(folder / "state.npz") as z:
        arrays = dict(z)
    arrays["ann_meta"] = np.asarray([1, N_ITEMS, model.ann_.dim, 32, 200, 800], dtype=np.int64)
    with open(folder / "state.npz", "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(RegistryError, match="earlier HNSW graph") as err:
        load_model(folder)
    assert "train the model again" in str(err.value.hint)


def test_small_catalogues_stay_exact(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Under LTREC_ANN_MIN_ITEMS no index is built or saved (the lists are those of before);
    at the threshold one is; a repeat blend is not an inner product, so it stays exact above
    the threshold too."""
    small = conformance_data()
    m = ALS(factors=4, iterations=3, seed=3).fit(small)
    assert m.ann_ is None
    assert sorted(p.name for p in m.save(tmp_path / "a")) == ["config.json", "state.npz"]
    monkeypatch.setenv("LTREC_ANN_MIN_ITEMS", str(small.n_items + 1))
    assert ALS(factors=4, iterations=3, seed=3).fit(small).ann_ is None
    monkeypatch.setenv("LTREC_ANN_MIN_ITEMS", str(small.n_items))
    assert ALS(factors=4, iterations=3, seed=3).fit(small).ann_ is not None
    blended = ALS(factors=4, iterations=3, seed=3, repeat_weight=0.3, popularity_weight=0.0)
    assert blended.fit(small).ann_ is None
    monkeypatch.setenv("LTREC_ANN_MIN_ITEMS", "0")  # 0: never
    assert ALS(factors=4, iterations=3, seed=3).fit(small).ann_ is None


class TestALSIndexed(baselines.TestALS):
    """ALS's conformance suite with an index on the fixture's 10 items (every list through it)."""

    @pytest.fixture(scope="class", autouse=True)
    def _index_every_catalogue(self):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("LTREC_ANN_MIN_ITEMS", "1")
            yield

    def test_the_index_is_in_use(self, model: ALS) -> None:
        assert model.ann_ is not None


def test_the_build_is_the_same_on_any_thread_count() -> None:
    """A seeded sample and seeded k-means: one and two build threads write the same bytes."""
    import faiss

    rng = np.random.default_rng(5)
    y = rng.standard_normal((4000, 16)).astype(np.float32)
    one, two = (ann.build_index(y, threads=t) for t in (1, 2))
    assert one.nlist == 4000 // ann.MIN_CELL_ITEMS
    np.testing.assert_array_equal(
        faiss.serialize_index(one.index), faiss.serialize_index(two.index)
    )
