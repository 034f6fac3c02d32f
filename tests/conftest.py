"""Shared fixtures. Every test gets a temporary LTREC_DATA_DIR: nothing touches ./data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
COMPLETEJOURNEY = SHARED / "datasets" / "completejourney"


@pytest.fixture(autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty data directory, exported as LTREC_DATA_DIR for the test."""
    path = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("LTREC_DATA_DIR", str(path))
    return path
