"""The Data page: upload a small CSV, read the validation report, commit, see the new dataset."""

from __future__ import annotations

import csv

import pytest

from tests.e2e.harness import act, app_pages, assert_clean, goto, main_text, settle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_upload_check_and_import(page, server, tmp_path):
    assert "data" in {p for _, p in app_pages()}, "no Data page in app.py"
    src = tmp_path / "uploaded.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "event_type", "timestamp"])
        for i in range(200):
            w.writerow([f"u{i % 13}", f"i{i % 17}", "view", f"2025-04-{1 + i % 28:02d}T09:00:00"])
        w.writerow(["u1", "i1", "view", "not a date"])  # one bad row: reported, skipped
    pg = page.page
    goto(page, "data")
    upload = pg.locator('[data-testid="stFileUploader"]').first.locator('input[type="file"]')
    act(pg, lambda: upload.set_input_files(str(src)))
    name = pg.get_by_label("Dataset name", exact=True)
    assert name.input_value() == "uploaded"  # suggested from the file's name
    act(pg, lambda: pg.get_by_role("button", name="Check the file (dry run)").click())
    text = main_text(pg)
    assert "Validation report" in text
    assert "200" in text  # the rows that pass
    assert not (server.data_dir / "uploaded.duckdb").exists()  # a dry run writes nothing
    act(pg, lambda: pg.get_by_role("button", name="Import", exact=True).click())
    settle(pg)
    assert (server.data_dir / "uploaded.duckdb").exists()
    assert "uploaded" in (pg.locator('[data-testid="stMain"]').text_content() or "")
    assert "200 events" in main_text(pg)
    assert_clean(page, "data_imported")
