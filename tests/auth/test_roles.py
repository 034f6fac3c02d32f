"""roles.toml parsing, role lookup, rights and the serving decision (ltrec.app.auth)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from ltrec.app.auth import (
    LOCAL,
    NO_ONE,
    RIGHTS,
    PermissionDenied,
    Principal,
    Right,
    Role,
    ServingRefused,
    auth_configured,
    is_loopback,
    load_roles,
    parse_roles,
    require,
    serving_check,
    signed_in,
)
from ltrec.errors import ConfigError

ROLES = """
default = "viewer"
[roles]
"Ana@Example.com" = "admin"
"bo@example.com" = "analyst"
"@example.com" = "analyst"
"@partner.org" = "viewer"
"""


def test_emails_and_domains() -> None:
    table = parse_roles(ROLES)
    assert table.role_of("ana@example.com") is Role.ADMIN  # emails are case-insensitive
    assert table.role_of(" ANA@EXAMPLE.COM ") is Role.ADMIN
    assert table.role_of("bo@example.com") is Role.ANALYST
    assert table.role_of("cy@example.com") is Role.ANALYST  # the domain entry
    assert table.role_of("di@partner.org") is Role.VIEWER
    assert table.role_of("eve@elsewhere.net") is Role.VIEWER  # the default
    assert table.role_of("eve@sub.example.com") is Role.VIEWER  # a subdomain is not the domain


def test_exact_email_beats_its_domain() -> None:
    table = parse_roles('[roles]\n"@example.com" = "admin"\n"intern@example.com" = "viewer"\n')
    assert table.role_of("intern@example.com") is Role.VIEWER
    assert table.role_of("boss@example.com") is Role.ADMIN


def test_no_default_means_no_access() -> None:
    table = parse_roles('[roles]\n"ana@example.com" = "admin"\n')
    assert table.role_of("eve@elsewhere.net") is None
    assert signed_in("eve@elsewhere.net", "Eve", table) is None
    ana = signed_in("Ana@Example.com", "Ana", table)
    assert ana == Principal(email="ana@example.com", role=Role.ADMIN, name="Ana")


def test_missing_file_grants_nothing(tmp_path: Path) -> None:
    assert load_roles(tmp_path / "roles.toml") == NO_ONE
    assert NO_ONE.role_of("ana@example.com") is None


def test_default_admin_is_refused() -> None:
    with pytest.raises(ConfigError, match="default role may not be admin"):
        parse_roles('default = "admin"\n')
    with pytest.raises(ConfigError, match="default role may not be admin"):
        parse_roles('default = " Admin "\n')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('default = "viewer"\n[roles\n', "is not valid TOML"),
        ('[roles]\n"ana@example.com" = "owner"\n', "has role 'owner'; roles are viewer, analyst"),
        ('[roles]\n"ana@example.com" = 3\n', "has role 3; roles are viewer, analyst, admin"),
        ('[roles]\n"ana" = "viewer"\n', "'ana' is neither an email"),
        ('[roles]\n"@localhost" = "viewer"\n', "'@localhost' is neither an email"),
        ('[roles]\n"a@b@example.com" = "viewer"\n', "'a@b@example.com' is neither an email"),
        ('admins = ["ana@example.com"]\n', "unknown key(s) admins"),
        ('roles = "ana@example.com"\n', "[roles] must be a table"),
        ('default = "superuser"\n', "default has role 'superuser'"),
    ],
)
def test_malformed_roles_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "roles.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_roles(path)
    assert message in info.value.message
    assert str(path) in info.value.message  # the error names the file to fix


@given(hs.sampled_from(["viewer", "analyst", "admin", "Viewer", " analyst "]), hs.booleans())
def test_default_is_never_admin(default: str, listed: bool) -> None:
    """Whatever the file says, a user it does not list is never admin."""
    text = f'default = "{default}"\n' + ('[roles]\n"ana@example.com" = "admin"\n' if listed else "")
    try:
        table = parse_roles(text)
    except ConfigError:
        assert default.strip().lower() == "admin"
        return
    assert table.role_of("stranger@unknown.example") is not Role.ADMIN


def test_rights_nest() -> None:
    assert RIGHTS[Role.VIEWER] == {Right.VIEW}
    assert RIGHTS[Role.ANALYST] == {
        Right.VIEW,
        Right.TRAIN,
        Right.RERANK,
        Right.SIMULATE,
        Right.EXPORT,
        Right.SET_ACTIVE_MODEL,
    }
    assert RIGHTS[Role.ADMIN] == set(Right)
    assert LOCAL.role is Role.ADMIN and LOCAL.local


@pytest.mark.parametrize("right", list(Right))
def test_require(right: Right) -> None:
    viewer = Principal("vi@example.com", Role.VIEWER)
    analyst = Principal("an@example.com", Role.ANALYST)
    admin = Principal("ad@example.com", Role.ADMIN)
    require(admin, right)  # admins have every right
    for who in (viewer, analyst):
        if right in RIGHTS[who.role]:
            require(who, right)
        else:
            with pytest.raises(PermissionDenied) as info:
                require(who, right)
            assert info.value.exit_code == 2
            assert info.value.right is right
            needed = "analyst" if right in RIGHTS[Role.ANALYST] else "admin"
            assert info.value.message == (
                f"{who.email} ({who.role.value}) may not {right.value}: "
                f"that needs the {needed} role"
            )


# ------------------------------------------------------------------------------ serving


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("", False),  # Streamlit's default: every interface
        (None, False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_serving_check() -> None:
    assert serving_check("127.0.0.1", False, False).sign_in is False
    assert serving_check("127.0.0.1", False, False).warning is None
    assert serving_check("127.0.0.1", True, False).sign_in is True  # sign-in, even locally
    assert serving_check("0.0.0.0", True, False).sign_in is True
    assert serving_check("0.0.0.0", True, False).warning is None
    with pytest.raises(ServingRefused) as info:
        serving_check("0.0.0.0", False, False)
    assert info.value.exit_code == 2
    assert info.value.message.startswith("refusing to serve 0.0.0.0 without sign-in")
    assert "[auth] section in .streamlit/secrets.toml" in info.value.hint
    assert "LTREC_ALLOW_ANONYMOUS=1" in info.value.hint
    with pytest.raises(ServingRefused, match="refusing to serve every interface"):
        serving_check("", False, False)
    open_door = serving_check("0.0.0.0", False, True)
    assert open_door.sign_in is False
    assert open_door.warning is not None
    assert open_door.warning.startswith("WARNING: serving 0.0.0.0 WITHOUT sign-in")


AUTH = """
[auth]
redirect_uri = "http://localhost:8501/oauth2callback"
cookie_secret = "s3cr3t-s3cr3t-s3cr3t"
client_id = "ltrec"
client_secret = "abc"
server_metadata_url = "https://idp.example.com/.well-known/openid-configuration"
"""


def test_auth_configured(tmp_path: Path) -> None:
    home, project = tmp_path / "home.toml", tmp_path / "project.toml"
    assert auth_configured([home, project]) is False  # no files
    project.write_text('LTREC_HMAC_KEY = "k"\n')
    assert auth_configured([home, project]) is False  # no [auth]
    project.write_text(AUTH)
    assert auth_configured([home, project]) is True
    named = AUTH.replace("client_id", "[auth.okta]\nclient_id")
    project.write_text(named)
    assert auth_configured([home, project]) is True  # a named provider
    project.write_text(AUTH.replace('client_secret = "abc"\n', ""))
    assert auth_configured([home, project]) is False  # a provider without its secret
    project.write_text(AUTH.replace('cookie_secret = "s3cr3t-s3cr3t-s3cr3t"\n', ""))
    assert auth_configured([home, project]) is False
    project.write_text("[auth\n")
    with pytest.raises(ConfigError, match="cannot read"):
        auth_configured([home, project])
