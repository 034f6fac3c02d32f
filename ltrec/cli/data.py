"""Data commands: demo, import, import-vectors, datasets, delete, sample, stats, opportunities."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ltrec.app import services
from ltrec.app.auth import LOCAL  # the CLI is local: it acts as the local admin (audited)
from ltrec.cli.common import (
    Command,
    add_max_reject_share,
    print_json,
    print_progress,
    print_report,
)
from ltrec.definitions import definitions_json
from ltrec.errors import BadInputError, LtrecError


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


def cmd_demo(args: argparse.Namespace) -> int:
    # lazy: the demo generator (duckdb) stays off `ltrec --help`
    from ltrec.synth.demo import DemoConfig

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
        LOCAL, cfg, args.data_dir, progress=None if args.json else print_progress
    )
    return print_report(args, report)


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default="demo")
    p.add_argument("--users", type=int)
    p.add_argument("--items", type=int)
    p.add_argument("--events", type=int, help="approximate number of events (10M+ for benchmarks)")
    p.add_argument("--seed", type=int)
    p.add_argument("--json", action="store_true")


def cmd_import(args: argparse.Namespace) -> int:
    # lazy: the importer (duckdb, pyarrow) stays off `ltrec --help`
    from ltrec.store.importing import ImportConfig
    from ltrec.store.importing.read import read_config  # lazy: the importer

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
    return print_report(args, report)


def _import_args(p: argparse.ArgumentParser) -> None:
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
    add_max_reject_share(p, "import anyway when at most this share of rows is rejected")
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
    return print_report(args, report)


def _import_vectors_args(p: argparse.ArgumentParser) -> None:
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
    add_max_reject_share(p, "import anyway when at most this share of vectors is rejected")
    p.add_argument("--json", action="store_true")


def cmd_datasets(args: argparse.Namespace) -> int:
    # lazy: the store (duckdb) stays off `ltrec --help`
    from ltrec.store import list_datasets
    from ltrec.store.external import list_external, load_config  # lazy: external datasets

    names = list_datasets(args.data_dir)
    ext = {}
    for n in list_external(args.data_dir):
        try:
            ext[n] = load_config(n, args.data_dir).backend
        except LtrecError:
            ext[n] = "invalid TOML"
    if args.json:
        print_json({"datasets": names, "external": ext})
    elif names or ext:
        print("\n".join(names + [f"{n} (external: {b})" for n, b in ext.items()]))
    else:
        print("no datasets yet: run `ltrec demo` or `ltrec import NAME --events FILE`")
    return 0


def _datasets_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def cmd_delete(args: argparse.Namespace) -> int:
    if not args.yes:
        raise BadInputError(
            f"deleting '{args.name}' removes its file, model runs and saved simulations for "
            "good; nothing was deleted",
            hint=f"run `ltrec delete {args.name} --yes` to confirm",
        )
    removed = services.delete_dataset(LOCAL, args.name, args.data_dir)
    if args.json:
        print_json({"deleted": args.name, "removed": removed})
    else:
        print(f"deleted dataset '{args.name}' with its model runs and saved simulations")
    return 0


def _delete_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset name")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    p.add_argument("--json", action="store_true")


def cmd_sample(args: argparse.Namespace) -> int:
    report = services.fetch_sample(LOCAL, args.name, args.events, args.seed, args.data_dir)
    return print_report(args, report)


def _sample_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="external dataset name (data/<name>.toml)")
    p.add_argument("--events", type=int, help="at most this many events (default: the TOML's)")
    p.add_argument("--seed", type=int, help="sample seed (default: the TOML's)")
    p.add_argument("--json", action="store_true")


def cmd_stats(args: argparse.Namespace) -> int:
    # lazy: analytics (ibis, duckdb) stays off `ltrec --help`
    from ltrec.analytics.stats import dataset_stats

    stats = dataset_stats(args.name, data_dir=args.data_dir)
    if args.json:
        out = stats.to_dict()
        out["definitions"] = definitions_json(out)  # what each number is (ltrec.definitions)
        print_json(out)
    else:
        print(stats.summary())
    return 0


def _stats_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("--json", action="store_true")


def cmd_opportunities(args: argparse.Namespace) -> int:
    # lazy: analytics (ibis, duckdb) stays off `ltrec --help`
    from ltrec.analytics.backend import open_store
    from ltrec.analytics.opportunities import opportunities  # lazy: analytics
    from ltrec.analytics.view import ViewParams  # lazy: analytics

    store = open_store(args.name, args.data_dir)
    opp = opportunities(store, args.by, ViewParams(category=args.category))
    if args.json:
        print_json({"dataset": args.name, **opp.to_json()})
    else:
        print(opp.summary())
    return 0


def _opportunities_args(p: argparse.ArgumentParser) -> None:
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


COMMANDS: tuple[Command, ...] = (
    Command("demo", "build the demo shop (data/<name>.duckdb)", cmd_demo, _demo_args),
    Command(
        "import", "import events (and items, users) from CSV or Parquet", cmd_import, _import_args
    ),
    Command(
        "import-vectors",
        "import precomputed item vectors (Parquet: item_id + a list of floats)",
        cmd_import_vectors,
        _import_vectors_args,
    ),
    Command("datasets", "list datasets", cmd_datasets, _datasets_args),
    Command(
        "delete",
        "delete a dataset with its model runs and saved simulations",
        cmd_delete,
        _delete_args,
    ),
    Command(
        "sample",
        "copy a seeded sample of an external (TOML-defined) dataset into <name>-sample",
        cmd_sample,
        _sample_args,
    ),
    Command("stats", "headline numbers of a dataset", cmd_stats, _stats_args),
    Command(
        "opportunities",
        "what to fix: neglected categories or brands ranked, and every item to boost",
        cmd_opportunities,
        _opportunities_args,
    ),
)
