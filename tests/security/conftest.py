"""The browser cases share the e2e suite's one server and one Chromium (a process-wide
singleton in :mod:`tests.e2e.harness`), whichever folder starts them first."""

from tests.e2e.conftest import (  # noqa: F401 - fixtures and the hook that stops the server
    browser,
    new_page,
    page,
    pytest_sessionfinish,
    server,
    suite,
)
