"""Analysis commands: report (HTML for stakeholders) and simulate (feedback loops)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ltrec.app import services
from ltrec.app.auth import LOCAL  # the CLI is local: it acts as the local admin (audited)
from ltrec.cli.common import Command, add_k, positive_int, print_json, print_progress
from ltrec.errors import BadInputError


def cmd_report(args: argparse.Namespace) -> int:
    # lazy: the report stack (models, simulation, plotly) stays off `ltrec --help`
    from ltrec.app.report import build_report, check_out, write_report

    check_out(args.out)  # before any work
    report = build_report(
        args.name,
        run=args.run,
        setting=args.setting,
        k=args.k,
        simulation=args.simulation,
        data_dir=args.data_dir,
        progress=None if args.json else print_progress,
    )
    summary = write_report(report, args.out)
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {args.out} ({summary['bytes']:,} bytes)")
        for s in report.sections:
            print(f"  {s.title}: {'included' if s.omitted is None else s.omitted}")
    return 0


def _report_args(p: argparse.ArgumentParser) -> None:
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
    add_k(p)
    p.add_argument(
        "--simulation",
        default="auto",
        metavar="ID|auto|none",
        help="a saved simulation to report, auto (a short one: the model alone vs with the "
        "setting; default) or none",
    )
    p.add_argument("--json", action="store_true")


def cmd_simulate(args: argparse.Namespace) -> int:
    # lazy: the simulator (duckdb, models) stays off `ltrec --help`
    from ltrec.simulation import SimulationConfig, list_results

    if args.list:
        sims = [{"id": s.sim_id, **s.summary} for s in list_results(args.name, args.data_dir)]
        if args.json:
            print_json({"dataset": args.name, "simulations": sims})
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
        progress=None if args.json else print_progress,
        data_dir=args.data_dir,
    )
    if args.json:
        print_json(result.to_dict(series=True))
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


def _simulate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset name")
    p.add_argument(
        "--policy",
        action="append",
        metavar="JSON",
        help='a policy, e.g. \'{"model": "ease", "params": {"lambda_": 200}, "rerank": '
        '{"strategy": "tail_boost", "beta": 0.5}}\'; repeat for more policies',
    )
    p.add_argument("--rounds", type=positive_int, help="rounds (default 10)")
    add_k(p)
    p.add_argument("--users", type=positive_int, help="active users per round (default 500)")
    p.add_argument("--seed", type=int)
    p.add_argument("--retrain-every", type=positive_int, help="retrain every r rounds (1)")
    p.add_argument(
        "--user-model",
        choices=("auto", "truth", "calibrated"),
        help="ground truth (demo shops) or a calibrated model fitted on the data (default auto)",
    )
    p.add_argument("--no-save", action="store_true", help="do not save the result")
    p.add_argument("--list", action="store_true", help="list saved simulations")
    p.add_argument("--json", action="store_true")


COMMANDS: tuple[Command, ...] = (
    Command(
        "report",
        "write a self-contained HTML report for stakeholders (opens offline, prints to PDF)",
        cmd_report,
        _report_args,
    ),
    Command(
        "simulate",
        "feedback-loop simulation of policies (model + re-ranking)",
        cmd_simulate,
        _simulate_args,
    ),
)
