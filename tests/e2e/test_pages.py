"""Pages in a real Chromium, as a user would: read, change controls, download. (That every page
opens is checked by the viewport tour, ``test_viewports.test_every_page_opens``.)"""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.harness import (
    FORMULA_TITLE,
    OPEN_MS,
    TIMEOUT_MS,
    act,
    assert_clean,
    chart_svg,
    goto,
    main_text,
    retry_waits,
    settle,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def combobox(pg, label: str):
    """A selectbox by its label (Streamlit's selectbox is an ARIA combobox)."""
    return pg.get_by_role("combobox", name=label, exact=True).first


def opened(pg, label: str, item, page=None):
    """Click the selectbox until ``item`` (an option locator) shows, and return it. A click that
    lands while the widget is re-rendered opens nothing (seen in CI: the option never came);
    a user clicks again, and so does this (soon at first, :func:`retry_waits`)."""
    page = page or pg
    for wait in retry_waits(TIMEOUT_MS):
        combobox(pg, label).click()
        try:
            item.wait_for(state="visible", timeout=wait)
            return item
        except Exception:  # noqa: BLE001 - not open yet: close whatever is open, retry
            page.keyboard.press("Escape")
    item.wait_for(state="visible", timeout=OPEN_MS)  # the last try's error, if it never opens
    return item


def select(pg, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``, and wait for the rerun. Picking the
    option already shown reruns nothing, so that is not done (a wait for its run would last
    :func:`act`'s whole 15 s)."""
    if combobox(pg, label).input_value() == option:
        return

    def choose() -> None:
        opened(pg, label, pg.get_by_role("option", name=option, exact=True)).click()

    act(pg, choose)


def options(pg, label: str, page=None) -> list[str]:
    """The options of a selectbox (``pg`` may be a part of the page, then pass the page)."""
    page = page or pg
    opts = page.get_by_role("option")
    opened(pg, label, opts.first, page)
    out = [o.strip() for o in opts.all_inner_texts()]
    page.keyboard.press("Escape")
    return out


def query(pg) -> dict[str, list[str]]:
    return parse_qs(urlparse(pg.url).query)


def table_text(pg, nth: int = 0, within=None) -> str:
    """The cells of the nth ``st.dataframe`` (in ``within``, default the page), read from the
    grid's accessible table (the grid itself draws on a canvas)."""
    grid = (within or pg).locator('[data-testid="stDataFrame"]').nth(nth)
    grid.scroll_into_view_if_needed()
    grid.locator("td").first.wait_for(state="attached", timeout=60_000)
    return grid.text_content() or ""


def axis_range(pg, key: str, axis: str = "xaxis") -> list[float]:
    """The drawn range of a plotly chart's axis (log10 units on a log axis)."""
    plot = pg.locator(f".st-key-{key} .js-plotly-plot")
    return plot.evaluate(f"p => p._fullLayout.{axis}.range.map(Number)")


def escaped(rows: list[list[str]]) -> list[str]:
    """Cells a spreadsheet would run as a formula (a number like -0.5 is not one)."""
    bad = []
    for row in rows:
        for cell in row:
            if cell.startswith(FORMULA_START):
                try:
                    float(cell)
                except ValueError:
                    bad.append(cell)
    return bad


def test_overview_shows_numbers(page):
    pg = page.page
    goto(page)
    values = pg.locator('[data-testid="stMetricValue"]').all_inner_texts()
    labels = pg.locator('[data-testid="stMetricLabel"]').all_inner_texts()
    shown = dict(zip([x.strip() for x in labels], [v.strip() for v in values], strict=False))
    assert shown["Users"] == "400"
    assert shown["Items"] == "300"
    assert int(shown["Events"].replace(",", "")) > 30_000
    assert re.fullmatch(r"0\.\d{3}", shown[next(k for k in shown if k.startswith("Exposure Gini"))])
    assert re.fullmatch(r"\d+\.\d%", shown["Tail share of items"])
    assert pg.locator('[data-testid="stPlotlyChart"] .main-svg').count() >= 2
    assert_clean(page, "overview")


def test_long_tail_cuts_change_the_chart(page):
    pg = page.page
    goto(page, "long_tail")
    before = chart_svg(pg, "fig_lt_rf")
    buckets_before = table_text(pg, nth=0)
    assert "head" in buckets_before and "tail" in buckets_before and "mid" not in buckets_before
    cuts = pg.locator('[data-testid="stSidebar"] [data-testid="stTextInput"] input').first
    act(pg, lambda: (cuts.fill("0.5,0.8"), cuts.press("Enter")))
    assert query(pg)["cuts"] == ["0.5,0.8"]
    after = chart_svg(pg, "fig_lt_rf")
    assert after != before
    assert "mid" in after  # the new bucket is shaded and labelled
    assert "mid" in table_text(pg, nth=0)
    assert axis_range(pg, "fig_lt_rf")[1] < 4  # log10: ranks of 300 items, not 10^115
    assert_clean(page, "long_tail_two_cuts")


def test_long_tail_bad_cuts_warn(page):
    pg = page.page
    goto(page, "long_tail", "cuts=0.9,0.2")  # not increasing: a warning, the default used
    warn = pg.locator('[data-testid="stSidebar"] [data-testid="stAlert"]').inner_text()
    assert "not a list of increasing shares" in warn
    assert_clean(page, "long_tail_bad_cuts")


def test_segments_dimension_changes_heatmap(page):
    pg = page.page
    goto(page, "segments")
    dims = options(pg, "Segment dimension")
    assert len(dims) >= 2, dims
    current = query(pg)["seg"][0]
    other = next(d for d in dims if d != current)
    before = chart_svg(pg, "fig_sg_heat")
    select(pg, "Segment dimension", other)
    assert query(pg)["seg"] == [other]
    after = chart_svg(pg, "fig_sg_heat")
    assert after != before
    assert other in after  # the heatmap's axis title names the dimension
    assert_clean(page, f"segments_{other}")


def test_csv_download_is_formula_escaped(page):
    """Long Tail's item table of the hostile catalogue: the formula title comes back quoted."""
    pg = page.page
    goto(page, "long_tail", "ds=xss")
    assert "xss" in main_text(pg)
    # .first: the widget draws its button twice (one is a hidden sizing copy)
    button = pg.locator('.st-key-lt_items_csv [data-testid="stDownloadButton"] button').first
    with pg.expect_download() as info:
        button.click()
    download = info.value
    assert download.suggested_filename == "xss_item_conversion.csv"
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    header, body = rows[0], rows[1:]
    assert "title" in header and len(body) >= 3
    titles = [r[header.index("title")] for r in body]
    assert "'" + FORMULA_TITLE in titles
    assert escaped(rows) == []
    assert_clean(page, "long_tail_xss_download")


def test_demo_csv_download(page):
    pg = page.page
    goto(page, "long_tail")
    button = pg.locator('.st-key-lt_buckets_csv [data-testid="stDownloadButton"] button').first
    with pg.expect_download() as info:
        button.click()
    rows = list(csv.reader(open(info.value.path(), encoding="utf-8")))
    assert rows[0][0] == "bucket" and [r[0] for r in rows[1:]] == ["head", "tail"]
    assert escaped(rows) == []


def test_sidebar_dataset_switch(page):
    pg = page.page
    goto(page)
    select(pg, "Dataset", "xss")
    assert query(pg)["ds"] == ["xss"]
    settle(pg)
    assert "Dataset **xss**" not in main_text(pg)  # markdown rendered, not shown raw
    assert "xss" in main_text(pg)
    assert_clean(page, "overview_xss")
