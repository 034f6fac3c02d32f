"""`ltrec simulate` through ltrec.cli.main."""

from __future__ import annotations

import json

from ltrec.cli import main


def test_simulate_json(demo, capsys) -> None:
    rc = main(
        [
            "simulate",
            demo,
            "--policy",
            '{"model": "popularity"}',
            "--policy",
            '{"model": "popularity", "rerank": {"strategy": "tail_boost", "beta": 0.5}}',
            "--rounds",
            "2",
            "--users",
            "30",
            "--k",
            "5",
            "--seed",
            "3",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["user_model"]["kind"] == "truth"
    assert set(out["final"]) == {"popularity", "popularity + tail_boost 0.5"}
    series = out["rounds"]["popularity"]
    assert series["round"] == [1, 2] and series["slots"] == [150, 150]
    assert {"exposure_gini", "tail_share", "coverage", "arp", "cum_purchases"} <= set(series)
    assert out["id"]

    rc = main(["simulate", demo, "--list", "--json"])
    listed = json.loads(capsys.readouterr().out)
    assert rc == 0 and [s["id"] for s in listed["simulations"]] == [out["id"]]


def test_simulate_text_and_errors(demo, capsys) -> None:
    rc = main(
        [
            "simulate",
            demo,
            "--policy",
            '{"model": "popularity"}',
            "--rounds",
            "1",
            "--users",
            "20",
            "--no-save",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0 and "user model: ground truth" in captured.out
    assert main(["simulate", demo, "--list"]) == 0
    assert capsys.readouterr().out == ""  # --no-save saved nothing
    assert main(["simulate", demo, "--policy", "{bad", "--rounds", "1"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["simulate", demo, "--rounds", "1"]) == 2
    assert "--policy" in capsys.readouterr().err
    assert main(["simulate", demo, "--policy", '{"model": "popularity"}', "--rounds", "999"]) == 2
    assert main(["simulate", "nope", "--policy", '{"model": "popularity"}']) == 2
