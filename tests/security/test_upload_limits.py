"""Hostile uploads through the Data page of a real server (issue 16 §4): the refusal is shown on
the page, the store is unchanged, and another user's session keeps working meanwhile.

The server here runs with ``LTREC_IMPORT_MAX_MEMORY_MB=256`` (the lowest allowed), well below what
checking a 1M-row file needs, so the Data page's check of that plain file ends at the worker's
memory limit: the path a real bomb takes once it is past the reader's guards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ltrec.cli import main
from ltrec.store.importing.worker import memory_error
from tests.e2e.harness import Server, act, assert_clean, goto, main_text, start_server, watch
from tests.security import hostile_files as hf
from tests.security.hostile_files import health, snapshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("limited")
    data = root / "data"
    data.mkdir()
    good = hf.good_csv(root / "good.csv", rows=300)
    assert main(["--data-dir", str(data), "import", "shop", "--events", str(good)]) == 0
    server = start_server(
        data, root / "streamlit.log", env={"LTREC_IMPORT_MAX_MEMORY_MB": "256"}
    )
    try:
        yield server
    finally:
        server.stop()


def store(data: Path) -> dict[str, str]:
    """The data directory's files, without the uploads the Data page holds for its session."""
    return {k: v for k, v in snapshot(data).items() if not k.startswith(".uploads/")}


def held(data: Path) -> list[Path]:
    return sorted((data / ".uploads").glob("upload-*"))


def remove_upload(page) -> None:
    """The user removes the file from the uploader: the page deletes its held copy."""
    pg = page.page
    act(pg, lambda: pg.locator('[data-testid="stFileChipDeleteBtn"]').first.click())


def upload(page, path: Path) -> None:
    pg = page.page
    box = pg.locator('[data-testid="stFileUploader"]').first.locator('input[type="file"]')
    act(pg, lambda: box.set_input_files(str(path)))


@pytest.fixture
def session(browser, limited) -> Iterator:
    """A factory of watched pages on the limited server, each its own user (browser context)."""
    contexts = []

    def make():
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(ctx)
        return watch(ctx, limited.url)

    yield make
    for ctx in contexts:
        ctx.close()


def test_a_gzip_bomb_upload_is_refused_on_the_page(session, limited, tmp_path):
    admin, other_user = session(), session()
    bomb = hf.gzip_bomb(tmp_path / "bomb.csv.gz", mib=64)
    before = store(limited.data_dir)
    goto(admin, "data")
    with health(limited.url) as polls:
        upload(admin, bomb)
        goto(other_user, "", "ds=shop")  # another user's page renders meanwhile
    text = main_text(admin.page)
    assert "bomb.csv.gz: inflates to more than" in text
    assert "refused as a likely decompression bomb" in text
    assert "shop" in main_text(other_user.page)
    assert polls and all(polls)
    assert store(limited.data_dir) == before
    assert len(held(limited.data_dir)) == 1  # the user's upload, held while the widget has it
    remove_upload(admin)
    assert held(limited.data_dir) == []
    assert_clean(other_user, "upload_bomb_other_user")


def test_the_worker_limit_is_reported_on_the_page(session, limited, tmp_path):
    admin, other_user = session(), session()
    # 1M rows (32 MB): its dry run needs well over 400 MB, so the 256 MB limit is always hit
    # (a 100-row file needs about 256-320 MB: it sometimes fit)
    good = hf.good_csv(tmp_path / "fine.csv", rows=1_000_000)
    before = store(limited.data_dir)
    goto(admin, "data")
    upload(admin, good)
    pg = admin.page
    with health(limited.url) as polls:
        act(pg, lambda: pg.get_by_role("button", name="Check the file (dry run)").click())
        goto(other_user, "long_tail", "ds=shop")
    text = main_text(pg).replace("\u2060", "")
    assert memory_error(256).message in text
    assert "LTREC_IMPORT_MAX_MEMORY_MB (now 256)" in text
    assert "Validation report" not in text
    assert polls and all(polls)
    assert store(limited.data_dir) == before
    remove_upload(admin)
    assert held(limited.data_dir) == []
    assert_clean(other_user, "worker_limit_other_user")
