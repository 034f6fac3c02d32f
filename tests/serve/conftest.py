"""Fixtures of the API tests (helpers in :mod:`.harness`)."""

from __future__ import annotations

import pytest

from .harness import Shop, build_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return build_shop(tmp_path_factory.mktemp("api-shop"))
