"""Stale model runs (issue 15 §6): a run records the import its data came from; after the data
changes the run is stale in `ltrec runs`, the CLI JSON, the Model Lab and the Rerank Studio, and
is refused (exit 2, what changed, the remedy) unless --allow-stale; deleting a dataset deletes its
runs and saved simulations.

Real parts throughout: CSV files imported by `ltrec import`, popularity / item-kNN runs trained by
`ltrec train`, the Model Lab and Rerank Studio pages rendered by AppTest.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ltrec.cli import main
from ltrec.models.registry import MANIFEST, list_runs, run_staleness, runs_dir
from ltrec.store import read_meta, writing
from ltrec.store.connect import connect
from tests.app.conftest import APP


def _events(path: Path, seed: int, users: int = 40) -> Path:
    """A small event log: 40 users x 12 events over 30 items (5 of them popular)."""
    rnd = random.Random(seed)
    rows = ["user_id,item_id,event_type,timestamp"]
    for u in range(users):
        for day in range(12):
            item = rnd.randrange(30) if rnd.random() < 0.5 else rnd.randrange(5)
            event = rnd.choice(["view", "view", "cart", "purchase"])
            rows.append(f"u{u},i{item},{event},2024-01-{day + 1:02d} 10:00:00")
    path.write_text("\n".join(rows) + "\n")
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "a": _events(tmp_path / "a.csv", seed=1),
        "b": _events(tmp_path / "b.csv", seed=2, users=30),
    }


@pytest.fixture(scope="module")
def _trained_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`shop` imported from a.csv (the same seed as ``files``) with one popularity run, built
    once per module (an import runs a worker process)."""
    root = tmp_path_factory.mktemp("stale")
    data = root / "data"
    a = str(_events(root / "a.csv", seed=1))
    assert main(["--data-dir", str(data), "import", "shop", "--events", a]) == 0
    assert main(["--data-dir", str(data), "train", "shop", "--model", "popularity"]) == 0
    (run,) = [p.name for p in (data / "models" / "shop").iterdir() if p.is_dir()]
    return data, run


@pytest.fixture()
def trained(capsys, files, data_dir, _trained_built) -> str:  # noqa: ANN001
    """Dataset `shop` imported from a.csv with one fresh popularity run (this test's copy);
    returns the run id."""
    src, run = _trained_built
    shutil.copytree(src, data_dir, dirs_exist_ok=True)
    capsys.readouterr()
    (listed,) = _runs(capsys)
    assert listed["run_id"] == run and listed["stale"] is False
    manifest = json.loads((runs_dir("shop") / run / MANIFEST).read_text())
    assert len(manifest["data_import_id"]) == 32
    return run


def _runs(capsys) -> list[dict]:  # noqa: ANN001
    return cli_json(capsys, "runs", "shop")["runs"]


def _assert_refused(capsys, run: str, what: str, tmp_path: Path) -> None:  # noqa: ANN001
    """recommend, evaluate and export each exit 2 naming what changed and the remedy."""
    out = tmp_path / "lists.csv"
    for argv in (
        ["recommend", "shop", "--run", run, "--user", "u3"],
        ["evaluate", "shop", "--run", run],
        ["export", "shop", "--run", run, "--out", str(out)],
        ["recommend", "shop", "--run", run, "--user", "u3", "--rerank", '{"strategy": "mmr"}'],
    ):
        code, stdout, err = cli(capsys, *argv)
        assert code == 2, (argv, err)
        assert f"run {run} is stale: dataset 'shop' {what}" in err
        assert "retrain it (`ltrec train shop --model popularity`" in err
        assert "--allow-stale" in err
    assert not out.exists()


def test_replace_import_makes_a_run_stale_everywhere(capsys, files, trained, tmp_path) -> None:  # noqa: ANN001
    (fresh,) = _runs(capsys)
    assert fresh["run_id"] == trained and fresh["stale"] is False
    assert fresh["stale_reason"] is None
    assert cli(capsys, "recommend", "shop", "--run", trained, "--user", "u3")[0] == 0

    cli_json(capsys, "import", "shop", "--events", str(files["b"]), "--replace")
    (run,) = _runs(capsys)
    assert run["stale"] is True
    assert run["stale_reason"].startswith("dataset 'shop' was replaced (import --replace")
    code, text, _ = cli(capsys, "runs", "shop")
    assert code == 0 and "STALE: dataset 'shop' was replaced" in text
    _assert_refused(capsys, trained, "was replaced", tmp_path)

    # --allow-stale: the run's own lists (its training vocabulary), marked stale in the JSON.
    out = cli_json(
        capsys, "recommend", "shop", "--run", trained, "--user", "u3", "--k", "3", "--allow-stale"
    )
    assert out["stale"] is True and len(out["items"]) == 3
    # Evaluation needs the run's own training data, which the replace import removed.
    code, _, err = cli(capsys, "evaluate", "shop", "--run", trained, "--allow-stale")
    assert code == 2 and "changed since run" in err

    # A new run on the new data is fresh; the old one stays stale.
    new = cli_json(capsys, "train", "shop", "--model", "itemknn")["run_id"]
    assert {r["run_id"]: r["stale"] for r in _runs(capsys)} == {trained: True, new: False}


def test_same_file_reimported_is_stale_but_usable_with_allow_stale(
    capsys, files, trained, tmp_path  # noqa: ANN001
) -> None:
    cli_json(capsys, "import", "shop", "--events", str(files["a"]), "--replace")
    assert _runs(capsys)[0]["stale"] is True  # staleness is by import, not by content
    _assert_refused(capsys, trained, "was replaced", tmp_path)
    # The data is the same, so the run's split rebuilds: evaluate and export work when allowed.
    ev = cli_json(capsys, "evaluate", "shop", "--run", trained, "--allow-stale")
    assert ev["stale"] is True and ev["metrics"]["ndcg@10"]["n"] > 0
    out = tmp_path / "lists.csv"
    ex = cli_json(
        capsys, "export", "shop", "--run", trained, "--out", str(out), "--allow-stale"
    )
    assert ex["stale"] is True and ex["rows"] > 0 and out.is_file()


def test_append_import_makes_a_run_stale(capsys, files, trained, tmp_path) -> None:  # noqa: ANN001
    cli_json(capsys, "import", "shop", "--events", str(files["b"]))  # append
    (run,) = _runs(capsys)
    assert run["stale"] is True and "had data added (an append import" in run["stale_reason"]
    _assert_refused(capsys, trained, "had data added", tmp_path)


def test_a_new_dataset_of_the_same_name_makes_leftover_runs_stale(
    capsys, files, trained, data_dir, tmp_path  # noqa: ANN001
) -> None:
    # Runs that outlived their dataset (a delete that crashed after removing the file, or a
    # folder restored by hand) must not pass for runs of a new dataset with the same name.
    kept = tmp_path / "kept-runs"
    shutil.copytree(runs_dir("shop"), kept)
    assert cli(capsys, "delete", "shop", "--yes")[0] == 0
    shutil.copytree(kept, runs_dir("shop"))
    (run,) = _runs(capsys)
    assert run["stale"] is True
    assert run["stale_reason"] == "dataset 'shop' no longer exists (it was deleted)"
    cli_json(capsys, "import", "shop", "--events", str(files["a"]))  # same file, new dataset
    (run,) = _runs(capsys)
    assert run["stale"] is True and "was deleted and created again" in run["stale_reason"]
    _assert_refused(capsys, trained, "was deleted and created again", tmp_path)


def test_an_embedding_cache_write_keeps_runs_fresh(capsys, trained) -> None:  # noqa: ANN001
    def meta() -> dict[str, str]:
        con = connect("shop")
        try:
            return read_meta(con)
        finally:
            con.close()

    before = meta()
    with writing("shop", data_changed=False) as con:  # what the text-embedding cache does
        con.execute("CREATE TABLE IF NOT EXISTS scratch (x INTEGER)")
    after = meta()
    assert after["import_id"] != before["import_id"]  # every write: new cache key
    assert after["data_import_id"] == before["data_import_id"]  # the data did not change
    assert _runs(capsys)[0]["stale"] is False
    assert cli(capsys, "recommend", "shop", "--run", trained, "--user", "u3")[0] == 0


def test_a_run_without_a_recorded_import_is_stale(capsys, trained) -> None:  # noqa: ANN001
    path = runs_dir("shop") / trained / MANIFEST
    manifest = json.loads(path.read_text())
    del manifest["data_import_id"]  # a run saved before ltrec recorded imports
    path.write_text(json.dumps(manifest))
    (run,) = _runs(capsys)
    assert run["stale"] is True and "predates import tracking" in run["stale_reason"]
    code, _, err = cli(capsys, "recommend", "shop", "--run", trained, "--user", "u3")
    assert code == 2 and "does not record which import" in err


def test_delete_removes_runs_and_simulations(capsys, trained, data_dir) -> None:  # noqa: ANN001
    cli_json(capsys, "train", "shop", "--model", "itemknn")
    sim = cli_json(
        capsys, "simulate", "shop", "--policy", '{"model": "popularity"}', "--rounds", "2",
        "--users", "10",
    )
    assert (data_dir / "simulations" / "shop" / sim["id"]).is_dir()
    assert len(_runs(capsys)) == 2
    out = cli_json(capsys, "delete", "shop", "--yes")
    assert out == {
        "deleted": "shop",
        "removed": ["shop.duckdb", "models/shop/", "simulations/shop/"],
    }
    assert sorted(p.name for p in data_dir.rglob("*") if "shop" in p.name) == [".shop.lock"]
    assert list_runs("shop") == []
    code, _, err = cli(capsys, "runs", "shop")
    assert code == 0  # no runs
    code, _, err = cli(capsys, "delete", "shop", "--yes")
    assert code == 2 and "dataset 'shop' not found" in err


def test_a_delete_that_crashed_after_its_commit_point_is_finished_by_the_next(
    capsys, trained, data_dir  # noqa: ANN001
) -> None:
    # The commit point of a delete is the dataset file's rename to a hidden name; a process
    # dying right after it leaves the runs behind (shown stale) and the hidden file.
    os.replace(data_dir / "shop.duckdb", data_dir / ".shop.0badc0de.deleted.duckdb")
    (run,) = _runs(capsys)
    assert run["stale"] is True and "no longer exists" in run["stale_reason"]
    code, _, err = cli(capsys, "datasets")
    assert code == 0
    out = cli_json(capsys, "delete", "shop", "--yes")
    assert out["removed"] == ["models/shop/"]
    assert sorted(p.name for p in data_dir.rglob("*") if "shop" in p.name) == [".shop.lock"]


def test_staleness_is_one_function(trained) -> None:  # noqa: ANN001
    (info,) = list_runs("shop")
    assert info.staleness == run_staleness("shop", info.manifest)
    assert info.to_dict()["stale"] is False


# ---------------------------------------------------------------------------- pages


def _page(path: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def test_model_lab_and_studio_show_and_refuse_a_stale_run(capsys, files, trained) -> None:  # noqa: ANN001
    at = _page("app_pages/model_lab.py")
    table = at.dataframe[0].value
    assert table["stale"].tolist() == [""] and not at.warning

    cli_json(capsys, "import", "shop", "--events", str(files["a"]), "--replace")
    at = _page("app_pages/model_lab.py")
    table = at.dataframe[0].value
    assert table["run"].tolist() == [trained] and table["stale"].tolist() == ["stale"]
    assert [w.value for w in at.warning] == [
        "1 of 1 runs is stale: "
        + run_staleness("shop", list_runs("shop")[0].manifest).reason
        + ". Stale runs are refused by the Rerank Studio and by `ltrec recommend/evaluate/"
        "export` (unless --allow-stale); train them again on the current data."
    ]

    at = _page("app_pages/rerank_studio.py")
    assert at.selectbox(key="rs_run").value == trained
    errors = [e.value.replace("\\", "") for e in at.error]  # show_error escapes markdown
    assert len(errors) == 1 and f"run {trained} is stale: dataset 'shop' was replaced" in errors[0]
    at.checkbox(key="rs_allow_stale").check().run()
    assert not at.exception, at.exception
    assert not at.error


# ---------------------------------------------------------------------------- crash safety


def _delete_when_told(root: str, go) -> None:  # noqa: ANN001
    from ltrec.store import delete_dataset

    go.wait(30)
    delete_dataset("shop", root)


def test_a_delete_killed_at_any_moment_leaves_no_live_dataset_without_its_runs(
    capsys, trained, data_dir, tmp_path  # noqa: ANN001
) -> None:
    """SIGKILL a delete at random moments: the dataset is either whole (file, runs and
    simulations untouched) or gone, and a second delete always finishes the job."""
    import multiprocessing as mp
    import signal
    import time

    cli_json(
        capsys, "simulate", "shop", "--policy", '{"model": "popularity"}', "--rounds", "1",
        "--users", "5",
    )
    pristine = tmp_path / "pristine"
    shutil.copytree(data_dir, pristine)

    def tree(root: Path, sub: str) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in (root / sub / "shop").rglob("*"))

    ctx = mp.get_context("fork")  # no re-import: the kill lands inside the delete itself
    rnd = random.Random(0)
    for _ in range(12):
        shutil.rmtree(data_dir)
        shutil.copytree(pristine, data_dir)
        go = ctx.Event()
        proc = ctx.Process(target=_delete_when_told, args=(str(data_dir), go))
        proc.start()
        go.set()
        time.sleep(rnd.uniform(0.0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        store_left = (data_dir / "shop.duckdb").exists()
        if store_left:  # killed before the commit point: untouched
            assert tree(data_dir, "models") == tree(pristine, "models")
            assert tree(data_dir, "simulations") == tree(pristine, "simulations")
            assert _runs(capsys)[0]["stale"] is False
        else:
            assert all(r["stale"] for r in _runs(capsys))  # leftovers can never pass as fresh
        # what the second delete finds: the store, or its runs or simulations folder (hidden
        # trash is swept either way)
        folders = [data_dir / sub / "shop" for sub in ("models", "simulations")]
        found = store_left or any(f.is_dir() for f in folders)
        code, _, err = cli(capsys, "delete", "shop", "--yes")
        if found:  # the second delete finishes the job
            assert code == 0, err
        else:  # the killed delete had moved everything away: nothing left to delete
            assert code == 2, err
            assert "dataset 'shop' not found" in err
        left = sorted(p.name for p in data_dir.rglob("*") if "shop" in p.name)
        assert left == [".shop.lock"]


def test_the_data_page_delete_removes_runs_and_simulations(capsys, trained, data_dir) -> None:  # noqa: ANN001
    cli_json(
        capsys, "simulate", "shop", "--policy", '{"model": "popularity"}', "--rounds", "1",
        "--users", "5",
    )
    assert (data_dir / "models" / "shop").is_dir() and (data_dir / "simulations" / "shop").is_dir()
    at = _page("app_pages/data.py")
    at.selectbox(key="data_del_pick").set_value("shop").run()
    at.text_input(key="data_del_confirm").set_value("shop").run()
    at.button(key="data_delete").click().run()
    assert not at.exception, at.exception
    assert sorted(p.name for p in data_dir.rglob("*") if "shop" in p.name) == [".shop.lock"]
    assert list_runs("shop") == []


def test_training_on_a_store_from_before_import_ids_gives_it_one(capsys, trained) -> None:  # noqa: ANN001
    with writing("shop", data_changed=False) as con:  # a store written before ids existed
        con.execute("DELETE FROM meta WHERE key LIKE 'data_%'")
    (old,) = _runs(capsys)
    assert old["stale"] is True  # its id is gone: cannot tell
    new = cli_json(capsys, "train", "shop", "--model", "popularity")
    con = connect("shop")
    try:
        meta = read_meta(con)
    finally:
        con.close()
    assert meta["data_change"] == "tracked" and meta["data_import_id"] == new["data_import_id"]
    assert {r["run_id"]: r["stale"] for r in _runs(capsys)} == {trained: True, new["run_id"]: False}
