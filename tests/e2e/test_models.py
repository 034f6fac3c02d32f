"""Model Lab (train in the browser, watch the progress) and Rerank Studio (settings, share link)."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.harness import TIMEOUT_MS, act, app_pages, assert_clean, goto, settle
from tests.e2e.test_pages import select, table_text

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HAVE = {path for _, path in app_pages()}
PROGRESS = """() => { const b = document.querySelector('[data-testid="stProgress"]');
  if (!b) return null;
  const r = b.querySelector('[role="progressbar"]');
  return r ? (r.getAttribute('aria-valuenow') || '') : ''; }"""


def train_in_lab(pg, model: str) -> dict:
    """Choose ``model``, press Train, follow the progress until the run is saved."""
    select(pg, "Model", model)
    act(pg, lambda: pg.get_by_role("button", name="Train").click())
    seen, values = False, []
    success = pg.locator('[data-testid="stAlert"]').filter(has_text=f"Trained {model} in")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        now = pg.evaluate(PROGRESS)  # read without waiting: the bar goes when training ends
        if now is not None:
            seen = True
            if now != "":
                values.append(float(now))
        if success.count():
            break
        failed = pg.locator('[data-testid="stAlert"]').filter(has_text="rror")
        assert failed.count() == 0, failed.first.inner_text()
        pg.wait_for_timeout(150)
    assert success.count(), f"training {model} did not finish"
    settle(pg)
    return {"seen_progress": seen, "values": values, "message": success.first.inner_text()}


def test_model_lab_trains_popularity_and_ease(page):
    assert "model_lab" in HAVE, "the Model Lab page is not in app.py"
    pg = page.page
    goto(page, "model_lab")
    runs_before = table_text(pg).count("popularity")
    for model in ("popularity", "ease"):
        got = train_in_lab(pg, model)
        # the progress bar only moves forward and the run is reported with its id
        assert got["values"] == sorted(got["values"]), got
        assert re.search(r"run \d{8}-\d{6}-" + model, got["message"]), got
    # the runs table refreshes on the app rerun that follows the success message: wait for it
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while "ease" not in (runs := table_text(pg)) and time.monotonic() < deadline:
        pg.wait_for_timeout(200)
    assert runs.count("popularity") >= runs_before + 1
    assert "ease" in runs
    assert_clean(page, "model_lab_trained")


def studio_list(pg, col: int) -> str:
    """The list table of the Studio's column ``col`` (the column holding its strategy select)."""
    # the lists are the page's last dataframes, one per column (the history table comes first)
    cols = pg.locator('[class*="st-key-rs_c"][class*="_strategy"]').count()
    total = pg.locator('[data-testid="stDataFrame"]').count()
    return table_text(pg, nth=total - cols + col - 1)


def _slider_value(pg, key: str) -> float:
    return float(pg.locator(f'.st-key-{key} input[type="range"]').input_value())


def test_rerank_studio_boost_and_share_link(page, new_page):
    assert "rerank_studio" in HAVE, "the Rerank Studio page is not in app.py"
    pg = page.page
    goto(page, "rerank_studio", "user=U0001")
    key = "rs_c2_tail_boost_beta"
    base_list, before = studio_list(pg, 1), studio_list(pg, 2)
    start = _slider_value(pg, key)
    thumb = pg.locator(f'.st-key-{key} input[type="range"]')
    act(pg, lambda: (thumb.focus(), thumb.press("End")))
    end = _slider_value(pg, key)
    assert end > start
    after = studio_list(pg, 2)
    assert after != before  # a stronger boost moves tail items in
    assert studio_list(pg, 1) == base_list  # the base column does not move
    q = parse_qs(urlparse(pg.url).query)
    assert float(q["c2.beta"][0]) == pytest.approx(end)

    link = pg.locator('[data-testid="stCode"]').filter(has_text="?").first.inner_text().strip()
    assert link.startswith(page.origin) and "c2.beta=" in link
    assert_clean(page, "rerank_studio_boosted")

    other = new_page()
    other.page.goto(link, wait_until="domcontentloaded")
    settle(other.page)
    assert _slider_value(other.page, key) == pytest.approx(end)
    assert studio_list(other.page, 2) == after
    assert studio_list(other.page, 1) == base_list
    assert_clean(other, "rerank_studio_from_link")
