"""Approximate nearest-neighbour candidate retrieval for big catalogues (issue 19 §3).

A model whose score is an inner product ``s(u, i) = <q_u, y_i>`` of a user (query) vector and an
item vector (ALS's factors, the two-tower model's tower outputs) can find a user's top items
without scoring the whole catalogue: a graph index over the item vectors (HNSW, Malkov &
Yashunin 2018, "Efficient and robust approximate nearest neighbor search using Hierarchical
Navigable Small World graphs", TPAMI) searched with the inner product as the similarity
(maximum inner-product search; Morozov & Babenko 2018, "Non-metric Similarity Graphs for
Maximum Inner Product Search", NeurIPS, show the graph over the inner product itself beats the
reduction to Euclidean search, which ``benchmarks/bench_ann.py`` confirms: recall@200 0.17 vs
0.87 on the same index settings).

When. :meth:`~ltrec.models.base.Recommender.fit` builds the index when the catalogue has at
least ``LTREC_ANN_MIN_ITEMS`` items (default 200,000; 0: never) and the model's score is a plain
inner product with its config (a repeat blend or a learned repeat term is not: those runs stay
exact). Below the threshold nothing changes: the exact path gives the same lists as before.

How it is used. :meth:`~ltrec.models.base.Recommender.recommend` and ``recommend_history`` (so
:func:`~ltrec.models.candidates.candidate_pool`, the app, the Studio, export and the API) ask
the index for ``k + (the user's seen items)`` neighbours (over-fetch, so that excluding the seen
items still leaves k), score those exactly with the model's vectors, mask the seen items and
take the top k with the usual tie rule (lower item index). Users without history (the popularity
fallback) and lists restricted to ``candidates`` take the exact path.

Saved with the run as ``model/ann.faiss`` in the library's own format (no pickle; the run's
manifest lists its sha256 and size, and :func:`ltrec.models.registry.load_run` verifies them
before the file is parsed), with its settings in ``state.npz`` (``ann_meta``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ltrec.config import get_settings
from ltrec.errors import ModelError, RegistryError

#: The index file in a saved model folder (beside config.json and state.npz).
ANN_FILE = "ann.faiss"
#: Layout version of ``ann_meta`` in ``state.npz``.
_META_VERSION = 1
#: HNSW graph degree and build depth (benchmarks/bench_ann.py: recall@200 >= 0.95 at 1M items).
HNSW_M = 32
EF_CONSTRUCTION = 200
#: Search depth: at least this, and at least the number of neighbours asked for.
EF_SEARCH = 800


@dataclass
class AnnIndex:
    """An HNSW inner-product index over a model's item vectors (faiss ``IndexHNSWFlat``)."""

    index: Any
    n_items: int
    dim: int
    m: int = HNSW_M
    ef_construction: int = EF_CONSTRUCTION
    ef_search: int = EF_SEARCH

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Item indices ``[n, k]`` of each query's ``k`` largest inner products (approximate),
        best first; ``-1`` where the index returned fewer."""
        import faiss  # lazy: an optional native library; only ANN use loads it

        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = int(min(k, self.n_items))
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        if len(q) == 1:
            # One request: one thread (faiss's OpenMP start-up costs more than the search).
            with _omp_threads(1):
                _, idx = self.index.search(q, k, params=params)
        else:
            _, idx = self.index.search(q, k, params=params)
        return idx.astype(np.int64, copy=False)

    def meta(self) -> np.ndarray:
        """The settings saved in ``state.npz`` (``ann_meta``)."""
        return np.asarray(
            [_META_VERSION, self.n_items, self.dim, self.m, self.ef_construction, self.ef_search],
            dtype=np.int64,
        )

    def save(self, folder: Path) -> Path:
        import faiss  # lazy: an optional native library; only ANN use loads it

        path = Path(folder) / ANN_FILE
        faiss.write_index(self.index, str(path))
        return path

    @classmethod
    def load(cls, folder: Path, meta: np.ndarray) -> AnnIndex:
        """Read ``ann.faiss`` and check it against ``meta`` (its item count and dimension).

        Raises:
            RegistryError: the file is missing, unreadable or not the index ``meta`` describes.
        """
        import faiss  # lazy: an optional native library; only ANN use loads it

        path = Path(folder) / ANN_FILE
        try:
            version, n, dim, m, efc, ef = (int(x) for x in np.asarray(meta).ravel())
        except (TypeError, ValueError) as exc:
            raise RegistryError(
                "saved model state has a damaged ANN index description (ann_meta)",
                hint="train the model again",
            ) from exc
        if version != _META_VERSION:
            raise RegistryError(
                f"the run's ANN index is of layout {version}, this ltrec reads {_META_VERSION}",
                hint="train the model again",
            )
        if not path.is_file() or path.is_symlink():
            raise RegistryError(
                f"the run's ANN index file {ANN_FILE} is missing",
                hint="the run is incomplete; train the model again",
            )
        try:
            index = faiss.read_index(str(path))
        except Exception as exc:  # noqa: BLE001 - faiss raises RuntimeError for any bad file
            raise RegistryError(
                f"the run's ANN index file {ANN_FILE} cannot be read "
                f"({exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})",
                hint="the run is damaged; train the model again",
            ) from exc
        if (
            not isinstance(index, faiss.IndexHNSWFlat)
            or index.ntotal != n
            or index.d != dim
            or index.metric_type != faiss.METRIC_INNER_PRODUCT
        ):
            raise RegistryError(
                f"the run's ANN index file {ANN_FILE} does not match the model "
                f"({type(index).__name__}, {index.ntotal} items of {index.d} dimensions; "
                f"expected an inner-product HNSW index of {n} items of {dim})",
                hint="the run is damaged; train the model again",
            )
        return cls(index, n, dim, m, efc, ef)


def build_index(
    vectors: np.ndarray,
    *,
    m: int = HNSW_M,
    ef_construction: int = EF_CONSTRUCTION,
    ef_search: int = EF_SEARCH,
    threads: int | None = None,
) -> AnnIndex:
    """An HNSW inner-product index over ``vectors`` ``[n_items, dim]`` (row i = item i).

    ``threads``: build threads (None: all cores). The build is deterministic for given vectors
    and settings on one thread; with more, the graph (and so a borderline neighbour) can
    differ between builds.
    """
    import faiss  # lazy: an optional native library; only ANN use loads it

    y = np.ascontiguousarray(vectors, dtype=np.float32)
    if y.ndim != 2 or not len(y) or not np.isfinite(y).all():
        raise ModelError("the ANN index needs finite item vectors, one row per item")
    index = faiss.IndexHNSWFlat(y.shape[1], int(m), faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = int(ef_construction)
    if threads is None:
        index.add(y)
    else:
        with _omp_threads(int(threads)):
            index.add(y)
    return AnnIndex(index, len(y), y.shape[1], int(m), int(ef_construction), int(ef_search))


def describe(index: AnnIndex | None) -> str:
    if index is None:
        return "exact (no ANN index)"
    return (
        f"faiss HNSW inner product, {index.n_items:,} items x {index.dim}, M={index.m}, "
        f"efConstruction={index.ef_construction}, efSearch={index.ef_search}"
    )


class _omp_threads:
    """Set faiss's OpenMP threads for a block (restored after). ``omp_set_num_threads`` sets
    the calling thread's own setting, so concurrent requests on other threads are unaffected."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> None:
        import faiss  # lazy: an optional native library; only ANN use loads it

        self.before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        import faiss  # lazy: an optional native library; only ANN use loads it

        faiss.omp_set_num_threads(self.before)


def min_items() -> int:
    """``LTREC_ANN_MIN_ITEMS``: the smallest catalogue that gets an index (0: never)."""

    return int(get_settings().ann_min_items)
