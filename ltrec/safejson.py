"""JSON from users (``--rerank``, ``--policy``, ``--set``, form fields) with size and depth bounds.

``json.loads`` recurses once per nesting level, so ``[[[[...]]]]`` a few thousand levels deep
raises ``RecursionError`` (an internal error) and a megabyte of it costs time for nothing. Every
setting ltrec reads is a few levels deep and a few kilobytes long, so :func:`loads` refuses text
over :data:`MAX_BYTES` or nested deeper than :data:`MAX_DEPTH` *before* parsing, with a
:class:`~ltrec.errors.ConfigError` (exit 2).
"""

from __future__ import annotations

import json
from typing import Any

from ltrec.errors import ConfigError

#: Longest JSON text accepted (characters).
MAX_BYTES = 64 * 1024
#: Deepest nesting of objects and lists accepted.
MAX_DEPTH = 16


def depth(text: str) -> int:
    """The deepest nesting of ``{``/``[`` in JSON text (brackets inside strings ignored)."""
    deepest = level = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            level += 1
            deepest = max(deepest, level)
        elif ch in "]}":
            level -= 1
    return deepest


def check(text: str, what: str, *, hint: str | None = None) -> None:
    """Refuse JSON text that is too long or too deeply nested to parse safely.

    Args:
        what: what the text is, for the message ("the re-ranking setting", "the policy").

    Raises:
        ConfigError: over :data:`MAX_BYTES` characters or :data:`MAX_DEPTH` levels.
    """
    if len(text) > MAX_BYTES:
        raise ConfigError(
            f"{what} is {len(text):,} characters long; at most {MAX_BYTES:,} are accepted",
            hint=hint,
        )
    nesting = depth(text)
    if nesting > MAX_DEPTH:
        raise ConfigError(
            f"{what} is nested {nesting} levels deep; at most {MAX_DEPTH} are accepted",
            hint=hint,
        )


def loads(text: str, what: str, *, hint: str | None = None) -> Any:
    """Parse ``text`` as JSON after :func:`check`.

    Raises:
        ConfigError: too long, too deep, or not JSON (with the position).
    """
    check(text, what, hint=hint)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{what} is not valid JSON: {err.msg} at character {err.pos}", hint=hint
        ) from None
