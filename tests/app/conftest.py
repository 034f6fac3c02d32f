"""AppTest fixtures: a small shop in the temporary data dir, caches cleared between tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st

from tests.analytics.conftest import synthetic_shop, write_store

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture(autouse=True)
def _clear_caches():
    from ltrec.ui.bytecache import clear_all  # the pages' byte-bounded caches

    st.cache_data.clear()
    st.cache_resource.clear()
    clear_all()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
    clear_all()


def _build_demo(data_dir: Path) -> None:
    try:
        from ltrec.synth.demo import DemoConfig, build_demo
    except ImportError:  # the demo builder has not landed: a small synthetic shop instead
        ev, it, us = synthetic_shop(users=150, items=80, sessions=1500, seed=3)
        write_store("demo", data_dir, ev, it, us)
        return
    build_demo(DemoConfig(users=300, items=200, events=20000, seed=1), data_dir=data_dir)


@pytest.fixture(scope="session")
def _demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo_shop")
    _build_demo(root)
    return root / "demo.duckdb"


@pytest.fixture
def demo(data_dir: Path, _demo_file: Path) -> str:
    """The demo shop, copied into this test's data dir once built per session."""
    (data_dir / "demo.duckdb").write_bytes(_demo_file.read_bytes())
    return "demo"
