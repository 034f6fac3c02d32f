"""Hostile catalogue strings in a real Chromium (issue 16 §6), and the server's XSRF protection.

The ``xss`` dataset (built by the real CLI in :mod:`tests.e2e.harness`) holds HTML in titles,
categories, brands, a segment value, an item id and a user id: ``<a href="https://evil.example/">``,
``<img src=x onerror=...>``, ``<script>``, ``<b onmouseover=...>``. Every page is opened on it and
the whole DOM, plotly's SVG included, is searched for anything the data could have become: a link
to the evil host, an image with ``onerror``, an inline script, an ``on*`` handler. The strings
themselves must still be shown, as text.
"""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.e2e.harness import (
    EVIL_LINK,
    XSS_CATEGORY,
    XSS_CATEGORY_LINK,
    XSS_SEGMENT,
    XSS_TITLES,
    XSS_USER_ID,
    Watched,
    act,
    app_pages,
    assert_clean,
    goto,
    ltrec,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Everything hostile data could have turned into, anywhere in the document (HTML and SVG: a
#: type selector matches plotly's SVG ``<a>`` too, whose link is ``xlink:href``).
MARKUP_FROM_DATA = """() => {
  const bad = [];
  const XLINK = 'http://www.w3.org/1999/xlink';
  for (const a of document.querySelectorAll('a')) {
    const href = (a.getAttribute('href') || '') + (a.getAttributeNS(XLINK, 'href') || '');
    if (href.includes('evil.example')) bad.push('link ' + href);
  }
  for (const img of document.querySelectorAll('img')) {
    if (img.hasAttribute('onerror') || img.getAttribute('src') === 'x') {
      bad.push('img ' + img.outerHTML);
    }
  }
  for (const s of document.querySelectorAll('script')) {
    if ((s.textContent || '').includes('alert(')) bad.push('script ' + s.textContent);
  }
  for (const el of document.querySelectorAll('*')) {
    for (const at of el.attributes) {
      if (at.name.startsWith('on') && at.value.includes('alert(')) {
        bad.push(el.tagName + ' ' + at.name);
      }
    }
  }
  return bad;
}"""

CHART_TEXT = """() => Array.from(
  document.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg')
).map(s => s.textContent).join('\\n')"""

POLICY_LABELS = (EVIL_LINK, "<script>alert(6)</script>")

PAGES = {path: title for title, path in app_pages()}
#: Per page: extra URL state that brings the hostile strings on screen, and what must be shown.
SHOWN: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # path: (query, literal strings in the page text, literal strings in the charts' SVG text)
    "": ("", (), ()),
    "long_tail": ("", (), (XSS_CATEGORY, XSS_CATEGORY_LINK)),
    "segments": ("seg=tier", (), (XSS_SEGMENT,)),
    "model_lab": ("", (), ()),
    "rerank_studio": (
        "user=" + urllib.parse.quote(XSS_USER_ID, safe=""),
        (XSS_USER_ID, *XSS_TITLES),
        (),
    ),
    "feedback_loop": ("", (), POLICY_LABELS),
    "opportunities": ("", (XSS_CATEGORY, XSS_CATEGORY_LINK), ()),
    "experiments": ("", (), ()),  # no experiment on xss: the page says how to start one
    "data": ("", ("xss",), ()),
}


def shown_text(locator) -> str:
    """What a reader sees: the text without the invisible word joiners that break autolinks
    (:func:`ltrec.charts.text.markdown_text`)."""
    return (locator.text_content() or "").replace("\u2060", "")


#: Every image has loaded or failed: an injected ``<img src=x onerror=...>`` would have fired.
IMAGES_DONE = "() => Array.from(document.images).every(i => i.complete)"


def assert_no_markup(page: Watched) -> None:
    pg = page.page
    pg.wait_for_function(IMAGES_DONE, polling=100)
    pg.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))")
    assert pg.evaluate(MARKUP_FROM_DATA) == []
    assert page.dialogs == []


@pytest.fixture(scope="module")
def simulated(server) -> None:
    """A saved simulation on ``xss`` whose policy labels are HTML (the Feedback Loop shows it)."""
    policies = [
        json.dumps({"model": "popularity", "label": POLICY_LABELS[0]}),
        json.dumps(
            {
                "model": "popularity",
                "label": POLICY_LABELS[1],
                "rerank": {"strategy": "tail_boost", "beta": 0.5},
            }
        ),
    ]
    args = ["simulate", "xss", "--rounds", "2", "--users", "20"]
    for p in policies:
        args += ["--policy", p]
    out = ltrec(server.data_dir, *args)
    assert "saved as" in out.stdout


def test_every_page_is_covered() -> None:
    assert set(PAGES) == set(SHOWN), "a new page needs its hostile-data case here"


@pytest.mark.parametrize("path", list(SHOWN), ids=[p or "overview" for p in SHOWN])
def test_html_in_the_data_is_shown_as_text(page, simulated, path):
    query, text_shown, chart_shown = SHOWN[path]
    pg = page.page
    goto(page, path, "ds=xss" + (f"&{query}" if query else ""))
    assert_no_markup(page)
    app = pg.locator('[data-testid="stApp"]')
    text = shown_text(app)
    # A table's cells come into the DOM a frame or more after the script settles (the grid
    # draws first): wait for the strings up to 10 s, then assert on what is shown.
    for _ in range(100):
        if all(s in text for s in text_shown):
            break
        pg.wait_for_timeout(100)
        text = shown_text(app)
    for s in text_shown:  # the literal strings, as the shop wrote them
        assert s in text, s
    assert_no_markup(page)
    charts = pg.evaluate(CHART_TEXT)
    for s in chart_shown:
        assert s in charts, s
    assert_clean(page, f"xss_{path or 'overview'}")


def test_chart_hovers_show_hostile_categories_as_text(page):
    """Hover labels are drawn on demand: hover each bar of the category chart."""
    pg = page.page
    goto(page, "long_tail", "ds=xss")
    chart = pg.locator('.st-key-fig_lt_cat [data-testid="stPlotlyChart"]')
    bars = chart.locator(".bars .point path")
    hover = chart.locator(".hoverlayer")
    seen = ""
    for i in range(min(bars.count(), 3)):
        before = hover.text_content() or ""
        bars.nth(i).hover(force=True)
        for _ in range(50):  # the label is drawn on the next frame: wait for it to change
            label = hover.text_content() or ""
            if label and label != before:
                break
            pg.wait_for_timeout(50)
        seen += label
        assert pg.evaluate(MARKUP_FROM_DATA) == []
    assert XSS_CATEGORY in seen and XSS_CATEGORY_LINK in seen, seen
    assert page.dialogs == []


def test_long_tail_category_filter_lists_hostile_categories_as_text(page):
    pg = page.page
    goto(page, "long_tail", "ds=xss")
    pg.get_by_role("combobox", name="Category", exact=True).click()
    for cat in (XSS_CATEGORY, XSS_CATEGORY_LINK):
        assert pg.get_by_role("option", name=cat, exact=True).count() == 1
    assert pg.evaluate(MARKUP_FROM_DATA) == []
    pg.keyboard.press("Escape")


def test_link_values_and_upload_names_are_inert(page, tmp_path):
    """Hostile text reflected from a link (``?cuts=``) and from an upload's file and column
    names is shown as text on the page that echoes it."""
    pg = page.page
    cuts = urllib.parse.quote(EVIL_LINK, safe="")
    goto(page, "long_tail", f"ds=xss&cuts={cuts}")
    assert "is not a list of increasing shares" in (pg.locator("body").text_content() or "")
    assert EVIL_LINK in shown_text(pg.locator('[data-testid="stSidebar"]'))
    assert_no_markup(page)
    assert "data" in PAGES, "no Data page in app.py"  # a missing page fails, never passes
    src = tmp_path / "<img src=x onerror=alert(7)>.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "event_type", "timestamp", EVIL_LINK])
        for i in range(20):
            w.writerow([f"u{i}", f"i{i}", "view", "2025-04-01T09:00:00", EVIL_LINK])
    goto(page, "data")
    upload = pg.locator('[data-testid="stFileUploader"]').first.locator('input[type="file"]')
    act(pg, lambda: upload.set_input_files(str(src)))
    assert src.name in shown_text(pg.locator('[data-testid="stMain"]'))
    assert_no_markup(page)
    assert_clean(page, "xss_upload")


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
