"""Run registry: atomic writes, manifests, checksums verified before loading, the lock."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest

from ltrec.errors import RegistryError, TrainingBusyError
from ltrec.models.ease import EASE
from ltrec.models.popularity import Popularity
from ltrec.models.registry import MANIFEST, delete_run, list_runs, load_run, save_run
from ltrec.store import writing
from ltrec.store.connect import runs_dir, training_lock
from tests.models.conformance import conformance_data


@pytest.fixture()
def saved(data_dir: Path):
    with writing("shop", replace=True):  # the dataset the runs belong to (else they are stale)
        pass
    data = conformance_data()
    model = EASE(lambda_=1.0).fit(data)
    run = save_run(model, dataset="shop", data=data, metrics={"ndcg@10": {"mean": 0.5}}, k=10)
    return model, data, run


def test_save_writes_manifest_with_checksums(saved, data_dir: Path) -> None:
    model, data, run = saved
    assert run.path == data_dir / "models" / "shop" / run.run_id
    manifest = json.loads((run.path / MANIFEST).read_text())
    assert manifest["model"] == "ease" and manifest["params"]["lambda_"] == 1.0
    assert manifest["data"]["fingerprint"] == data.fingerprint
    assert manifest["metrics"]["ndcg@10"]["mean"] == 0.5
    assert set(manifest["files"]) == {"vocab.json", "model/config.json", "model/state.npz"}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    assert manifest["versions"]["numpy"] == np.__version__
    assert manifest["created_at"]
    # No temporary folder is left behind.
    assert [p.name for p in run.path.parent.iterdir() if p.name.startswith(".tmp")] == []


def test_load_round_trip_and_list(saved) -> None:
    model, data, run = saved
    loaded = load_run("shop", run.run_id)
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(loaded.model.score(users), model.score(users))
    assert loaded.item_ids.tolist() == data.item_ids.tolist()
    assert loaded.user_index("uT") == data.user_index["uT"] and loaded.user_index("zz") == -1
    second = save_run(Popularity().fit(data), dataset="shop", data=data)
    assert [r.run_id for r in list_runs("shop")] == [run.run_id, second.run_id]
    assert list_runs("elsewhere") == []


@pytest.mark.parametrize("damage", ["tamper", "truncate", "missing", "foreign", "symlink"])
def test_damaged_runs_fail_clearly_before_loading(saved, damage: str) -> None:
    _, _, run = saved
    state = run.path / "model" / "state.npz"
    if damage == "tamper":
        raw = bytearray(state.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        state.write_bytes(bytes(raw))
        match = "checksum"
    elif damage == "truncate":
        state.write_bytes(state.read_bytes()[:100])
        match = "wrong size"
    elif damage == "missing":
        state.unlink()
        match = "missing"
    elif damage == "foreign":
        (run.path / "model" / "evil.pkl").write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
        match = "foreign file"
    else:
        (run.path / "model" / "link.npz").symlink_to(state)
        match = "symlink"
    with pytest.raises(RegistryError, match=match):
        load_run("shop", run.run_id)


def test_a_pickled_npz_is_refused_even_with_matching_checksums(saved) -> None:
    """Someone rewrites state.npz with object arrays and fixes the manifest: no unpickling."""
    from ltrec.models.registry import sha256_file

    _, _, run = saved
    state = run.path / "model" / "state.npz"
    with open(state, "wb") as fh:
        np.savez(fh, base_pop=np.array([object()], dtype=object))
    manifest = json.loads((run.path / MANIFEST).read_text())
    manifest["files"]["model/state.npz"] = {
        "sha256": sha256_file(state),
        "bytes": state.stat().st_size,
    }
    (run.path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RegistryError, match="holds Python objects"):  # from its npz header
        load_run("shop", run.run_id)


def test_foreign_or_bad_manifest_and_bad_ids(saved) -> None:
    _, _, run = saved
    with pytest.raises(RegistryError, match="invalid run id"):
        load_run("shop", "../../etc")
    with pytest.raises(RegistryError, match="not found"):
        load_run("shop", "no-such-run")
    (run.path / MANIFEST).write_text(json.dumps({"hello": "world"}))
    with pytest.raises(RegistryError, match="not an ltrec run manifest"):
        load_run("shop", run.run_id)
    (run.path / MANIFEST).write_text("{not json")
    with pytest.raises(RegistryError, match="unreadable"):
        load_run("shop", run.run_id)
    assert list_runs("shop") == []  # a broken run is not listed


def test_delete(saved) -> None:
    _, _, run = saved
    delete_run("shop", run.run_id)
    assert not run.path.exists() and list_runs("shop") == []
    with pytest.raises(RegistryError, match="not found"):
        delete_run("shop", run.run_id)


def test_crash_mid_save_leaves_no_run(data_dir: Path) -> None:
    data = conformance_data()

    class Exploding(Popularity):
        def save(self, path):  # noqa: ANN001, ANN201
            super().save(path)
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_run(Exploding().fit(data), dataset="shop", data=data)
    assert list(runs_dir("shop").iterdir()) == [runs_dir("shop") / ".train.lock"]


def _hold_lock(path: str, ready, release) -> None:  # noqa: ANN001 - mp primitives
    os.environ["LTREC_DATA_DIR"] = path
    with training_lock("shop"):
        ready.set()
        release.wait(20)


def test_second_training_on_a_dataset_is_refused(data_dir: Path) -> None:
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(data_dir), ready, release))
    proc.start()
    try:
        assert ready.wait(20)
        with pytest.raises(TrainingBusyError, match="already being trained on dataset 'shop'"):
            with training_lock("shop"):
                pass
        with training_lock("other"):  # other datasets are free
            pass
    finally:
        release.set()
        proc.join(20)
    with training_lock("shop"), training_lock("shop"):  # re-entrant in one thread
        pass
