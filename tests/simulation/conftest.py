"""Fixtures for the simulator: a tiny hand-made world and a small demo shop (built once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltrec.models.data import InteractionData
from ltrec.simulation.users import TruthUserModel
from ltrec.synth.truth import GroundTruth, PreferenceModel


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="session")
def world() -> tuple[InteractionData, TruthUserModel]:
    """150 users, 80 items, Zipf-skewed starting interactions; tastes unrelated to popularity,
    so every item is worth showing to someone (what a feedback loop can hide)."""
    rng = np.random.default_rng(7)
    n_users, n_items, dim = 150, 80, 8
    users = [f"u{j:03d}" for j in range(n_users)]
    items = [f"i{j:03d}" for j in range(n_items)]
    p = 1.0 / np.arange(1, n_items + 1) ** 1.2
    p /= p.sum()
    rows = []
    for u in users:
        for i in rng.choice(n_items, size=4, replace=False, p=p):
            rows.append((u, items[i], "view", pd.Timestamp("2024-01-01")))
    ev = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts"])
    cat = pd.DataFrame({"item_id": items, "price": np.linspace(5, 50, n_items)})
    data = InteractionData.from_frame(ev, cat)
    truth = GroundTruth(
        user_ids=np.array(users),
        item_ids=np.array(items),
        taste=_unit(rng.normal(size=(n_users, dim))),
        factor=_unit(rng.normal(size=(n_items, dim))),
        appeal=np.zeros(n_items, dtype=np.float32),
        click_bias=np.zeros(n_users, dtype=np.float32),
        cart_bias=np.full(n_users, 3.0, dtype=np.float32),
        buy_bias=np.full(n_users, 2.0, dtype=np.float32),
        model=PreferenceModel(click_base=-0.5),
    )
    return data, TruthUserModel.for_ids(truth, data.user_ids, data.item_ids)


@pytest.fixture(scope="session")
def _demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ltrec.synth.demo import DemoConfig, build_demo

    root = tmp_path_factory.mktemp("sim_demo")
    build_demo(DemoConfig(users=300, items=200, events=20000, seed=1), data_dir=root)
    return root / "demo.duckdb"


@pytest.fixture
def demo(data_dir: Path, _demo_file: Path) -> str:
    """A small demo shop (with ground truth) copied into this test's data dir."""
    (data_dir / "demo.duckdb").write_bytes(_demo_file.read_bytes())
    return "demo"


@pytest.fixture
def plain_shop(data_dir: Path) -> str:
    """A small shop without ground truth (imported-like), impressions included."""
    from tests.analytics.conftest import synthetic_shop, write_store

    ev, it, us = synthetic_shop(users=120, items=60, sessions=2500, seed=5)
    write_store("shop", data_dir, ev, it, us)
    return "shop"
