"""The ``ltrec`` command.

Exit codes: 0 success, 2 bad input (nothing changed), 1 internal error. ``--json`` output is an
interface that scripts parse: keys are only ever added, never renamed (see the README).
Implementations are imported inside each command so ``ltrec datasets`` does not pay for
TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ltrec import safejson
from ltrec.app import services
from ltrec.app.auth import LOCAL  # the CLI is local: it acts as the local admin (audited)
from ltrec.errors import BadInputError, LtrecError


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str, allow_nan=False))


def _parse_map(pairs: Sequence[str] | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        field, sep, column = pair.partition("=")
        if not sep or not field.strip() or not column:
            raise BadInputError(
                f"--map expects field=column, got {pair!r}", hint="for example --map item_id=sku"
            )
        mapping[field.strip()] = column
    return mapping


def _parse_event_map(pairs: Sequence[str] | None) -> dict[str, str]:
    """``--event-map fav=cart`` (repeatable) or ``fav=cart,wishlist=drop`` -> a dict; the
    targets are checked by the importer."""
    out: dict[str, str] = {}
    for arg in pairs or []:
        for pair in arg.split(","):
            value, sep, target = pair.partition("=")
            if not sep or not value.strip() or not target.strip():
                raise BadInputError(
                    f"--event-map expects VALUE=TYPE, got {pair!r}",
                    hint="for example --event-map fav=cart (or fav=drop to leave those rows out)",
                )
            out[value.strip()] = target.strip()
    return out


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"expected 1..10000, got {value}")
    return value


def _progress(msg: str, frac: float | None = None) -> None:
    pct = f" {frac:5.1%}" if frac is not None else ""
    print(f"[ltrec]{pct} {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- commands


def cmd_demo(args: argparse.Namespace) -> int:
    from ltrec.store.demo import DemoConfig

    cfg = DemoConfig(
        name=args.name,
        **{
            k: v
            for k, v in (
                ("users", args.users),
                ("items", args.items),
                ("events", args.events),
                ("seed", args.seed),
            )
            if v is not None
        },
    )
    report = services.build_demo(
        LOCAL, cfg, args.data_dir, progress=None if args.json else _progress
    )
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary())
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ltrec.store.importing import ImportConfig
    from ltrec.store.importing.read import read_config

    # per-file dialect: VALUE for every file, ROLE=VALUE for one (sniffed when not given)
    read = read_config(args.delimiter, args.encoding, args.columns, args.no_header)
    config = ImportConfig(read=read, event_map=_parse_event_map(args.event_map))
    report = services.import_dataset(
        LOCAL,
        args.name,
        events=args.events,
        items=args.items,
        users=args.users,
        preset=args.preset,
        mapping=_parse_map(args.map),
        replace=args.replace,
        max_reject_share=args.max_reject_share,
        dry_run=args.dry_run,
        data_dir=args.data_dir,
        config=config,
        pseudonymize=getattr(args, "pseudonymize", False),
    )
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary())
    return 0


def cmd_import_vectors(args: argparse.Namespace) -> int:
    report = services.import_vectors(
        LOCAL,
        args.name,
        args.file,
        args.vectors,
        id_column=args.id_column,
        column=args.column,
        max_reject_share=args.max_reject_share,
        data_dir=args.data_dir,
    )
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary())
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from ltrec.store import list_datasets
    from ltrec.store.external import list_external, load_config

    names = list_datasets(args.data_dir)
    ext = {}
    for n in list_external(args.data_dir):
        try:
            ext[n] = load_config(n, args.data_dir).backend
        except LtrecError:
            ext[n] = "invalid TOML"
    if args.json:
        _print_json({"datasets": names, "external": ext})
    elif names or ext:
        print("\n".join(names + [f"{n} (external: {b})" for n, b in ext.items()]))
    else:
        print("no datasets yet: run `ltrec demo` or `ltrec import NAME --events FILE`")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    if not args.yes:
        raise BadInputError(
            f"deleting '{args.name}' removes its file, model runs and saved simulations for "
            "good; nothing was deleted",
            hint=f"run `ltrec delete {args.name} --yes` to confirm",
        )
    removed = services.delete_dataset(LOCAL, args.name, args.data_dir)
    if args.json:
        _print_json({"deleted": args.name, "removed": removed})
    else:
        print(f"deleted dataset '{args.name}' with its model runs and saved simulations")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    report = services.fetch_sample(LOCAL, args.name, args.events, args.seed, args.data_dir)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary())
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from ltrec.analytics.stats import dataset_stats
    from ltrec.definitions import definitions_json

    stats = dataset_stats(args.name, data_dir=args.data_dir)
    if args.json:
        out = stats.to_dict()
        out["definitions"] = definitions_json(out)  # what each number is (ltrec.definitions)
        _print_json(out)
    else:
        print(stats.summary())
    return 0


def cmd_opportunities(args: argparse.Namespace) -> int:
    from ltrec.analytics.backend import open_store
    from ltrec.analytics.opportunities import opportunities
    from ltrec.analytics.view import ViewParams

    store = open_store(args.name, args.data_dir)
    opp = opportunities(store, args.by, ViewParams(category=args.category))
    if args.json:
        _print_json({"dataset": args.name, **opp.to_json()})
    else:
        print(opp.summary())
    return 0


def _parse_set(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they are JSON (numbers, true, lists)."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise BadInputError(
                f"--set expects key=value, got {pair!r}", hint="for example --set lambda_=100"
            )
        safejson.check(raw, f"--set {key.strip()}")  # no RecursionError from deep nesting
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        params[key.strip()] = value
    return params


def _metric_line(name: str, v: dict[str, Any]) -> str:
    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.4f}"

    return f"  {name:<18} {f(v.get('mean'))}  [{f(v.get('low'))}, {f(v.get('high'))}]"


def _split_config(name: str, data_dir: Path | None, pairs: Sequence[str] | None):
    """``--split key=value`` pairs over the dataset's default split, validated by SplitConfig."""
    if not pairs:
        return None
    from ltrec.evaluation import SplitConfig, default_split
    from ltrec.models.base import make_config
    from ltrec.store import connect, read_meta

    params = _parse_set(pairs)
    if isinstance(params.get("target_events"), str):  # view,cart,purchase
        params["target_events"] = tuple(t.strip() for t in params["target_events"].split(","))
    con = connect(name, data_dir)
    try:
        base = default_split(read_meta(con)).model_dump()
    finally:
        con.close()
    return make_config(SplitConfig, {**base, **params})


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
        _parse_set(args.set),
        split_config=_split_config(args.name, args.data_dir, args.split),
        k=args.k,
        progress=None if args.json else lambda done, msg: _progress(msg, done),
        data_dir=args.data_dir,
        engine=args.engine or "local",
    )
    out = result.to_dict()
    if args.json:
        _print_json(out)
    else:
        where = f" on {args.engine}" if args.engine not in (None, "local") else ""
        print(f"run {out['run_id']} ({args.model}, {out['train_seconds']:.1f} s to train{where})")
        for name, v in out["metrics"].items():
            print(_metric_line(name, v))
    return 0


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
        _parse_set(args.set),
        from_run=args.from_run,
        progress=None if args.json else lambda done, msg: _progress(msg, done),
        data_dir=args.data_dir,
        engine=args.engine,
    )
    out = result.to_dict()
    if args.json:
        _print_json(out)
        return 0
    print(f"run {out['run_id']} ({out['model']} on all data, {out['train_seconds']:.1f} s)")
    if out["from_run"]:
        print(f"  settings and figures of run {out['from_run']} (on its test split):")
        for name, v in out["source_metrics"].items():
            print(_metric_line(name, v))
    print(f"  promote it with `ltrec promote {args.name} --run {out['run_id']}`")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    out = services.promote(
        LOCAL,
        args.name,
        args.run,
        params=_parse_set(args.set),
        progress=None if args.json else lambda done, msg: _progress(msg, done),
        data_dir=args.data_dir,
    )
    if args.json:
        _print_json(out)
        return 0
    how = f"fitted on all data from run {out['from_run']}" if out["trained"] else "as it is"
    print(f"production run of {args.name}: {out['production']} ({out['model']}, {how})")
    for name, v in out["source_metrics"].items():
        print(_metric_line(name, v) + f"  (run {out['from_run']}, test split)")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from ltrec.models.registry import list_runs, production_run

    production = production_run(args.name, args.data_dir)
    runs = [r.to_dict(production) for r in list_runs(args.name, args.data_dir)]
    if args.json:
        _print_json({"dataset": args.name, "runs": runs, "production": production})
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ltrec.app.pipeline import RecSession
    from ltrec.definitions import definitions_json
    from ltrec.models.registry import check_evaluable, run_manifest, run_staleness

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
            from ltrec.rerank import parse_config, to_dict

            out["rerank"] = to_dict(parse_config(rerank))
        _print_json(out)
    else:
        shown = f" re-ranked by {result.label}" if rerank is not None else ""
        print(f"run {args.run} ({manifest.get('model')}){shown}, k={args.k}:")
        for name, v in metrics.items():
            print(_metric_line(name, v))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
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
        _print_json(out)
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


def _resolve_run(args: argparse.Namespace) -> str:
    """``--run`` left out: the production run, else the newest (registry.resolve_run)."""
    from ltrec.models.registry import resolve_run

    return resolve_run(args.name, args.run, args.data_dir)


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
        _print_json(out)
    else:
        print(f"wrote {out['rows']} rows ({out['users']} users, k={out['k']}) to {out['out']}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from ltrec.app.tune import tune

    result = tune(
        args.name,
        args.run,
        max_loss=args.max_loss,
        objective=args.objective,
        strategies=args.strategies,
        data_dir=args.data_dir,
        progress=None if args.json else lambda done, msg: _progress(msg, done),
    )
    out = result.to_dict()
    if args.json:
        _print_json(out)
        return 0
    v, t, acc, obj = out["validation"], out["test"], out["accuracy"], out["objective"]
    print(
        f"run {out['run_id']} ({out['model']}): {v['evaluated']} settings on {v['users']} "
        f"validation users, {v['within_bound']} within {out['max_loss']:.1%} {acc} loss"
    )
    print(f"chosen: {out['label']}")
    from ltrec.rerank import parse_config, to_query_string

    print(f"  --rerank '{to_query_string(parse_config(out['setting']))}'")
    print(f"test split ({t['users']} users), mean [95% interval]:")
    for key in ("base", "best_linear", "chosen"):
        shown = [m for m in dict.fromkeys((acc, obj)) if m in t[key]]
        cells = [_metric_line(m, t[key][m]).strip() for m in shown]
        print(f"  {key:<12} " + "   ".join(cells))
    for name, r in (t.get("ratio") or {}).items():
        if r.get("mean") is not None:
            lo, hi = r.get("low"), r.get("high")
            ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else ""
            print(f"chosen / best linear {name}: {r['mean']:.2f}{ci}")
    return 0


_RUN_HELP = (
    "run id (see `ltrec runs NAME`); default: the production run (`ltrec promote`), else the "
    "newest run"
)
_STALE_HELP = (
    "use the run even if the dataset was re-imported, appended to or re-created since it was "
    "trained (see `ltrec runs NAME`)"
)
_RERANK_HELP = (
    'a re-ranking setting as JSON, e.g. \'{"strategy": "tail_boost", "beta": 0.5}\'; '
    "strategies: none, tail_boost, tail_select, xquad, xquad_personal, calibration, "
    "calibrated_popularity, mmr, fair; business rules under "
    '"rules" (in_stock, price_min, price_max, include_categories, exclude_categories, pins); '
    "or the URL form strategy=tail_boost&beta=0.5&rules.in_stock=1"
)


def cmd_serve(args: argparse.Namespace) -> int:
    from ltrec.serve.app import serve

    serve(
        args.name,
        args.run,
        args.rerank,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        allow_stale=args.allow_stale,
        flush_interval=args.flush_every,
        arms=args.arm or (),
        split=args.split,
        experiment=args.experiment,
        stop_experiment=args.stop_experiment,
    )
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    from ltrec.serve import keys

    if args.action == "create":
        if args.role is None:
            raise BadInputError("give the key's role", hint="--role reader or --role writer")
        key, record = keys.create(args.name, args.role, data_dir=args.data_dir)
        if args.json:
            _print_json({"key": key, **record.public()})
        else:
            print(f"API key {record.name!r} ({record.role.value}, id {record.id}):")
            print(key)
            print("store it now: it is not shown again", file=sys.stderr)
    elif args.action == "list":
        rows = [k.public() for k in keys.load(args.data_dir)]
        if args.json:
            _print_json({"keys": rows})
        else:
            for r in rows:
                state = "active" if r["active"] else f"revoked {r['revoked_at']}"
                print(f"{r['id']}  {r['name']:<24} {r['role']:<7} {r['created_at']}  {state}")
    else:
        if not args.name:
            raise BadInputError("name the key to revoke", hint="ltrec apikey revoke NAME_OR_ID")
        record = keys.revoke(args.name, data_dir=args.data_dir)
        if args.json:
            _print_json(record.public())
        else:
            print(f"revoked API key {record.name!r} (id {record.id})")
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from ltrec.app.experiments import experiment_result, list_experiments

    result = experiment_result(
        args.name, args.id, window_hours=args.window_hours, data_dir=args.data_dir
    )
    if args.json:
        every = [
            {"id": e.id, "started_at": e.started_at, "stopped_at": e.stopped_at}
            for e in list_experiments(args.name, args.data_dir)
        ]
        _print_json({**result.to_json(), "experiments": every})
    else:
        print(result.summary())
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from ltrec.simulation import SimulationConfig, list_results

    if args.list:
        sims = [{"id": s.sim_id, **s.summary} for s in list_results(args.name, args.data_dir)]
        if args.json:
            _print_json({"dataset": args.name, "simulations": sims})
        else:
            for s in list_results(args.name, args.data_dir):
                print(s.title)
        return 0
    if not args.policy:
        raise BadInputError(
            "give at least one --policy",
            hint='e.g. --policy \'{"model": "popularity"}\' --policy \'{"model": "ease", '
            '"rerank": {"strategy": "tail_boost", "beta": 0.5}}\'',
        )
    settings = {
        "rounds": args.rounds,
        "k": args.k,
        "users": args.users,
        "seed": args.seed,
        "retrain_every": args.retrain_every,
        "user_model": args.user_model,
    }
    try:
        config = SimulationConfig(**{k: v for k, v in settings.items() if v is not None})
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        raise BadInputError(f"invalid simulation setting: {err}") from None
    result = services.simulate(
        LOCAL,
        args.name,
        args.policy,
        config,
        save=not args.no_save,
        progress=None if args.json else lambda done, msg: _progress(msg, done),
        data_dir=args.data_dir,
    )
    if args.json:
        _print_json(result.to_dict(series=True))
        return 0
    um = result.user_model
    saved = f", saved as {result.sim_id}" if result.sim_id else ""
    print(f"{config.rounds} rounds in {result.seconds:.1f} s{saved}; user model: {um['name']}")
    final = result.final()
    for row in final.to_dict("records"):
        print(
            f"  {row['policy']:<32} gini {row['exposure_gini']:.3f}  tail share "
            f"{row['tail_share']:.3f}  coverage {row['coverage_cum']:.3f}  purchases "
            f"{row['cum_purchases']} (tail {row['cum_tail_purchases']})"
        )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ltrec.app.report import build_report, check_out, write_report

    check_out(args.out)  # before any work
    report = build_report(
        args.name,
        run=args.run,
        setting=args.setting,
        k=args.k,
        simulation=args.simulation,
        data_dir=args.data_dir,
        progress=None if args.json else lambda done, msg: _progress(msg, done),
    )
    summary = write_report(report, args.out)
    if args.json:
        _print_json(summary)
    else:
        print(f"wrote {args.out} ({summary['bytes']:,} bytes)")
        for s in report.sections:
            print(f"  {s.title}: {'included' if s.omitted is None else s.omitted}")
    return 0


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ltrec", description="See, model and fix the under-exposure of long-tail products."
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data directory (default: $LTREC_DATA_DIR or ./data)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, fn: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=fn)
        p.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return p

    p = add("demo", cmd_demo, "build the demo shop (data/<name>.duckdb)")
    p.add_argument("--name", default="demo")
    p.add_argument("--users", type=int)
    p.add_argument("--items", type=int)
    p.add_argument("--events", type=int, help="approximate number of events (10M+ for benchmarks)")
    p.add_argument("--seed", type=int)
    p.add_argument("--json", action="store_true")

    p = add("import", cmd_import, "import events (and items, users) from CSV or Parquet")
    p.add_argument("name", help="dataset name")
    p.add_argument("--events", type=Path, required=True, help="events / order lines file")
    p.add_argument("--items", type=Path, help="items (catalogue) file")
    p.add_argument("--users", type=Path, help="users (segments) file")
    p.add_argument(
        "--preset", help="column layout: events, orders, ratings, completejourney, canonical"
    )
    p.add_argument(
        "--map", action="append", metavar="FIELD=COLUMN", help="override a column mapping"
    )
    p.add_argument(
        "--replace", action="store_true", help="replace the dataset instead of appending"
    )
    p.add_argument(
        "--max-reject-share",
        type=float,
        default=0.05,
        metavar="X",
        help="import anyway when at most this share of rows is rejected (default 0.05)",
    )
    p.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")
    p.add_argument(
        "--delimiter",
        action="append",
        metavar="[FILE=]CHAR",
        help="CSV field separator, detected per file when not given ('tab' for tabs); "
        "--delimiter ';' for every file, --delimiter events=';' for one (events, items, users)",
    )
    p.add_argument(
        "--encoding",
        action="append",
        metavar="[FILE=]NAME",
        help="text encoding, utf-8 or latin-1, detected per file when not given; "
        "--encoding items=latin-1 for one file",
    )
    p.add_argument(
        "--no-header",
        action="store_true",
        help="the files have no header line: name the columns with --columns (a behaviour "
        "log is recognised without)",
    )
    p.add_argument(
        "--columns",
        action="append",
        metavar="[FILE=]A,B,C",
        help="the column names of a file without a header (the events file, or FILE=...)",
    )
    p.add_argument(
        "--event-map",
        action="append",
        metavar="VALUE=TYPE",
        help="map an event value no alias knows to an event type (view, cart, purchase, "
        "impression) or to drop (rows left out): --event-map fav=cart; repeatable, or "
        "--event-map fav=cart,wishlist=drop",
    )
    p.add_argument(
        "--pseudonymize",
        action="store_true",
        help="replace user ids by a keyed HMAC-SHA256 (key from $LTREC_HMAC_KEY) before storing",
    )
    p.add_argument("--json", action="store_true")

    p = add(
        "import-vectors",
        cmd_import_vectors,
        "import precomputed item vectors (Parquet: item_id + a list of floats)",
    )
    p.add_argument("name", help="dataset name")
    p.add_argument("--file", type=Path, required=True, help="Parquet file of item vectors")
    p.add_argument(
        "--name",
        dest="vectors",
        default="image",
        help="name of the vector set (default image); re-importing a name replaces it",
    )
    p.add_argument("--column", help="the vector column, when the file has several")
    p.add_argument("--id-column", default="item_id", help="the item id column (item_id)")
    p.add_argument("--max-reject-share", type=float, default=0.05, metavar="X")
    p.add_argument("--json", action="store_true")

    p = add("datasets", cmd_datasets, "list datasets")
    p.add_argument("--json", action="store_true")

    p = add("delete", cmd_delete, "delete a dataset with its model runs and saved simulations")
    p.add_argument("name", help="dataset name")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    p.add_argument("--json", action="store_true")

    p = add(
        "sample",
        cmd_sample,
        "copy a seeded sample of an external (TOML-defined) dataset into <name>-sample",
    )
    p.add_argument("name", help="external dataset name (data/<name>.toml)")
    p.add_argument("--events", type=int, help="at most this many events (default: the TOML's)")
    p.add_argument("--seed", type=int, help="sample seed (default: the TOML's)")
    p.add_argument("--json", action="store_true")

    p = add("stats", cmd_stats, "headline numbers of a dataset")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")

    p = add(
        "opportunities",
        cmd_opportunities,
        "what to fix: neglected categories or brands ranked, and every item to boost",
    )
    p.add_argument("name", help="dataset name")
    p.add_argument(
        "--by",
        default="category",
        choices=("category", "brand"),
        help="group by (default category)",
    )
    p.add_argument(
        "--category",
        metavar="TOP",
        help="keep one top-level category (shares and buckets stay those of the whole catalogue)",
    )
    p.add_argument("--json", action="store_true")

    from ltrec.models.base import model_names

    p = add("train", cmd_train, "train a model, evaluate it on the validation split, save a run")
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
    p.add_argument("--k", type=_positive_int, default=10, help="list length evaluated")
    p.add_argument(
        "--engine",
        choices=("local", "spark"),
        default=None,
        help="where to fit: local (default) or spark (ALS on Spark MLlib; LTREC_SPARK_MASTER; "
        "README: Spark). With --from-run: the source run's engine by default",
    )
    p.add_argument("--json", action="store_true")

    p = add("runs", cmd_runs, "list the saved model runs of a dataset")
    p.add_argument("name", help="dataset name")
    p.add_argument("--json", action="store_true")

    p = add(
        "promote",
        cmd_promote,
        "fit run R's model and settings on all data and make it the production run",
    )
    p.add_argument("name", help="dataset name")
    p.add_argument("--run", required=True, help="the evaluation run (or an all-data run)")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override one of R's params"
    )
    p.add_argument("--json", action="store_true")

    p = add("evaluate", cmd_evaluate, "every metric of a saved run on its validation split")
    p.add_argument("name", help="dataset name")
    p.add_argument("--run", required=True, help="run id (see `ltrec runs NAME`)")
    p.add_argument("--k", type=_positive_int, default=10)
    p.add_argument("--json", action="store_true")
    p.add_argument("--rerank", metavar="JSON", help=_RERANK_HELP)
    p.add_argument("--allow-stale", action="store_true", help=_STALE_HELP)

    p = add("recommend", cmd_recommend, "top-k items for one user from a saved run")
    p.add_argument("name", help="dataset name")
    p.add_argument("--run", help=_RUN_HELP)
    p.add_argument("--user", required=True, help="user id")
    p.add_argument("--k", type=_positive_int, default=10)
    p.add_argument("--json", action="store_true")
    p.add_argument("--rerank", metavar="JSON", help=_RERANK_HELP)
    p.add_argument("--allow-stale", action="store_true", help=_STALE_HELP)

    p = add("export", cmd_export, "write every user's top-k list of a run to CSV or Parquet")
    p.add_argument("name", help="dataset name")
    p.add_argument("--run", help=_RUN_HELP)
    p.add_argument("--out", required=True, type=Path, help="FILE.csv or FILE.parquet")
    p.add_argument("--k", type=_positive_int, default=10)
    p.add_argument("--rerank", metavar="JSON", help=_RERANK_HELP)
    p.add_argument("--allow-stale", action="store_true", help=_STALE_HELP)
    p.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="spark: score and re-rank every user on Spark in partitions, write a Parquet "
        "folder (README: Spark)",
    )
    p.add_argument("--json", action="store_true")
    p = add(
        "tune",
        cmd_tune,
        "find the re-ranking setting with the most tail within an accuracy-loss bound "
        "(chosen on a validation split of the training period, reported on the test split)",
    )
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
        default=0.05,
        metavar="X",
        help="largest relative NDCG loss against the base order (default 0.05 = 5%%)",
    )
    p.add_argument(
        "--objective", default="aplt@10", help="metric to maximise, METRIC@K (default aplt@10)"
    )
    p.add_argument(
        "--strategies",
        metavar="A,B",
        help="strategies to search, comma-separated (default: all but mmr)",
    )
    p.add_argument("--json", action="store_true")
    p = add(
        "report",
        cmd_report,
        "write a self-contained HTML report for stakeholders (opens offline, prints to PDF)",
    )
    p.add_argument("name", help="dataset name")
    p.add_argument(
        "--run",
        help="evaluation run (default: the production run's evaluation run, else the newest)",
    )
    p.add_argument(
        "--setting",
        metavar="JSON",
        help='the re-ranking setting to report (default {"strategy": "tail_boost", "beta": 0.3})',
    )
    p.add_argument("--out", required=True, type=Path, help="FILE.html")
    p.add_argument("--k", type=_positive_int, default=10, help="list length (default 10)")
    p.add_argument(
        "--simulation",
        default="auto",
        metavar="ID|auto|none",
        help="a saved simulation to report, auto (a short one: the model alone vs with the "
        "setting; default) or none",
    )
    p.add_argument("--json", action="store_true")

    p = add("simulate", cmd_simulate, "feedback-loop simulation of policies (model + re-ranking)")
    p.add_argument("name", help="dataset name")
    p.add_argument(
        "--policy",
        action="append",
        metavar="JSON",
        help='a policy, e.g. \'{"model": "ease", "params": {"lambda_": 200}, "rerank": '
        '{"strategy": "tail_boost", "beta": 0.5}}\'; repeat for more policies',
    )
    p.add_argument("--rounds", type=_positive_int, help="rounds (default 10)")
    p.add_argument("--k", type=_positive_int, help="list length (default 10)")
    p.add_argument("--users", type=_positive_int, help="active users per round (default 500)")
    p.add_argument("--seed", type=int)
    p.add_argument("--retrain-every", type=_positive_int, help="retrain every r rounds (1)")
    p.add_argument(
        "--user-model",
        choices=("auto", "truth", "calibrated"),
        help="ground truth (demo shops) or a calibrated model fitted on the data (default auto)",
    )
    p.add_argument("--no-save", action="store_true", help="do not save the result")
    p.add_argument("--list", action="store_true", help="list saved simulations")
    p.add_argument("--json", action="store_true")

    p = add("serve", cmd_serve, "serve recommendations over HTTP (docs at /docs; README: API)")
    p.add_argument("name", help="dataset name")
    p.add_argument("--run", help=_RUN_HELP)
    p.add_argument("--rerank", metavar="JSON", help=_RERANK_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--allow-stale", action="store_true", help=_STALE_HELP)
    p.add_argument(
        "--flush-every",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how often acknowledged events move from the write-ahead file into the store "
        "(default 5; at most a tenth of the time goes to writing the store)",
    )
    p.add_argument(
        "--arm",
        action="append",
        metavar="NAME=JSON",
        help="an arm of an A/B experiment (give 2 to 4): a re-ranking setting, '{}' for the "
        'base order, or {"run": "<run id>", ...}; each user gets one arm by a stable hash',
    )
    p.add_argument("--split", metavar="P,P", help="the arms' shares in percent (default equal)")
    p.add_argument("--experiment", metavar="ID", help="the experiment id (default: derived)")
    p.add_argument(
        "--stop-experiment",
        action="store_true",
        help="stop the running experiment (its data is kept); alone: stop it and exit",
    )

    p = add("apikey", cmd_apikey, "create, list or revoke the API keys of `ltrec serve`")
    p.add_argument("action", choices=("create", "list", "revoke"))
    p.add_argument("name", nargs="?", help="the key's name (create), or its name or id (revoke)")
    p.add_argument("--role", choices=("reader", "writer"), help="reader, or writer (+ events)")
    p.add_argument("--json", action="store_true")

    p = add(
        "experiment",
        cmd_experiment,
        "what each arm of an A/B experiment of `ltrec serve` did, with intervals and a verdict",
    )
    p.add_argument("name", help="dataset name")
    p.add_argument("--id", help="experiment id (default: the running one, else the newest)")
    p.add_argument(
        "--window-hours",
        type=float,
        default=24.0,
        metavar="H",
        help="attribution window: an event counts for a list shown to the user at most H hours "
        "before (default 24)",
    )
    p.add_argument("--json", action="store_true")
    return parser


class UsageError(BadInputError):
    """A command line argparse refused (unknown option, missing argument)."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message, hint="see ltrec --help, or ltrec COMMAND --help")
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """Raises usage errors instead of exiting, so :func:`main` reports them like every other
    error (``--json``: a JSON object on stdout)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage())


def _error_json(err: BaseException, exit_code: int) -> dict[str, Any]:
    """``{"error": {type, message, hint, exit_code}}``: what ``--json`` prints for a failure.
    A refused import (too many rejects) adds its report."""
    if isinstance(err, LtrecError):
        out: dict[str, Any] = {
            "type": type(err).__name__,
            "message": err.message,
            "hint": err.hint,
            "exit_code": exit_code,
        }
        report = getattr(err, "report", None)
        if report is not None and hasattr(report, "to_dict"):
            out["report"] = report.to_dict()
    else:
        out = {
            "type": "InternalError",
            "message": _plain_internal(err),
            "hint": "run with LTREC_DEBUG=1 for the traceback",
            "exit_code": exit_code,
        }
    return {"error": out}


def _plain_internal(err: BaseException) -> str:
    """An unexpected error in words; a DuckDB message only after a sentence that says what it is."""
    first = (str(err).strip().splitlines() or [""])[0][:300]
    if type(err).__module__.split(".")[0] == "duckdb":
        return f"the data store failed on an unexpected query ({type(err).__name__}): {first}"
    return f"{type(err).__name__}: {first}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    want_json = "--json" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "data_dir", None) is None:
            args.data_dir = None
        want_json = bool(getattr(args, "json", want_json))
        return args.func(args)
    except LtrecError as err:
        if isinstance(err, UsageError) and not want_json:
            print(err.usage, end="", file=sys.stderr)
            print(f"ltrec: error: {err.message}", file=sys.stderr)
            return err.exit_code
        print(f"error: {err}", file=sys.stderr)
        if want_json:
            _print_json(_error_json(err, err.exit_code))
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was changed", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`ltrec ... --json | head`): stop quietly, as Unix tools do.
        # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as err:  # noqa: BLE001 - the last line of defence: no traceback for users
        print(f"internal error: {_plain_internal(err)}", file=sys.stderr)
        print("run with LTREC_DEBUG=1 for the traceback", file=sys.stderr)
        import os

        if os.environ.get("LTREC_DEBUG"):
            raise
        if want_json:
            _print_json(_error_json(err, 1))
        return 1


if __name__ == "__main__":
    sys.exit(main())
