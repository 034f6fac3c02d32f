"""The HTTP service and what hangs off it: serve, apikey, experiment (its A/B results)."""

from __future__ import annotations

import argparse
import sys

from ltrec.cli.common import RERANK_HELP, RUN_HELP, STALE_HELP, Command, print_json
from ltrec.errors import BadInputError


def cmd_serve(args: argparse.Namespace) -> int:
    # lazy: the API (fastapi, uvicorn) stays off `ltrec --help`
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


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset name")
    p.add_argument("--run", help=RUN_HELP)
    p.add_argument("--rerank", metavar="JSON", help=RERANK_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--allow-stale", action="store_true", help=STALE_HELP)
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


def cmd_apikey(args: argparse.Namespace) -> int:
    # lazy: the API keys (duckdb) stays off `ltrec --help`
    from ltrec.serve import keys

    if args.action == "create":
        if args.role is None:
            raise BadInputError("give the key's role", hint="--role reader or --role writer")
        key, record = keys.create(args.name, args.role, data_dir=args.data_dir)
        if args.json:
            print_json({"key": key, **record.public()})
        else:
            print(f"API key {record.name!r} ({record.role.value}, id {record.id}):")
            print(key)
            print("store it now: it is not shown again", file=sys.stderr)
    elif args.action == "list":
        rows = [k.public() for k in keys.load(args.data_dir)]
        if args.json:
            print_json({"keys": rows})
        else:
            for r in rows:
                state = "active" if r["active"] else f"revoked {r['revoked_at']}"
                print(f"{r['id']}  {r['name']:<24} {r['role']:<7} {r['created_at']}  {state}")
    else:
        if not args.name:
            raise BadInputError("name the key to revoke", hint="ltrec apikey revoke NAME_OR_ID")
        record = keys.revoke(args.name, data_dir=args.data_dir)
        if args.json:
            print_json(record.public())
        else:
            print(f"revoked API key {record.name!r} (id {record.id})")
    return 0


def _apikey_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("create", "list", "revoke"))
    p.add_argument("name", nargs="?", help="the key's name (create), or its name or id (revoke)")
    p.add_argument("--role", choices=("reader", "writer"), help="reader, or writer (+ events)")
    p.add_argument("--json", action="store_true")


def cmd_experiment(args: argparse.Namespace) -> int:
    # lazy: experiments (duckdb, scipy) stays off `ltrec --help`
    from ltrec.app.experiments import experiment_result, list_experiments

    result = experiment_result(
        args.name, args.id, window_hours=args.window_hours, data_dir=args.data_dir
    )
    if args.json:
        every = [
            {"id": e.id, "started_at": e.started_at, "stopped_at": e.stopped_at}
            for e in list_experiments(args.name, args.data_dir)
        ]
        print_json({**result.to_json(), "experiments": every})
    else:
        print(result.summary())
    return 0


def _experiment_args(p: argparse.ArgumentParser) -> None:
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


COMMANDS: tuple[Command, ...] = (
    Command(
        "serve",
        "serve recommendations over HTTP (docs at /docs; README: API)",
        cmd_serve,
        _serve_args,
    ),
    Command(
        "apikey", "create, list or revoke the API keys of `ltrec serve`", cmd_apikey, _apikey_args
    ),
    Command(
        "experiment",
        "what each arm of an A/B experiment of `ltrec serve` did, with intervals and a verdict",
        cmd_experiment,
        _experiment_args,
    ),
)
