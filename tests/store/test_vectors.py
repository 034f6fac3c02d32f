"""Item vector import: round trip, every reject reason, all-or-nothing, CLI, and the model hook."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ltrec.cli import main
from ltrec.errors import BadInputError, DatasetNotFoundError, TooManyRejectsError
from ltrec.models.data import InteractionData
from ltrec.rerank.adapters import context_from_data
from ltrec.store import connect, dataset_path, read_meta
from ltrec.store.importing import import_dataset
from ltrec.store.vectors import (
    combine,
    import_vectors,
    load_item_vectors,
    vector_names,
    with_item_vectors,
)

ITEMS = [f"sku{k}" for k in range(8)]


@pytest.fixture
def shop(data_dir: Path, tmp_path: Path) -> str:
    ev = tmp_path / "ev.csv"
    ev.write_text(
        "user_id,item_id,event_type,ts\n"
        + "".join(f"u{k % 3},{it},view,2024-01-0{k % 9 + 1}\n" for k, it in enumerate(ITEMS[:6]))
    )
    items = tmp_path / "items.csv"
    items.write_text("item_id,title\n" + "".join(f"{it},Item {it}\n" for it in ITEMS))
    import_dataset("shop", ev, items=items)
    return "shop"


def _vectors(rows: list[tuple[object, object]], path: Path, fixed: int | None = 4) -> Path:
    ids = pa.array([r[0] for r in rows], pa.string())
    if fixed is not None:
        flat = pa.array([x for r in rows for x in r[1]], pa.float32())
        vec = pa.FixedSizeListArray.from_arrays(flat, fixed)
    else:
        vec = pa.array([r[1] for r in rows], pa.list_(pa.float64()))
    pq.write_table(pa.table({"item_id": ids, "embedding": vec}), path)
    return path


def _rng_vecs(n: int, d: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_round_trip_aligned_to_the_vocabulary(shop, tmp_path) -> None:
    vecs = _rng_vecs(6)
    f = _vectors([(ITEMS[k], vecs[k].tolist()) for k in range(6)], tmp_path / "v.parquet")
    rep = import_vectors(shop, f, "image")
    assert rep.committed and rep.loaded == 6 and rep.dim == 4 and rep.rejected == 0
    assert rep.items_without_vector == 2
    vocab = ["sku5", "nope", "sku0", "sku7"]
    con = connect(shop)
    try:
        assert vector_names(con) == ["image"]
        got = load_item_vectors(con, "image", vocab)
        meta = json.loads(read_meta(con)["item_vectors.image"])
        with pytest.raises(BadInputError, match="no item vectors named"):
            load_item_vectors(con, "photo", vocab)
    finally:
        con.close()
    assert got.dtype == np.float32 and got.shape == (4, 4)
    np.testing.assert_array_equal(got[0], vecs[5])
    np.testing.assert_array_equal(got[2], vecs[0])
    assert not got[1].any() and not got[3].any()  # unknown to the set: zero rows
    assert meta["dim"] == 4 and meta["count"] == 6
    # re-importing a name replaces the set; another name adds one
    import_vectors(shop, _vectors([(ITEMS[1], [1, 2, 3, 4])], tmp_path / "w.parquet"), "image")
    import_vectors(shop, f, "photo")
    con = connect(shop)
    try:
        assert vector_names(con) == ["image", "photo"]
        n = con.execute("SELECT count(*) FROM item_vectors WHERE name = 'image'").fetchone()[0]
    finally:
        con.close()
    assert n == 1


def test_every_reject_reason(shop, tmp_path) -> None:
    good = _rng_vecs(6).tolist()
    rows = [(ITEMS[k], good[k]) for k in range(6)] + [
        ("ghost", [1.0, 2.0, 3.0, 4.0]),  # unknown item
        (None, [1.0, 2.0, 3.0, 4.0]),  # missing item_id
        (ITEMS[6], [1.0, 2.0, 3.0]),  # wrong dimension
        (ITEMS[7], [1.0, float("nan"), 3.0, 4.0]),
        (ITEMS[7], [1.0, float("inf"), 3.0, 4.0]),
        (ITEMS[7], [0.0, 0.0, 0.0, 0.0]),
        (ITEMS[7], None),
        (ITEMS[7], [1.0, None, 3.0, 4.0]),
        (ITEMS[0], [9.0, 9.0, 9.0, 9.0]),  # duplicate of the first row
    ]
    f = _vectors(rows, tmp_path / "bad.parquet", fixed=None)
    before = dataset_path(shop).read_bytes()
    with pytest.raises(TooManyRejectsError) as err:
        import_vectors(shop, f)
    assert dataset_path(shop).read_bytes() == before  # nothing landed
    assert err.value.report.rejected == 9
    rep = import_vectors(shop, f, max_reject_share=0.9)
    assert rep.rejects_by_reason == {
        "NaN in vector": 1,
        "all-zero vector": 1,
        "duplicate item_id": 1,
        "infinite value in vector": 1,
        "missing item_id": 1,
        "missing vector": 1,
        "null value in vector": 1,
        "unknown item": 1,
        "wrong dimension (3, expected 4)": 1,
    }
    assert rep.loaded == 6
    con = connect(shop)
    try:
        stored = con.execute(
            "SELECT reason FROM rejects WHERE import_id = ? ORDER BY line", [rep.import_id]
        ).fetchall()
        first = load_item_vectors(con, "image", [ITEMS[0]])[0]
    finally:
        con.close()
    assert len(stored) == 9
    np.testing.assert_allclose(first, good[0], rtol=1e-6)  # the first row of a duplicate wins


def test_whole_file_errors(shop, tmp_path) -> None:
    csv = tmp_path / "v.csv"
    csv.write_text("item_id,x\nsku1,1\n")
    with pytest.raises(BadInputError, match="must be a Parquet file"):
        import_vectors(shop, csv)
    fake = tmp_path / "fake.parquet"
    fake.write_text("item_id,x\n")
    with pytest.raises(BadInputError, match="not Parquet"):
        import_vectors(shop, fake)
    nolist = tmp_path / "nolist.parquet"
    pd.DataFrame({"item_id": ["sku1"], "x": [1.0]}).to_parquet(nolist)
    with pytest.raises(BadInputError, match="exactly one vector column"):
        import_vectors(shop, nolist)
    noid = tmp_path / "noid.parquet"
    pq.write_table(pa.table({"sku": ["sku1"], "v": [[1.0, 2.0]]}), noid)
    with pytest.raises(BadInputError, match="no item id column"):
        import_vectors(shop, noid)
    assert import_vectors(shop, noid, id_column="sku").loaded == 1
    with pytest.raises(BadInputError, match="invalid vector set name"):
        import_vectors(shop, noid, "Bad Name", id_column="sku")
    with pytest.raises(DatasetNotFoundError):
        import_vectors("nothere", noid, id_column="sku")
    assert not dataset_path("nothere").exists()


def test_cli(shop, tmp_path, capsys) -> None:
    f = _vectors([(ITEMS[k], _rng_vecs(6)[k].tolist()) for k in range(6)], tmp_path / "v.parquet")
    assert main(["import-vectors", shop, "--file", str(f), "--name", "clip", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "clip" and out["loaded"] == 6 and out["dim"] == 4
    bad = _vectors([("ghost", [1, 2, 3, 4])], tmp_path / "g.parquet")
    assert main(["import-vectors", shop, "--file", str(bad)]) == 2
    assert "unknown item" in capsys.readouterr().err


def test_combine_averages_block_cosines() -> None:
    rng = np.random.default_rng(1)
    text, img = rng.normal(size=(5, 6)), rng.normal(size=(5, 3))
    img[4] = 0  # an item without a vector: a zero block
    e = combine([text, img])
    assert e.shape == (5, 9)
    np.testing.assert_allclose(np.linalg.norm(e[:4], axis=1), 1.0, rtol=1e-5)

    def cos(a, b):
        return a @ b / np.linalg.norm(a) / np.linalg.norm(b)

    want = (cos(text[0], text[1]) + cos(img[0], img[1])) / 2
    assert e[0] @ e[1] == pytest.approx(want, rel=1e-5)


def test_hook_feeds_content_models_and_mmr(shop, tmp_path) -> None:
    """with_item_vectors (called by ltrec.models.train.add_text) widens the content vectors
    that the Keras models and the re-ranking context read."""
    vecs = _rng_vecs(6, d=3, seed=2)
    f = _vectors([(ITEMS[k], vecs[k].tolist()) for k in range(6)], tmp_path / "v.parquet", 3)
    con = connect(shop)
    try:
        ev = con.execute("SELECT * FROM events").df()
        items = con.execute("SELECT * FROM items").df()
    finally:
        con.close()
    data = InteractionData.from_frame(ev, items)
    text = np.random.default_rng(3).normal(size=(data.n_items, 5)).astype(np.float32)
    data = data.with_text(text, "test-text")
    assert with_item_vectors(data, shop) is data  # no vectors yet: unchanged
    import_vectors(shop, f, "image")
    out = with_item_vectors(data, shop)
    assert out.item_text_emb.shape == (data.n_items, 8)
    assert out.text_encoder == "test-text+vectors:image"
    k0 = data.item_index[ITEMS[0]]
    np.testing.assert_allclose(
        out.item_text_emb[k0, 5:], vecs[0] / np.linalg.norm(vecs[0]) / np.sqrt(2), rtol=1e-5
    )
    ctx = context_from_data(out)
    assert ctx.embedding is not None and ctx.embedding.shape == (data.n_items, 8)


@pytest.mark.slow
def test_models_feature_loading_appends_the_vectors(shop, tmp_path) -> None:
    """End to end through the models' loader (the text encoder may load TensorFlow: slow)."""
    from ltrec.models.train import load_data

    vecs = _rng_vecs(6, d=4, seed=4)
    import_vectors(
        shop, _vectors([(ITEMS[k], vecs[k].tolist()) for k in range(6)], tmp_path / "v.parquet")
    )
    plain = load_data(shop, text=False)
    data = load_data(shop, text=True)
    assert plain.item_text_emb is None
    assert data.text_encoder.endswith("+vectors:image")
    d_text = data.item_text_emb.shape[1] - 4
    assert d_text > 0
    k = data.item_index[ITEMS[2]]
    np.testing.assert_allclose(
        data.item_text_emb[k, d_text:], vecs[2] / np.linalg.norm(vecs[2]) / np.sqrt(2), rtol=1e-5
    )
