"""Team sign-in in a real Chromium against a real local OpenID Connect provider.

The test starts ``oidc-provider-mock`` (a real OIDC provider: discovery, authorization code flow,
signed ID tokens, end-session) on a free port, and its own ``streamlit run app.py`` whose
``.streamlit/secrets.toml`` (in a private folder, not the repo's) points Streamlit's native
``st.login`` at it. ``roles.toml`` in the data dir names a viewer, an analyst and an admin.

Each role signs in through the provider's form and sees and can do exactly its rights; a
viewer's forged writes are refused on the server; an unlisted account gets no access; sign-out
ends the session. The server's own upload limit (``LTREC_MAX_UPLOAD_MB``) is checked by sending
upload requests straight to Streamlit's upload endpoint.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ltrec.app import audit, services
from ltrec.app.auth import PermissionDenied, Principal, Role
from ltrec.models.registry import list_runs
from ltrec.simulation import list_results
from tests.e2e.harness import (
    REPO,
    Server,
    Shared,
    Watched,
    act,
    free_port,
    goto,
    ltrec,
    main_text,
    settle,
    start_server,
    watch,
)

pytestmark = pytest.mark.timeout(1200)

VIEWER = ("vi@example.com", "Vi Viewer")
ANALYST = ("an@example.com", "An Analyst")
ADMIN = ("ad@example.com", "Ad Admin")
STRANGER = "eve@elsewhere.net"
ROLES = f"""
[roles]
"{VIEWER[0]}" = "viewer"
"{ANALYST[0]}" = "analyst"
"{ADMIN[0]}" = "admin"
"""
UPLOAD_MB = 1


@dataclass
class Site:
    server: Server
    browser: Any
    data: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, suite: Shared) -> Iterator[Site]:
    # The session's one Chromium (tests/e2e/conftest.py): Playwright's sync API allows one
    # driver per thread, so a second sync_playwright() here fails after the other e2e tests.
    from oidc_provider_mock import User, run_server_in_thread

    # Plain http on localhost: Authlib (the provider here, Streamlit's client there) refuses
    # it unless told this is a test.
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    root = tmp_path_factory.mktemp("signin")
    data = root / "data"
    # the suite's untouched demo shop (one popularity run) copied, not built again; a second
    # run: the analyst activates one, the admin deletes one
    shutil.copytree(suite.template, data)
    ltrec(data, "train", "demo", "--model", "popularity")
    assert len(list_runs("demo", data)) == 2
    (data / "roles.toml").write_text(ROLES)
    users = [
        User(sub=email, claims={"email": email, "name": name})
        for email, name in (VIEWER, ANALYST, ADMIN)
    ]
    users.append(User(sub=STRANGER, claims={"email": STRANGER, "name": "Eve"}))
    with run_server_in_thread(user_claims=users) as idp:
        port = free_port()
        folder = root / "site" / ".streamlit"
        folder.mkdir(parents=True)
        shutil.copy(REPO / ".streamlit" / "config.toml", folder / "config.toml")
        (folder / "secrets.toml").write_text(
            f"""
[auth]
redirect_uri = "http://127.0.0.1:{port}/oauth2callback"
cookie_secret = "{os.urandom(24).hex()}"
client_id = "ltrec"
client_secret = "ltrec-test-secret"
server_metadata_url = "http://localhost:{idp.server_port}/.well-known/openid-configuration"
"""
        )
        server = start_server(
            data,
            root / "streamlit.log",
            cwd=folder.parent,
            port=port,
            env={"AUTHLIB_INSECURE_TRANSPORT": "1", "LTREC_MAX_UPLOAD_MB": str(UPLOAD_MB)},
        )
        try:
            yield Site(server, suite.browser, data)
        finally:
            server.stop()


@pytest.fixture
def new_page(site: Site) -> Iterator[Any]:
    contexts = []

    def make() -> Watched:
        ctx = site.browser.new_context(viewport={"width": 1400, "height": 1000})
        ctx.add_init_script(KEEP_SOCKET)
        contexts.append(ctx)
        return watch(ctx, site.server.url)

    yield make
    for ctx in contexts:
        ctx.close()


#: Keeps the app's websocket reachable from the test (to send a forged message on it).
KEEP_SOCKET = """
(() => {
  const Orig = window.WebSocket;
  class Kept extends Orig {
    constructor(...args) { super(...args); window.__ltrecWs = this; }
  }
  window.WebSocket = Kept;
})();
"""


class Wire:
    """What crosses the app's websocket: the session id, each button the server drew (label ->
    widget id) and the last script-run request the browser sent."""

    def __init__(self, pg: Any) -> None:
        self.sessions: list[str] = []
        self.buttons: dict[str, str] = {}
        self.last_rerun: Any = None
        pg.on("websocket", self._socket)

    def _socket(self, ws: Any) -> None:
        ws.on("framereceived", self._received)
        ws.on("framesent", self._sent)

    def _received(self, payload: Any) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if not isinstance(payload, bytes | bytearray):
            return
        msg = ForwardMsg.FromString(bytes(payload))
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.sessions.append(msg.new_session.initialize.session_id)
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            if element.WhichOneof("type") == "button":
                self.buttons[element.button.label] = element.button.id

    def _sent(self, payload: Any) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        if isinstance(payload, bytes | bytearray):
            msg = BackMsg.FromString(bytes(payload))
            if msg.WhichOneof("type") == "rerun_script":
                self.last_rerun = msg


def forge_click(w: Watched, wire: Wire, label: str) -> None:
    """Send a click on button ``label`` as a script-run request with its trigger set."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    msg.CopyFrom(wire.last_rerun)
    state = msg.rerun_script.widget_states.widgets.add()
    state.id = wire.buttons[label]
    state.trigger_value = True
    data = list(msg.SerializeToString())
    act(w.page, lambda: w.page.evaluate("b => window.__ltrecWs.send(new Uint8Array(b))", data))


def sidebar(pg: Any) -> str:
    return pg.locator('[data-testid="stSidebar"]').inner_text()


def sign_in(w: Watched, email: str) -> None:
    """The whole flow: the app's sign-in screen, the provider's form, back to the app."""
    goto(w)
    assert "Sign in to see the shop's long-tail analysis." in main_text(w.page)
    assert w.page.locator('[data-testid="stSidebarNav"]').count() == 0  # no pages yet
    w.page.get_by_role("button", name="Sign in").click()
    w.page.get_by_role("button", name=email, exact=True).click()  # the provider's one-click user
    w.page.wait_for_url(re.compile(re.escape(w.origin) + r"/?(\?.*)?$"))
    settle(w.page)
    w.errors.clear()  # the provider's own pages are not the app's


def button(pg: Any, name: str) -> Any:
    return pg.get_by_role("button", name=name, exact=True)


def audit_rows(data: Path) -> list[tuple[str, str, str]]:
    return [(e.who, e.action, e.outcome) for e in audit.read(data)]


def test_viewer(site: Site, new_page) -> None:
    w = new_page()
    wire = Wire(w.page)
    sign_in(w, VIEWER[0])
    pg = w.page
    assert "Signed in as Vi Viewer · role viewer" in sidebar(pg)
    assert button(pg, "Sign out").count() == 1
    # every page opens
    for path, title in (("", "Overview"), ("long_tail", "Long Tail"), ("segments", "Segments")):
        goto(w, path)
        assert pg.locator('[data-testid="stMain"] h1').first.inner_text() == title
    goto(w, "data")
    text = main_text(pg)
    assert "Importing and deleting data needs the admin role." in text
    for hidden in ("Import a file", "Delete a dataset", "Audit log"):
        assert hidden not in text
    goto(w, "model_lab")
    assert button(pg, "Train").is_disabled()
    assert button(pg, "Use as the active model").count() == 0
    assert button(pg, "Delete run").count() == 0
    goto(w, "feedback_loop")
    assert button(pg, "Run simulation").is_disabled()
    goto(w, "rerank_studio")
    # the lists and the sample's metrics come first: wait for the section after them
    pg.get_by_text("Sweeps and exports need the analyst role.").wait_for()
    assert button(pg, "Prepare the export").count() == 0
    assert w.errors == []

    # Forged writes. 1) Clicks sent as script-run requests on the app's own websocket, with
    #    the widgets' real ids. The control: a button the viewer may press (Compare) works.
    runs = [r.run_id for r in list_runs("demo", site.data)]
    before = audit_rows(site.data)
    goto(w, "model_lab")
    assert pg.locator(".st-key-lab_table").count() == 0
    forge_click(w, wire, "Compare")
    assert pg.locator(".st-key-lab_table").count() == 1
    #    The Train button the viewer sees disabled: Streamlit discards a disabled widget's
    #    value on the server, so nothing runs, nothing is trained or logged (and were it
    #    accepted, the training service would refuse: part 2).
    assert button(pg, "Train").is_disabled()
    forge_click(w, wire, "Train")
    alerts = pg.locator('[data-testid="stAlert"]').all_inner_texts()
    assert [a for a in alerts if "may not" in a or "Trained" in a] == []
    assert [r.run_id for r in list_runs("demo", site.data)] == runs
    assert audit_rows(site.data) == before
    # 2) The services themselves, called with the viewer's principal: refused, logged, nothing
    #    changed.
    viewer = Principal(VIEWER[0], Role.VIEWER, name=VIEWER[1])
    with pytest.raises(PermissionDenied, match="that needs the admin role"):
        services.delete_dataset(viewer, "demo", site.data)
    with pytest.raises(PermissionDenied, match="that needs the admin role"):
        services.delete_run(viewer, "demo", runs[0], site.data)
    with pytest.raises(PermissionDenied, match="that needs the analyst role"):
        services.train(viewer, "demo", "popularity", data_dir=site.data)
    assert [r.run_id for r in list_runs("demo", site.data)] == runs
    assert (site.data / "demo.duckdb").exists()
    new = audit_rows(site.data)[len(before) :]
    assert [row for row in new if row[2] != "denied"] == []  # no write went through
    assert new[-3:] == [
        (VIEWER[0], "delete dataset", "denied"),
        (VIEWER[0], "delete run", "denied"),
        (VIEWER[0], "train", "denied"),
    ]


def test_analyst(site: Site, new_page) -> None:
    w = new_page()
    sign_in(w, ANALYST[0])
    pg = w.page
    assert "Signed in as An Analyst · role analyst" in sidebar(pg)
    goto(w, "data")
    text = main_text(pg)
    assert "Importing and deleting data needs the admin role." in text
    assert "Delete a dataset" not in text and "Audit log" not in text
    goto(w, "model_lab")
    assert button(pg, "Train").is_enabled()
    assert button(pg, "Delete run").count() == 0
    chosen = list_runs("demo", site.data)[-1].run_id  # the run picker's default: the newest
    before = len(audit.read(site.data))
    act(pg, lambda: button(pg, "Use as the active model").click())
    # the click's run ends in st.rerun(): wait for the second run's caption
    pg.get_by_text(f"Active model: {chosen}").first.wait_for()
    new = audit.read(site.data)[before:]
    assert [(e.who, e.action, e.target, e.outcome) for e in new] == [
        (ANALYST[0], "set active model", f"demo: {chosen}", "ok")
    ]
    goto(w, "feedback_loop")
    assert button(pg, "Run simulation").is_enabled()
    goto(w, "rerank_studio")
    button(pg, "Prepare the export").wait_for()  # after the lists, metrics and the sweep
    assert "Sweeps and exports need the analyst role." not in main_text(pg)
    assert list_results("demo", site.data) == []
    assert w.errors == []


def test_admin_and_sign_out(site: Site, new_page) -> None:
    w = new_page()
    sign_in(w, ADMIN[0])
    pg = w.page
    assert "Signed in as Ad Admin · role admin" in sidebar(pg)
    goto(w, "data")
    text = main_text(pg)
    for shown in ("Import a file", "Delete a dataset", "Audit log"):
        assert shown in text
    assert "Importing and deleting data needs the admin role." not in text
    uploader = pg.locator('[data-testid="stFileUploader"]').first.inner_text()
    assert f"{UPLOAD_MB}MB per file" in uploader  # the widget says the server's limit
    audit_table = pg.locator(".st-key-audit_download")
    assert audit_table.count() == 1  # the CSV download of the log
    goto(w, "model_lab")
    runs = [r.run_id for r in list_runs("demo", site.data)]
    victim = runs[-1]  # the run picker's default: the newest
    act(pg, lambda: pg.get_by_text(f"Yes, delete run {victim}").click())
    act(pg, lambda: button(pg, "Delete run").click())
    assert [r.run_id for r in list_runs("demo", site.data)] == [r for r in runs if r != victim]
    assert audit_rows(site.data)[-1] == (ADMIN[0], "delete run", "ok")
    assert w.errors == []

    # sign out: Streamlit clears its cookie and sends the browser to the provider's end-session
    # page, which returns to the app: the sign-in screen again, and it stays so on reload
    button(pg, "Sign out").click()  # leaves the app: no script run to wait for
    pg.get_by_role("button", name="End session").click()
    pg.wait_for_url(re.compile(re.escape(w.origin) + r"/?(\?.*)?$"))
    settle(pg)
    assert "Sign in to see the shop's long-tail analysis." in main_text(pg)
    goto(w, "data")
    assert "Sign in to see the shop's long-tail analysis." in main_text(pg)
    assert "Audit log" not in main_text(pg)


def test_unlisted_account_gets_no_access(site: Site, new_page) -> None:
    w = new_page()
    sign_in(w, STRANGER)
    text = main_text(w.page)
    assert "No access" in text
    assert f"{STRANGER} is signed in but has no ltrec role." in text
    assert w.page.locator('[data-testid="stSidebarNav"]').count() == 0
    goto(w, "data")
    assert "No access" in main_text(w.page)


# ------------------------------------------------------------------------------ upload limit

UPLOAD = """
async ([sid, size]) => {
  const token = document.cookie.split('; ').find(c => c.startsWith('_streamlit_xsrf='));
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(size)]), 'events.csv');
  const r = await fetch(`/_stcore/upload_file/${sid}/forged-${size}`, {
    method: 'PUT', body: form, credentials: 'same-origin',
    headers: token ? {'X-Xsrftoken': token.split('=').slice(1).join('=')} : {},
  });
  return r.status;
}
"""


def test_server_refuses_an_oversize_upload(site: Site, new_page) -> None:
    """Straight to Streamlit's upload endpoint, past the browser widget: the server itself
    enforces LTREC_MAX_UPLOAD_MB (1 MB here)."""
    w = new_page()
    wire = Wire(w.page)
    sign_in(w, ADMIN[0])
    goto(w, "data")  # the admin's Data page: its uploaders exist, the limit is applied
    sid = wire.sessions[-1]
    limit = UPLOAD_MB * 2**20
    assert w.page.evaluate(UPLOAD, [sid, limit // 2]) == 204  # a well-formed request works
    assert w.page.evaluate(UPLOAD, [sid, limit + 2**20]) == 413  # one over the limit: refused
    assert w.page.evaluate(UPLOAD, [sid, limit + 1]) == 413  # even by a single byte
    assert w.page.evaluate(UPLOAD, ["no-such-session", 10]) == 400
