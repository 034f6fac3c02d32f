"""``ltrec experiment`` and the Experiments page over a store whose ``live_events`` were written
by the server's own writer (:func:`ltrec.app.live_events.write_events`) for an experiment
recorded by :func:`ltrec.app.live_experiments.begin`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ltrec.app.experiments import tail_and_catalogue
from ltrec.app.live_events import Event, write_events
from ltrec.app.live_experiments import assign, begin
from ltrec.cli import main
from tests.analytics.conftest import synthetic_shop, write_store
from tests.app.conftest import APP

PAGE = "app_pages/experiments.py"
ARMS = {"control": {}, "boost": {"strategy": "tail_boost", "beta": 0.5}}
T0 = datetime(2026, 12, 1, 9, 0)


def served_shop(data_dir: Path, users: int = 160, seed: int = 4) -> str:
    """A small shop with one experiment: control lists mostly head items, boost lists half
    tail; views and priced purchases posted back within the hour. Returns the experiment id."""
    ev, it, us = synthetic_shop(users=120, items=60, sessions=800, seed=seed)
    write_store("shop", data_dir, ev, it, us)
    exp, _ = begin(data_dir, "shop", ARMS, (0.5, 0.5))
    # a fixed salt (begin draws one) so the users' arms, and every figure, are the same each run
    exp = replace(exp, salt="5eed5eed5eed5eed")
    record = data_dir / "api" / "experiments" / "shop" / f"{exp.id}.json"
    record.write_text(json.dumps(exp.to_json()))
    tail, items = tail_and_catalogue("shop", data_dir)
    head = [i for i in items if i not in tail]
    tails = sorted(tail)
    rng = np.random.default_rng(seed)
    out: list[Event] = []
    for k in range(users):
        user = f"v{k:04d}"
        arm = assign(user, exp)
        pool = [*head, *tails[:3]] if arm == "control" else [*head[:10], *tails]
        shown = list(rng.choice(pool, size=5, replace=False))
        ts = T0 + timedelta(minutes=k)
        req = f"req-{k}"
        for pos, item in enumerate(shown, 1):
            out.append(
                Event(
                    user,
                    item,
                    "impression",
                    ts,
                    source="recommendation",
                    experiment=exp.id,
                    arm=arm,
                    position=pos,
                    request_id=req,
                )
            )
        for item in shown:
            if rng.random() < 0.3:
                out.append(
                    Event(user, item, "view", ts + timedelta(minutes=5), experiment=exp.id, arm=arm)
                )
                if rng.random() < 0.5:
                    out.append(
                        Event(
                            user,
                            item,
                            "purchase",
                            ts + timedelta(minutes=9),
                            quantity=1,
                            price=12.5,
                            experiment=exp.id,
                            arm=arm,
                        )
                    )
    out = [replace(e, seq=s) for s, e in enumerate(out, 1)]
    write_events("shop", out, data_dir)
    return exp.id


@pytest.fixture
def shop(data_dir: Path) -> str:
    return served_shop(data_dir)


# ----------------------------------------------------------------------------- CLI


def test_cli_json(shop: str, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "shop", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["experiment"] == shop
    assert out["experiments"] == [{"id": shop, "started_at": out["started_at"], "stopped_at": None}]
    assert [a["arm"] for a in out["arms"]] == ["control", "boost"]
    assert out["metrics"] == [
        "ctr",
        "conversion",
        "revenue_per_user",
        "tail_exposure_share",
        "tail_purchase_share",
        "exposure_gini",
    ]
    users = {a["arm"]: a["users"] for a in out["arms"]}
    assert sum(users.values()) == 160
    assert out["srm"]["observed"] == users
    assert out["missing"] is None
    boost = out["arms"][1]
    tail = boost["vs_control"]["tail_exposure_share"]
    assert tail["detected"] is True and tail["rel_low"] > 0
    assert boost["verdict"].startswith("boost: ")
    assert out["window_hours"] == 24.0
    assert "bootstrap" in out["method"]


def test_cli_text_and_same_id(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "shop", "--id", shop, "--window-hours", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"experiment {shop} on 'shop' (started ")
    assert "attribution window 1 h" in text
    assert "\nTail share of purchases  " in text


def test_cli_errors(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "nope", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["type"] == "DatasetNotFoundError"
    assert main(["experiment", "shop", "--id", "exp-0000000000", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["message"] == (
        f"no experiment 'exp-0000000000' on dataset 'shop' (experiments: {shop})"
    )
    assert main(["experiment", "shop", "--window-hours", "0", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["message"].startswith("the attribution window must be between 0 and")


def test_cli_no_experiment(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev, it, us = synthetic_shop(users=30, items=20, sessions=100, seed=1)
    write_store("plain", data_dir, ev, it, us)
    assert main(["experiment", "plain", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["message"] == "dataset 'plain' has no experiments"


# ----------------------------------------------------------------------------- page


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    # opened at the page itself: one script run, not the default page's first
    at.switch_page(PAGE).run()
    return at


def test_page_without_experiments(data_dir: Path) -> None:
    ev, it, us = synthetic_shop(users=30, items=20, sessions=100, seed=1)
    write_store("plain", data_dir, ev, it, us)
    at = _open()
    assert not at.exception, at.exception
    assert [i.value for i in at.info] == [
        "No experiments on 'plain' yet. Start one by serving two to four arms, e.g. "
        '`ltrec serve plain --arm control=\'{}\' --arm boost=\'{"strategy": "tail_boost", '
        '"beta": 0.3}\'`; each user gets one arm and what they are shown is logged.'
    ]


def test_page_shows_verdicts_intervals_and_method(shop: str) -> None:
    at = _open()
    assert not at.exception, at.exception
    assert at.selectbox(key="ex_id").value == shop
    verdicts = [m.value for m in at.markdown if m.value.startswith(("**control**", "**boost**"))]
    assert verdicts[0] == "**control**: the control (75 users, 375 impressions)."
    assert verdicts[1].startswith("**boost**: tail purchases +656% \\[+162%, +2085%\\]")
    assert verdicts[1].endswith("no detectable difference.")
    captions = " ".join(c.value for c in at.caption)
    assert "95% percentile bootstrap over users" in captions
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["data"][0]["name"] == "boost"
    frames = at.dataframe
    assert len(frames) == 1
    df = frames[0].value
    assert list(df["arm"].unique()) == ["control", "boost"]
    assert set(df["metric"]) >= {"Tail share of purchases", "Click-through"}
    at.number_input(key="ex_window").set_value(1.0).run()
    assert not at.exception
