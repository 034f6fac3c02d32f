"""Real-browser fixtures (see :mod:`tests.e2e.harness`): one server and one Chromium per session.

Screenshots of every page land in ``test-artifacts/screenshots/`` (git-ignored; CI keeps them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.harness import Server, Shared, Watched, close_shared, shared, watch


@pytest.fixture(scope="session")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    # Under xdist every worker has its own base temp dir inside one per-run folder: the data is
    # built once there and copied (each worker runs its own server over its copy).
    workers = os.environ.get("PYTEST_XDIST_WORKER")
    cache = tmp_path_factory.getbasetemp().parent / "e2e-data" if workers else None
    try:
        return shared(tmp_path_factory.mktemp("e2e"), cache)
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def server(suite: Shared) -> Server:
    return suite.server


@pytest.fixture(scope="session")
def browser(suite: Shared) -> object:
    return suite.browser


@pytest.fixture
def new_page(browser, server) -> Iterator:
    """A factory of watched pages, each in its own browser context (its own session)."""
    contexts = []

    def make(**kw) -> Watched:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, **kw)
        contexts.append(ctx)
        return watch(ctx, server.url)

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def page(new_page) -> Watched:
    return new_page()


def pytest_collection_modifyitems(session, config, items) -> None:
    """The ten-user run goes last, over a warm server: its memory growth is then the users'."""
    items.sort(key=lambda item: "test_concurrency" in item.nodeid)


def pytest_sessionfinish(session, exitstatus) -> None:
    close_shared()
