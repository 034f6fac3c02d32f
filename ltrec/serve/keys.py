"""API keys: ``ltrec apikey create/list/revoke`` and the check of a request's bearer key.

A key is ``ltrec_<id>_<secret>``: ``id`` (8 hex characters) names the key in listings and in
the audit log; ``secret`` is 32 random bytes (``secrets.token_urlsafe``). Only the SHA-256 of
the whole key is stored (a key this random needs no slow hash: nobody can guess it, and a
leaked file gives no key back), in ``<data_dir>/api_keys.json`` (mode 0600), written whole to
a temporary file and renamed over the old one under a lock, so a crash never leaves half a
file. The key itself is printed once, at creation.

Roles: ``reader`` (recommendations, similar items, metrics) and ``writer`` (+ events and
reloading the run). Every create and revoke goes to the audit log.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from ltrec.app import audit
from ltrec.app.auth import LOCAL, Principal
from ltrec.config import get_settings
from ltrec.errors import BadInputError, ConfigError
from ltrec.files import atomic_write
from ltrec.store.connect import file_lock

FILE = "api_keys.json"
PREFIX = "ltrec_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_KEY = re.compile(r"^ltrec_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$")


class KeyRole(StrEnum):
    READER = "reader"
    WRITER = "writer"

    def allows(self, needed: KeyRole) -> bool:
        """A writer may do everything a reader may."""
        return self is KeyRole.WRITER or needed is KeyRole.READER


@dataclass(frozen=True)
class ApiKey:
    """One stored key (never the key itself)."""

    id: str
    name: str
    role: KeyRole
    sha256: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        """What ``ltrec apikey list --json`` shows: everything but the hash."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "active": self.active,
        }


def keys_path(data_dir: Path | str | None = None) -> Path:
    return (Path(data_dir) if data_dir is not None else get_settings().data_dir) / FILE


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _parse(raw: bytes, path: Path) -> list[ApiKey]:
    try:
        doc = json.loads(raw)
        return [
            ApiKey(**{**k, "role": KeyRole(k["role"])})
            for k in doc["keys"]  # fields written by _write only
        ]
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"{path} is not a valid API key file ({type(err).__name__})",
            hint="restore it from a backup, or remove it and create the keys again "
            "(`ltrec apikey create NAME --role reader`)",
        ) from None


def load(data_dir: Path | str | None = None) -> list[ApiKey]:
    """Every stored key, oldest first (a missing file: none)."""
    path = keys_path(data_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    return _parse(raw, path)


def _write(path: Path, keys: list[ApiKey]) -> None:
    """The whole file, atomically and durably (owner-only: it holds key hashes)."""
    body = json.dumps({"version": 1, "keys": [asdict(k) for k in keys]}, indent=1) + "\n"
    atomic_write(path, body, mode=0o600)


@contextlib.contextmanager
def _editing(data_dir: Path | str | None) -> Iterator[tuple[Path, list[ApiKey]]]:
    path = keys_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    busy = lambda: BadInputError(  # noqa: E731
        "the API key file is being changed by another ltrec command", hint="try again"
    )
    with file_lock(path.with_name(f".{FILE}.lock"), 10.0, busy):
        yield path, load(data_dir)


def _audit(
    principal: Principal,
    action: str,
    target: str,
    outcome: audit.Outcome,
    message: str,
    details: dict[str, Any],
    data_dir: Path | str | None,
) -> None:
    audit.append(
        principal.email,
        principal.role.value,
        action,
        target,
        outcome,
        message,
        details,
        data_dir=data_dir,
    )


def create(
    name: str,
    role: str,
    *,
    data_dir: Path | str | None = None,
    principal: Principal = LOCAL,
) -> tuple[str, ApiKey]:
    """Make a key; returns ``(key, record)``. The key is never stored and cannot be shown again.

    Raises:
        BadInputError: a bad name or role, or a name an active key already has.
    """
    try:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise BadInputError(
                f"invalid API key name {name!r}",
                hint="use 1-64 letters, digits, '_', '.', '@' or '-', e.g. shop-frontend",
            )
        try:
            kind = KeyRole(role)
        except ValueError:
            raise BadInputError(
                f"unknown API key role {role!r}", hint="use --role reader or --role writer"
            ) from None
        with _editing(data_dir) as (path, keys):
            if any(k.name == name and k.active for k in keys):
                raise BadInputError(
                    f"an active API key is already named {name!r}",
                    hint=f"choose another name, or revoke it first (`ltrec apikey revoke {name}`)",
                )
            taken = {k.id for k in keys}
            key_id = secrets.token_hex(4)
            while key_id in taken:
                key_id = secrets.token_hex(4)
            key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            record = ApiKey(key_id, name, kind, _digest(key), _now())
            _write(path, [*keys, record])
    except BadInputError as err:
        _audit(
            principal,
            "create api key",
            f"api key {name}",
            "error",
            err.message,
            {"role": str(role)},
            data_dir,
        )
        raise
    _audit(
        principal,
        "create api key",
        f"api key {name}",
        "ok",
        f"id {key_id}",
        {"role": kind.value, "id": key_id},
        data_dir,
    )
    return key, record


def revoke(
    name_or_id: str, *, data_dir: Path | str | None = None, principal: Principal = LOCAL
) -> ApiKey:
    """Revoke the active key with this name or id; it stops working at its next request.

    Raises:
        BadInputError: no active key has that name or id.
    """
    try:
        with _editing(data_dir) as (path, keys):
            hits = [k for k in keys if k.active and name_or_id in (k.name, k.id)]
            if not hits:
                shown = ", ".join(k.name for k in keys if k.active) or "none"
                raise BadInputError(
                    f"no active API key is named {name_or_id!r} (active keys: {shown})",
                    hint="see `ltrec apikey list`",
                )
            gone = hits[0]
            done = ApiKey(**{**asdict(gone), "revoked_at": _now()})
            _write(path, [done if k.id == gone.id else k for k in keys])
    except BadInputError as err:
        _audit(
            principal, "revoke api key", f"api key {name_or_id}", "error", err.message, {}, data_dir
        )
        raise
    _audit(
        principal,
        "revoke api key",
        f"api key {done.name}",
        "ok",
        f"id {done.id}",
        {"id": done.id, "role": done.role.value},
        data_dir,
    )
    return done


class KeyRing:
    """The server's view of the key file, re-read when the file changes (a revoke takes effect
    at the next request, without a restart)."""

    def __init__(self, data_dir: Path | str | None = None) -> None:
        self.path = keys_path(data_dir)
        self._stamp: tuple[int, int, int] | None = None
        self._by_id: dict[str, ApiKey] = {}

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._by_id = None, {}
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            keys = _parse(self.path.read_bytes(), self.path)
            self._by_id = {k.id: k for k in keys if k.active}
            self._stamp = stamp

    def check(self, key: str) -> ApiKey | None:
        """The active key record for a presented key, else None (compared in constant time)."""
        self._refresh()
        m = _KEY.fullmatch(key)
        record = self._by_id.get(m.group(1)) if m else None
        # compare even when no record matched, so the time does not tell which ids exist
        want = record.sha256 if record is not None else "0" * 64
        ok = hmac.compare_digest(_digest(key), want)
        return record if ok and record is not None else None
