"""The demo shop and its three local ALS fits, shared by the Spark ALS modules.

Both modules compare a Spark fit with the seed-to-seed spread of local fits on the same shop
(1,000 users, 100,000 events): the shop and the local fits are built once per worker (the
Spark tests run on one worker) and each module works in its own copy of the data directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

PARAMS = {"factors": 16}


@pytest.fixture(scope="session")
def _als_shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from ltrec.models.train import train
    from ltrec.synth.demo import DemoConfig, build_demo

    root = tmp_path_factory.mktemp("als-shop")
    build_demo(DemoConfig(users=1000, items=300, events=100_000, seed=1), data_dir=root)
    local = [
        train("demo", "als", {**PARAMS, "seed": s}, n_boot=20, data_dir=root) for s in (0, 1, 2)
    ]
    return {"root": root, "local": local}


def als_shop_copy(template: dict[str, Any], root: Path) -> dict[str, Any]:
    """The shared shop and local runs copied into ``root`` (a module's own data directory)."""
    shutil.copytree(template["root"], root, dirs_exist_ok=True)
    return {"root": root, "local": template["local"]}
