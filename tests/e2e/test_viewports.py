"""Issue 17's "done when" browser suite: every page at 1280x800 and 1920x1080, on the demo shop
and on a purchase-only order log, in one server and one browser page. The same tour checks that
every page opens (title, navigation, data, no exception box): one visit per page, not two.

One tour (module fixture) opens each page once per dataset, checks it at both window sizes
(resizing reflows without a rerun), keeps a screenshot of each in ``test-artifacts/screenshots``
and records what the tests below assert: no text cut short (an ellipsis or a clipped line:
list titles, headings, KPI labels, selected options), each KPI shown on two pages shows the
same value (labels are the records' names, :data:`ltrec.definitions.METRICS`, as in
``tests/ui/test_kpi_agree.py``), the Studio's first two lists differ, and the Opportunities list
holds every candidate the Overview counts.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from ltrec.definitions import METRICS
from tests.analytics.conftest import orders_store
from tests.e2e.harness import app_pages, goto, main_text, screenshot, settle, watch

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VIEWPORTS = ((1280, 800), (1920, 1080))
DATASETS = ("demo", "shop")  # shop: purchase-only (orders preset)
PAGES = app_pages()
BY_NAME = {m.name: k for k, m in METRICS.items()}

#: Text an element shows cut short: an ellipsis, or a one-line box narrower than its text.
#: Charts, grids (canvas) and code are left out: they scroll or draw their own text.
TRUNCATED = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const skip = '[data-testid="stPlotlyChart"],[data-testid="stDataFrame"],' +
               '[data-testid="stCode"],pre,svg,[data-testid="stTable"]';
  const out = [];
  for (const el of main.querySelectorAll('*')) {
    if (el.clientWidth === 0 || el.closest(skip)) continue;
    const cs = getComputedStyle(el);
    const clips = cs.textOverflow === 'ellipsis' ||
      (cs.whiteSpace === 'nowrap' && (cs.overflowX === 'hidden' || cs.overflowX === 'clip'));
    const text = (el.innerText || '').trim();
    if (clips && text && el.scrollWidth > el.clientWidth + 1) out.push(text.slice(0, 80));
  }
  return [...new Set(out)];
}"""
METRICS_JS = """() => Array.from(document.querySelectorAll(
    '[data-testid="stMain"] [data-testid="stMetric"]')).map(m => [
  (m.querySelector('[data-testid="stMetricLabel"]') || {innerText: ''}).innerText.trim(),
  (m.querySelector('[data-testid="stMetricValue"]') || {innerText: ''}).innerText.trim()])"""
#: Legend entries of the page's charts (Lorenz curves name their Gini: "view (Gini 0.662)").
LEGENDS_JS = """() => Array.from(document.querySelectorAll(
    '[data-testid="stMain"] .legendtext')).map(t => t.textContent.trim())"""
GINI_LEGEND = re.compile(r"^(?P<series>.+) \(Gini (?P<value>[0-9.]+)\)$")
#: The exposure event of each dataset (its Lorenz series whose Gini is the exposure Gini).
EXPOSURE = {"demo": "impression", "shop": None}


def studio_lists(pg) -> list[str]:
    """The cells of the Studio's list grids (read from each grid's accessible table, once it is
    scrolled into view): the grids with a "vs base" column, in page order."""
    out = []
    grids = pg.locator('[data-testid="stMain"] [data-testid="stDataFrame"]')
    for i in range(grids.count()):
        grid = grids.nth(i)
        grid.scroll_into_view_if_needed()
        grid.locator("td").first.wait_for(state="attached", timeout=60_000)
        text = grid.text_content() or ""
        if "vs base" in text:
            out.append(text)
    return out


def kpis(ds: str, pg) -> list[tuple[str, str]]:
    """(KPI key, shown value) of a page: metrics labelled with a record's name, and the Gini a
    Lorenz legend names (the exposure event's series, or buyers per item)."""
    out = [(BY_NAME[label], v) for label, v in pg.evaluate(METRICS_JS) if label in BY_NAME]
    for text in pg.evaluate(LEGENDS_JS):
        m = GINI_LEGEND.match(text)
        if m is None:
            continue
        if m["series"] == EXPOSURE[ds]:
            out.append(("gini_exposure", m["value"]))
        elif m["series"].startswith("buyers per item"):
            out.append(("gini_buyers", m["value"]))
    return out


@pytest.fixture(scope="module")
def tour(browser, server) -> dict[str, Any]:
    """Every page x dataset x window size, visited once; what each check needs."""
    if not (server.data_dir / "shop.duckdb").exists():
        orders_store("shop", server.data_dir)
    ctx = browser.new_context(viewport={"width": VIEWPORTS[0][0], "height": VIEWPORTS[0][1]})
    watched = watch(ctx, server.url)
    pg = watched.page
    out: dict[str, Any] = {"truncated": {}, "kpis": {}, "errors": {}, "text": {}, "opened": {}}
    try:
        for ds in DATASETS:
            for _, path in PAGES:
                page = path or "overview"
                goto(watched, path, f"ds={ds}")
                if ds == "demo":  # what test_every_page_opens checks
                    out["opened"][page] = {
                        "h1": pg.locator('[data-testid="stMain"] h1').first.inner_text(),
                        "nav": pg.locator('[data-testid="stSidebarNav"]').inner_text(),
                        "exceptions": pg.locator('[data-testid="stException"]').all_inner_texts(),
                    }
                for w, h in VIEWPORTS:
                    pg.set_viewport_size({"width": w, "height": h})
                    pg.wait_for_timeout(300)
                    settle(pg)
                    out["truncated"][(ds, page, w)] = pg.evaluate(TRUNCATED)
                    screenshot(pg, f"viewport_{ds}_{page}_{w}")
                out["kpis"][(ds, page)] = kpis(ds, pg)
                out["text"][(ds, page)] = main_text(pg)
                if ds == "demo" and path == "rerank_studio":
                    out["lists"] = studio_lists(pg)
                out["errors"][(ds, page)] = list(watched.errors)
                watched.errors.clear()
                if ds == "demo":
                    out["opened"][page]["dialogs"] = list(watched.dialogs)
                watched.dialogs.clear()
                pg.set_viewport_size({"width": VIEWPORTS[0][0], "height": VIEWPORTS[0][1]})
        yield out
    finally:
        ctx.close()


@pytest.mark.parametrize(("title", "path"), PAGES, ids=[p for _, p in PAGES])
def test_every_page_opens(tour, title, path) -> None:
    """Each page on the demo shop: its title, the whole navigation, data, no exception box,
    no console error, no dialog (read from the tour's visit, not a visit of its own)."""
    page = path or "overview"
    opened = tour["opened"][page]
    assert opened["h1"].strip() == title
    assert all(t in opened["nav"] for t, _ in PAGES)
    assert "no dataset" not in tour["text"][("demo", page)].lower()
    assert opened["exceptions"] == []
    assert tour["errors"][("demo", page)] == []
    assert opened["dialogs"] == []


def test_pages_open_without_errors(tour) -> None:
    assert len(tour["errors"]) == len(PAGES) * len(DATASETS)
    assert {k: v for k, v in tour["errors"].items() if v} == {}


def test_no_text_is_cut_short(tour) -> None:
    assert len(tour["truncated"]) == len(PAGES) * len(DATASETS) * len(VIEWPORTS)
    cut = {k: v for k, v in tour["truncated"].items() if v}
    assert cut == {}, "\n".join(f"{k}: {v}" for k, v in cut.items())


def test_a_kpi_on_two_pages_has_one_value(tour) -> None:
    for ds in DATASETS:
        values: dict[str, set[str]] = {}  # KPI key -> values shown across pages
        pages: dict[str, set[str]] = {}
        for (d, page), shown in tour["kpis"].items():
            if d != ds:
                continue
            for key, value in shown:
                values.setdefault(key, set()).add(value)
                pages.setdefault(key, set()).add(page)
        shared = {k: v for k, v in values.items() if len(pages[k]) >= 2}
        gini = "gini_exposure" if EXPOSURE[ds] else "gini_buyers"
        assert gini in shared, (ds, pages)  # the Overview's KPI and the Long Tail's Lorenz
        assert {k: v for k, v in shared.items() if len(v) > 1} == {}, (ds, pages)


def test_studio_first_two_lists_differ(tour) -> None:
    assert len(tour["lists"]) == 3  # the Studio opens on three columns
    first, second = tour["lists"][:2]
    assert first != second


def test_opportunities_hold_every_candidate_the_overview_counts(tour) -> None:
    for ds in DATASETS:
        link = re.search(r"([\d,]+) candidates to boost", tour["text"][(ds, "overview")])
        heading = re.search(r"Items to boost \(([\d,]+)\)", tour["text"][(ds, "opportunities")])
        assert link and heading, ds
        assert link.group(1) == heading.group(1), ds
