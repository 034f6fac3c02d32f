"""Hostile catalogue strings in a real Chromium, and the running server's XSRF protection."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.e2e.harness import XSS_CATEGORY, XSS_TITLES, app_pages, assert_clean, goto

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HAVE = {path for _, path in app_pages()}
PAGES = [p for p in ("", "long_tail", "rerank_studio") if p == "" or p in HAVE]


@pytest.mark.parametrize("path", PAGES, ids=[p or "overview" for p in PAGES])
def test_html_in_the_catalogue_is_shown_as_text(page, path):
    pg = page.page
    goto(page, path, "ds=xss&user=u1")
    pg.wait_for_timeout(1500)  # an injected onerror/script would have fired by now
    assert page.dialogs == []
    # nothing was turned into markup: no injected image or inline script
    assert pg.locator('img[src="x"]').count() == 0
    assert pg.locator("script:not([src])").filter(has_text="alert(").count() == 0
    assert pg.locator("b[onmouseover]").count() == 0
    text = pg.locator('[data-testid="stApp"]').text_content() or ""
    if path == "rerank_studio":  # the user's history and lists show the titles
        for title in XSS_TITLES:  # the literal strings, as the user typed them
            assert title in text, title
    if path == "long_tail":
        pg.get_by_role("combobox", name="Category", exact=True).click()
        assert pg.get_by_role("option", name=XSS_CATEGORY, exact=True).count() == 1
        pg.keyboard.press("Escape")
    assert_clean(page, f"xss_{path or 'overview'}")


def test_server_refuses_uploads_without_the_xsrf_token(server):
    with urllib.request.urlopen(f"{server.url}/_stcore/health") as resp:  # sets the cookie
        cookies = resp.headers.get_all("Set-Cookie") or []
    assert any(c.startswith("_streamlit_xsrf=") for c in cookies), cookies
    req = urllib.request.Request(
        f"{server.url}/_stcore/upload_file/some-session/some-file", data=b"x", method="PUT"
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req)
    assert exc.value.code == 403
