"""Sign-in in the app: the serving check, Streamlit's OpenID Connect sign-in and the principal.

:func:`gate` runs at the top of ``app.py`` on every script run, before any page:

1. the address Streamlit serves (``server.address``) is checked with
   :func:`ltrec.app.auth.serving_check`: a non-local address without sign-in shows only the
   refusal, so ``streamlit run app.py --server.address 0.0.0.0`` serves no data;
2. with sign-in configured (``[auth]`` in ``.streamlit/secrets.toml``), a visitor who is not
   signed in sees only the sign-in button (``st.login``), and a signed-in user whom
   ``roles.toml`` grants nothing sees only a sign-out button;
3. the sidebar shows who is acting and the role, with a sign-out button when signed in.

Pages call :func:`principal` and pass it to :mod:`ltrec.app.services`, which check the rights
again on the server; :func:`can` only hides what the role lacks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit import config as st_config

from ltrec.app import services
from ltrec.app.auth import (
    LOCAL,
    Principal,
    Right,
    RoleTable,
    auth_section_configured,
    load_roles,
    serving_check,
    signed_in,
)
from ltrec.config import get_settings
from ltrec.errors import LtrecError
from ltrec.ui.state import show_error
from ltrec.ui.widgets import table_with_download

_warned: set[str] = set()


def auth_configured() -> bool:
    """Whether Streamlit's secrets hold a usable ``[auth]`` section (what ``st.login`` needs)."""
    if not st.secrets.load_if_toml_exists():
        return False
    section: Any = st.secrets.get("auth")
    if section is None:
        return False
    return auth_section_configured(section.to_dict() if hasattr(section, "to_dict") else section)


def apply_upload_limit() -> None:
    """Make Streamlit's own upload limit (checked by its upload endpoint on every request)
    follow ``LTREC_MAX_UPLOAD_MB`` even when the server was started without ``./run.sh``.

    ``st.set_option`` refuses server options, so this sets the runtime config directly; the
    endpoint reads it per request, and no upload can reach it before a script run has
    created the uploader, i.e. after this ran.
    """
    limit = get_settings().max_upload_mb
    if st_config.get_option("server.maxUploadSize") != limit:
        st_config.set_option("server.maxUploadSize", limit, where_defined="LTREC_MAX_UPLOAD_MB")


@st.cache_data(ttl=5, show_spinner=False)
def _roles(path: str, mtime: float) -> RoleTable:
    del mtime  # part of the cache key: an edited file is read again
    return load_roles(path)


def role_table() -> RoleTable:
    path = get_settings().roles_path
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = -1.0
    return _roles(str(path), mtime)


def principal() -> Principal | None:
    """Who is acting in this session: the local user without sign-in, else the signed-in user
    with their role from ``roles.toml`` (None: not signed in, or no role)."""
    if not auth_configured():
        return LOCAL
    if not st.user.is_logged_in:
        return None
    email = str(st.user.get("email") or "")
    # roles.toml names people by email: one the provider says it has not verified proves nothing
    if not email or st.user.get("email_verified") is False:
        return None
    return signed_in(email, str(st.user.get("name") or ""), role_table())


def current() -> Principal:
    """The acting principal (after :func:`gate` let the script through)."""
    who = principal()
    if who is None:  # gate() stops such sessions; a page run without it must not act
        st.stop()
    return who


def can(right: Right) -> bool:
    """Whether to show an action (the service checks again, whatever the page shows)."""
    who = principal()
    return who is not None and who.can(right)


def gate() -> Principal:
    """The checks of the module docstring; stops the script run unless someone may see pages."""
    settings = get_settings()
    try:
        decision = serving_check(
            st_config.get_option("server.address"), auth_configured(), settings.allow_anonymous
        )
    except LtrecError as err:
        if "refused" not in _warned:
            _warned.add("refused")
            print(f"ltrec: {err}", file=sys.stderr)
        st.title("ltrec is not serving this address")
        show_error(err)
        st.stop()
    if decision.warning:
        st.sidebar.warning(decision.warning)
        if "anonymous" not in _warned:  # the server log too (./run.sh prints it at each start)
            _warned.add("anonymous")
            print(decision.warning, file=sys.stderr)
    apply_upload_limit()
    if not decision.sign_in:
        st.sidebar.caption(f"Local use: **{LOCAL.label}** ({LOCAL.role.value}, every right)")
        return LOCAL
    if not st.user.is_logged_in:
        st.title("ltrec: long-tail exposure")
        st.info("Sign in to see the shop's long-tail analysis.")
        if st.button("Sign in", type="primary", key="auth_login"):
            st.login()
        st.stop()
    try:
        who = principal()
    except LtrecError as err:  # a malformed roles.toml: nobody gets in until it is fixed
        st.title("Sign-in is misconfigured")
        show_error(err)
        _logout_button(st)
        st.stop()
    if who is None:
        email = st.user.get("email") or "this account"
        st.title("No access")
        st.warning(
            f"{email} is signed in but has no ltrec role. Ask an ltrec admin to add you to "
            f"roles.toml ({Path(get_settings().roles_path).name})."
        )
        _logout_button(st)
        st.stop()
    st.sidebar.markdown(f"Signed in as **{who.label}** · role **{who.role.value}**")
    if who.label != who.email:
        st.sidebar.caption(who.email)
    _logout_button(st.sidebar)
    return who


def _logout_button(where: Any) -> None:
    if where.button("Sign out", key=f"auth_logout_{'side' if where is st.sidebar else 'main'}"):
        st.logout()


def audit_section() -> None:
    """The audit log for admins (newest first) with a CSV download; nothing for other roles."""
    if not can(Right.AUDIT):
        return
    st.subheader("Audit log")
    st.caption(
        "Every import, delete, training run, active-model choice, simulation and export: who, "
        "what, when and the outcome (refused attempts too)."
    )
    try:
        frame = services.audit_log(current(), get_settings().data_dir)
    except LtrecError as err:
        show_error(err)
        return
    if frame.empty:
        st.info("Nothing written yet.")
        return
    table_with_download(frame, "ltrec_audit_log.csv", key="audit_download", height=320)
