"""Pseudonymised import: keyed HMAC of user ids; the key and the raw ids never reach the store."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pyarrow as pa
import pytest

from ltrec.cli import main
from ltrec.errors import BadInputError
from ltrec.store import connect, dataset_path, read_meta
from ltrec.store.importing import import_dataset
from ltrec.store.privacy import (
    ENV_KEY,
    MissingKeyError,
    key_check,
    pseudonym,
    pseudonymize_array,
    resolve_key,
)

KEY = "k3y-for-tests-0123456789abcdef"
OTHER = "another-key-for-tests-fedcba9876"
RAW = ["customer-0001-alice", "customer-0002-bob", "customer-0003-carol"]


def _events(path: Path, bad_line: bool = True) -> Path:
    rows = ["user_id,item_id,event_type,ts"]
    for k, u in enumerate(RAW):
        rows += [f"{u},sku-{k},view,2024-01-0{k + 1} 10:00:00", f"{u},sku-9,purchase,2024-01-05"]
    if bad_line:
        rows.append(f"{RAW[0]},sku-1,teleport,2024-01-06")  # rejected: unknown event type
    path.write_text("\n".join(rows) + "\n")
    return path


def _users(path: Path) -> Path:
    path.write_text("user_id,region\n" + "".join(f"{u},north\n" for u in RAW))
    return path


def _all_strings(name: str) -> str:
    """Every VARCHAR value of every table, concatenated (what SQL can see)."""
    con = connect(name)
    try:
        parts = []
        for (t,) in con.execute("SHOW TABLES").fetchall():
            q = '"' + t.replace('"', '""') + '"'
            df = con.execute(f"SELECT * FROM {q}").df()  # noqa: S608 - quoted table name
            parts.append(df.astype(str).to_csv())
        return "\n".join(parts)
    finally:
        con.close()


def test_pseudonym_is_keyed_hmac() -> None:
    key = KEY.encode()
    want = "u_" + hmac.new(key, RAW[0].encode(), hashlib.sha256).hexdigest()[:24]
    assert pseudonym(RAW[0], key) == want
    assert pseudonym(RAW[0], key) == pseudonym(RAW[0], key)
    assert pseudonym(RAW[0], key) != pseudonym(RAW[0], OTHER.encode())
    assert pseudonym(RAW[0], key) != pseudonym(RAW[1], key)
    arr = pseudonymize_array(pa.array([RAW[0], None, RAW[1]]), key)
    assert arr.to_pylist() == [pseudonym(RAW[0], key), None, pseudonym(RAW[1], key)]


def test_key_resolution(monkeypatch) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)
    with pytest.raises(MissingKeyError) as err:
        resolve_key(None)
    assert ENV_KEY in str(err.value) and err.value.exit_code == 2
    with pytest.raises(BadInputError, match="too short"):
        resolve_key("short")
    monkeypatch.setenv(ENV_KEY, KEY)
    assert resolve_key(None) == KEY.encode()
    assert resolve_key(OTHER) == OTHER.encode()  # an explicit key wins


def test_import_pseudonymizes_events_users_and_rejects(tmp_path, data_dir) -> None:
    ev, us = _events(tmp_path / "ev.csv"), _users(tmp_path / "us.csv")
    rep = import_dataset("p", ev, users=us, pseudonymize=True, hmac_key=KEY, max_reject_share=0.5)
    assert rep.committed and rep.pseudonymized and rep.rejected == 1
    assert all(s["raw"].startswith("(withheld") for s in rep.sample_rejects)
    assert rep.to_dict()["pseudonymized"] is True
    con = connect("p")
    try:
        users = {r[0] for r in con.execute("SELECT DISTINCT user_id FROM events").fetchall()}
        table = {r[0] for r in con.execute("SELECT user_id FROM users").fetchall()}
        derived = {r[0] for r in con.execute("SELECT user_id FROM user_derived").fetchall()}
        raws = con.execute("SELECT raw FROM rejects").fetchall()
        meta = read_meta(con)
        region = con.execute("SELECT DISTINCT region FROM users").fetchall()
    finally:
        con.close()
    want = {pseudonym(u, KEY.encode()) for u in RAW}
    assert users == table == derived == want  # events and users join up on the pseudonyms
    assert region == [("north",)]
    assert raws == [(None,)]
    assert meta["pseudonymized"] == "hmac-sha256"
    assert meta["pseudonym_key_check"] == key_check(KEY.encode())
    # neither the key nor any raw id is anywhere: SQL-visible values, meta, or the file's bytes
    text = _all_strings("p") + json.dumps(meta)
    blob = dataset_path("p").read_bytes()
    for secret in [KEY, *RAW]:
        assert secret not in text
        assert secret.encode() not in blob


def test_control_raw_import_keeps_ids_in_file(tmp_path) -> None:
    """The byte check above is not vacuous: a plain import does leave the ids in the file."""
    import_dataset("raw", _events(tmp_path / "ev.csv"), max_reject_share=0.5)
    blob = dataset_path("raw").read_bytes()
    assert all(u.encode() in blob for u in RAW)


def test_same_key_joins_other_key_refused(tmp_path) -> None:
    ev = _events(tmp_path / "ev.csv", bad_line=False)
    import_dataset("p", ev, pseudonymize=True, hmac_key=KEY)
    more = tmp_path / "more.csv"
    more.write_text(f"user_id,item_id,event_type,ts\n{RAW[0]},sku-7,view,2024-02-01\n")
    import_dataset("p", more, pseudonymize=True, hmac_key=KEY)
    con = connect("p")
    try:
        n_users = con.execute("SELECT count(DISTINCT user_id) FROM events").fetchone()[0]
    finally:
        con.close()
    assert n_users == len(RAW)  # the returning user kept one pseudonym
    before = dataset_path("p").read_bytes()
    with pytest.raises(BadInputError, match="different key"):
        import_dataset("p", more, pseudonymize=True, hmac_key=OTHER)
    with pytest.raises(BadInputError, match="holds pseudonymised"):
        import_dataset("p", more)
    assert dataset_path("p").read_bytes() == before
    # a dataset of raw ids refuses pseudonymised rows; --replace starts over
    import_dataset("raw", ev)
    with pytest.raises(BadInputError, match="holds raw user ids"):
        import_dataset("raw", more, pseudonymize=True, hmac_key=KEY)
    import_dataset("raw", ev, pseudonymize=True, hmac_key=KEY, replace=True)


def test_dry_run_pseudonymizes_samples(tmp_path) -> None:
    rep = import_dataset(
        "p",
        _events(tmp_path / "ev.csv"),
        dry_run=True,
        pseudonymize=True,
        hmac_key=KEY,
        max_reject_share=0.5,
    )
    assert not dataset_path("p").exists()
    assert rep.rejected == 1 and RAW[0] not in json.dumps(rep.to_dict())


def test_cli_pseudonymize(tmp_path, monkeypatch, capsys) -> None:
    ev = _events(tmp_path / "ev.csv", bad_line=False)
    monkeypatch.delenv(ENV_KEY, raising=False)
    assert main(["import", "p", "--events", str(ev), "--pseudonymize"]) == 2
    err = capsys.readouterr().err
    assert ENV_KEY in err and not dataset_path("p").exists()
    monkeypatch.setenv(ENV_KEY, KEY)
    assert main(["import", "p", "--events", str(ev), "--pseudonymize", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["pseudonymized"] is True
    assert KEY not in out + err and all(u not in out + err for u in RAW)
    con = connect("p")
    try:
        ids = {r[0] for r in con.execute("SELECT user_id FROM events").fetchall()}
    finally:
        con.close()
    assert ids == {pseudonym(u, KEY.encode()) for u in RAW}
