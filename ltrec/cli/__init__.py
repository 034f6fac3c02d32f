"""The ``ltrec`` command: a table of commands, one module per group.

Exit codes: 0 success, 2 bad input (nothing changed), 1 internal error. ``--json`` output is an
interface that scripts parse: keys are only ever added, never renamed (see the README).
Implementations are imported inside each command so ``ltrec datasets`` does not pay for
TensorFlow.

Adding a command: write ``cmd_NAME(args) -> int`` and ``_NAME_args(parser)`` in the module of
its group and add a :class:`~ltrec.cli.common.Command` row to that module's ``COMMANDS``;
``ltrec --help`` lists the commands in the order of :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ltrec.cli import analysis, data, models, serve
from ltrec.cli.common import Command, print_json
from ltrec.errors import BadInputError, LtrecError

#: Every command, in the order ``ltrec --help`` lists them.
COMMANDS: tuple[Command, ...] = (
    *data.COMMANDS,
    *models.COMMANDS,
    *analysis.COMMANDS,
    *serve.COMMANDS,
)


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
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        p.set_defaults(func=command.run)
        # also accepted after the command name (ltrec stats shop --data-dir D)
        p.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.arguments(p)
    return parser


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
            print_json(_error_json(err, err.exit_code))
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was changed", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`ltrec ... --json | head`): stop quietly, as Unix tools do.
        # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as err:  # noqa: BLE001 - the last line of defence: no traceback for users
        print(f"internal error: {_plain_internal(err)}", file=sys.stderr)
        print("run with LTREC_DEBUG=1 for the traceback", file=sys.stderr)
        if os.environ.get("LTREC_DEBUG"):
            raise
        if want_json:
            print_json(_error_json(err, 1))
        return 1
