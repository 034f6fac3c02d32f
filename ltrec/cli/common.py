"""What the command modules share: the command table's row, the JSON printer, progress lines,
argument types and help texts."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ltrec import safejson
from ltrec.config import MAX_REJECT_SHARE, Settings, get_settings
from ltrec.errors import BadInputError


@dataclass(frozen=True)
class Command:
    """One row of the command table: ``ltrec NAME`` declares its flags with ``arguments`` and
    runs ``run(args)``, which returns the exit code."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None]


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str, allow_nan=False))


def print_report(args: argparse.Namespace, report: Any) -> int:
    """A command's report: ``report.to_dict()`` as JSON with ``--json``, else its summary."""
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.summary())
    return 0


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"expected 1..10000, got {value}")
    return value


def add_k(p: argparse.ArgumentParser, help_: str = "list length") -> None:
    """``--k``, a list length: ``LTREC_K`` (:attr:`Settings.k`) unless given."""
    p.add_argument(
        "--k",
        type=positive_int,
        default=get_settings().k,
        help=f"{help_} (default: $LTREC_K or {Settings.model_fields['k'].default})",
    )


def add_max_reject_share(p: argparse.ArgumentParser, help_: str) -> None:
    """``--max-reject-share``: ``LTREC_MAX_REJECT_SHARE`` (:data:`MAX_REJECT_SHARE`) unless
    given."""
    p.add_argument(
        "--max-reject-share",
        type=float,
        default=get_settings().max_reject_share,
        metavar="X",
        help=f"{help_} (default: $LTREC_MAX_REJECT_SHARE or {MAX_REJECT_SHARE})",
    )


def print_progress(done: float, msg: str) -> None:
    """A :data:`ltrec.progress.Progress` that prints a line on stderr."""
    print(f"[ltrec] {done:5.1%} {msg}", file=sys.stderr, flush=True)


def parse_set(pairs: Sequence[str] | None) -> dict[str, Any]:
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


def metric_line(name: str, v: dict[str, Any]) -> str:
    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.4f}"

    return f"  {name:<18} {f(v.get('mean'))}  [{f(v.get('low'))}, {f(v.get('high'))}]"


RUN_HELP = (
    "run id (see `ltrec runs NAME`); default: the production run (`ltrec promote`), else the "
    "newest run"
)


STALE_HELP = (
    "use the run even if the dataset was re-imported, appended to or re-created since it was "
    "trained (see `ltrec runs NAME`)"
)


RERANK_HELP = (
    'a re-ranking setting as JSON, e.g. \'{"strategy": "tail_boost", "beta": 0.5}\'; '
    "strategies: none, tail_boost, tail_select, xquad, xquad_personal, calibration, "
    "calibrated_popularity, mmr, fair; business rules under "
    '"rules" (in_stock, price_min, price_max, include_categories, exclude_categories, pins); '
    "or the URL form strategy=tail_boost&beta=0.5&rules.in_stock=1"
)
