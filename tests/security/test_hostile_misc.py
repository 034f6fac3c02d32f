"""Hostile inputs outside the importer (issue 16 §8): deeply nested or oversize JSON settings, URL
parameter floods, crafted ``.npz`` files, damaged manifests, a store locked by another writer.

Every case runs the real ``ltrec`` command and asserts exit code 2, the message, and that the
store and the model registry are byte for byte unchanged (sha256 of every file; the lock files
and the audit log, which records the refusal, are not part of the store).
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import shutil
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltrec import safejson
from ltrec.cli import main
from ltrec.errors import ConfigError
from ltrec.models.registry import MANIFEST, check_npz, sha256_file
from ltrec.rerank.pipeline import from_query
from ltrec.store import writing
from ltrec.store.connect import lock_wait

ROWS = [
    f"u{u},i{(u * 7 + d) % 13},{('view', 'cart', 'purchase')[d % 3]},2024-02-{d + 1:02d} 09:00:00"
    for u in range(25)
    for d in range(10)
]


@pytest.fixture(scope="module")
def _built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One imported dataset ``shop`` with one popularity run, built once for the module."""
    root = tmp_path_factory.mktemp("hostile_misc")
    data, csv = root / "data", root / "events.csv"
    csv.write_text("user_id,item_id,event_type,timestamp\n" + "\n".join(ROWS) + "\n")
    assert main(["--data-dir", str(data), "import", "shop", "--events", str(csv)]) == 0
    assert main(["--data-dir", str(data), "train", "shop", "--model", "popularity"]) == 0
    (run,) = [p.name for p in (data / "models" / "shop").iterdir() if p.is_dir()]
    return data, run


@pytest.fixture()
def shop(_built, data_dir: Path, capsys) -> str:  # noqa: ANN001
    """This test's copy of the dataset and its run (in the test's own data dir); the run id."""
    src, run = _built
    shutil.copytree(src, data_dir, dirs_exist_ok=True)
    capsys.readouterr()
    return run


def checksums(root: Path) -> dict[str, str]:
    """sha256 of every file of the store and the registry (not locks, not the audit log)."""
    return {
        str(p.relative_to(root)): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock") and not p.name.startswith("audit")
    }


def refused(capsys, data_dir: Path, argv: list[str], message: str) -> str:  # noqa: ANN001
    """Run ``ltrec argv``: exit 2, ``message`` in stderr, nothing changed. Returns stderr."""
    before = checksums(data_dir)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    assert "internal error" not in err and "Traceback" not in err
    assert checksums(data_dir) == before
    return err


# ---------------------------------------------------------------------------- nested JSON

DEEP = "[" * 30_000 + "]" * 30_000  # 60,000 characters: under the size limit
DEEP_OBJ = '{"strategy": "none", "rules": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
LONG = json.dumps({"strategy": "tail_boost", "beta": 0.5, "pad": "x" * 70_000})


@pytest.mark.parametrize(
    ("command", "text", "message"),
    [
        ("recommend", DEEP, "the re-ranking setting is nested 30000 levels deep; at most 16"),
        ("evaluate", DEEP, "the re-ranking setting is nested 30000 levels deep; at most 16"),
        ("export", DEEP, "the re-ranking setting is nested 30000 levels deep; at most 16"),
        ("recommend", DEEP_OBJ, "the re-ranking setting is nested 41 levels deep; at most 16"),
        ("evaluate", LONG, f"the re-ranking setting is {len(LONG):,} characters long; at most"),
    ],
)
def test_nested_or_huge_rerank_json(capsys, data_dir, shop, tmp_path, command, text, message):  # noqa: ANN001
    argv = [command, "shop", "--run", shop, "--rerank", text]
    argv += {"recommend": ["--user", "u1"], "export": ["--out", str(tmp_path / "o.csv")]}.get(
        command, []
    )
    refused(capsys, data_dir, argv, message)
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DEEP, "the policy is nested 30000 levels deep; at most 16"),
        ('{"model": "popularity", "params": ' + "[" * 30 + "]" * 30 + "}", "nested 31 levels"),
        (
            '{"model": "popularity", "x": "' + "y" * 70_000 + '"}',
            "the policy is 70,032 characters long; at most 65,536",
        ),
    ],
)
def test_nested_or_huge_policy_json(capsys, data_dir, shop, text, message):  # noqa: ANN001
    refused(capsys, data_dir, ["simulate", "shop", "--policy", text, "--rounds", "1"], message)


def test_nested_set_value(capsys, data_dir, shop):  # noqa: ANN001
    refused(
        capsys,
        data_dir,
        ["train", "shop", "--model", "popularity", "--set", "by=" + DEEP],
        "--set by is nested 30000 levels deep; at most 16",
    )


def test_url_parameter_flood(capsys, data_dir, shop):  # noqa: ANN001
    # The URL form of a setting, as a shared Studio link carries it, with 600 category values.
    query = "strategy=none&" + "&".join(f"rules.include_categories=c{i}" for i in range(600))
    refused(
        capsys,
        data_dir,
        ["recommend", "shop", "--run", shop, "--user", "u1", "--rerank", query],
        "the URL holds 601 re-ranking parameters",
    )
    with pytest.raises(ConfigError, match="at most 500 parameters"):
        from_query([("rules.include_categories", f"c{i}") for i in range(501)])
    with pytest.raises(ConfigError, match="characters long; at most 65,536"):
        from_query("strategy=none&rules.exclude_categories=" + "x" * 70_000)


def _nesting(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_nesting(v) for v in value.values()), default=0)
    return 0


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:', max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_depth_is_the_json_nesting(value: object) -> None:
    # brackets and quotes inside strings do not count
    assert safejson.depth(json.dumps(value)) == _nesting(value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='[]{}"\\1, :', max_size=400))
def test_bounded_loads_fails_only_with_a_config_error(text: str) -> None:
    try:
        value = safejson.loads(text, "the setting")
    except ConfigError as err:
        assert err.exit_code == 2
    else:
        assert value == json.loads(text) and _nesting(value) <= safejson.MAX_DEPTH


# ---------------------------------------------------------------------------- crafted runs


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["<f8", "<i4", "|b1", "<U3", "<c8"]),
            st.lists(st.integers(0, 5), min_size=0, max_size=3),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_check_npz_accepts_every_plain_savez(tmp_path_factory, arrays) -> None:  # noqa: ANN001
    path = tmp_path_factory.mktemp("npz") / "state.npz"
    made = {f"a{i}": np.zeros(tuple(shape), dtype=dt) for i, (dt, shape) in enumerate(arrays)}
    with open(path, "wb") as fh:
        np.savez(fh, **made)
    assert check_npz(path) == sum(a.nbytes for a in made.values())


def _reseal(run_dir: Path) -> None:
    """Rewrite the manifest's checksums as an attacker who controls the whole folder would."""
    path = run_dir / MANIFEST
    manifest = json.loads(path.read_text())
    for rel in manifest["files"]:
        p = run_dir / rel
        manifest["files"][rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    path.write_text(json.dumps(manifest))


def _npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()  # magic, version 1.0, header dict, padding


def _write_npz(path: Path, members: dict[str, bytes], deflate: tuple[str, ...] = ()) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            how = zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED
            zf.writestr(name, data, compress_type=how)


def _state_members(run_dir: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(run_dir / "model" / "state.npz") as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _crafted(run_dir: Path, kind: str) -> None:
    members = _state_members(run_dir)
    state = run_dir / "model" / "state.npz"
    if kind == "huge":  # declares 10^13 float64 (80 TB) but stores 16 bytes
        hdr = _npy_header((10**13,), "<f8")
        members["base_pop.npy"] = hdr + b"\0" * 16
        _write_npz(state, members)
    elif kind == "bomb":  # a compressed member that inflates to 512 MB of zeros
        hdr = _npy_header((64 * 1024**2,), "<f8")
        members["base_pop.npy"] = hdr + bytes(64 * 1024**2 * 8)
        _write_npz(state, members, deflate=("base_pop.npy",))
    elif kind == "object":
        hdr = _npy_header((3,), "|O")
        members["base_pop.npy"] = hdr + b"\x80\x04N."  # the start of a pickle
        _write_npz(state, members)
    elif kind == "not_zip":
        state.write_bytes(b"PK\x03\x04" + os.urandom(64))
    _reseal(run_dir)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (
            "huge",
            "state.npz is damaged: array 'base_pop.npy' declares shape (10000000000000,) of "
            "float64 (80,000,000,000,000 bytes) but stores 16 bytes",
        ),
        ("bomb", "state.npz is damaged: array 'base_pop.npy' is compressed or larger than"),
        ("object", "state.npz is damaged: array 'base_pop.npy' holds Python objects"),
        ("not_zip", "state.npz is damaged: not a plain array archive (BadZipFile"),
    ],
)
def test_crafted_npz_is_refused_from_its_headers(capsys, data_dir, shop, kind, message):  # noqa: ANN001
    _crafted(data_dir / "models" / "shop" / shop, kind)
    err = refused(
        capsys, data_dir, ["recommend", "shop", "--run", shop, "--user", "u1"], message
    )
    assert "delete it and train again" in err


@pytest.mark.parametrize(
    ("field", "value", "what"),
    [
        ("params", "lambda_=1", "a string, expected an object"),
        ("params", [1, 2], "a list, expected an object"),
        ("metrics", "ndcg", "a string, expected an object"),
        ("k", "10", "a string, expected a number"),
        ("data", 5, "a number, expected an object"),
        ("split_config", True, "true/false, expected an object"),
        ("data_import_id", {"x": 1}, "an object, expected a string"),
    ],
)
def test_manifest_field_of_the_wrong_type(capsys, data_dir, shop, field, value, what):  # noqa: ANN001
    path = data_dir / "models" / "shop" / shop / MANIFEST
    manifest = json.loads(path.read_text())
    manifest[field] = value
    path.write_text(json.dumps(manifest))
    for argv in (
        ["recommend", "shop", "--run", shop, "--user", "u1"],
        ["evaluate", "shop", "--run", shop],
    ):
        refused(
            capsys,
            data_dir,
            argv,
            f"run {shop} is damaged: manifest field '{field}' is {what}",
        )
    # the listing skips the damaged run instead of failing
    assert main(["runs", "shop", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == []


def test_manifest_with_an_invalid_split_config(capsys, data_dir, shop):  # noqa: ANN001
    path = data_dir / "models" / "shop" / shop / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["split_config"] = {"test_share": "lots", "nonsense": 1}
    path.write_text(json.dumps(manifest))
    refused(
        capsys,
        data_dir,
        ["evaluate", "shop", "--run", shop],
        f"run {shop} is damaged: its split_config is not a valid split setting",
    )


# ---------------------------------------------------------------------------- a busy store


def _hold(root: str, ready, release) -> None:  # noqa: ANN001
    os.environ["LTREC_DATA_DIR"] = root
    with writing("shop", wait=0):
        ready.set()
        release.wait(60)


@pytest.fixture()
def locked(data_dir: Path, shop: str, monkeypatch):  # noqa: ANN001
    """Another process holds the dataset's writer lock while the test runs."""
    monkeypatch.setenv("LTREC_LOCK_WAIT_S", "0.5")
    assert lock_wait() == 0.5
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(data_dir), ready, release))
    proc.start()
    try:
        assert ready.wait(60)
        yield
    finally:
        release.set()
        proc.join(30)
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()


BUSY = "dataset 'shop' is busy: it is being written by another import, delete or training run"


def test_delete_while_another_writer_holds_the_store(capsys, data_dir, locked):  # noqa: ANN001
    err = refused(capsys, data_dir, ["delete", "shop", "--yes"], BUSY + " (waited 0.5 s)")
    assert "busy, try again" in err
    assert (data_dir / "shop.duckdb").is_file() and (data_dir / "models" / "shop").is_dir()


def test_import_while_another_writer_holds_the_store(capsys, data_dir, locked, tmp_path):  # noqa: ANN001
    csv = tmp_path / "more.csv"
    csv.write_text("user_id,item_id,event_type,timestamp\nu9,i1,view,2024-03-01 10:00:00\n")
    err = refused(capsys, data_dir, ["import", "shop", "--events", str(csv)], BUSY)
    assert "busy, try again" in err


def test_studio_link_with_a_parameter_flood_falls_back_with_a_warning(data_dir, shop):  # noqa: ANN001
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP

    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["run"] = shop
    at.query_params["c1.strategy"] = "none"
    at.query_params["c1.rules.include_categories"] = [f"c{i}" for i in range(600)]
    at.run()
    at.switch_page("app_pages/rerank_studio.py").run()
    assert not at.exception, at.exception
    warnings = [w.value.replace("\\", "") for w in at.warning]
    assert any(
        w.startswith("column 1: the URL holds 601 re-ranking parameters (") for w in warnings
    ), warnings
    assert not at.error
