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
from typing import Any

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


def _progress(msg: str, frac: float | None = None) -> None:
    pct = f" {frac:5.1%}" if frac is not None else ""
    print(f"[ltrec]{pct} {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- commands


def cmd_demo(args: argparse.Namespace) -> int:
    from ltrec.store.demo import DemoConfig, build_demo

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
    report = build_demo(cfg, data_dir=args.data_dir, progress=None if args.json else _progress)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary())
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ltrec.store.importer import import_dataset

    report = import_dataset(
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
    )
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary())
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from ltrec.store import list_datasets

    names = list_datasets(args.data_dir)
    if args.json:
        _print_json({"datasets": names})
    elif names:
        print("\n".join(names))
    else:
        print("no datasets yet: run `ltrec demo` or `ltrec import NAME --events FILE`")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from ltrec.analytics.stats import dataset_stats

    stats = dataset_stats(args.name, data_dir=args.data_dir)
    if args.json:
        _print_json(stats.to_dict())
    else:
        print(stats.summary())
    return 0


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    p.add_argument("--json", action="store_true")

    p = add("datasets", cmd_datasets, "list datasets")
    p.add_argument("--json", action="store_true")

    p = add("stats", cmd_stats, "headline numbers of a dataset")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "data_dir", None) is None:
        args.data_dir = None
    try:
        return args.func(args)
    except LtrecError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was changed", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - the last line of defence: no traceback for users
        print(f"internal error: {err.__class__.__name__}: {err}", file=sys.stderr)
        print("run with LTREC_DEBUG=1 for the traceback", file=sys.stderr)
        import os

        if os.environ.get("LTREC_DEBUG"):
            raise
        return 1


if __name__ == "__main__":
    sys.exit(main())
