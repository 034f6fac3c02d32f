"""The one pipeline (ltrec.app.pipeline.RecSession): every entry point gives the same lists and
reasons, reasons read right on a hand-made shop, export columns, live events."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltrec.app import studio as logic
from ltrec.app.pipeline import EXPORT_COLUMNS, RecSession, history_text, reasons_text
from ltrec.cli import main
from ltrec.errors import BadInputError
from ltrec.rerank import BaseOrderConfig, parse_config

K = 10
SETTINGS = [
    None,
    {"strategy": "tail_boost", "beta": 0.5},
    {"strategy": "xquad", "lambda": 0.7},
    {"strategy": "tail_boost", "beta": 2.0, "pool": 20, "tail_pool": 30},  # + tail candidates
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(data dir, run id) of a small demo shop with an item-kNN run."""
    from ltrec.models.train import train
    from ltrec.synth.demo import DemoConfig, build_demo

    root = tmp_path_factory.mktemp("pipeline_shop")
    build_demo(DemoConfig(users=300, items=200, events=20000, seed=3), data_dir=root)
    res = train("demo", "itemknn", n_boot=0, data_dir=root)
    return root, res.run_id


def _cli_json(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> dict:
    code = main([*argv, "--json", "--data-dir", str(root)])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def _users(session: RecSession) -> list[str]:
    """Four users with training history, one in the vocabulary without any, one unknown."""
    data = session.data
    counts = np.diff(data.matrix.indptr)
    warm = np.flatnonzero(counts >= 3)
    picked = [str(data.user_ids[u]) for u in warm[[0, 5, 17, 60]]]
    cold = np.flatnonzero(counts == 0)
    if cold.size:
        picked.append(str(data.user_ids[cold[0]]))
    return [*picked, "nobody-at-all"]


@pytest.mark.parametrize("setting", SETTINGS, ids=["base", "tail_boost", "xquad", "tail_pool"])
def test_every_entry_point_gives_the_same_lists(
    shop: tuple[Path, str], setting: dict | None, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    from ltrec.simulation.config import SimulationConfig, parse_policy
    from ltrec.simulation.engine import _PolicyState, rerank_context

    root, run_id = shop
    # As the Studio does: open the run, then choose the setting (text vectors load on demand).
    session = RecSession.open("demo", run_id, data_dir=root).with_config(setting)
    ids = _users(session)
    index = np.array([session.user_index(u) for u in ids])
    flag = ["--rerank", json.dumps(setting)] if setting is not None else []

    # 1. RecSession.lists: the reference
    batch = session.lists(index, K)
    want = {u: [str(session.data.item_ids[i]) for i in row if i >= 0] for u, row in
            zip(ids, batch.items, strict=True)}  # fmt: skip
    assert all(len(v) == K for v in want.values())
    if setting and setting.get("tail_pool"):  # some list holds a tail candidate from beyond M
        top_m = session.with_config(BaseOrderConfig(pool=setting["pool"])).pools(index)[0]
        beyond = [
            set(b.tolist()) - set(t.tolist()) for b, t in zip(batch.items, top_m, strict=True)
        ]
        assert any(beyond)
    reasons = session.reasons(index, batch)
    want_why = {u: [reasons_text(x) for x in r] for u, r in zip(ids, reasons, strict=True)}

    # 2. `ltrec recommend --json` (items, reasons) for each user
    for u in ids:
        out = _cli_json(capsys, root, "recommend", "demo", "--run", run_id, "--user", u, *flag)
        assert [x["item_id"] for x in out["items"]] == want[u]
        assert [reasons_text(x["reasons"]) for x in out["items"]] == want_why[u]
        assert out["known_user"] == (u in session.data.user_index)

    # 3. `ltrec export` (every training user; the unknown one is not in the file)
    path = tmp_path / "lists.csv"
    _cli_json(capsys, root, "export", "demo", "--run", run_id, "--out", str(path), *flag)
    frame = pd.read_csv(path, dtype={"user_id": str, "item_id": str}, keep_default_na=False)
    for u in ids[:-1]:
        mine = frame[frame["user_id"] == u].sort_values("rank")
        assert mine["item_id"].tolist() == want[u]
        assert mine["reasons"].tolist() == want_why[u]
    assert ids[-1] not in set(frame["user_id"])

    # 4. the Studio: one user's pool (cached per user there), compared under the setting
    cfg = parse_config(setting)
    for u, ui in zip(ids[:-1], index[:-1], strict=True):
        m = max(cfg.pool, K)
        items, scores = session.with_config(BaseOrderConfig(pool=m)).pools(np.array([ui]))
        ranked = logic.compare_lists(session, items, scores, [cfg], int(ui), K).lists[0]
        assert session.data.item_ids[ranked.items].tolist() == want[u]
        assert logic.why_texts(session, int(ui), ranked) == want_why[u]
    table = logic.all_lists(session, cfg, K, users=index[:-1])
    pd.testing.assert_frame_equal(table, session.table(K, users=index[:-1]))

    # 5. the simulator's recommend for one round, with the same model and data
    sim = SimulationConfig()
    policy = parse_policy({"model": "itemknn", "rerank": setting})
    ctx = rerank_context(
        session.data, sim.bucket_cuts, session.context.price, session.context.in_stock
    )
    state = _PolicyState(
        policy, "p", session.data, model=session.model, setting=cfg if setting else None,
        context=ctx if setting else None,
    )  # fmt: skip
    known = index[:-1]
    recs = state.recommend(known, K)
    assert [[str(session.data.item_ids[i]) for i in row] for row in recs] == [
        want[u] for u in ids[:-1]
    ]


def test_export_columns_and_values(shop: tuple[Path, str], tmp_path: Path) -> None:
    from ltrec.store import connect, cursor

    root, run_id = shop
    session = RecSession.open(
        "demo", run_id, {"strategy": "tail_boost", "beta": 1.0}, data_dir=root
    )
    out = tmp_path / "lists.parquet"
    summary = session.export(out, k=5, batch_size=64)
    frame = pd.read_parquet(out)
    assert list(frame.columns) == EXPORT_COLUMNS
    assert summary["rows"] == len(frame) and summary["format"] == "parquet"
    con = connect("demo", root)
    try:
        titles = dict(cursor(con).execute("SELECT item_id, title FROM items").fetchall())
    finally:
        con.close()
    assert frame["title"].tolist() == [titles[i] for i in frame["item_id"]]
    ranks_ok = frame["base_rank"] > 0
    assert (
        frame.loc[ranks_ok, "rank_change"] == (frame["base_rank"] - frame["rank"])[ranks_ok]
    ).all()
    assert set(frame["bucket"]) == {"head", "tail"}
    tail = session.context.tail[session.data.items_to_index(frame["item_id"].tolist())]
    assert (frame["bucket"] == "tail").tolist() == tail.tolist()
    lifted = frame[frame["rank_change"] > 0]
    assert len(lifted) and lifted["reasons"].str.contains("lifted").all()
    assert lifted["reasons"].str.contains(": tail item").all()
    # a user with history gets history reasons on some item
    assert frame["reasons"].str.contains("because you ").any()
    with pytest.raises(BadInputError, match="format is chosen by the file name"):
        session.export(tmp_path / "lists.xlsx")


# ------------------------------------------------------------------------------ a hand-made shop

TITLES = {"A": "Blue Mug", "B": "Tea Pot", "C": "Cup", "D": "Kettle", "E": "Saucer", "F": "Spoon"}


def _tiny() -> RecSession:
    """Six items; user t bought the Blue Mug and viewed the Tea Pot. The Cup goes with both,
    the Kettle with the mug only, the Saucer with the pot only; the Spoon with nothing."""
    from ltrec.models.base import make_model
    from ltrec.models.data import InteractionData

    t0 = pd.Timestamp("2024-01-01")
    rows = [
        ("t", "A", "purchase"), ("t", "B", "view"),
        ("u1", "A", "purchase"), ("u1", "C", "purchase"),
        ("u2", "A", "purchase"), ("u2", "C", "purchase"), ("u2", "D", "purchase"),
        ("u3", "B", "view"), ("u3", "C", "view"),
        ("u4", "B", "view"), ("u4", "E", "purchase"),
        ("u5", "F", "purchase"),
    ]  # fmt: skip
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type"])
    events["ts"] = t0 + pd.to_timedelta(np.arange(len(events)), "h")
    items = pd.DataFrame({"item_id": list(TITLES), "title": list(TITLES.values())})
    data = InteractionData.from_frame(events, items)
    return RecSession.from_parts(make_model("itemknn").fit(data), data, None, None)


def test_reasons_name_the_history_items_in_words() -> None:
    s = _tiny()
    out = s.recommend("t", 4)
    assert [x["item_id"] for x in out["items"]] == ["C", "D", "E", "F"]
    got = {x["item_id"]: x["reasons"] for x in out["items"]}
    # exact item-kNN shares: the mug (purchase, weight 5) outweighs the pot (a view, weight 1)
    assert got["C"] == [
        {"kind": "history", "text": "because you bought Blue Mug and viewed Tea Pot",
         "item_ids": ["A", "B"]},
    ]  # fmt: skip
    assert got["D"] == [
        {"kind": "history", "text": "because you bought Blue Mug", "item_ids": ["A"]}
    ]
    assert got["E"] == [
        {"kind": "history", "text": "because you viewed Tea Pot", "item_ids": ["B"]}
    ]
    assert got["F"] == [
        {"kind": "fallback", "text": "no link to your history: ranked by the model's score",
         "item_ids": []},
    ]  # fmt: skip
    assert out["fallback"] is False and out["history_items"] == 2
    assert [x["reason"] for x in out["items"]] == ["base rank"] * 4  # the old key is kept

    # what the re-ranker did, after the history reason
    boosted = s.with_config({"strategy": "tail_boost", "beta": 2.0}).recommend("t", 4)
    texts = {x["item_id"]: [r["text"] for r in x["reasons"]] for x in boosted["items"]}
    assert [x["item_id"] for x in boosted["items"]] == ["E", "F", "C", "D"]
    assert texts["E"] == ["because you viewed Tea Pot", "lifted 2 places: tail item"]
    assert texts["C"] == [
        "because you bought Blue Mug and viewed Tea Pot",
        "moved down 2 places",
    ]
    pinned = s.with_config({"rules": {"pins": ["F@1"]}}).recommend("t", 3)
    assert pinned["items"][0]["item_id"] == "F"
    assert pinned["items"][0]["reasons"][-1] == {
        "kind": "rerank", "text": "pinned at position 1", "item_ids": []
    }  # fmt: skip

    # no history: the fallback, said once per item
    cold = s.recommend("someone-new", 2)
    assert cold["fallback"] == "popularity" and not cold["known_user"]
    assert [x["reasons"] for x in cold["items"]] == [
        [{"kind": "fallback", "text": "popular with other shoppers (no history yet)",
          "item_ids": []}],
    ] * 2  # fmt: skip


def test_history_text_wording() -> None:
    assert history_text("exact", [("A", "purchase")]) == "because you bought A"
    assert history_text("exact", [("A", "cart"), ("B", "cart")]) == (
        "because you added A and B to your cart"
    )
    assert history_text("exact", [("A", None), ("B", "view")]) == (
        "because you interacted with A and viewed B"
    )
    assert history_text("embedding", [("A", "purchase"), ("B", "purchase")]) == (
        "similar to A and B, which you bought"
    )
    assert history_text("embedding", [("A", "purchase"), ("B", "view")]) == (
        "similar to A (bought) and B (viewed)"
    )


def test_add_events_change_the_next_list() -> None:
    s = _tiny()
    boosted = s.with_config({"strategy": "tail_boost", "beta": 0.5})  # shares the live history
    before = s.recommend("t", 3)
    s.add_events("t", "E", "purchase")
    after = s.recommend("t", 3)
    assert [x["item_id"] for x in before["items"]] == ["C", "D", "E"]
    # the Saucer is now seen (excluded); the Spoon fills in, the live event explains nothing yet
    assert [x["item_id"] for x in after["items"]] == ["C", "D", "F"]
    assert after["live_events"] == 1 and after["history_items"] == 3
    assert boosted.lists(np.array([s.user_index("t")]), 3).items.tolist() == [
        s.data.items_to_index(["C", "F", "D"]).tolist()  # the tail Spoon lifted
    ]

    # a user new to training: the fallback, then a live history of their own
    assert s.recommend("newbie", 2)["fallback"] == "popularity"
    info = s.add_events("newbie", "D", "cart")
    assert info == {"user": "newbie", "known_user": False, "live_events": 1}
    new = s.recommend("newbie", 2)
    assert new["fallback"] is False and not new["known_user"]
    assert [x["item_id"] for x in new["items"]] == ["A", "C"]
    assert new["items"][0]["reasons"][0]["text"] == "because you added Kettle to your cart"
    assert s.user_index("newbie") == s.data.n_users  # a virtual index after the training users

    # an impression weighs nothing: accepted, no history change
    s.add_events("t", "F", "impression")
    assert s.recommend("t", 3)["live_events"] == 1
    with pytest.raises(BadInputError, match="'ZZZ' is not in the catalogue"):
        s.add_events("t", "ZZZ", "view")
    with pytest.raises(BadInputError, match="unknown event type 'like'"):
        s.add_events("t", "A", "like")


def test_evaluate_is_the_lists_metrics(shop: tuple[Path, str], capsys) -> None:
    root, run_id = shop
    session = RecSession.open("demo", run_id, data_dir=root)
    res = session.evaluate(K, n_boot=0)
    # the figures training recorded (the model's own top K) are the pipeline's
    trained = session.run.manifest["metrics"]
    for name in ("ndcg", "recall", "aplt", "coverage"):
        assert res[name].mean == pytest.approx(trained[f"{name}@{K}"]["mean"], abs=1e-12)
    from ltrec.models.registry import list_runs

    newest = list_runs("demo", root)[-1].run_id
    assert RecSession.open("demo", data_dir=root).run_id == newest  # no run named: the newest
    out = _cli_json(capsys, root, "evaluate", "demo", "--run", run_id)
    assert out["metrics"][f"ndcg@{K}"]["mean"] == pytest.approx(res["ndcg"].mean)
    assert f"overlap@{K}" not in out["metrics"]  # no setting: no list-change metrics
    boosted = session.with_config({"strategy": "tail_boost", "beta": 1.0}).evaluate(K, n_boot=0)
    assert boosted["overlap"].mean < 1.0
    assert boosted["aplt"].mean > res["aplt"].mean


def test_an_all_data_run_recommends_but_does_not_evaluate(shop: tuple[Path, str]) -> None:
    from ltrec.models.registry import NoTestSplitError, promote
    from ltrec.models.train import train_all_data

    root, run_id = shop
    prod = train_all_data("demo", from_run=run_id, data_dir=root).run_id
    promote("demo", prod, root)
    session = RecSession.open("demo", data_dir=root)  # no run named: the production run
    assert session.run_id == prod
    user = str(session.data.user_ids[np.flatnonzero(np.diff(session.data.matrix.indptr))[0]])
    out = session.recommend(user, 5)
    assert len(out["items"]) == 5 and out["fallback"] is False
    assert out["items"][0]["reasons"][0]["kind"] == "history"
    with pytest.raises(NoTestSplitError):
        session.evaluate(K)
