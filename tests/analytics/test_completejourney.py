"""Real CC0 data (84.51° Complete Journey sample): ltrec's bucket table and segment funnels
against an independent pandas computation from the raw files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltrec.analytics.backend import open_store
from ltrec.analytics.longtail import bucket_table
from ltrec.analytics.popularity import BucketConfig
from ltrec.analytics.segments import ALL, segment_funnel
from ltrec.analytics.stats import dataset_stats
from ltrec.definitions import gini
from tests.conftest import COMPLETEJOURNEY

pytestmark = pytest.mark.usefixtures("completejourney")  # missing data fails, never skips
K = 10


@pytest.fixture(scope="module")
def raw() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    t = pd.read_parquet(COMPLETEJOURNEY / "transactions_sample.parquet")
    t = t[t["quantity"] > 0]  # the import rule: non-positive quantities are not purchases
    p = pd.read_csv(COMPLETEJOURNEY / "products_in_transactions_sample.csv", dtype=str)
    d = pd.read_csv(COMPLETEJOURNEY / "demographics.csv", dtype=str)
    return t, p, d


@pytest.fixture(scope="module")
def cj(tmp_path_factory: pytest.TempPathFactory):
    from ltrec.store.importing import import_dataset

    root = tmp_path_factory.mktemp("cj")
    import_dataset(
        "cj",
        events=COMPLETEJOURNEY / "transactions_sample.parquet",
        items=COMPLETEJOURNEY / "products_in_transactions_sample.csv",
        users=COMPLETEJOURNEY / "demographics.csv",
        preset="completejourney",
        max_reject_share=0.05,
        data_dir=root,
    )
    return open_store("cj", root), root


def _pandas_buckets(t: pd.DataFrame, p: pd.DataFrame, cuts: tuple[float, ...]) -> pd.Series:
    catalogue = sorted(set(p["product_id"]) | set(t["product_id"]))
    pop = t.groupby("product_id")["household_id"].nunique().reindex(catalogue, fill_value=0)
    df = pd.DataFrame({"item_id": pop.index, "pop": pop.to_numpy()})
    df = df.sort_values(["pop", "item_id"], ascending=[False, True])
    prev = df["pop"].cumsum() - df["pop"]
    total = df["pop"].sum()
    df["bucket"] = sum((prev >= c * total - 1e-9 * total).astype(int) for c in cuts)
    return df.set_index("item_id")["bucket"]


@pytest.mark.parametrize("cuts", [(0.8,), (0.5, 0.8)])
def test_bucket_table_matches_pandas(cj, raw, cuts) -> None:
    store, _ = cj
    t, p, _ = raw
    bucket = _pandas_buckets(t, p, cuts)
    ours = bucket_table(store, cfg=BucketConfig(cuts=cuts)).frame
    items = bucket.value_counts().sort_index()
    buys = t["product_id"].map(bucket).value_counts().sort_index()
    assert ours["items"].tolist() == items.tolist()
    np.testing.assert_allclose(ours["item_share"], items / items.sum())
    assert ours["purchase_events"].tolist() == buys.tolist()
    # a purchase log does not measure exposure: NaN, never a made-up share
    assert ours["exposure_share"].isna().all() and ours["exposure_events"].isna().all()
    pairs = t.drop_duplicates(["household_id", "product_id"])
    assert (
        ours["purchases"].tolist()
        == pairs["product_id"].map(bucket).value_counts().sort_index().tolist()
    )


def test_segment_funnel_matches_pandas(cj, raw) -> None:
    store, _ = cj
    t, p, d = raw
    bucket = _pandas_buckets(t, p, (0.8,)).map({0: "head", 1: "tail"})
    pairs = t.drop_duplicates(["household_id", "product_id"]).copy()
    pairs["bucket"] = pairs["product_id"].map(bucket)
    seg = d.set_index("household_id")["income"]
    pairs["segment"] = pairs["household_id"].map(seg).fillna("(unknown)")
    cells = pairs.groupby(["segment", "bucket"]).agg(
        users=("household_id", "nunique"), purchases=("product_id", "size")
    )
    ours = segment_funnel(store, "income", k=K)
    inner = ours.cells().set_index(["segment", "bucket"])
    assert set(inner.index) == set(cells.index)
    for key, row in cells.iterrows():
        got = inner.loc[key]
        if row["users"] < K:
            assert got["suppressed"] and np.isnan(got["users"])
        else:
            assert not got["suppressed"]
            assert (got["users"], got["purchases"]) == (row["users"], row["purchases"])
    shown = cells[cells["users"] >= K]
    grand = ours.frame[(ours.frame["segment"] == ALL) & (ours.frame["bucket"] == "all")].iloc[0]
    assert grand["purchases"] == shown["purchases"].sum()
    assert not ours.has_views and np.isnan(inner["view_purchase"]).all()


def test_stats_on_real_data(cj) -> None:
    _, root = cj
    st = dataset_stats("cj", root)
    assert st.exposure_event is None and st.gini_exposure is None
    assert st.events["view"] == 0
    assert st.profile.event_counts == {"purchase": st.events["purchase"]}
    assert st.items == 20_898 and st.users == 2_373
    p = st.profile
    assert p.funnel_stages == ["purchase"] and p.rates == [] and p.exposure_note
    assert p.has_sessions and p.has_prices and p.has_categories and p.has_brands
    assert {"income", "age"} <= set(p.segment_columns) and p.has_repeat_purchases


def test_purchase_concentration_on_real_data(cj, raw) -> None:
    """Gini of distinct buyers per item over the whole catalogue, against pandas."""
    _, root = cj
    t, p, _ = raw
    catalogue = sorted(set(p["product_id"]) | set(t["product_id"]))
    buyers = t.groupby("product_id")["household_id"].nunique().reindex(catalogue, fill_value=0)
    st = dataset_stats("cj", root)
    assert 0.5 < st.gini_buyers < 0.65
    assert st.gini_buyers == pytest.approx(gini(buyers.to_numpy()))
    # repeat purchases: the same household and product at more than one time
    times = t.groupby(["household_id", "product_id"])["transaction_timestamp"].nunique()
    assert st.profile.repeat_purchase_share == pytest.approx(float((times > 1).mean()))
