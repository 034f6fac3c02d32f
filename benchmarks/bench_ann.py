"""Approximate nearest-neighbour retrieval for big catalogues (issue 19 §3): which index, and
what the model's recommend path costs with it.

Part 1, ``libs`` (the choice): usearch, faiss-cpu and hnswlib HNSW graphs and faiss's inverted
file (``faiss-ivf``: ``--nlist`` k-means cells trained on ``--ivf-train`` items; its "ef" is
nprobe, the cells a query scans) over synthetic factors (``--items`` x ``--dim``, default
1M x 64), inner-product metric (MIPS), the Euclidean reduction (``LIB:mips``) or that reduction
searched by inner product (``LIB:aug``, what :mod:`ltrec.models.ann` does), each at a few search
depths (``--ef``). Per setting: build seconds (all cores), recall@200 against the exact top 200
of the same queries, and one-query latency (one thread, one user per call as a request does)
p50/p99 in wall-clock and CPU time, beside the exact numpy floor measured in the same run
(``y @ q`` then the top 200, as :func:`ltrec.models.base.top_k` does it), with ratios to it.

Part 2, ``model`` (the target): an ALS model holding the same factors and the index ltrec
builds at training time (:mod:`ltrec.models.ann`: its settings), one warm user per call through
``model.recommend(u, 10)`` and ``candidate_pool(model, data, [u], 200)`` (seen items excluded:
over-fetch then filter), p50/p99 wall and CPU, against the same calls with the index switched
off (exact), and recall@200 of the pool against the exact pool, for each ``--nprobe`` on one
index; build wall and CPU seconds, index bytes, the 1-minute load average with each row.
Targets: recall@200 >= 0.95, one-user recommend p99 <= 10 ms at 1M items.

Synthetic factors, shaped like learned ones: items around ``--clusters`` centres (tastes) with
log-normal norms (popular items have larger ALS factors); user vectors around the same centres.
Pure Gaussian vectors (no structure) with ``--gaussian``.

    .venv/bin/python benchmarks/bench_ann.py [--items 1000000] [--dim 64] [--queries 200]
        [--part libs|model|both] [--libs usearch,faiss,hnswlib,faiss-ivf:aug] [--ef 400,800]
        [--m 32] [--ef-construction 200] [--nlist 4096] [--ivf-train 262144]
        [--nprobe 256,512] [--index-cache DIR] [--out FILE]

Writes ``--out`` (default benchmarks/results/ann.json, which holds the merged runs: write a
new run elsewhere and merge it under its own key). The figures of ltrec's index (key
``model_1m_ivf``): ``--items 1000000 --queries 200 --part model --nprobe 128,256,384,512,768
--index-cache DIR`` (the index builds in 91 CPU-seconds, minutes of wall on the loaded session
machine; ``--index-cache`` keeps it for a rerun that only times queries). The HNSW graphs take
far longer (one 1M build most of an hour on the session machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ltrec.models.ann import equalise_norms  # noqa: E402 - after the path set-up

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "ann.json"
K = 200


def synthetic(n: int, dim: int, n_users: int, clusters: int, gaussian: bool, seed: int):
    """``(item vectors [n, dim], user vectors [n_users, dim])``, float32."""
    rng = np.random.default_rng(seed)
    if gaussian:
        return (
            rng.standard_normal((n, dim), dtype=np.float32),
            rng.standard_normal((n_users, dim), dtype=np.float32),
        )
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    items = np.empty((n, dim), dtype=np.float32)
    step = 200_000
    for lo in range(0, n, step):  # blocks: bounded temporaries
        hi = min(n, lo + step)
        c = rng.integers(0, clusters, hi - lo)
        v = centres[c] + 0.7 * rng.standard_normal((hi - lo, dim), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        v *= rng.lognormal(0.0, 0.5, (hi - lo, 1)).astype(np.float32)
        items[lo:hi] = v
    c = rng.integers(0, clusters, n_users)
    users = centres[c] + 0.7 * rng.standard_normal((n_users, dim), dtype=np.float32)
    return items, users.astype(np.float32)


def exact_top(y: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    from ltrec.models.base import top_k

    idx, _ = top_k((y @ q)[None, :], k)
    return idx[0]


def pct(times: list[float], cpu: list[float] | None = None) -> dict[str, float]:
    """Wall-clock p50/p99 and, when given, the same of the calling thread's CPU time (what
    the call costs without the waits of a shared machine: every timed call runs on one thread,
    BLAS included)."""
    a = np.asarray(times) * 1000.0
    out = {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
    }
    if cpu is not None:
        c = np.asarray(cpu) * 1000.0
        out["cpu_p50_ms"] = round(float(np.percentile(c, 50)), 3)
        out["cpu_p99_ms"] = round(float(np.percentile(c, 99)), 3)
    return out


def recall(got: np.ndarray, want: np.ndarray) -> float:
    return float(
        np.mean(
            [
                len(set(g.tolist()) & set(w.tolist())) / len(w)
                for g, w in zip(got, want, strict=True)
            ]
        )
    )


# ---------------------------------------------------------------------------- libraries


class Lib:
    name = ""

    def build(self, y: np.ndarray) -> None: ...
    def set_ef(self, ef: int) -> None: ...
    def query(self, q: np.ndarray, k: int) -> np.ndarray: ...
    def nbytes(self) -> int: ...


class USearch(Lib):
    name = "usearch"

    def __init__(self, m: int, ef_construction: int, space: str) -> None:
        self.m, self.efc, self.space = m, ef_construction, space

    def build(self, y):
        from usearch.index import Index

        metric = "ip" if self.space == "ip" else "l2sq"
        self.index = Index(
            ndim=y.shape[1], metric=metric, dtype="f32", connectivity=self.m,
            expansion_add=self.efc, expansion_search=64,
        )  # fmt: skip
        self.index.add(np.arange(len(y), dtype=np.uint64), y, threads=os.cpu_count() or 1)

    def set_ef(self, ef):
        self.index.expansion_search = ef

    def query(self, q, k):
        return np.asarray(self.index.search(q, k, threads=1).keys, dtype=np.int64)

    def nbytes(self):
        return int(self.index.memory_usage)


class Faiss(Lib):
    name = "faiss"

    def __init__(self, m: int, ef_construction: int, space: str) -> None:
        self.m, self.efc, self.space = m, ef_construction, space

    def build(self, y):
        import faiss

        faiss.omp_set_num_threads(os.cpu_count() or 1)
        self.index = faiss.IndexHNSWFlat(
            y.shape[1],
            self.m,
            faiss.METRIC_INNER_PRODUCT if self.space == "ip" else faiss.METRIC_L2,
        )
        self.index.hnsw.efConstruction = self.efc
        self.index.add(y)
        faiss.omp_set_num_threads(1)

    def set_ef(self, ef):
        self.index.hnsw.efSearch = ef

    def query(self, q, k):
        return self.index.search(q[None, :], k)[1][0].astype(np.int64)

    def nbytes(self):
        import faiss

        return int(faiss.serialize_index(self.index).nbytes)


class HNSWLib(Lib):
    name = "hnswlib"

    def __init__(self, m: int, ef_construction: int, space: str) -> None:
        self.m, self.efc, self.space = m, ef_construction, space

    def build(self, y):
        import hnswlib

        self.index = hnswlib.Index(space="ip" if self.space == "ip" else "l2", dim=y.shape[1])
        self.index.init_index(
            max_elements=len(y), ef_construction=self.efc, M=self.m, random_seed=0
        )
        self.index.add_items(y, np.arange(len(y)), num_threads=os.cpu_count() or 1)

    def set_ef(self, ef):
        self.index.set_ef(ef)

    def query(self, q, k):
        return self.index.knn_query(q[None, :], k, num_threads=1)[0][0].astype(np.int64)

    def nbytes(self):
        n = self.index.get_current_count()
        return int(n * (self.index.dim * 4 + 2 * self.m * 4 + 16))  # data + level-0 links


class FaissIVF(Lib):
    """faiss inverted file (``IndexIVFFlat``): k-means cells over a training sample, each item
    in its cell; a query scans the ``nprobe`` (the "ef" of the sweep) cells of the largest
    centroid inner products."""

    name = "faiss-ivf"

    def __init__(self, nlist: int, train: int, space: str) -> None:
        self.nlist, self.train, self.space = nlist, train, space

    def build(self, y):
        import faiss

        faiss.omp_set_num_threads(os.cpu_count() or 1)
        ip = self.space in ("ip", "aug")
        metric = faiss.METRIC_INNER_PRODUCT if ip else faiss.METRIC_L2
        quantizer = faiss.IndexFlatIP(y.shape[1]) if ip else faiss.IndexFlatL2(y.shape[1])
        self.index = faiss.IndexIVFFlat(quantizer, y.shape[1], self.nlist, metric)
        self.quantizer = quantizer  # the index does not own it: kept alive as long as the index
        rng = np.random.default_rng(0)
        sample = y[np.sort(rng.choice(len(y), min(len(y), self.train), replace=False))]
        self.index.train(sample)
        self.index.add(y)
        faiss.omp_set_num_threads(1)

    def set_ef(self, ef):
        self.index.nprobe = ef

    def query(self, q, k):
        return self.index.search(q[None, :], k)[1][0].astype(np.int64)

    def nbytes(self):
        import faiss

        return int(faiss.serialize_index(self.index).nbytes)


LIBS = {"usearch": USearch, "faiss": Faiss, "hnswlib": HNSWLib, "faiss-ivf": FaissIVF}


def bench_libs(y, users, want, args) -> dict[str, Any]:
    out: dict[str, Any] = {}
    t_exact, c_exact = [], []
    for q in users:
        t0, c0 = time.perf_counter(), time.thread_time()
        exact_top(y, q, K)
        t_exact.append(time.perf_counter() - t0)
        c_exact.append(time.thread_time() - c0)
    floor = pct(t_exact, c_exact)
    out["exact"] = floor
    print(f"exact numpy floor: p50 {floor['p50_ms']} ms, p99 {floor['p99_ms']} ms", flush=True)
    aug = None
    for spec in args.libs.split(","):
        name, _, space = spec.partition(":")
        space = space or "ip"
        if name == "faiss-ivf":
            lib = FaissIVF(args.nlist, args.ivf_train, space)
        else:
            lib = LIBS[name](args.m, args.ef_construction, space)
        t0 = time.perf_counter()
        if space in ("mips", "aug"):
            aug = equalise_norms(y)
            lib.build(aug)
        else:
            lib.build(y)
        build = time.perf_counter() - t0
        qs = (
            [np.append(q, np.float32(0.0)) for q in users]
            if space in ("mips", "aug")
            else list(users)
        )
        rows = []
        for ef in [int(e) for e in args.ef.split(",")]:
            lib.set_ef(ef)
            got, times, cpu = [], [], []
            for q in qs:
                t0, c0 = time.perf_counter(), time.thread_time()
                got.append(lib.query(q, K))
                times.append(time.perf_counter() - t0)
                cpu.append(time.thread_time() - c0)
            p = pct(times, cpu)
            row = {
                "ef": ef,
                f"recall@{K}": round(recall(got, want), 4),
                **p,
                "p99_ratio_to_exact": round(p["p99_ms"] / floor["p99_ms"], 4),
            }
            rows.append(row)
            print(f"{spec:14s} build {build:7.1f} s  {row}", flush=True)
        out[spec] = {"build_s": round(build, 1), "bytes": lib.nbytes(), "settings": rows}
        del lib
        aug = None  # noqa: F841 - frees the augmented copy before the next build
    return out


# ---------------------------------------------------------------------------- model path


def bench_model(y, users, args) -> dict[str, Any]:
    """One-user recommend through the ALS model with and without its index."""
    import scipy.sparse as sp

    from ltrec.models import ann
    from ltrec.models.als import ALS
    from ltrec.models.candidates import candidate_pool

    n_items, n_users = len(y), len(users)
    rng = np.random.default_rng(args.seed + 1)
    # Each user has seen 20 items (masked: the path over-fetches and filters them).
    seen_cols = rng.integers(0, n_items, (n_users, 20))
    seen = sp.csr_matrix(
        (
            np.ones(seen_cols.size, np.float32),
            (np.repeat(np.arange(n_users), 20), seen_cols.ravel()),
        ),
        shape=(n_users, n_items),
    )
    model = ALS(factors=y.shape[1])
    model.n_users_, model.n_items_ = n_users, n_items
    model.seen_ = seen
    model.seen_.sort_indices()
    model.pop_ = np.asarray(seen.sum(axis=0)).ravel().astype(np.float64)
    model.repeat_, model.freq_, model.blend_pop_ = False, None, None
    model.user_factors_, model.item_factors_ = users, y
    model._yty = None

    class Data:  # what candidate_pool reads with tail_pool=0
        pass

    data = Data()
    data.n_items = n_items
    cache = args.index_cache
    t0, c0 = time.perf_counter(), time.process_time()
    if cache is not None and (cache / ann.ANN_FILE).is_file():
        model.ann_ = ann.AnnIndex.load(cache, np.load(cache / "ann_meta.npy"))
        build = build_cpu = None  # loaded, not built
    else:
        model.build_ann(min_items=1)
        build, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            model.ann_.save(cache)
            np.save(cache / "ann_meta.npy", model.ann_.meta())
    print(f"model index ({ann.describe(model.ann_)}): {build} s to build", flush=True)

    def timed(fn):
        times, cpu, res = [], [], []
        for u in range(n_users):
            t0, c0 = time.perf_counter(), time.thread_time()
            res.append(fn(u))
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
        return pct(times, cpu), res

    index, model.ann_ = model.ann_, None
    rec_exact, _ = timed(lambda u: model.recommend(u, 10))
    pool_exact, want = timed(lambda u: candidate_pool(model, data, np.array([u]), K)[0][0])
    print(f"exact floor: recommend {rec_exact}, pool {pool_exact}", flush=True)
    model.ann_ = index
    with tempfile.TemporaryDirectory() as tmp:
        nbytes = index.save(Path(tmp)).stat().st_size
    out: dict[str, Any] = {
        "build_s": None if build is None else round(build, 1),
        "build_cpu_s": None if build_cpu is None else round(build_cpu, 1),
        "index_bytes": nbytes,
        "exact": {"recommend_k10": rec_exact, f"pool_m{K}": pool_exact},
        "settings": [],
    }
    default = index.nprobe
    for nprobe in [int(x) for x in args.nprobe.split(",")] if args.nprobe else [default]:
        index.nprobe = nprobe
        rec_ann, _ = timed(lambda u: model.recommend(u, 10))
        pool_ann, got = timed(lambda u: candidate_pool(model, data, np.array([u]), K)[0][0])
        row = {
            "nprobe": nprobe,
            f"pool_recall@{K}": round(recall(got, want), 4),
            "recommend_k10": rec_ann,
            f"pool_m{K}": pool_ann,
            "recommend_p99_ratio_to_exact": round(rec_ann["p99_ms"] / rec_exact["p99_ms"], 4),
            "pool_p99_ratio_to_exact": round(pool_ann["p99_ms"] / pool_exact["p99_ms"], 4),
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }
        out["settings"].append(row)
        print(json.dumps(row), flush=True)
    index.nprobe = default
    out["index"] = ann.describe(index)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        model.save(tmp)
        out["save_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        loaded = ALS.load(tmp)
        out["load_s"] = round(time.perf_counter() - t0, 1)
        same = all(
            np.array_equal(loaded.recommend(u, 10)[0], model.recommend(u, 10)[0]) for u in range(20)
        )
        out["loaded_lists_equal"] = bool(same)
    print(json.dumps(out, indent=2), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--gaussian", action="store_true")
    ap.add_argument("--part", choices=("libs", "model", "both"), default="both")
    ap.add_argument(
        "--libs",
        default="usearch,faiss,hnswlib",
        help="comma-separated LIB[:SPACE]; SPACE 'ip' (default: the library's inner-product "
        "metric), 'mips' (the Euclidean reduction, L2 search; see ltrec.models.ann."
        "equalise_norms) or 'aug' (that reduction, inner-product search: ltrec's index)",
    )
    ap.add_argument("--ef", default="400,800")
    ap.add_argument("--m", type=int, default=32, help="graph degree (M / connectivity)")
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nlist", type=int, default=4096, help="faiss-ivf: k-means cells")
    ap.add_argument(
        "--ivf-train", type=int, default=262_144, help="faiss-ivf: k-means training sample"
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--nprobe",
        default=None,
        help="model part: comma-separated nprobe values to time on one index (default: ltrec's)",
    )
    ap.add_argument(
        "--index-cache",
        type=Path,
        default=None,
        help="model part: a folder to save the built index in, or load it from when it is "
        "there (same --items/--dim/--seed), so a rerun times queries without a rebuild",
    )
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")  # one request, one thread (see pct)

    t0 = time.perf_counter()
    y, users = synthetic(
        args.items, args.dim, args.queries, args.clusters, args.gaussian, args.seed
    )
    print(f"{args.items:,} x {args.dim} factors in {time.perf_counter() - t0:.1f} s", flush=True)
    out: dict[str, Any] = {
        "items": args.items,
        "dim": args.dim,
        "queries": args.queries,
        "data": "gaussian" if args.gaussian else f"{args.clusters} clusters, log-normal norms",
        "m": args.m,
        "ef_construction": args.ef_construction,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "loadavg_1m_start": round(os.getloadavg()[0], 2),
        "command": "bench_ann.py " + " ".join(sys.argv[1:]),
    }
    if args.part in ("libs", "both"):
        want = np.stack([exact_top(y, q, K) for q in users])
        out["libs"] = bench_libs(y, users, want, args)
    if args.part in ("model", "both"):
        out["model"] = bench_model(y, users, args)
    out["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
