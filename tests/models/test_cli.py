"""`ltrec train / runs / evaluate / recommend` through ltrec.cli.main on the fixture shop."""

from __future__ import annotations

import json

import pytest

from ltrec.cli import main
from tests.cli.helpers import cli_json as run_json
from tests.models.shop import build_shop


@pytest.fixture()
def shop(data_dir) -> str:  # noqa: ANN001
    build_shop("shop")
    return "shop"


def test_train_runs_evaluate_recommend(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    trained = {}
    for model in ("popularity", "ease", "itemknn", "als"):
        sets = ["--set", "factors=8", "--set", "iterations=5"] if model == "als" else []
        out = run_json(capsys, "train", shop, "--model", model, *sets)
        assert set(out["metrics"]) == {"ndcg@10", "recall@10", "aplt@10", "coverage@10"}
        for v in out["metrics"].values():
            assert set(v) >= {"mean", "low", "high"} and 0.0 <= v["mean"] <= 1.0
        trained[model] = out
    # Personalised models beat popularity on this clustered shop.
    pop = trained["popularity"]["metrics"]["recall@10"]["mean"]
    assert trained["ease"]["metrics"]["recall@10"]["mean"] > pop

    runs = run_json(capsys, "runs", shop)["runs"]
    assert [r["model"] for r in runs] == ["popularity", "ease", "itemknn", "als"]
    assert runs[1]["params"]["lambda_"] == 200.0
    run_id = trained["ease"]["run_id"]

    ev = run_json(capsys, "evaluate", shop, "--run", run_id, "--k", "5")
    assert ev["k"] == 5 and ev["run_id"] == run_id
    for name in (
        "precision@5",
        "recall@5",
        "ndcg@5",
        "map@5",
        "mrr@5",
        "tail_recall@5",
        "aplt@5",
        "arp@5",
        "coverage@5",
        "gini@5",
        "novelty@5",
    ):
        assert name in ev["metrics"], name
    # every metric carries its record (ltrec.definitions), keyed by its base name
    assert set(ev["definitions"]) == {m.split("@")[0] for m in ev["metrics"]}
    assert ev["definitions"]["gini"]["direction"] == "lower"
    ten = run_json(capsys, "evaluate", shop, "--run", run_id)
    assert ten["metrics"]["ndcg@10"]["mean"] == pytest.approx(
        trained["ease"]["metrics"]["ndcg@10"]["mean"]
    )

    rec = run_json(capsys, "recommend", shop, "--run", run_id, "--user", "u000", "--k", "4")
    assert rec["known_user"] and not rec["fallback"] and len(rec["items"]) == 4
    assert [i["rank"] for i in rec["items"]] == [1, 2, 3, 4]
    assert all(i["title"] for i in rec["items"])
    scores = [i["score"] for i in rec["items"]]
    assert scores == sorted(scores, reverse=True)
    cold = run_json(capsys, "recommend", shop, "--run", run_id, "--user", "stranger")
    assert not cold["known_user"] and cold["fallback"] and len(cold["items"]) == 10

    # Plain-text output works too.
    assert main(["runs", shop]) == 0
    assert run_id in capsys.readouterr().out
    assert main(["recommend", shop, "--run", run_id, "--user", "u001"]) == 0
    assert "top 10 for user u001" in capsys.readouterr().out


def test_bad_set_values_exit_2_with_valid_keys(shop: str, capsys) -> None:  # noqa: ANN001
    assert main(["train", shop, "--model", "ease", "--set", "lambda=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'lambda'" in err and "lambda_" in err and "max_memory_gb" in err
    assert main(["train", shop, "--model", "als", "--set", "factors=-1"]) == 2
    assert "factors" in capsys.readouterr().err
    assert main(["train", shop, "--model", "popularity", "--set", "oops"]) == 2
    assert "key=value" in capsys.readouterr().err
    assert main(["runs", shop, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == []  # nothing was trained


def test_errors_are_clear(shop: str, capsys) -> None:  # noqa: ANN001
    assert main(["train", "nope", "--model", "ease"]) == 2
    assert "dataset 'nope' not found" in capsys.readouterr().err
    assert main(["evaluate", shop, "--run", "missing-run"]) == 2  # bad run id: exit 2
    assert "run 'missing-run' not found" in capsys.readouterr().err
    assert main(["train", shop, "--model", "ease", "--set", "max_memory_gb=0.0000001"]) == 2
    assert "max_memory_gb" in capsys.readouterr().err  # below the bound: exit 2
    # a usage error is reported by main's handler like every other error (exit 2)
    assert main(["train", shop, "--model", "svd"]) == 2
    assert "invalid choice: 'svd'" in capsys.readouterr().err


def test_train_on_the_demo_shop_with_split_settings(capsys) -> None:  # noqa: ANN001
    from ltrec.synth.demo import DemoConfig, build_demo

    build_demo(DemoConfig(users=300, items=150, events=30_000, seed=1))
    split = ["--split", "target_events=view,cart,purchase", "--split", "test_share=0.25"]
    pop = run_json(capsys, "train", "demo", "--model", "popularity", *split)
    ease = run_json(capsys, "train", "demo", "--model", "ease", *split)
    assert ease["metrics"]["recall@10"]["mean"] > pop["metrics"]["recall@10"]["mean"]
    manifest_split = run_json(capsys, "runs", "demo")["runs"][0]
    assert manifest_split["model"] == "popularity"
    assert main(["train", "demo", "--model", "ease", "--split", "test_share=2"]) == 2
    assert "test_share" in capsys.readouterr().err
    assert main(["train", "demo", "--model", "ease", "--split", "cutof=1"]) == 2
    assert "valid keys" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly(shop: str, data_dir) -> None:  # noqa: ANN001
    """`ltrec ... --json | head`: the reader goes away; exit 1, no traceback on stderr."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, LTREC_DATA_DIR=str(data_dir))
    cmd = [sys.executable, "-m", "ltrec.cli", "stats", shop, "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command writes a byte: its write fails with EPIPE
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=120), err) == (1, "")
