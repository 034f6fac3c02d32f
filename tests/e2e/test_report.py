"""The stakeholder report in a real Chromium, offline (issue 17 §4).

A hostile shop (script and HTML in titles, categories, brands, ids) is imported, trained and
reported through the real CLI; the file is opened with every network request blocked and
recorded: none may be attempted, every section and chart must draw, the hostile titles must
read as text, and ``page.pdf()`` must print it. The app's download button is clicked too: it
gives the same report.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from tests.e2e.harness import (
    ARTIFACTS,
    SCREENSHOTS,
    TIMEOUT_MS,
    XSS_CATEGORY_LINK,
    goto,
    ltrec,
    watch,
    write_xss_files,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Every plain item of the hostile shop gets this title (so every listed item is hostile).
HOSTILE_TITLE = "<script>window.__pwned = {i}</script>item {i}"
SECTIONS = ["tail", "categories", "effect", "simulation", "profile", "definitions"]
#: A4 at 12 mm margins: the printable width in CSS pixels (186 mm at 96 px per inch).
A4_PRINTABLE_PX = 186 / 25.4 * 96
CHARTS_DRAWN = """() => { const c = document.querySelectorAll('.chart');
  return c.length > 0 && Array.from(c).every(x => x.querySelector('.main-svg')); }"""


def wait_drawn(pg) -> None:
    """Poll from here: ``wait_for_function`` compiles its predicate in the page, which the
    report's Content-Security-Policy (no ``unsafe-eval``) rightly refuses."""
    for _ in range(TIMEOUT_MS // 100):
        if pg.evaluate(CHARTS_DRAWN):
            return
        pg.wait_for_timeout(100)
    raise AssertionError("the report's charts did not draw")


def hostile_shop(folder: Path) -> tuple[Path, Path, Path]:
    """The harness's hostile catalogue, every plain item titled :data:`HOSTILE_TITLE`."""
    events, items, users = write_xss_files(folder)
    rows = list(csv.reader(items.open(newline="")))
    for i, row in enumerate(rows[1:]):
        if row[1].startswith("plain item"):
            row[1] = HOSTILE_TITLE.format(i=i)
    with items.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return events, items, users


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    data = root / "data"
    events, items, users = hostile_shop(root / "src")
    ltrec(data, "import", "xss", "--events", str(events), "--items", str(items),
          "--users", str(users))  # fmt: skip
    ltrec(data, "train", "xss", "--model", "popularity")
    out = root / "xss_report.html"
    ltrec(data, "report", "xss", "--out", str(out))
    return out


def test_report_opens_offline_and_prints(browser, report_file: Path) -> None:
    url = report_file.as_uri()
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, offline=True)
    attempted: list[str] = []

    def only_the_file(route) -> None:
        if route.request.url == url:
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    ctx.route("**/*", only_the_file)
    try:
        watched = watch(ctx, "file://")
        pg = watched.page
        requests: list[str] = []
        pg.on("request", lambda r: requests.append(r.url))
        pg.goto(url, wait_until="load")
        wait_drawn(pg)

        ids = pg.locator("section").evaluate_all("s => s.map(x => x.id)")
        assert ids == SECTIONS
        assert pg.locator("p.omitted").count() == 0  # every section has data here
        assert pg.locator(".chart").count() == 4
        assert pg.locator(".chart .main-svg").count() >= 4
        # the hostile titles read as text in the items table; none ran, none is a link
        table = pg.locator("table", has=pg.locator("caption", has_text="Items to boost"))
        titles = table.locator("tbody tr td:nth-child(3)").all_inner_texts()
        assert titles and all(re.fullmatch(HOSTILE_TITLE.format(i=r"\d+"), t) for t in titles)
        assert pg.evaluate("typeof window.__pwned") == "undefined"
        assert XSS_CATEGORY_LINK in pg.locator("#categories").inner_text()
        assert pg.locator('a[href^="https://evil"]').count() == 0
        assert watched.errors == [] and watched.dialogs == []
        assert attempted == [] and requests == [url]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # a plain document: full_page works
        pg.screenshot(path=str(SCREENSHOTS / "report_xss.png"), full_page=True)

        pg.emulate_media(media="print")
        widths = pg.locator(".chart .main-svg").evaluate_all(
            "s => s.map(x => x.getBoundingClientRect().width)"
        )
        assert max(widths) <= A4_PRINTABLE_PX
        pdf = pg.pdf(prefer_css_page_size=True)
        assert pdf.startswith(b"%PDF-")
        assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) >= 3
        (ARTIFACTS / "report_xss.pdf").write_bytes(pdf)
        assert watched.errors == [] and attempted == []
    finally:
        ctx.close()


def test_overview_button_downloads_the_report(page) -> None:
    """The app's button (Overview) gives the report of the open dataset."""
    pg = page.page
    goto(page)
    button = pg.locator('.st-key-ov_report [data-testid="stDownloadButton"] button').first
    with pg.expect_download(timeout=TIMEOUT_MS) as info:
        button.click()
    download = info.value
    assert download.suggested_filename == "demo_report.html"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert re.findall(r'<section id="([a-z]+)">', text) == SECTIONS
    assert "<h1>Long-tail report: demo</h1>" in text
    assert page.errors == [] and page.dialogs == []
