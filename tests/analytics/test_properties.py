"""Hypothesis properties of the definitions: Gini bounds, Lorenz shape, bucket partition,
suppression that never leaks through totals, CSV escaping."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrec import definitions as D
from ltrec.analytics.concentration import lorenz_points
from ltrec.analytics.export import FORMULA_START, escape_cell, to_csv
from ltrec.analytics.popularity import BucketConfig, popularity_buckets
from ltrec.analytics.segments import ALL, segment_funnel
from tests.analytics.conftest import memory_store, tiny_events

counts = st.lists(st.integers(0, 1000), min_size=1, max_size=200)
DB = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(deadline=None)
@given(counts)
def test_lorenz_monotone_convex(x: list[int]) -> None:
    pop, share = lorenz_points(x)
    assert share[0] == 0 and abs(share[-1] - 1) < 1e-12 and pop[-1] == 1
    d = np.diff(share)
    assert (d >= -1e-12).all()  # monotone
    assert (np.diff(d) >= -1e-12).all()  # convex: increments never shrink
    assert (share <= pop + 1e-12).all()  # below the line of equality


pairs = st.lists(
    st.tuples(
        st.integers(0, 11), st.integers(0, 14), st.sampled_from(["view", "cart", "purchase"])
    ),
    min_size=0,
    max_size=60,
)
cuts = st.sampled_from([(0.8,), (0.5, 0.8), (0.2, 0.5, 0.9), (0.99,)])


@DB
@given(pairs, cuts)
def test_buckets_partition_the_catalogue(rows, cut) -> None:
    items = pd.DataFrame({"item_id": [f"i{j:02d}" for j in range(15)]})
    ev = tiny_events([(f"u{u}", f"i{i:02d}", e) for u, i, e in rows])
    b = popularity_buckets(memory_store(ev, items), cfg=BucketConfig(cuts=cut)).frame
    assert sorted(b["item_id"]) == sorted(items["item_id"])  # every item exactly once
    assert b["bucket"].notna().all()
    assert (b.loc[b["popularity"] == 0, "bucket"] == "tail").all()
    idx = b.sort_values("rank")["bucket_idx"].to_numpy()
    assert (np.diff(idx) >= 0).all()  # buckets are contiguous rank ranges
    total = b["popularity"].sum()
    head = b[b["bucket_idx"] == 0].sort_values("rank")
    if total > 0:  # the head is the smallest top set reaching the first cut
        assert head["popularity"].sum() >= cut[0] * total - 1e-9
        assert head["popularity"].iloc[:-1].sum() < cut[0] * total - 1e-9 or len(head) == 1
    # the database twin is the one definition: same buckets and ranks as ltrec.definitions
    by_id = b.sort_values("item_id")
    pop = by_id["popularity"].to_numpy(dtype=float)
    assert by_id["bucket_idx"].tolist() == D.popularity_buckets(pop, cut).tolist()
    assert by_id["rank"].tolist() == D.popularity_rank(pop).tolist()


seg_rows = st.lists(
    st.tuples(st.integers(0, 29), st.integers(0, 7), st.sampled_from(["view", "cart", "purchase"])),
    min_size=1,
    max_size=120,
)


@DB
@given(seg_rows, st.integers(1, 6), st.integers(1, 4))
def test_suppressed_cells_never_leak_through_totals(rows, k, levels) -> None:
    users = pd.DataFrame(
        {"user_id": [f"u{u}" for u in range(30)], "tier": [f"t{u % levels}" for u in range(30)]}
    )
    ev = tiny_events([(f"u{u}", f"i{i}", e) for u, i, e in rows])
    f = segment_funnel(memory_store(ev, None, users), "tier", k=k).frame
    inner = f[(f["segment"] != ALL) & (f["bucket"] != "all")]
    shown = inner[~inner["suppressed"]]
    assert inner.loc[inner["suppressed"], ["users", "views", "purchases"]].isna().all().all()
    assert (shown["users"] >= k).all()
    for col in ("views", "carts", "purchases"):
        for seg, grp in shown.groupby("segment"):
            margin = f[(f["segment"] == seg) & (f["bucket"] == "all")].iloc[0]
            if not margin["suppressed"]:  # total minus the visible cells is exactly 0
                assert margin[col] == grp[col].sum()
        for bkt, grp in shown.groupby("bucket"):
            margin = f[(f["segment"] == ALL) & (f["bucket"] == bkt)].iloc[0]
            if not margin["suppressed"]:
                assert margin[col] == grp[col].sum()
        grand = f[(f["segment"] == ALL) & (f["bucket"] == "all")].iloc[0]
        if not grand["suppressed"]:
            assert grand[col] == shown[col].sum()


printable = st.characters(blacklist_categories=("Cs", "Cc"))
cell_text = st.one_of(
    st.text(printable, max_size=12),
    st.tuples(st.sampled_from(["=", "+", "-", "@"]), st.text(printable, max_size=8)).map("".join),
)


@settings(deadline=None)
@given(st.lists(cell_text, min_size=1, max_size=20))
def test_csv_escapes_formulas(texts: list[str]) -> None:
    df = pd.DataFrame({"name": texts, "n": range(len(texts))})
    back = pd.read_csv(io.BytesIO(to_csv(df)), keep_default_na=False, dtype=str)
    for orig, cell in zip(texts, back["name"], strict=True):
        if orig.startswith(FORMULA_START):
            assert cell.startswith("'")
    assert escape_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and escape_cell(-3) == -3
