"""Production runs (issue 21 §2): `ltrec train --all-data [--from-run R]`, `ltrec promote`, the
production mark (promote / production_run / resolve_run / delete), evaluate refusing an all-data
run, export and recommend defaulting to the production run, the audited promote service.

Real parts throughout: the fixture shop written through the store, EASE and popularity runs
trained by ``ltrec train``, the CLI through ``ltrec.cli.main``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing as mp
import os
import signal
import uuid
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltrec.app import audit, services
from ltrec.app.auth import LOCAL, PermissionDenied, Principal, Role
from ltrec.app.pipeline import RecSession
from ltrec.cli import main
from ltrec.errors import RegistryError
from ltrec.models import registry
from ltrec.models.registry import (
    NoTestSplitError,
    delete_run,
    list_runs,
    production_run,
    promote,
    resolve_run,
    run_manifest,
    runs_dir,
    save_run,
)
from ltrec.models.train import load_all_data, load_data, load_run_data
from ltrec.store import connect, writing
from tests.models.shop import build_shop

VIEWER = Principal("vi@example.com", Role.VIEWER, name="Vi")
ANALYST = Principal("an@example.com", Role.ANALYST, name="An")
#: A user whose every event falls in the last 20% of the data (the evaluation run's test part).
LATE = "late-user"
#: The garden items LATE buys; the shop's garden buyers buy other garden items with them.
LATE_ITEMS = ("g00", "g01", "g02")


def _add_late_user(name: str = "shop") -> None:
    """Append LATE's events on the shop's last day (after the 20% cut-off)."""
    t = pd.Timestamp("2024-05-09 12:00")
    rows = []
    for n, item in enumerate(LATE_ITEMS):
        ts = t + pd.Timedelta(minutes=n)
        rows += [(LATE, item, "view", ts), (LATE, item, "purchase", ts + pd.Timedelta(seconds=30))]
    ev = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts"])
    with writing(name) as con:
        con.register("late", ev)
        con.execute(
            "INSERT INTO events (user_id, item_id, event_type, ts) "
            "SELECT user_id, item_id, event_type, ts FROM late"
        )


@pytest.fixture()
def shop(data_dir: Path) -> str:
    build_shop("shop")
    _add_late_user("shop")
    return "shop"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out = cli(capsys, *argv)
    assert code == 0, out
    return out


def _digest(folder: Path) -> dict[str, str]:
    """Every file under the registry by content (locks aside): 'unchanged' means equal."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


# ---------------------------------------------------------------------------- the fit


def test_all_data_fit_sees_the_test_period(shop: str, capsys) -> None:  # noqa: ANN001
    evaluation = ok(capsys, "train", shop, "--model", "ease")["run_id"]
    promoted = ok(capsys, "promote", shop, "--run", evaluation)
    production = promoted["production"]
    assert production != evaluation and promoted["trained"] is True

    # The evaluation run never saw LATE's events: LATE gets the popularity fallback there.
    before = ok(capsys, "recommend", shop, "--run", evaluation, "--user", LATE, "--k", "5")
    assert (before["known_user"], before["history_items"]) == (True, 0)
    assert (before["fallback"], before["fallback_kind"]) == (True, "popularity")
    # The production run was fitted on them: a personal list, from LATE's own garden items.
    after = ok(capsys, "recommend", shop, "--user", LATE, "--k", "5")  # no --run: production
    assert after["run_id"] == production
    assert (after["history_items"], after["fallback"]) == (len(LATE_ITEMS), False)
    listed = [it["item_id"] for it in after["items"]]
    assert len(listed) == 5 and not set(listed) & set(LATE_ITEMS)  # seen items excluded
    assert all(i.startswith("g") for i in listed[:3])  # garden items, like LATE's history
    assert listed != [it["item_id"] for it in before["items"]]


def test_all_data_manifest_and_data(shop: str, capsys) -> None:  # noqa: ANN001
    src = ok(capsys, "train", shop, "--model", "ease", "--set", "lambda_=50")
    out = ok(
        capsys, "train", shop, "--all-data", "--from-run", src["run_id"], "--set", "binary=false"
    )
    assert out["all_data"] is True and out["from_run"] == src["run_id"]
    assert out["metrics"] == {} and out["source_metrics"] == src["metrics"]
    assert out["model"] == "ease" and out["stale"] is False

    m = run_manifest(shop, out["run_id"])
    s = run_manifest(shop, src["run_id"])
    assert m["split"] == {"kind": "none", "keep_seen": False}
    assert (m["split_config"], m["k"], m["metrics"]) == (None, None, {})
    assert m["from_run"] == src["run_id"] and m["overrides"] == {"binary": False}
    # R's params, one overridden
    assert m["params"] == {**s["params"], "binary": False} and m["params"]["lambda_"] == 50.0
    source = m["source"]
    assert source["run_id"] == src["run_id"] and source["metrics"] == s["metrics"]
    assert source["k"] == 10 and source["split_config"] == s["split_config"]
    assert source["stale"] is False
    assert source["note"] == f"figures of run {src['run_id']} on its test split, not of this run"
    assert m["data_import_id"] == s["data_import_id"] == out["data_import_id"]
    assert "split" not in m["data"]

    # Loading an all-data run's data gives every event; the evaluation run's, the training part.
    con = connect(shop)
    try:
        n_events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        con.close()
    run = registry.load_run(shop, out["run_id"])
    data = load_run_data(shop, run)
    assert len(data.split.train) == n_events and data.split.test.empty
    assert data.fingerprint == m["data"]["fingerprint"] == load_all_data(shop).fingerprint
    assert data.matrix[data.user_index[LATE]].nnz == len(LATE_ITEMS)
    held = load_run_data(shop, registry.load_run(shop, src["run_id"]))
    assert held.fingerprint == load_data(shop).fingerprint != data.fingerprint
    assert len(held.split.train) < n_events and held.matrix[held.user_index[LATE]].nnz == 0


def test_all_data_fit_keeps_the_repeat_domain(data_dir: Path, capsys) -> None:  # noqa: ANN001
    build_shop("grocer")
    with writing("grocer", data_changed=False) as con:
        con.execute("INSERT OR REPLACE INTO meta VALUES ('repeat_domain', 'true')")
    src = ok(capsys, "train", "grocer", "--model", "popularity")
    out = ok(capsys, "train", "grocer", "--all-data", "--from-run", src["run_id"])
    assert run_manifest("grocer", out["run_id"])["split"] == {"kind": "none", "keep_seen": True}
    assert registry.load_run("grocer", out["run_id"]).model.repeat_ is True
    # without a source run the dataset's own setting applies
    plain = ok(capsys, "train", "grocer", "--all-data", "--model", "popularity")
    assert run_manifest("grocer", plain["run_id"])["split"]["keep_seen"] is True


def test_train_all_data_bad_input(shop: str, capsys) -> None:  # noqa: ANN001
    src = ok(capsys, "train", shop, "--model", "popularity")["run_id"]
    cases = {
        ("--all-data",): "name the model (--model) or the evaluation run",
        ("--from-run", src): "--from-run is for a fit on all data",
        ("--all-data", "--from-run", src, "--model", "ease"): f"run {src} is a popularity run",
        ("--all-data", "--from-run", "no-such-run"): "run 'no-such-run' not found",
        ("--all-data", "--model", "ease", "--split", "test_share=0.1"): "--split does not apply",
        ("--model", "ease", "--from-run", src): "--from-run is for a fit on all data",
    }
    before = _digest(runs_dir(shop))
    for argv, message in cases.items():
        code, out = cli(capsys, "train", shop, *argv)
        assert code == 2 and message in out["error"]["message"], (argv, out)
    alld = ok(capsys, "train", shop, "--all-data", "--model", "popularity")["run_id"]
    code, out = cli(capsys, "train", shop, "--all-data", "--from-run", alld)
    assert code == 2
    assert out["error"]["message"] == (
        f"run {alld} is itself fitted on all data; give the evaluation run it came from"
    )
    assert set(_digest(runs_dir(shop))) - set(before) == {
        f"{alld}/{f}"
        for f in ("manifest.json", "vocab.json", "model/config.json", "model/state.npz")
    }


# ---------------------------------------------------------------------------- the mark


def test_promote_resolve_delete(shop: str, capsys) -> None:  # noqa: ANN001
    with pytest.raises(RegistryError, match="has no model runs to use"):
        resolve_run(shop, None)
    first = ok(capsys, "train", shop, "--model", "popularity")["run_id"]
    second = ok(capsys, "train", shop, "--model", "ease")["run_id"]
    assert production_run(shop) is None
    assert resolve_run(shop, None) == second  # the newest
    assert resolve_run(shop, None, active=first) == first  # the caller's active run
    assert resolve_run(shop, None, active="gone") == second
    assert resolve_run(shop, first) == first
    with pytest.raises(RegistryError, match="run 'nope' not found"):
        resolve_run(shop, "nope")

    with pytest.raises(RegistryError, match="only a run fitted on all data can be"):
        promote(shop, second)
    assert not (runs_dir(shop) / registry.PRODUCTION).exists()

    alld = ok(capsys, "train", shop, "--all-data", "--from-run", second)["run_id"]
    assert production_run(shop) is None and resolve_run(shop, None) == alld  # newest
    promote(shop, alld)
    mark = json.loads((runs_dir(shop) / registry.PRODUCTION).read_text())
    assert mark["run_id"] == alld and mark["from_run"] == second
    newer = ok(capsys, "train", shop, "--model", "popularity")["run_id"]
    assert production_run(shop) == alld
    assert resolve_run(shop, None) == alld  # production beats newest and active
    assert resolve_run(shop, None, active=newer) == alld
    assert resolve_run(shop, newer) == newer
    assert [r.run_id for r in list_runs(shop)] == [first, second, alld, newer]  # not a run

    delete_run(shop, alld)
    assert production_run(shop) is None
    assert not (runs_dir(shop) / registry.PRODUCTION).exists()
    assert resolve_run(shop, None) == newer
    # deleting a run that is not the production run keeps the mark
    again = ok(capsys, "promote", shop, "--run", second)["production"]
    delete_run(shop, first)
    assert production_run(shop) == again


def test_promote_an_all_data_run_marks_it_without_refitting(shop: str, capsys) -> None:  # noqa: ANN001
    src = ok(capsys, "train", shop, "--model", "popularity")["run_id"]
    alld = ok(capsys, "train", shop, "--all-data", "--from-run", src)["run_id"]
    n = len(list_runs(shop))
    out = ok(capsys, "promote", shop, "--run", alld)
    assert (out["production"], out["trained"], out["from_run"]) == (alld, False, src)
    assert len(list_runs(shop)) == n


def test_production_mark_ignores_a_damaged_or_dangling_file(shop: str, capsys) -> None:  # noqa: ANN001
    src = ok(capsys, "train", shop, "--model", "popularity")["run_id"]
    path = runs_dir(shop) / registry.PRODUCTION
    for text in ("not json", '{"run_id": "../../etc"}', '{"run_id": "gone-run"}', "[1]"):
        path.write_text(text)
        assert production_run(shop) is None and resolve_run(shop, None) == src


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(st.sampled_from(["eval", "all", "promote", "delete"]), max_size=7))
def test_resolve_run_rule(data_dir: Path, ops: list[str]) -> None:
    """Whatever runs were saved, promoted and deleted: resolve_run(None) is the production run
    when one is marked, else the newest run; the mark always names an existing all-data run."""
    from ltrec.models.popularity import Popularity
    from tests.models.conformance import conformance_data

    # a fresh runs folder per example (no store: resolving a run never reads the data)
    name = f"p{uuid.uuid4().hex[:10]}"
    data = conformance_data()
    model = Popularity().fit(data)
    marked: str | None = None
    for op in ops:
        runs = [r.run_id for r in list_runs(name)]
        if op in ("eval", "all"):
            extra = {"split": dict(registry.NO_SPLIT)} if op == "all" else {}
            save_run(model, dataset=name, data=data, extra=extra)
        elif op == "promote" and runs:
            target = runs[-1]
            if registry.is_all_data(run_manifest(name, target)):
                promote(name, target)
                marked = target
            else:
                with pytest.raises(RegistryError):
                    promote(name, target)
        elif op == "delete" and runs:
            delete_run(name, runs[0])
            marked = None if runs[0] == marked else marked
        assert production_run(name) == marked
        runs = [r.run_id for r in list_runs(name)]
        if runs:
            assert resolve_run(name, None) == (marked or runs[-1])
        if marked:
            assert registry.is_all_data(run_manifest(name, marked))


# ---------------------------------------------------------------------------- commands


def test_evaluate_refuses_an_all_data_run(shop: str, capsys) -> None:  # noqa: ANN001
    src = ok(capsys, "train", shop, "--model", "popularity")["run_id"]
    prod = ok(capsys, "promote", shop, "--run", src)["production"]
    want = (
        f"run {prod} is a production run: a production run has no test split; evaluate its "
        f"source run {src}"
    )
    for extra in ([], ["--rerank", '{"strategy": "tail_boost", "beta": 0.5}']):
        code, out = cli(capsys, "evaluate", shop, "--run", prod, *extra)
        assert code == 2
        assert out["error"]["type"] == "NoTestSplitError"
        assert out["error"]["message"] == want
        assert out["error"]["hint"] == f"`ltrec evaluate {shop} --run {src}`"
    with pytest.raises(NoTestSplitError, match="a production run has no test split"):
        RecSession.open(shop, prod).evaluate(10)
    assert ok(capsys, "evaluate", shop, "--run", src)["run_id"] == src  # the source works


def test_cli_json_keys_and_export_default(shop: str, capsys, tmp_path: Path) -> None:  # noqa: ANN001
    src = ok(capsys, "train", shop, "--model", "ease")
    assert (src["all_data"], src["from_run"], src["source_metrics"]) == (False, None, {})
    listed = ok(capsys, "runs", shop)
    assert listed["production"] is None
    assert [(r["all_data"], r["from_run"], r["production"]) for r in listed["runs"]] == [
        (False, None, False)
    ]
    out = ok(capsys, "promote", shop, "--run", src["run_id"])
    assert set(out) == {
        "dataset",
        "run_id",
        "production",
        "from_run",
        "model",
        "trained",
        "train_seconds",
        "data_import_id",
        "previous",
        "source_metrics",
    }
    assert out["run_id"] == out["production"] and out["previous"] is None
    assert out["source_metrics"] == src["metrics"] and out["dataset"] == shop
    listed = ok(capsys, "runs", shop)
    assert listed["production"] == out["production"]
    assert [
        (r["run_id"], r["all_data"], r["from_run"], r["production"]) for r in listed["runs"]
    ] == [
        (src["run_id"], False, None, False),
        (out["production"], True, src["run_id"], True),
    ]
    again = ok(capsys, "promote", shop, "--run", src["run_id"])
    assert again["previous"] == out["production"] and again["production"] != out["production"]

    # export with no --run uses the production run, with every user of the data
    file = tmp_path / "lists.csv"
    exp = ok(capsys, "export", shop, "--out", str(file), "--k", "3")
    assert exp["run_id"] == again["production"]
    with file.open() as fh:
        users = {row["user_id"] for row in csv.DictReader(fh)}
    assert LATE in users and len(users) == exp["users"] == 91
    # an explicit run still wins
    assert (
        ok(capsys, "export", shop, "--run", src["run_id"], "--out", str(file))["run_id"]
        == (src["run_id"])
    )


def test_text_output(shop: str, capsys) -> None:  # noqa: ANN001
    src = ok(capsys, "train", shop, "--model", "popularity")["run_id"]
    assert main(["promote", shop, "--run", src]) == 0
    text = capsys.readouterr().out
    prod = production_run(shop)
    assert text.startswith(f"production run of {shop}: {prod} (popularity, fitted on all data")
    assert main(["runs", shop]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(prod) and lines[1].endswith("PRODUCTION")
    assert f"all data, from {src}" in lines[1]


# ---------------------------------------------------------------------------- the service


def test_a_viewer_cannot_promote(shop: str, data_dir: Path, capsys) -> None:  # noqa: ANN001
    src = ok(capsys, "train", shop, "--model", "popularity")["run_id"]
    before = _digest(runs_dir(shop))
    with pytest.raises(PermissionDenied, match="may not train"):
        services.promote(VIEWER, shop, src, data_dir=data_dir)
    entry = audit.read(data_dir)[-1]
    assert (entry.who, entry.action, entry.target, entry.outcome) == (
        VIEWER.email,
        "promote",
        f"run {src} of {shop}",
        "denied",
    )
    assert _digest(runs_dir(shop)) == before and production_run(shop) is None
    out = services.promote(ANALYST, shop, src, data_dir=data_dir)
    entry = audit.read(data_dir)[-1]
    assert (entry.who, entry.action, entry.outcome, entry.message) == (
        ANALYST.email,
        "promote",
        "ok",
        f"production run {out['production']}",
    )
    assert production_run(shop) == out["production"]


def _promote_and_die(data_dir: str, run_id: str) -> None:
    """Child: promote, killing itself (SIGKILL) half-way through the fit."""
    os.environ["LTREC_DATA_DIR"] = data_dir

    def progress(done: float, msg: str) -> None:
        if done >= 0.5:
            os.kill(os.getpid(), signal.SIGKILL)

    services.promote(LOCAL, "shop", run_id, progress=progress, data_dir=data_dir)


def test_a_failed_promote_leaves_the_registry_unchanged(shop: str, data_dir: Path, capsys) -> None:  # noqa: ANN001
    src = ok(capsys, "train", shop, "--model", "ease")["run_id"]
    prod = ok(capsys, "promote", shop, "--run", src)["production"]
    before = _digest(runs_dir(shop))
    for bad in ("no-such-run", "../../etc", "a b"):
        code, out = cli(capsys, "promote", shop, "--run", bad)
        assert code == 2 and out["error"]["type"] == "RegistryError", out
    assert audit.read(data_dir)[-1].outcome == "error"
    # killed during the fit: no new run, no temporary folder, the old mark stays
    child = mp.get_context("spawn").Process(target=_promote_and_die, args=(str(data_dir), src))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    assert _digest(runs_dir(shop)) == before
    assert [p.name for p in runs_dir(shop).iterdir() if p.name.startswith(".tmp")] == []
    assert production_run(shop) == prod
    # a fit that fails (a bad override) marks nothing either
    code, out = cli(capsys, "promote", shop, "--run", src, "--set", "lambda_=-1")
    assert code == 2 and _digest(runs_dir(shop)) == before


def test_a_stale_production_run_is_refused_with_the_promote_remedy(
    shop: str,
    capsys,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    src = ok(capsys, "train", shop, "--model", "popularity")["run_id"]
    prod = ok(capsys, "promote", shop, "--run", src)["production"]
    _add_late_user(shop)  # an append: every run is stale now
    assert [r["stale"] for r in ok(capsys, "runs", shop)["runs"]] == [True, True]
    code, out = cli(capsys, "export", shop, "--out", str(tmp_path / "x.csv"))
    assert code == 2 and out["error"]["type"] == "StaleRunError"
    assert out["error"]["message"].startswith(f"run {prod} is stale: dataset 'shop' had data")
    assert out["error"]["hint"].startswith(
        f"fit it again on the current data (`ltrec promote {shop} --run {src}`)"
    )
    # promoting again refits on the current data (the source's figures marked stale)
    again = ok(capsys, "promote", shop, "--run", src)["production"]
    assert run_manifest(shop, again)["source"]["stale"] is True
    assert ok(capsys, "export", shop, "--out", str(tmp_path / "x.csv"))["run_id"] == again
