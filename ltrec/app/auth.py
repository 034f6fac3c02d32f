"""Who may do what: roles, rights, the principal behind a request, and when serving is allowed.

Three roles, each a superset of the one before (DESIGN §11):

* ``viewer``: every page, charts, downloads of tables;
* ``analyst``: + train models, re-rank, sweeps, simulations, exports, choose the active model;
* ``admin``: + import, delete datasets and runs, settings, the audit log.

Roles come from ``roles.toml`` (``Settings.roles_path``), edited by the admin::

    default = "viewer"              # optional: any signed-in user not listed; never "admin"
    [roles]
    "ana@example.com" = "admin"     # an exact email (case-insensitive)
    "@example.com" = "analyst"      # everyone at a domain

An exact email wins over its domain. A signed-in user matching nothing gets the ``default`` role,
or no access when there is none. Without sign-in (local use) there is one principal,
:data:`LOCAL`, with every right; the CLI acts as it too.

Nothing here imports streamlit: ``ltrec.ui.auth`` turns ``st.user`` into a :class:`Principal`.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ltrec.errors import ConfigError, LtrecError


class Role(StrEnum):
    VIEWER = "viewer"
    ANALYST = "analyst"
    ADMIN = "admin"


class Right(StrEnum):
    VIEW = "view"  # pages, charts, downloads of tables
    TRAIN = "train"
    RERANK = "rerank"  # re-ranking settings and sweeps in the Studio
    SIMULATE = "simulate"
    EXPORT = "export"  # every user's lists (Studio, `ltrec export`)
    SET_ACTIVE_MODEL = "set active model"
    IMPORT = "import"  # imports and external training samples
    DELETE = "delete"  # datasets and runs
    SETTINGS = "settings"
    AUDIT = "audit"  # read and download the audit log


_VIEWER = frozenset({Right.VIEW})
_ANALYST = _VIEWER | {
    Right.TRAIN,
    Right.RERANK,
    Right.SIMULATE,
    Right.EXPORT,
    Right.SET_ACTIVE_MODEL,
}
_ADMIN = frozenset(Right)

RIGHTS: dict[Role, frozenset[Right]] = {
    Role.VIEWER: _VIEWER,
    Role.ANALYST: frozenset(_ANALYST),
    Role.ADMIN: _ADMIN,
}


class PermissionDenied(LtrecError):
    """The signed-in user's role lacks the right an action needs; nothing was changed."""

    exit_code = 2

    def __init__(self, principal: Principal, right: Right) -> None:
        needed = min((r for r in Role if right in RIGHTS[r]), key=list(Role).index)
        super().__init__(
            f"{principal.label} ({principal.role.value}) may not {right.value}: "
            f"that needs the {needed.value} role",
            hint="ask an ltrec admin to change your role in roles.toml",
        )
        self.principal, self.right = principal, right


class ServingRefused(ConfigError):
    """Serving a non-local address without sign-in (and without the explicit override)."""


@dataclass(frozen=True)
class Principal:
    """Who is acting: an email (or ``local``), a display name and a role."""

    email: str
    role: Role
    name: str = ""
    local: bool = False

    @property
    def label(self) -> str:
        return self.name or self.email

    def can(self, right: Right) -> bool:
        return right in RIGHTS[self.role]


#: Local use (no sign-in) and the CLI: one user with every right.
LOCAL = Principal(email="local", role=Role.ADMIN, name="local user", local=True)


def require(principal: Principal, right: Right) -> None:
    """Raise :class:`PermissionDenied` unless ``principal``'s role grants ``right``."""
    if not principal.can(right):
        raise PermissionDenied(principal, right)


# ------------------------------------------------------------------------------ roles.toml


@dataclass(frozen=True)
class RoleTable:
    """The parsed ``roles.toml``: exact emails, ``@domain`` entries and the default role."""

    emails: Mapping[str, Role]
    domains: Mapping[str, Role]
    default: Role | None = None

    def role_of(self, email: str) -> Role | None:
        """The role of a signed-in email (None: no access)."""
        email = email.strip().lower()
        if email in self.emails:
            return self.emails[email]
        _, at, domain = email.rpartition("@")
        if at and domain in self.domains:
            return self.domains[domain]
        return self.default


NO_ONE = RoleTable({}, {}, None)


def _role(value: object, where: str, path: Path) -> Role:
    try:
        return Role(str(value).strip().lower()) if isinstance(value, str) else Role("?")
    except ValueError:
        raise ConfigError(
            f"{path}: {where} has role {value!r}; roles are viewer, analyst, admin",
            hint="fix the value and reload the page",
        ) from None


def parse_roles(text: str, path: Path | str = "roles.toml") -> RoleTable:
    """Parse the text of a ``roles.toml`` (see the module docstring).

    Raises:
        ConfigError: malformed TOML, an unknown key or role, a bad email or domain, or an
            ``admin`` default (an unknown user may never be admin).
    """
    path = Path(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"{path} is not valid TOML: {err}",
            hint='write it as: default = "viewer" and a [roles] table of "email" = "role"',
        ) from None
    unknown = sorted(set(doc) - {"default", "roles"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)}; the file holds `default` and [roles]",
            hint='list people under [roles]: "ana@example.com" = "admin"',
        )
    default = None if "default" not in doc else _role(doc["default"], "default", path)
    if default is Role.ADMIN:
        raise ConfigError(
            f"{path}: the default role may not be admin (anyone who can sign in would be admin)",
            hint='name admins one by one under [roles]; use default = "viewer" or none',
        )
    roles = doc.get("roles", {})
    if not isinstance(roles, dict):
        raise ConfigError(f'{path}: [roles] must be a table of "email" = "role"')
    emails: dict[str, Role] = {}
    domains: dict[str, Role] = {}
    for key, value in roles.items():
        who = key.strip().lower()
        role = _role(value, f"entry {key!r}", path)
        local, at, domain = who.rpartition("@")
        if not at or not domain or "." not in domain or " " in who or "@" in local:
            raise ConfigError(
                f"{path}: {key!r} is neither an email (name@example.com) nor a domain "
                "(@example.com)",
                hint="fix or remove that line",
            )
        (emails if local else domains)[who if local else domain] = role
    return RoleTable(emails, domains, default)


def load_roles(path: Path | str) -> RoleTable:
    """Read ``roles.toml``; a missing file means nobody signed in has access."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return NO_ONE
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from None
    return parse_roles(text, path)


def signed_in(email: str, name: str, table: RoleTable) -> Principal | None:
    """The principal of a signed-in user, or None when the role table grants no access."""
    role = table.role_of(email)
    return None if role is None else Principal(email=email.strip().lower(), role=role, name=name)


# ------------------------------------------------------------------------------ serving


def is_loopback(address: str | None) -> bool:
    """True for addresses only this machine can reach (``127.0.0.0/8``, ``::1``, localhost).

    An empty address means every interface (Streamlit's default), so it is not loopback.
    """
    text = (address or "").strip().strip("[]")
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServingDecision:
    """Whether to serve, whether sign-in is on, and a warning to print on every start."""

    sign_in: bool
    warning: str | None = None


def serving_check(
    address: str | None, auth_configured: bool, allow_anonymous: bool
) -> ServingDecision:
    """Decide whether the app may serve ``address``.

    * sign-in configured: serve anywhere, everyone signs in;
    * loopback address: serve, one local user with every right;
    * another address with ``allow_anonymous``: serve everyone as the local admin, warned;
    * otherwise: :class:`ServingRefused`, naming the setting that fixes it.
    """
    if auth_configured:
        return ServingDecision(sign_in=True)
    shown = address if address else "every interface"
    if is_loopback(address):
        return ServingDecision(sign_in=False)
    if allow_anonymous:
        return ServingDecision(
            sign_in=False,
            warning=f"WARNING: serving {shown} WITHOUT sign-in (LTREC_ALLOW_ANONYMOUS=1): "
            "anyone who can reach this port can import and delete data.",
        )
    raise ServingRefused(
        f"refusing to serve {shown} without sign-in: anyone who could reach the port could "
        "import and delete data",
        hint="configure sign-in (an [auth] section in .streamlit/secrets.toml; README: Team "
        "sign-in), or serve locally (LTREC_ADDRESS=127.0.0.1, the default), or set "
        "LTREC_ALLOW_ANONYMOUS=1 to serve everyone as admin anyway",
    )


def secrets_files(project: Path | str = ".") -> list[Path]:
    """Where Streamlit reads secrets (its default ``secrets.files``): the user's, the project's."""
    home = Path.home() / ".streamlit" / "secrets.toml"
    return [home, Path(project) / ".streamlit" / "secrets.toml"]


def auth_section_configured(auth: Any) -> bool:
    """True when an ``[auth]`` table has what Streamlit's ``st.login`` needs: ``redirect_uri``,
    ``cookie_secret`` and one provider (``client_id``, ``client_secret``,
    ``server_metadata_url``; inline or in a named sub-table)."""
    if not isinstance(auth, Mapping):
        return False
    if not auth.get("redirect_uri") or not auth.get("cookie_secret"):
        return False
    need = ("client_id", "client_secret", "server_metadata_url")
    providers = [auth, *(v for v in auth.values() if isinstance(v, Mapping))]
    return any(all(p.get(k) for k in need) for p in providers)


def auth_configured(files: list[Path]) -> bool:
    """Whether Streamlit's secrets files configure sign-in (later files override earlier ones,
    as Streamlit merges them).

    Raises:
        ConfigError: a secrets file that is not valid TOML (Streamlit would fail on it too).
    """
    merged: dict[str, Any] = {}
    for path in files:
        try:
            merged.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"cannot read {path}: {err}") from None
    return auth_section_configured(merged.get("auth"))
