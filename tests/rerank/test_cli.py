"""`ltrec evaluate/recommend --rerank` and `ltrec export` through ltrec.cli.main."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import pandas as pd
import pytest

from ltrec.cli import main
from ltrec.store import writing
from ltrec.store.finalize import finalize
from tests.cli.helpers import cli_json as run_json
from tests.models.shop import shop_frames

BOOST = '{"strategy": "tail_boost", "beta": 0.5}'


def _write_shop(name: str) -> None:
    """The models' fixture shop, with one user id a spreadsheet would run as a formula."""
    events, items, users = shop_frames(7)
    first = users["user_id"].iloc[0]
    events.loc[events["user_id"] == first, "user_id"] = "=SUM(1+1)"
    users.loc[users["user_id"] == first, "user_id"] = "=SUM(1+1)"
    with writing(name, replace=True) as con:
        con.register("ev", events)
        con.execute(
            "INSERT INTO events SELECT user_id, item_id, event_type, ts, session_id, quantity,"
            " price, source FROM ev"
        )
        con.register("it", items)
        con.execute(
            "INSERT INTO items (item_id, title, description, category, brand, price, in_stock)"
            " SELECT * FROM it"
        )
        con.execute("ALTER TABLE users ADD COLUMN region VARCHAR")
        con.execute("ALTER TABLE users ADD COLUMN device VARCHAR")
        con.register("us", users)
        con.execute("INSERT INTO users SELECT * FROM us")
        finalize(con)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(data dir, run id) of an EASE run on the shop, shared by the tests of this module."""
    import os

    folder = tmp_path_factory.mktemp("rerank_cli")
    old = os.environ.get("LTREC_DATA_DIR")
    os.environ["LTREC_DATA_DIR"] = str(folder)
    try:
        _write_shop("shop")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["--data-dir", str(folder), "train", "shop", "--model", "ease", "--json"])
        assert code == 0
    finally:
        if old is None:
            os.environ.pop("LTREC_DATA_DIR", None)
        else:
            os.environ["LTREC_DATA_DIR"] = old
    return str(folder), json.loads(buf.getvalue())["run_id"]


def test_evaluate_with_rerank(trained, capsys) -> None:
    folder, run = trained
    base = run_json(capsys, "--data-dir", folder, "evaluate", "shop", "--run", run)
    same = run_json(
        capsys, "--data-dir", folder, "evaluate", "shop", "--run", run, "--rerank", "{}"
    )
    boosted = run_json(
        capsys, "--data-dir", folder, "evaluate", "shop", "--run", run, "--rerank", BOOST
    )
    # The base order re-ranked by nothing gives exactly the metrics of `ltrec evaluate`.
    for name, v in base["metrics"].items():
        assert same["metrics"][name] == v, name
    assert same["metrics"]["overlap@10"]["mean"] == 1.0
    assert set(boosted["metrics"]) >= set(base["metrics"])
    assert boosted["rerank"]["strategy"] == "tail_boost" and boosted["rerank"]["beta"] == 0.5
    assert boosted["metrics"]["aplt@10"]["mean"] > base["metrics"]["aplt@10"]["mean"]
    assert boosted["metrics"]["overlap@10"]["mean"] < 1.0


def test_bad_rerank_setting_exits_2(trained, capsys) -> None:
    folder, run = trained
    code = main(["--data-dir", folder, "evaluate", "shop", "--run", run, "--rerank", '{"beta": 9}'])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown key 'beta' for strategy 'none'" in err


def test_recommend_with_rerank(trained, capsys) -> None:
    folder, run = trained
    setting = '{"strategy": "fair", "p": 0.6, "rules": {"price_max": 60}}'
    out = run_json(
        capsys,
        "--data-dir",
        folder,
        "recommend",
        "shop",
        "--run",
        run,
        "--user",
        "u001",
        "--rerank",
        setting,
    )
    assert out["rerank"]["strategy"] == "fair"
    assert 0 < len(out["items"]) <= 10
    for it in out["items"]:
        assert set(it) >= {"rank", "item_id", "score", "base_score", "base_rank", "reason"}
    assert set(out["list"]) == {"tail_share", "arp", "mean_base_score", "overlap", "n"}
    text_code = main(
        [
            "--data-dir",
            folder,
            "recommend",
            "shop",
            "--run",
            run,
            "--user",
            "u001",
            "--rerank",
            setting,
        ]
    )
    assert text_code == 0 and "fair p=0.6 + rules" in capsys.readouterr().out


def test_export_matches_recommend_and_escapes(trained, capsys, tmp_path) -> None:
    folder, run = trained
    dest = tmp_path / "lists.csv"
    summary = run_json(
        capsys,
        "--data-dir",
        folder,
        "export",
        "shop",
        "--run",
        run,
        "--rerank",
        BOOST,
        "--out",
        str(dest),
    )
    assert summary["rows"] > 0 and summary["format"] == "csv"
    with dest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:5] == ["user_id", "rank", "item_id", "base_score", "final_score"]
    users = {r["user_id"] for r in rows}
    assert "'=SUM(1+1)" in users and "=SUM(1+1)" not in users
    assert len(users) == summary["users"]
    for user in ("u001", "u010", "u042"):
        rec = run_json(
            capsys,
            "--data-dir",
            folder,
            "recommend",
            "shop",
            "--run",
            run,
            "--user",
            user,
            "--rerank",
            BOOST,
        )
        mine = [r for r in rows if r["user_id"] == user]
        assert [r["item_id"] for r in mine] == [it["item_id"] for it in rec["items"]]
        assert [float(r["final_score"]) for r in mine] == pytest.approx(
            [it["score"] for it in rec["items"]]
        )

    pq = tmp_path / "lists.parquet"
    run_json(capsys, "--data-dir", folder, "export", "shop", "--run", run, "--out", str(pq))
    frame = pd.read_parquet(pq)
    assert "=SUM(1+1)" in set(frame["user_id"])  # Parquet keeps the raw id
    assert (frame.groupby("user_id")["rank"].min() == 1).all()


def test_export_refuses_unknown_format(trained, capsys, tmp_path) -> None:
    folder, run = trained
    code = main(
        ["--data-dir", folder, "export", "shop", "--run", run, "--out", str(tmp_path / "x.xlsx")]
    )
    assert code == 2 and ".csv or .parquet" in capsys.readouterr().err
