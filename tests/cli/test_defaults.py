"""The CLI's defaults that come from settings: ``--k`` is ``LTREC_K`` and ``--max-reject-share`` is
``LTREC_MAX_REJECT_SHARE`` (``ltrec.config.MAX_REJECT_SHARE`` unless set), through the real
``ltrec.cli.main`` on the fixture shop."""

from __future__ import annotations

from pathlib import Path

import pytest

from ltrec.cli import main
from ltrec.config import MAX_REJECT_SHARE
from tests.cli.helpers import cli_json
from tests.models.shop import build_shop


def test_k_defaults_to_ltrec_k(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    build_shop("shop")
    plain = cli_json(capsys, "train", "shop", "--model", "popularity")
    assert sorted(plain["metrics"]) == ["aplt@10", "coverage@10", "ndcg@10", "recall@10"]

    monkeypatch.setenv("LTREC_K", "3")
    trained = cli_json(capsys, "train", "shop", "--model", "popularity")
    assert sorted(trained["metrics"]) == ["aplt@3", "coverage@3", "ndcg@3", "recall@3"]
    run = trained["run_id"]

    rec = cli_json(capsys, "recommend", "shop", "--run", run, "--user", "u000")
    assert [it["rank"] for it in rec["items"]] == [1, 2, 3]
    given = cli_json(capsys, "recommend", "shop", "--run", run, "--user", "u000", "--k", "5")
    assert [it["rank"] for it in given["items"]] == [1, 2, 3, 4, 5]

    monkeypatch.setenv("LTREC_K", "4")
    assert main(["evaluate", "shop", "--run", run]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"run {run} (popularity), k=4:"


def test_a_bad_ltrec_k_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LTREC_K", "0")
    err = cli_json(capsys, "datasets", code=2)["error"]
    assert err == {
        "type": "ConfigError",
        "message": "LTREC_K is not usable: Input should be greater than or equal to 1 (got '0')",
        "hint": "fix or unset LTREC_K in the environment",
        "exit_code": 2,
    }


EVENTS = (  # 1 of 4 rows rejected (no user): 25%
    "user_id,item_id,event_type,ts\n"
    "u1,i1,view,2024-01-01 10:00:00\n"
    "u2,i1,purchase,2024-01-01 11:00:00\n"
    ",i2,view,2024-01-01 12:00:00\n"
    "u3,i2,cart,2024-01-01 13:00:00\n"
)


def test_max_reject_share_defaults_to_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    argv = ("import", "shop", "--events", str(path), "--dry-run")
    err = cli_json(capsys, *argv, code=2)["error"]
    assert (err["type"], err["report"]["max_reject_share"]) == (
        "TooManyRejectsError",
        MAX_REJECT_SHARE,
    )
    monkeypatch.setenv("LTREC_MAX_REJECT_SHARE", "0.3")
    report = cli_json(capsys, *argv)
    assert (report["rejected"], report["max_reject_share"]) == (1, 0.3)
