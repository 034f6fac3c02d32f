"""Spark MLlib ALS (``--engine spark``, local[2]) vs the local ALS (``implicit``) on the same data.

Run: ``.venv/bin/python benchmarks/bench_spark_als.py [--users 2000] [--items 500]
[--events 200000] [--seeds 3] [--factors 32] [--master local[2]]``. Prints a table and writes
``benchmarks/results/spark_als.json``. Uses a temporary data directory.

One demo shop, its default split, one :class:`~ltrec.models.data.InteractionData`; each engine
fits ALS with the same config (``factors``, ``regularization``, ``alpha``, ``iterations``) over
``--seeds`` seeds, and every fit is evaluated by the same :func:`~ltrec.models.train.
evaluate_model` (NDCG@10, full-catalogue ranking). Fit seconds are wall-clock time of ``fit``
(the Spark session is started before, and its start-up is reported on its own); the Spark fit
includes shipping the interactions to Spark and collecting the factors. The floor is the local
fit measured in the same run: the table gives Spark's time as a ratio to it.

The Spark-resident case (``spark-res``): the same shop's tables as Spark views behind an external
``pyspark`` dataset (``data/xdemo.toml``), trained by ``ltrec train xdemo --model als --engine
spark`` (:mod:`ltrec.models.spark_resident`: split, pairs, fingerprint and the evaluation's
histories on Spark). Its ``fit_s`` is MLlib's fit alone; ``total_s`` the whole command (split
and data on Spark, fit, evaluation, saving); ``export_s`` writes every user's list on Spark.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "spark_als.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--factors", type=int, default=32)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--resident-seeds", type=int, default=1, help="Spark-resident fits")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-spark-als-"))
    os.environ["LTREC_DATA_DIR"] = str(tmp)
    from ltrec.models.als import ALS
    from ltrec.models.spark_als import SparkALS, spark_session
    from ltrec.models.train import evaluate_model, load_data
    from ltrec.synth.demo import DemoConfig, build_demo

    build_demo(DemoConfig(users=args.users, items=args.items, events=args.events, seed=1))
    data = load_data("demo")
    params = {"factors": args.factors}
    t0 = time.perf_counter()
    spark = spark_session(tmp, master=args.master)
    startup = time.perf_counter() - t0

    rows = []
    for engine in ("local", "spark"):
        for seed in range(args.seeds):
            model = (
                ALS(**params, seed=seed)
                if engine == "local"
                else SparkALS(**params, seed=seed, spark=spark)
            )
            t = time.perf_counter()
            model.fit(data)
            fit_s = time.perf_counter() - t
            ndcg = evaluate_model(model, data, n_boot=50).to_dict()["ndcg@10"]["mean"]
            rows.append({"engine": engine, "seed": seed, "fit_s": fit_s, "ndcg@10": ndcg})
            print(f"{engine:5} seed {seed}: fit {fit_s:7.2f} s  NDCG@10 {ndcg:.4f}", flush=True)

    resident = _resident(spark, params, args.resident_seeds, tmp)
    rows.extend(resident)

    summary = {}
    for engine in ("local", "spark", "spark-res"):
        mine = [r for r in rows if r["engine"] == engine]
        nd = np.array([r["ndcg@10"] for r in mine])
        fit = np.array([r["fit_s"] for r in mine])
        summary[engine] = {
            "fit_s_median": float(np.median(fit)),
            "ndcg_mean": float(nd.mean()),
            "ndcg_min": float(nd.min()),
            "ndcg_max": float(nd.max()),
        }
    ratio = summary["spark"]["fit_s_median"] / summary["local"]["fit_s_median"]
    print()
    print(
        f"data: {data.n_users:,} users, {data.n_items:,} items, {data.matrix.nnz:,} "
        f"interactions; factors {args.factors}; Spark {args.master}, start-up {startup:.1f} s"
    )
    print(f"{'engine':10}{'fit s (median)':>16}{'x local':>10}{'NDCG@10 mean':>14}{'min..max':>18}")
    for engine in ("local", "spark", "spark-res"):
        s = summary[engine]
        x = s["fit_s_median"] / summary["local"]["fit_s_median"]
        print(
            f"{engine:10}{s['fit_s_median']:>16.2f}{x:>10.1f}{s['ndcg_mean']:>14.4f}"
            f"{s['ndcg_min']:>9.4f}..{s['ndcg_max']:.4f}"
        )
    res = resident[0]
    print(
        f"spark-resident: whole train command {res['total_s']:.1f} s (fit {res['fit_s']:.1f} s), "
        f"export of every user's list {res['export_s']:.1f} s"
    )
    out = {
        "args": vars(args),
        "data": {"users": data.n_users, "items": data.n_items, "interactions": data.matrix.nnz},
        "spark_startup_s": startup,
        "rows": rows,
        "summary": summary,
        "spark_over_local_fit": ratio,
        "resident_over_local_fit": summary["spark-res"]["fit_s_median"]
        / summary["local"]["fit_s_median"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


def _resident(spark, params: dict, seeds: int, root: Path) -> list[dict]:  # noqa: ANN001
    """Fits of the Spark-resident case: the demo's tables as Spark views behind xdemo.toml."""
    import shutil

    from ltrec.app.spark_export import export_spark
    from ltrec.models.train import train
    from ltrec.store import connect

    con = connect("demo", root)
    try:
        for t in ("events", "items", "users"):
            frame = con.execute(f"SELECT * FROM {t}").df()  # noqa: S608
            frame = frame[[c for c in frame.columns if frame[c].notna().any()]]
            spark.createDataFrame(frame).createOrReplaceTempView(f"xdemo_{t}")
    finally:
        con.close()
    tables = "\n".join(f'{t} = "xdemo_{t}"' for t in ("events", "items", "users"))
    (root / "xdemo.toml").write_text(f'backend = "pyspark"\n[tables]\n{tables}\n')
    rows = []
    for seed in range(seeds):
        t = time.perf_counter()
        result = train("xdemo", "als", {**params, "seed": seed}, n_boot=50, engine="spark")
        total = time.perf_counter() - t
        out = root / f"lists-{seed}.parquet"
        t = time.perf_counter()
        export_spark("xdemo", result.run_id, out, spark=spark)
        export_s = time.perf_counter() - t
        shutil.rmtree(out, ignore_errors=True)
        ndcg = result.to_dict()["metrics"]["ndcg@10"]["mean"]
        rows.append(
            {
                "engine": "spark-res",
                "seed": seed,
                "fit_s": result.train_seconds,
                "total_s": total,
                "export_s": export_s,
                "ndcg@10": ndcg,
            }
        )
        print(
            f"spark-res seed {seed}: fit {result.train_seconds:7.2f} s  whole train "
            f"{total:7.2f} s  export {export_s:7.2f} s  NDCG@10 {ndcg:.4f}",
            flush=True,
        )
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
