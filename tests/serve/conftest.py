"""Fixtures of the API tests (helpers in :mod:`.harness`)."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from .harness import Shop, build_shop


@pytest.fixture(scope="session")
def _shop_template(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """The shop built once per worker; each module gets its own copy (tests write events,
    revoke keys and promote runs)."""
    return build_shop(tmp_path_factory.mktemp("api-shop-template"))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, _shop_template: Shop) -> Shop:
    root = tmp_path_factory.mktemp("api-shop")
    shutil.copytree(_shop_template.data_dir, root, dirs_exist_ok=True)
    return dataclasses.replace(_shop_template, data_dir=root)
