"""The Rerank Studio's logic (ltrec.app.studio) on a small demo shop with a trained run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltrec.app import studio as logic
from ltrec.app.pipeline import RecSession
from ltrec.rerank import Candidates, parse_config
from ltrec.rerank.strategies import BaseOrderConfig, TailBoostConfig, XQuADConfig

K = 10


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory):
    """(data dir, run id, session, catalogue, users table) of a demo shop with an EASE run."""
    from ltrec.models.train import train
    from ltrec.store import connect, cursor
    from ltrec.synth.demo import DemoConfig, build_demo

    root = tmp_path_factory.mktemp("studio_shop")
    build_demo(DemoConfig(users=300, items=200, events=20000, seed=1), data_dir=root)
    res = train("demo", "ease", n_boot=0, data_dir=root)
    rc = RecSession.open("demo", res.run_id, data_dir=root)
    con = connect("demo", root)
    try:
        cur = cursor(con)
        users = cur.execute(
            "SELECT u.*, d.interactions, d.tail_share, d.tail_affinity, d.activity_level "
            "FROM users u JOIN user_derived d USING (user_id)"
        ).df()
        cur.close()
    finally:
        con.close()
    conv = pd.Series(np.linspace(0.01, 0.2, rc.data.n_items), index=rc.data.item_ids)
    cat = logic.Catalogue.build(rc.data, rc.context, conv)
    return root, res.run_id, rc, cat, users


def _pool(rc, user: int, m: int = 200) -> Candidates:
    items, scores = rc.model.recommend(np.array([user]), m, exclude_seen=True)
    return Candidates.from_row(items[0], scores[0])


def _user_with_history(rc, min_items: int = 5) -> int:
    counts = np.diff(rc.data.matrix.indptr)
    return int(np.flatnonzero(counts >= min_items)[0])


# ------------------------------------------------------------------------------ catalogue


def test_catalogue_badges_ranks_and_conversion(shop) -> None:
    _, _, rc, cat, _ = shop
    ctx = rc.context
    # the badges are the context's buckets, the same as every other page (no display-only mid)
    assert set(np.unique(cat.badge)) == {"head", "tail"}
    assert np.array_equal(cat.badge == "tail", ctx.tail)
    top = int(np.argmax(ctx.popularity))  # the first of the most popular: rank 1
    assert cat.pop_rank[top] == 1
    assert sorted(cat.pop_rank.tolist()) == list(range(1, rc.data.n_items + 1))
    assert np.all(np.diff(cat.pop_rank[np.argsort(-ctx.popularity, kind="stable")]) > 0)
    assert cat.conversion[3] == pytest.approx(np.linspace(0.01, 0.2, rc.data.n_items)[3])
    f = cat.frame(np.array([top, 0]))
    assert list(f.columns) == [
        "item_id", "title", "category", "price", "bucket", "pop_rank", "conversion"
    ]  # fmt: skip
    assert f["item_id"].tolist() == [rc.data.item_ids[top], rc.data.item_ids[0]]


# ------------------------------------------------------------------------------ users


def test_search_users_exact_first_case_insensitive() -> None:
    ids = ["U10", "u1", "U100", "X1", "U2"]
    assert logic.search_users(ids, "U1") == ["u1", "U10", "U100"]
    assert logic.search_users(ids, "u10", limit=1) == ["U10"]
    assert logic.search_users(ids, "  ") == []
    assert logic.search_users(ids, "zz") == []


def test_random_user_is_seeded_and_respects_the_segment(shop) -> None:
    _, _, rc, _, users = shop
    col = "activity_level"
    value = "heavy"
    a = logic.random_user(users, col, value, seed=3, known=rc.data.user_ids)
    assert a == logic.random_user(users, col, value, seed=3, known=rc.data.user_ids)
    assert users.loc[users["user_id"] == a, col].item() == value
    drawn = {logic.random_user(users, col, value, seed=s) for s in range(20)}
    assert len(drawn) > 1
    assert logic.random_user(users, col, "no such value", seed=0) is None
    assert logic.segment_values(users, col) == sorted(users[col].dropna().unique().tolist())


def test_niche_users_have_the_highest_tail_share(shop) -> None:
    _, _, _, _, users = shop
    niche = logic.niche_users(users, min_interactions=5, top=10)
    assert len(niche) == 10
    assert (niche["interactions"] >= 5).all()
    assert niche["tail_share"].is_monotonic_decreasing
    eligible = users[users["interactions"] >= 5]["tail_share"]
    assert niche["tail_share"].iloc[0] == pytest.approx(eligible.max())
    assert logic.niche_users(users[["user_id"]]).empty


def test_history_frame_is_the_recent_training_history(shop) -> None:
    _, _, rc, cat, _ = shop
    u = _user_with_history(rc)
    h = logic.history_frame(rc.data, cat, u, n=4)
    expected = rc.data.history(u)[:4]
    assert h["item_id"].tolist() == rc.data.item_ids[expected].tolist()
    assert (h["weight"] > 0).all()
    assert h["last_seen"].notna().all()
    assert (h["last_seen"] < rc.data.split.cutoff).all()
    assert h["last_seen"].is_monotonic_decreasing


def test_history_frame_from_the_store_equals_the_split_frame(shop) -> None:
    """With a cursor the last-seen times come from one query (the split's training frame, GBs
    at 10M events, stays unread) and equal those of the loaded training frame."""
    from ltrec.models.registry import load_run
    from ltrec.models.train import load_run_data
    from ltrec.store import connect, cursor

    root, run_id, rc, cat, _ = shop
    data = load_run_data("demo", load_run("demo", run_id, root), data_dir=root)
    u = _user_with_history(rc, min_items=8)
    con = connect("demo", root)
    try:
        from_store = logic.history_frame(data, cat, u, n=8, cur=cursor(con))
    finally:
        con.close()
    assert data.split._train is None  # the store answered: nothing loaded
    pd.testing.assert_frame_equal(from_store, logic.history_frame(data, cat, u, n=8))
    assert len(from_store) == 8


# ------------------------------------------------------------------------------ lists


def test_compare_lists_base_and_settings(shop) -> None:
    _, _, rc, cat, _ = shop
    u = _user_with_history(rc)
    pool = _pool(rc, u)
    items, scores = rc.pools(np.array([u]))
    assert np.array_equal(items[0][: len(pool)], pool.items)  # the pipeline's pool is the model's
    settings = [BaseOrderConfig(), TailBoostConfig(beta=0.0), TailBoostConfig(beta=2.0)]
    out = logic.compare_lists(rc, items, scores, settings, u, K)
    assert np.array_equal(out.base.items, pool.items[:K])
    assert np.array_equal(out.lists[0].items, out.base.items)
    assert np.array_equal(out.lists[1].items, out.base.items)  # strength 0 = base order
    assert out.stats[0].overlap == 1.0
    boosted = out.stats[2]
    assert boosted.tail_share >= out.stats[0].tail_share
    assert boosted.tail_share == pytest.approx(rc.context.tail[out.lists[2].items].mean())
    overlap = len(np.intersect1d(out.lists[2].items, out.base.items)) / K
    assert boosted.overlap == pytest.approx(overlap)
    # a smaller pool for one setting only sees its own first candidates
    small = logic.compare_lists(rc, items, scores, [TailBoostConfig(beta=5.0, pool=K)], u, K)
    assert set(small.lists[0].items) == set(pool.items[:K])

    frame = logic.list_frame(out.lists[2], cat, K, why=["w"] * len(out.lists[2]))
    assert frame["rank"].tolist() == list(range(1, len(frame) + 1))
    new = out.lists[2].base_ranks > K
    assert frame["new"].tolist() == new.tolist()
    assert all(c.startswith("new (was ") for c in frame.loc[new, "change"])
    assert frame["why"].tolist() == ["w"] * len(frame)
    assert frame["bucket"].tolist() == cat.badge[out.lists[2].items].tolist()


def test_change_labels() -> None:
    from ltrec.rerank.base import Ranked

    r = Ranked(
        items=np.arange(5),
        base_scores=np.zeros(5),
        scores=np.zeros(5),
        base_ranks=np.array([1, 4, 2, 27, 0]),
        reasons=("",) * 5,
    )
    assert logic.change_label(r, k=10) == ["=", "▲ 2", "▼ 1", "new (was 27)", "new (pinned)"]


# ------------------------------------------------------------------------------ aggregate


def test_sample_and_aggregate_metrics(shop) -> None:
    _, _, rc, _, _ = shop
    ctx = rc.context
    s1 = logic.sample_users(rc, 40, seed=5, m=100)
    s2 = logic.sample_users(rc, 40, seed=5, m=100)
    assert len(s1) == min(40, len(s1)) and np.array_equal(s1.users, s2.users)
    assert s1.items.shape == (len(s1), 100)
    assert all(t.size > 0 for t in s1.test)
    base = logic.evaluate_setting(rc, BaseOrderConfig(), s1, K, n_boot=50)
    boost = logic.evaluate_setting(rc, TailBoostConfig(beta=1.0), s1, K, n_boot=50)
    assert base["overlap"].mean == pytest.approx(1.0)
    assert boost["aplt"].mean > base["aplt"].mean
    lo, hi = boost["aplt"].low, boost["aplt"].high
    assert lo <= boost["aplt"].mean <= hi
    deltas = logic.compare_settings({"base": base, "boost": boost}, "base", n_boot=50)
    row = deltas[(deltas["setting"] == "boost") & (deltas["metric"] == f"aplt@{K}")].iloc[0]
    assert row["delta"] == pytest.approx(boost["aplt"].mean - base["aplt"].mean)
    # the sweep and solver run on the same sample's pools
    from ltrec.rerank.sweep import min_strength_for_tail_share

    ans = min_strength_for_tail_share(XQuADConfig(lam=0.1), 0.0, s1.pools(), ctx, K)
    assert ans.reachable and ans.strength == 0.0


# ------------------------------------------------------------------------------ export


def test_all_lists_match_ltrec_export(shop, tmp_path: Path) -> None:
    """The Studio's export equals `ltrec export --rerank` (rows and CSV bytes)."""
    from ltrec.analytics.export import to_csv
    from ltrec.app.auth import LOCAL
    from ltrec.app.services import export_lists

    root, run_id, rc, _, _ = shop
    cfg = parse_config({"strategy": "tail_boost", "beta": 0.5})
    out = tmp_path / "lists.csv"
    export_lists(LOCAL, "demo", run_id, out, cfg, k=K, data_dir=root)
    cli = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    mine = logic.all_lists(rc, cfg, K)
    assert to_csv(mine) == out.read_bytes()  # the same file, byte for byte
    # other batch sizes: the same lists (scores within float32 rounding: a model may sum a
    # small batch's scores in another order)
    chunked = logic.all_lists(rc, cfg, K, batch_size=97)
    assert chunked["user_id"].tolist() == cli["user_id"].tolist()
    assert chunked["item_id"].tolist() == cli["item_id"].tolist()
    np.testing.assert_allclose(chunked["final_score"], cli["final_score"], rtol=1e-6)
    # a sample of users: the same rows as the whole export
    some = np.array([0, 7, 42])
    part = logic.all_lists(rc, cfg, K, users=some)
    ids = set(rc.data.user_ids[some])
    want = mine[mine["user_id"].isin(ids)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, want)


def test_default_user_is_the_most_niche_well_documented_user():
    users = pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "d"],
            "tail_share": [0.9, 0.6, 0.8, 0.1],
            "interactions": [4, 30, 12, 50],  # "a" has too little history to count as a taste
        }
    )
    assert logic.default_user(users, known=["a", "b", "c", "d"]) == "c"
    assert logic.default_user(users, known=["a", "b", "d"]) == "b"
    plain = users.drop(columns=["tail_share"])  # no derived shares: a seeded random known user
    assert logic.default_user(plain, known=["d"]) == "d"
