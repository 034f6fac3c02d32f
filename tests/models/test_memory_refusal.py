"""Models that would not fit their memory budget refuse before the work (issue 19 §1): exit 2,
the message names the limit, the hint the remedy; the store and the registry are unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from ltrec.cli import main
from ltrec.models.itemknn import _BLOCK_ENTRY_BYTES, _BLOCK_ITEMS, ItemKNN, _blocks
from tests.models.conformance import conformance_data


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A demo shop of 1,200 items and 400 users: big enough to pass a 0.01 GB budget."""
    from ltrec.synth.demo import DemoConfig, build_demo

    root = tmp_path_factory.mktemp("budget_shop")
    build_demo(DemoConfig(users=400, items=1200, events=6000, seed=1), data_dir=root)
    return "demo", root


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("model", "sets", "limit", "remedy"),
    [
        (
            "itemknn",
            ["neighbours=5000", "max_memory_gb=0.01"],
            "neighbours for each of",
            "keep fewer neighbours (--set neighbours=...)",
        ),
        (
            "als",
            ["factors=1024", "max_memory_gb=0.01"],
            "above its 0.01 GB memory budget",
            "train on Spark (--engine spark)",
        ),
    ],
)
def test_over_budget_fit_refuses_with_limit_and_remedy(
    shop: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    model: str,
    sets: list[str],
    limit: str,
    remedy: str,
) -> None:
    name, root = shop
    store = root / f"{name}.duckdb"
    before = _digest(store)
    argv = ["train", name, "--model", model, "--json", "--data-dir", str(root)]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["type"] == "MemoryLimitError" and err["exit_code"] == 2
    assert limit in err["message"]
    assert remedy in err["hint"]
    assert _digest(store) == before  # the store is as it was
    assert main(["runs", name, "--json", "--data-dir", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == []  # nothing was saved


def test_ease_above_its_item_count_refuses() -> None:
    """EASE's dense Gram matrix: 2,000 items do not fit 0.01 GB (1,158 do), exit code 2."""
    import pandas as pd

    from ltrec.errors import MemoryLimitError
    from ltrec.models.data import InteractionData
    from ltrec.models.ease import EASE

    n = 2000
    ev = pd.DataFrame(
        {
            "user_id": [f"u{i % 7}" for i in range(n)],
            "item_id": [f"i{i:05d}" for i in range(n)],
            "event_type": "view",
            "ts": pd.Timestamp("2024-01-01"),
        }
    )
    data = InteractionData.from_frame(ev)
    with pytest.raises(MemoryLimitError) as err:
        EASE(max_memory_gb=0.01, max_items=None).fit(data)
    assert err.value.exit_code == 2
    assert err.value.message == (
        "EASE cannot hold 2,000 items in a 0.01 GB memory budget (it needs about 0.0 GB; "
        "at most 1,158 items fit)"
    )
    assert "set max_items" in str(err.value.hint) and "use itemknn or als" in str(err.value.hint)


def test_itemknn_blocks_fit_the_budget_and_change_nothing() -> None:
    data = conformance_data()
    x = sp.csr_matrix(data.matrix)
    n = x.shape[1]
    # A budget below any column's bound: no block holds two items that have users (an item
    # without users has an empty column and joins the block before it).
    has_users = np.diff(x.tocsc().indptr) > 0
    for a, b in _blocks(x, 1.0):
        assert has_users[a + 1 : b].sum() == 0
    assert n <= _BLOCK_ITEMS and _blocks(x, 1e12) == [(0, n)]
    cut = float(n * _BLOCK_ENTRY_BYTES * 2)  # about two full columns per block
    blocks = _blocks(x, cut)
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(a < b for a, b in blocks) and all(
        blocks[i][1] == blocks[i + 1][0] for i in range(len(blocks) - 1)
    )
    # The similarities do not depend on the blocks (a tiny budget forces one item per block).
    tiny = ItemKNN(neighbours=3, max_memory_gb=0.01)
    whole = ItemKNN(neighbours=3).fit(data).sim_.toarray()
    import ltrec.models.itemknn as knn

    saved = knn._BLOCK_ENTRY_BYTES
    try:
        knn._BLOCK_ENTRY_BYTES = 10**9  # every column "needs" a GB: one item per block
        assert np.array_equal(tiny.fit(data).sim_.toarray(), whole)
    finally:
        knn._BLOCK_ENTRY_BYTES = saved
