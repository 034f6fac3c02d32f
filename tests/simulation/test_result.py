"""Saving and reopening simulations."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ltrec.errors import BadInputError, LtrecError
from ltrec.simulation import (
    SimulationConfig,
    delete_result,
    list_results,
    load_result,
    run_simulation,
    save_result,
)
from ltrec.simulation.result import ROUNDS, SUMMARY, simulations_dir

POLICIES = [
    {"model": "popularity"},
    {"model": "popularity", "rerank": {"strategy": "tail_boost", "beta": 1.0}, "label": "boost"},
]


def test_save_reopen_round_trip(world, data_dir) -> None:
    data, um = world
    res = run_simulation(data, um, POLICIES, SimulationConfig(rounds=2, users=20, k=4, seed=9))
    folder = save_result(res, "shop")
    assert folder.parent == simulations_dir("shop", data_dir)
    assert sorted(p.name for p in folder.iterdir()) == sorted([ROUNDS, SUMMARY])
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp")]
    back = load_result("shop", res.sim_id)
    pd.testing.assert_frame_equal(back.rounds, res.rounds)
    assert back.config == res.config
    assert back.policies == res.policies
    assert back.labels == ["popularity", "boost"]
    assert back.user_model == res.user_model
    pd.testing.assert_frame_equal(back.final(), res.final())
    summary = json.loads((folder / SUMMARY).read_text())
    assert summary["final"]["boost"]["cum_clicks"] == int(back.final()["cum_clicks"].iloc[1])

    listed = list_results("shop")
    assert [s.sim_id for s in listed] == [res.sim_id]
    assert "popularity vs boost" in listed[0].title
    delete_result("shop", res.sim_id)
    assert list_results("shop") == []
    with pytest.raises(BadInputError, match="not found"):
        load_result("shop", res.sim_id)


def test_damaged_and_bad_ids(world, data_dir) -> None:
    data, um = world
    res = run_simulation(data, um, POLICIES[:1], SimulationConfig(rounds=1, users=10))
    folder = save_result(res, "shop")
    (folder / SUMMARY).write_text("{not json")
    with pytest.raises(LtrecError, match="unreadable"):
        load_result("shop", res.sim_id)
    assert list_results("shop") == []  # skipped, not a crash
    with pytest.raises(BadInputError, match="invalid simulation id"):
        load_result("shop", "../etc")


def test_to_dict_is_strict_json(world) -> None:
    data, um = world
    res = run_simulation(data, um, POLICIES, SimulationConfig(rounds=2, users=10))
    out = res.to_dict()
    text = json.dumps(out, allow_nan=False)  # revenue NaN (no prices) became null
    assert json.loads(text)["rounds"]["boost"]["round"] == [1, 2]
    assert set(out["final"]) == {"popularity", "boost"}
    assert out["user_model"]["kind"] == "truth"
