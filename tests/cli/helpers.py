"""The real ``ltrec`` CLI in-process, as the CLI tests call it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ltrec.cli import main


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> Any:
    """``ltrec ARGV --json``: asserts the exit code (showing stderr when it differs) and returns
    the printed JSON (an ``{"error": ...}`` object when ``code`` is not 0)."""
    got = main([*argv, "--json"])
    out = capsys.readouterr()
    assert got == code, out.err
    return json.loads(out.out)
