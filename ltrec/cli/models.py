"""Model commands: train, runs, promote, evaluate, recommend, export, tune."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ltrec.app import services
from ltrec.app.auth import LOCAL  # the CLI is local: it acts as the local admin (audited)
from ltrec.cli.common import (
    RERANK_HELP,
    RUN_HELP,
    STALE_HELP,
    Command,
    add_k,
    metric_line,
    parse_set,
    print_json,
    print_progress,
)
from ltrec.config import MAX_LOSS, get_settings
from ltrec.definitions import definitions_json
from ltrec.errors import BadInputError
from ltrec.models.base import make_config, model_names

if TYPE_CHECKING:
    from ltrec.evaluation import SplitConfig


def _split_config(
    name: str, data_dir: Path | None, pairs: Sequence[str] | None
) -> SplitConfig | None:
    """``--split key=value`` pairs over the dataset's default split, validated by SplitConfig."""
    if not pairs:
        return None
    # lazy: evaluation (duckdb) stays off `ltrec --help`
    from ltrec.evaluation import SplitConfig, default_split
    from ltrec.store import connect, read_meta  # lazy: the store
    from ltrec.store.external import is_external  # lazy: external datasets

    params = parse_set(pairs)
    if isinstance(params.get("target_events"), str):  # view,cart,purchase
        params["target_events"] = tuple(t.strip() for t in params["target_events"].split(","))
    if is_external(name, data_dir):  # no local store, no meta: the defaults engine_split uses
        meta: dict[str, str] = {}
    else:
        con = connect(name, data_dir)
        try:
            meta = read_meta(con)
        finally:
            con.close()
    return make_config(SplitConfig, {**default_split(meta).model_dump(), **params})


def _train_all_data(args: argparse.Namespace) -> int:
    """``train --all-data [--from-run R]``: a fit on every event (no hold-out, no figures)."""
    if not args.all_data:
        raise BadInputError(
            "--from-run is for a fit on all data", hint="add --all-data (and drop --split)"
        )
    if args.split:
        raise BadInputError(
            "--split does not apply to --all-data: nothing is held out",
            hint="leave --split out; evaluate the source run instead",
        )
    result = services.train_all_data(
        LOCAL,
        args.name,
        args.model,
        parse_set(args.set),
        from_run=args.from_run,
        progress=None if args.json else print_progress,
        data_dir=args.data_dir,
        engine=args.engine,
    )
    out = result.to_dict()
    if args.json:
        print_json(out)
        return 0
    print(f"run {out['run_id']} ({out['model']} on all data, {out['train_seconds']:.1f} s)")
    if out["from_run"]:
        print(f"  settings and figures of run {out['from_run']} (on its test split):")
        for name, v in out["source_metrics"].items():
            print(metric_line(name, v))
    print(f"  promote it with `ltrec promote {args.name} --run {out['run_id']}`")
    return 0


def _resolve_run(args: argparse.Namespace) -> str:
    """``--run`` left out: the production run, else the newest (registry.resolve_run)."""
    # lazy: the run registry (duckdb) stays off `ltrec --help`
    from ltrec.models.registry import resolve_run

    return resolve_run(args.name, args.run, args.data_dir)


def cmd_train(args: argparse.Namespace) -> int:
    if args.all_data or args.from_run:
        return _train_all_data(args)
    if args.model is None:
        raise BadInputError(
            "--model is required", hint=f"e.g. `ltrec train {args.name} --model ease`"
        )
    result = services.train(
        LOCAL,
        args.name,
        args.model,
        parse_set(args.set),
        split_config=_split_config(args.name, args.data_dir, args.split),
        k=args.k,
        progress=None if args.json else print_progress,
        data_dir=args.data_dir,
        engine=args.engine or "local",
    )
    out = result.to_dict()
    if args.json:
        print_json(out)
    else:
        where = f" on {args.engine}" if args.engine not in (None, "local") else ""
        print(f"run {out['run_id']} ({args.model}, {out['train_seconds']:.1f} s to train{where})")
        for name, v in out["metrics"].items():
            print(metric_line(name, v))
    return 0


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset name")
    p.add_argument(
        "--model", choices=model_names(), help="the model (with --from-run: R's by default)"
    )
    p.add_argument(
        "--all-data",
        action="store_true",
        help="fit on every event (no hold-out, no figures): a production fit",
    )
    p.add_argument(
        "--from-run",
        metavar="R",
        help="with --all-data: take the model, params and figures of evaluation run R",
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="a model parameter (repeatable)"
    )
    p.add_argument(
        "--split",
        action="append",
        metavar="KEY=VALUE",
        help="evaluation split setting, e.g. test_share=0.1 or target_events=cart,purchase",
    )
    add_k(p, "list length evaluated")
    p.add_argument(
        "--engine",
        choices=("local", "spark"),
        default=None,
        help="where to fit: local (default) or spark (ALS on Spark MLlib; LTREC_SPARK_MASTER; "
        "README: Spark). With --from-run: the source run's engine by default",
    )
    p.add_argument("--json", action="store_true")


def cmd_runs(args: argparse.Namespace) -> int:
    # lazy: the run registry (duckdb) stays off `ltrec --help`
    from ltrec.models.registry import list_runs, production_run

    production = production_run(args.name, args.data_dir)
    runs = [r.to_dict(production) for r in list_runs(args.name, args.data_dir)]
    if args.json:
        print_json({"dataset": args.name, "runs": runs, "production": production})
    elif not runs:
        print(f"no runs yet: train one with `ltrec train {args.name} --model ease`")
    else:
        for r in runs:
            k = r.get("k") or 10
            ndcg = (r["metrics"].get(f"ndcg@{k}") or {}).get("mean")
            shown = f"ndcg@{k}=" + ("-" if ndcg is None else f"{ndcg:.4f}")
            stale = f"  STALE: {r['stale_reason']}" if r["stale"] else ""
            if r["all_data"]:
                shown = f"all data, from {r['from_run'] or '-'}"
            mark = "  PRODUCTION" if r["production"] else ""
            print(f"{r['run_id']}  {r['model']:<11} {shown}  {r['created_at']}{mark}{stale}")
    return 0


def _runs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset name")
    p.add_argument("--json", action="store_true")


def cmd_promote(args: argparse.Namespace) -> int:
    out = services.promote(
        LOCAL,
        args.name,
        args.run,
        params=parse_set(args.set),
        progress=None if args.json else print_progress,
        data_dir=args.data_dir,
    )
    if args.json:
        print_json(out)
        return 0
    how = f"fitted on all data from run {out['from_run']}" if out["trained"] else "as it is"
    print(f"production run of {args.name}: {out['production']} ({out['model']}, {how})")
    for name, v in out["source_metrics"].items():
        print(metric_line(name, v) + f"  (run {out['from_run']}, test split)")
    return 0


def _promote_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset name")
    p.add_argument("--run", required=True, help="the evaluation run (or an all-data run)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one of R's params")
    p.add_argument("--json", action="store_true")


def cmd_evaluate(args: argparse.Namespace) -> int:
    # lazy: the pipeline (models, re-rankers) stays off `ltrec --help`
    from ltrec.app.pipeline import RecSession
    from ltrec.models.registry import (  # lazy: the run registry
        check_evaluable,
        run_manifest,
        run_staleness,
    )

    check_evaluable(args.name, args.run, run_manifest(args.name, args.run, args.data_dir))
    rerank = getattr(args, "rerank", None)
    session = RecSession.open(
        args.name, args.run, rerank, data_dir=args.data_dir, allow_stale=args.allow_stale
    )
    result = session.evaluate(args.k)
    manifest = session.run.manifest
    metrics = result.to_dict()
    if args.json:
        out = {"run_id": args.run, "model": manifest.get("model"), "k": args.k, "metrics": metrics}
        out["stale"] = run_staleness(args.name, manifest, args.data_dir).stale
        out["definitions"] = definitions_json(metrics)  # what each metric is
        if rerank is not None:
            # lazy: the re-rankers stay off `ltrec --help`
            from ltrec.rerank import parse_config, to_dict

            out["rerank"] = to_dict(parse_config(rerank))
        print_json(out)
    else:
        shown = f" re-ranked by {result.label}" if rerank is not None else ""
        print(f"run {args.run} ({manifest.get('model')}){shown}, k={args.k}:")
        for name, v in metrics.items():
            print(metric_line(name, v))
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset name")
    p.add_argument("--run", required=True, help="run id (see `ltrec runs NAME`)")
    add_k(p, "list length evaluated")
    p.add_argument("--json", action="store_true")
    p.add_argument("--rerank", metavar="JSON", help=RERANK_HELP)
    p.add_argument("--allow-stale", action="store_true", help=STALE_HELP)


def cmd_recommend(args: argparse.Namespace) -> int:
    # lazy: the pipeline (models, re-rankers) stays off `ltrec --help`
    from ltrec.app.pipeline import RecSession, reasons_text

    args.run = _resolve_run(args)
    rerank = getattr(args, "rerank", None)
    session = RecSession.open(
        args.name, args.run, rerank, data_dir=args.data_dir, allow_stale=args.allow_stale
    )
    out = session.recommend(args.user, args.k)
    # `fallback` was a bool in this command's JSON before the API named the kind in it (the
    # API's `fallback` is "popularity" or false): keep the bool here; the kind is `fallback_kind`.
    out["fallback"] = out["fallback_kind"] is not None
    if args.json:
        print_json(out)
        return 0
    if rerank is None:
        note = " (no history: fallback ranking)" if out["fallback"] else ""
        print(f"top {args.k} for user {args.user} from {out['model']} run {args.run}{note}:")
    else:
        print(
            f"top {args.k} for user {args.user} from {out['model']} run {args.run}, "
            f"{out['setting']}:"
        )
    for it in out["items"]:
        score = "-" if it["score"] is None else f"{it['score']:.4f}"
        why = reasons_text(it["reasons"])
        if rerank is None:
            print(f"  {it['rank']:>3}. {it['item_id']:<16} {score:>10}  {it['title'] or ''}")
        else:
            base = "-" if it["base_score"] is None else f"{it['base_score']:.4f}"
            print(
                f"  {it['rank']:>3}. {it['item_id']:<16} {score:>8} (base {base:>8}, "
                f"rank {it['base_rank'] or '-'})  {it['reason']}  {it['title'] or ''}"
            )
        if why:
            print(f"       {why}")
    for note in out["notes"]:
        print(f"  note: {note}")
    return 0


def _recommend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset name")
    p.add_argument("--run", help=RUN_HELP)
    p.add_argument("--user", required=True, help="user id")
    add_k(p, "items to recommend")
    p.add_argument("--json", action="store_true")
    p.add_argument("--rerank", metavar="JSON", help=RERANK_HELP)
    p.add_argument("--allow-stale", action="store_true", help=STALE_HELP)


def cmd_export(args: argparse.Namespace) -> int:
    args.run = _resolve_run(args)
    out = services.export_lists(
        LOCAL,
        args.name,
        args.run,
        args.out,
        args.rerank,
        k=args.k,
        data_dir=args.data_dir,
        allow_stale=args.allow_stale,
        **({} if args.engine == "local" else {"engine": args.engine}),
    )
    if args.json:
        print_json(out)
    else:
        print(f"wrote {out['rows']} rows ({out['users']} users, k={out['k']}) to {out['out']}")
    return 0


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset name")
    p.add_argument("--run", help=RUN_HELP)
    p.add_argument("--out", required=True, type=Path, help="FILE.csv or FILE.parquet")
    add_k(p, "items per user")
    p.add_argument("--rerank", metavar="JSON", help=RERANK_HELP)
    p.add_argument("--allow-stale", action="store_true", help=STALE_HELP)
    p.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="spark: score and re-rank every user on Spark in partitions, write a Parquet "
        "folder (README: Spark)",
    )
    p.add_argument("--json", action="store_true")


def cmd_tune(args: argparse.Namespace) -> int:
    # lazy: tuning (models, re-rankers) stays off `ltrec --help`
    from ltrec.app.tune import tune

    result = tune(
        args.name,
        args.run,
        max_loss=args.max_loss,
        objective=args.objective,
        strategies=args.strategies,
        data_dir=args.data_dir,
        progress=None if args.json else print_progress,
    )
    out = result.to_dict()
    if args.json:
        print_json(out)
        return 0
    v, t, acc, obj = out["validation"], out["test"], out["accuracy"], out["objective"]
    print(
        f"run {out['run_id']} ({out['model']}): {v['evaluated']} settings on {v['users']} "
        f"validation users, {v['within_bound']} within {out['max_loss']:.1%} {acc} loss"
    )
    print(f"chosen: {out['label']}")
    # lazy: the re-rankers stay off `ltrec --help`
    from ltrec.rerank import parse_config, to_query_string

    print(f"  --rerank '{to_query_string(parse_config(out['setting']))}'")
    print(f"test split ({t['users']} users), mean [95% interval]:")
    for key in ("base", "best_linear", "chosen"):
        shown = [m for m in dict.fromkeys((acc, obj)) if m in t[key]]
        cells = [metric_line(m, t[key][m]).strip() for m in shown]
        print(f"  {key:<12} " + "   ".join(cells))
    for name, r in (t.get("ratio") or {}).items():
        if r.get("mean") is not None:
            lo, hi = r.get("low"), r.get("high")
            ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else ""
            print(f"chosen / best linear {name}: {r['mean']:.2f}{ci}")
    return 0


def _tune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset name")
    p.add_argument(
        "--run",
        help="run id (see `ltrec runs NAME`); default: the production run, or the run it was "
        "made from when it was fitted on all data (the setting is reported on a test split), "
        "else the newest run",
    )
    p.add_argument(
        "--max-loss",
        type=float,
        default=MAX_LOSS,
        metavar="X",
        help=f"largest relative NDCG loss against the base order (default {MAX_LOSS} = "
        f"{MAX_LOSS:.0%}%)",
    )
    p.add_argument(
        "--objective",
        default=f"aplt@{get_settings().k}",
        help="metric to maximise, METRIC@K (default aplt@K, K: $LTREC_K or 10)",
    )
    p.add_argument(
        "--strategies",
        metavar="A,B",
        help="strategies to search, comma-separated (default: all but mmr)",
    )
    p.add_argument("--json", action="store_true")


COMMANDS: tuple[Command, ...] = (
    Command(
        "train",
        "train a model, evaluate it on the validation split, save a run",
        cmd_train,
        _train_args,
    ),
    Command("runs", "list the saved model runs of a dataset", cmd_runs, _runs_args),
    Command(
        "promote",
        "fit run R's model and settings on all data and make it the production run",
        cmd_promote,
        _promote_args,
    ),
    Command(
        "evaluate",
        "every metric of a saved run on its validation split",
        cmd_evaluate,
        _evaluate_args,
    ),
    Command(
        "recommend", "top-k items for one user from a saved run", cmd_recommend, _recommend_args
    ),
    Command(
        "export",
        "write every user's top-k list of a run to CSV or Parquet",
        cmd_export,
        _export_args,
    ),
    Command(
        "tune",
        "find the re-ranking setting with the most tail within an accuracy-loss bound "
        "(chosen on a validation split of the training period, reported on the test split)",
        cmd_tune,
        _tune_args,
    ),
)
