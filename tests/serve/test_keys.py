"""API keys: created once, stored hashed, checked by role, revoked; every change audited."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from ltrec.app import audit
from ltrec.errors import BadInputError, ConfigError
from ltrec.serve import keys
from ltrec.serve.keys import KeyRing, KeyRole

from .harness import cli


def test_create_stores_only_the_hash(data_dir: Path) -> None:
    key, record = keys.create("shop-frontend", "reader", data_dir=data_dir)
    assert key.startswith(f"ltrec_{record.id}_") and len(key) == len("ltrec_12345678_") + 43
    path = keys.keys_path(data_dir)
    text = path.read_text()
    assert key not in text and key.split("_")[-1] not in text
    assert json.loads(text)["keys"][0]["sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [k.public() for k in keys.load(data_dir)] == [record.public()]
    assert list(data_dir.glob(".api_keys.json.*.tmp")) == []


def test_ring_checks_key_and_role(data_dir: Path) -> None:
    r_key, _ = keys.create("r", "reader", data_dir=data_dir)
    w_key, _ = keys.create("w", "writer", data_dir=data_dir)
    ring = KeyRing(data_dir)
    assert ring.check(r_key).role is KeyRole.READER
    assert ring.check(w_key).role is KeyRole.WRITER
    assert ring.check(r_key[:-1] + ("A" if r_key[-1] != "A" else "B")) is None
    assert ring.check("") is None and ring.check("Bearer " + r_key) is None
    assert KeyRole.WRITER.allows(KeyRole.READER) and not KeyRole.READER.allows(KeyRole.WRITER)
    keys.revoke("r", data_dir=data_dir)
    assert ring.check(r_key) is None  # the ring re-reads the changed file
    assert ring.check(w_key).name == "w"


def test_bad_names_roles_and_duplicates_are_refused(data_dir: Path) -> None:
    with pytest.raises(BadInputError, match="invalid API key name"):
        keys.create("has space", "reader", data_dir=data_dir)
    with pytest.raises(BadInputError, match="unknown API key role 'admin'"):
        keys.create("x", "admin", data_dir=data_dir)
    keys.create("x", "reader", data_dir=data_dir)
    with pytest.raises(BadInputError, match="already named 'x'"):
        keys.create("x", "writer", data_dir=data_dir)
    with pytest.raises(BadInputError, match="no active API key is named 'y'"):
        keys.revoke("y", data_dir=data_dir)
    first = keys.revoke("x", data_dir=data_dir)
    _, again = keys.create("x", "writer", data_dir=data_dir)  # a revoked name may be reused
    assert first.id != again.id and [k.active for k in keys.load(data_dir)] == [False, True]
    log = [(e.action, e.target, e.outcome) for e in audit.read(data_dir)]
    assert log == [
        ("create api key", "api key has space", "error"),
        ("create api key", "api key x", "error"),
        ("create api key", "api key x", "ok"),
        ("create api key", "api key x", "error"),
        ("revoke api key", "api key y", "error"),
        ("revoke api key", "api key x", "ok"),
        ("create api key", "api key x", "ok"),
    ]


def test_a_damaged_key_file_is_a_clear_error(data_dir: Path) -> None:
    keys.keys_path(data_dir).write_text("{not json")
    with pytest.raises(ConfigError, match="not a valid API key file"):
        keys.load(data_dir)


def test_cli_prints_the_key_once(data_dir: Path) -> None:
    out = json.loads(cli(data_dir, "apikey", "create", "etl", "--role", "writer", "--json").stdout)
    assert set(out) == {"key", "id", "name", "role", "created_at", "revoked_at", "active"}
    assert (out["name"], out["role"], out["active"]) == ("etl", "writer", True)
    listed = json.loads(cli(data_dir, "apikey", "list", "--json").stdout)["keys"]
    assert listed == [{k: v for k, v in out.items() if k != "key"}]
    assert out["key"] not in cli(data_dir, "apikey", "list").stdout
    bad = cli(data_dir, "apikey", "create", "etl2", "--json", check=False)
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"]["type"] == "BadInputError"
    gone = json.loads(cli(data_dir, "apikey", "revoke", out["id"], "--json").stdout)
    assert (gone["name"], gone["active"]) == ("etl", False)
