"""The evaluation split computed on an engine (``ltrec.evaluation.engine_split``) is the local
split (``ltrec.evaluation.temporal_split``): checked on DuckDB through Ibis (fast, no Spark; the
Spark case is in test_spark_resident.py).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltrec.evaluation import SplitConfig
from ltrec.evaluation import engine_split as es
from ltrec.evaluation.split import share_cutoff_index
from ltrec.store import external


@settings(max_examples=15, deadline=None)
@given(
    seconds=st.lists(st.integers(0, 50), min_size=1, max_size=120),
    micros=st.lists(st.sampled_from([0, 250_000, 999_999]), min_size=120, max_size=120),
    share=st.floats(0.01, 0.9),
)
def test_the_cutoff_is_the_local_cutoffs_event_however_the_buckets_fall(
    seconds: list[int], micros: list[int], share: float
) -> None:
    ts = pd.to_datetime(np.array(seconds) * 1_000_000 + np.array(micros[: len(seconds)]), unit="us")
    ts = ts + pd.Timedelta(days=20_000)
    n = len(ts)
    at = share_cutoff_index(n, share)
    table = ibis.memtable(pd.DataFrame({"ts": ts}))
    want = pd.Series(ts).sort_values(ignore_index=True).iloc[at]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(es, "_NTH_FETCH", 3)  # refine the buckets down to a few events
        mp.setattr(es, "_NTH_BUCKETS", 4)
        assert es._nth_time(table, at, n) == want
    assert es._nth_time(table, at, n) == want  # fetched at once


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ltrec.store import connect
    from ltrec.synth.demo import DemoConfig, build_demo

    root = tmp_path_factory.mktemp("engine-split")
    build_demo(DemoConfig(users=150, items=60, events=6_000, seed=3), data_dir=root)
    (root / "sources").mkdir()
    src = connect("demo", root)
    out = duckdb.connect(str(root / "sources" / "shop.duckdb"))
    try:
        for t in ("events", "items", "users"):
            frame = src.execute(f"SELECT * FROM {t}").df()  # noqa: S608, F841
            out.execute(f"CREATE TABLE {t} AS SELECT * FROM frame")  # noqa: S608
    finally:
        src.close()
        out.close()
    (root / "xshop.toml").write_text(
        'backend = "duckdb"\n[connection]\ndatabase = "sources/shop.duckdb"\nread_only = true\n'
        '[tables]\nevents = "events"\nitems = "items"\nusers = "users"\n'
    )
    return root


CONFIGS = [
    None,
    SplitConfig(target_events=("view", "cart", "purchase"), keep_seen=True, test_share=0.3),
    SplitConfig(target_events=("purchase",), min_train_events=5, test_share=0.4),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "keep-seen", "purchases"])
def test_the_engine_split_is_the_local_split(shop: Path, config: SplitConfig | None) -> None:
    from ltrec.models.train import load_data

    local = load_data("demo", config, data_dir=shop).split
    got = es.engine_split(external.open_external("xshop", shop), config)
    assert got.summary() == local.summary()
    test = got.test.to_pyarrow().to_pandas().sort_values(["user_id", "item_id"], ignore_index=True)
    pd.testing.assert_frame_equal(test, local.test[["user_id", "item_id"]])
    cold = sorted(got.cold.to_pyarrow()["user_id"].to_pylist())
    assert cold == local.cold_users


def test_a_split_the_engine_cannot_make_is_refused(shop: Path) -> None:
    from ltrec.errors import BadInputError

    source = external.open_external("xshop", shop)
    with pytest.raises(BadInputError, match="last-N split is not available"):
        es.engine_split(source, SplitConfig(last_n=1))
    with pytest.raises(BadInputError, match="no events before the cut-off 2000-01-01"):
        es.engine_split(source, SplitConfig(cutoff="2000-01-01"))
