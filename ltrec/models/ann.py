"""Approximate nearest-neighbour candidate retrieval for big catalogues (issue 19 §3).

A model whose score is an inner product ``s(u, i) = <q_u, y_i>`` of a user (query) vector and an
item vector (ALS's factors, the two-tower model's tower outputs) can find a user's top items
without scoring the whole catalogue: an inverted-file index (faiss ``IndexIVFFlat``; Jégou,
Douze & Schmid 2011, "Product quantization for nearest neighbor search", TPAMI, §IV) cuts the
item vectors into ``nlist`` k-means cells and a query scans only the ``nprobe`` cells whose
centroids have the largest inner products with it.

Inner products of items of unequal norms (ALS gives popular items larger factors) are not a
distance, and cells cut by direction alone hold the long, often-recommended vectors next to
short ones. So the index holds the items norm-equalised (Bachrach et al. 2014, "Speeding up the
Xbox recommender system using a Euclidean transformation for inner-product spaces", RecSys):
every item gets one more coordinate ``sqrt(M^2 - |y_i|^2)`` (M: the largest norm) and queries
get 0, which leaves every inner product as it was; the short items, with a large extra
coordinate, then gather in cells whose centroids a query ranks low. ``benchmarks/bench_ann.py``
at 1M items x 64 (clustered synthetic factors, log-normal norms), 4,096 cells, recall@200
against exact search: nprobe 256 0.956 with norm-equalised vectors, 0.899 without (128: 0.905
vs 0.834). The earlier HNSW graph (faiss ``IndexHNSWFlat``, M=32, efSearch 800) kept 0.793 at
1M items and took 54 minutes to build on the shared machine; this index trains its cells on a
sample, builds in 91 CPU-seconds, and its recall is tuned by ``nprobe`` alone.

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
before the file is parsed), with its settings in ``state.npz`` (``ann_meta``). Runs saved with
the earlier HNSW index (layout 1) are refused with the remedy: train the model again.
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
#: Layout version of ``ann_meta`` in ``state.npz`` (1: the earlier HNSW index, refused).
_META_VERSION = 2
#: Cells per square root of the item count (4,000 cells at 1M items, ~250 items a cell):
#: bench_ann.py --part model at 1M items builds in 91 CPU-seconds (511 s wall at load 16-30 on
#: the shared two-core machine; the HNSW graph: 54 minutes). At most one cell per
#: ``MIN_CELL_ITEMS`` items (k-means wants that many points a centroid): small catalogues get
#: few cells, one cell is exact search.
CELLS_PER_SQRT = 4
MIN_CELL_ITEMS = 39
#: k-means training sample: this many items a cell (all items below that; 256,000 at 1M).
TRAIN_PER_CELL = 64
#: Cells scanned a query (capped by nlist). bench_ann.py --part model, 1M items, 4,000 cells,
#: candidate pools of 200 against the exact pools (recall@200) and one-user recommend CPU p99:
#: nprobe 128 0.905 (2.4 ms), 256 0.955 (3.2 ms), 384 0.973 (3.6 ms), 512 0.983 (5.5 ms),
#: 768 0.991 (8.9 ms); the exact numpy floor 55.8 ms. 512 keeps a margin over the 0.95 bound
#: for factors less clustered than the benchmark's, at about a tenth of the exact cost.
NPROBE = 512


@dataclass
class AnnIndex:
    """An inverted-file inner-product index over a model's norm-equalised item vectors
    (faiss ``IndexIVFFlat``, one extra coordinate: see :func:`equalise_norms`)."""

    index: Any
    n_items: int
    dim: int
    nlist: int
    nprobe: int = NPROBE
    train_points: int = 0

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Item indices ``[n, k]`` of each query's ``k`` largest inner products (approximate),
        best first; ``-1`` only where the catalogue has fewer than ``k`` items."""
        import faiss  # lazy: an optional native library; only ANN use loads it

        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        # [q, 0]: the query against the norm-equalised items (see equalise_norms).
        q = np.concatenate([q, np.zeros((len(q), 1), np.float32)], axis=1)
        k = int(min(k, self.n_items))
        nprobe = min(self.nprobe, self.nlist)
        with _omp_threads(1 if len(q) == 1 else None):
            # One request: one thread (faiss's OpenMP start-up costs more than the search).
            _, idx = self.index.search(q, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
            # The probed cells held fewer than k items: probe more cells for those rows (at
            # nprobe = nlist every item is scanned, so the list is full).
            short = np.flatnonzero((idx < 0).any(axis=1))
            while len(short) and nprobe < self.nlist:
                nprobe = min(self.nlist, 2 * nprobe)
                params = faiss.SearchParametersIVF(nprobe=nprobe)
                _, idx[short] = self.index.search(q[short], k, params=params)
                short = short[(idx[short] < 0).any(axis=1)]
        return idx.astype(np.int64, copy=False)

    def meta(self) -> np.ndarray:
        """The settings saved in ``state.npz`` (``ann_meta``)."""
        return np.asarray(
            [_META_VERSION, self.n_items, self.dim, self.nlist, self.nprobe, self.train_points],
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
            RegistryError: the file is missing, unreadable, of the earlier HNSW layout, or not
                the index ``meta`` describes.
        """
        import faiss  # lazy: an optional native library; only ANN use loads it

        path = Path(folder) / ANN_FILE
        fields = np.asarray(meta).ravel()
        if len(fields) and fields[0] == 1:
            raise RegistryError(
                "the run's ANN index is the earlier HNSW graph (layout 1), which this ltrec no "
                f"longer reads (it kept 79% of the exact top 200 at 1M items); it reads the "
                f"inverted-file index (layout {_META_VERSION})",
                hint="train the model again (ltrec train NAME --model MODEL): the new run gets "
                "the new index",
            )
        try:
            version, n, dim, nlist, nprobe, train = (int(x) for x in fields)
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
            not isinstance(index, faiss.IndexIVFFlat)
            or index.ntotal != n
            or index.d != dim + 1
            or index.nlist != nlist
            or index.metric_type != faiss.METRIC_INNER_PRODUCT
        ):
            raise RegistryError(
                f"the run's ANN index file {ANN_FILE} does not match the model "
                f"({type(index).__name__}, {index.ntotal} items of {index.d} dimensions; "
                f"expected an inner-product inverted file of {n} items of {dim} + 1 in "
                f"{nlist} cells)",
                hint="the run is damaged; train the model again",
            )
        return cls(index, n, dim, nlist, nprobe, train)


def equalise_norms(vectors: np.ndarray) -> np.ndarray:
    """``[y, sqrt(M^2 - |y|^2)]`` (M: the largest row norm): every row gets norm M and the inner
    product with ``[q, 0]`` stays ``<q, y>`` (Bachrach et al. 2014; see the module doc)."""
    y = np.asarray(vectors, dtype=np.float32)
    sq = np.einsum("ij,ij->i", y, y, dtype=np.float64)
    extra = np.sqrt(np.maximum(sq.max(initial=0.0) - sq, 0.0)).astype(np.float32)
    return np.ascontiguousarray(np.concatenate([y, extra[:, None]], axis=1))


def cells_for(n_items: int) -> int:
    """``nlist`` of a catalogue: ``CELLS_PER_SQRT * sqrt(n)``, at most one a ``MIN_CELL_ITEMS``."""
    n = int(n_items)
    return max(1, min(int(CELLS_PER_SQRT * np.sqrt(n)), n // MIN_CELL_ITEMS))


def build_index(
    vectors: np.ndarray,
    *,
    nlist: int | None = None,
    nprobe: int = NPROBE,
    threads: int | None = None,
    seed: int = 0,
) -> AnnIndex:
    """An inverted-file inner-product index over ``vectors`` ``[n_items, dim]`` (row i = item
    i): k-means cells (``nlist``, default :func:`cells_for`) trained on a seeded sample of
    ``TRAIN_PER_CELL`` items a cell, then every item added to its cell.

    ``threads``: build threads (None: all cores). The same vectors and settings give the same
    index (a seeded sample, faiss's seeded k-means).
    """
    import faiss  # lazy: an optional native library; only ANN use loads it

    y = np.ascontiguousarray(vectors, dtype=np.float32)
    if y.ndim != 2 or not len(y) or not np.isfinite(y).all():
        raise ModelError("the ANN index needs finite item vectors, one row per item")
    n = len(y)
    nlist = cells_for(n) if nlist is None else max(1, min(int(nlist), n))
    x = equalise_norms(y)
    quantizer = faiss.IndexFlatIP(x.shape[1])
    index = faiss.IndexIVFFlat(quantizer, x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True  # the index frees its quantizer
    quantizer.this.disown()
    train = min(n, TRAIN_PER_CELL * nlist)
    rng = np.random.default_rng(seed)
    sample = x if train == n else x[np.sort(rng.choice(n, train, replace=False))]
    with _omp_threads(threads):
        index.train(sample)
        index.add(x)
    return AnnIndex(index, n, y.shape[1], nlist, int(nprobe), train)


def describe(index: AnnIndex | None) -> str:
    if index is None:
        return "exact (no ANN index)"
    return (
        f"faiss IVF inner product (norm-equalised), {index.n_items:,} items x {index.dim}, "
        f"nlist={index.nlist}, nprobe={index.nprobe}, trained on {index.train_points:,}"
    )


class _omp_threads:
    """Set faiss's OpenMP threads for a block (restored after). ``omp_set_num_threads`` sets
    the calling thread's own setting, so concurrent requests on other threads are unaffected."""

    def __init__(self, n: int | None) -> None:
        self.n = n  # None: leave as is

    def __enter__(self) -> None:
        import faiss  # lazy: an optional native library; only ANN use loads it

        self.before = faiss.omp_get_max_threads()
        if self.n is not None:
            faiss.omp_set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        import faiss  # lazy: an optional native library; only ANN use loads it

        faiss.omp_set_num_threads(self.before)


def min_items() -> int:
    """``LTREC_ANN_MIN_ITEMS``: the smallest catalogue that gets an index (0: never)."""

    return int(get_settings().ann_min_items)
