"""Open every page in a real Chromium as a user would."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import assert_clean, settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_overview_shows_numbers(server, page):
    pg = page.page
    pg.goto(server.url)
    settle(pg)
    text = pg.locator('[data-testid="stMain"]').inner_text()
    assert "Overview" in text
    metrics = pg.locator('[data-testid="stMetricValue"]')
    assert metrics.count() >= 4
    assert any(re.search(r"\d", metrics.nth(i).inner_text()) for i in range(metrics.count()))
    assert_clean(page, "overview")
