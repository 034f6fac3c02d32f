"""The audited write services (ltrec.app.services): each refuses a role without the right
(store, registry and simulations unchanged; a ``denied`` entry), runs for one with it (an ``ok``
entry naming the result) and logs a failure as ``error`` with its message."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from ltrec.app import audit, services
from ltrec.app.auth import LOCAL, PermissionDenied, Principal, Right, Role
from ltrec.errors import DatasetNotFoundError, LtrecError
from ltrec.models.registry import list_runs
from ltrec.simulation import SimulationConfig, list_results
from ltrec.store import list_datasets

VIEWER = Principal("vi@example.com", Role.VIEWER, name="Vi")
ANALYST = Principal("an@example.com", Role.ANALYST, name="An")
ADMIN = Principal("ad@example.com", Role.ADMIN, name="Ad")


def _events_csv(folder: Path) -> Path:
    path = folder / "events.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "event_type", "timestamp"])
        for u in range(40):
            for j in range(6):
                w.writerow([f"u{u}", f"i{(u * 3 + j * 7) % 25}", "view", f"2025-03-{1 + j:02d}"])
                if (u + j) % 4 == 0:
                    w.writerow(
                        [f"u{u}", f"i{(u * 3 + j * 7) % 25}", "purchase", f"2025-03-{1 + j:02d}"]
                    )
    return path


def _digest(folder: Path) -> dict[str, str]:
    """Every file under the data dir but the audit log, by content."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "audit.jsonl" and not p.name.endswith(".lock")
    }


@pytest.fixture
def shop(data_dir: Path, tmp_path: Path) -> str:
    services.import_dataset(LOCAL, "shop", events=_events_csv(tmp_path), data_dir=data_dir)
    return "shop"


def _last(data_dir: Path) -> audit.Entry:
    return audit.read(data_dir)[-1]


def test_import_rights_and_audit(data_dir: Path, tmp_path: Path) -> None:
    events = _events_csv(tmp_path)
    for who in (VIEWER, ANALYST):
        with pytest.raises(PermissionDenied, match="that needs the admin role"):
            services.import_dataset(who, "shop", events=events, data_dir=data_dir)
        entry = _last(data_dir)
        assert (entry.who, entry.role, entry.action, entry.outcome) == (
            who.email,
            who.role.value,
            "import",
            "denied",
        )
        assert entry.target == "dataset shop"
        # a dry run is refused too (it would make the server read the whole file)
        with pytest.raises(PermissionDenied):
            services.import_dataset(who, "shop", events=events, dry_run=True, data_dir=data_dir)
    assert list_datasets(data_dir) == []
    n = len(audit.read(data_dir))
    services.import_dataset(ADMIN, "shop", events=events, dry_run=True, data_dir=data_dir)
    assert len(audit.read(data_dir)) == n  # a dry run writes nothing and is not logged
    rep = services.import_dataset(ADMIN, "shop", events=events, data_dir=data_dir)
    assert list_datasets(data_dir) == ["shop"]
    entry = _last(data_dir)
    assert (entry.who, entry.action, entry.outcome, entry.message) == (
        ADMIN.email,
        "import",
        "ok",
        rep.summary(),
    )
    assert entry.details == {"files": {"events": "events.csv"}, "replace": False}


def test_failed_write_is_logged_as_error(data_dir: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        services.delete_dataset(ADMIN, "nope", data_dir)
    entry = _last(data_dir)
    assert (entry.action, entry.target, entry.outcome) == (
        "delete dataset",
        "dataset nope",
        "error",
    )
    assert entry.message == info.value.message


def test_viewer_forged_writes_are_refused(shop: str, data_dir: Path, tmp_path: Path) -> None:
    run = services.train(ANALYST, shop, "popularity", data_dir=data_dir)
    before = _digest(data_dir)
    n = len(audit.read(data_dir))
    chosen: list[tuple[str, str | None]] = []
    forged = [
        ("delete dataset", lambda: services.delete_dataset(VIEWER, shop, data_dir)),
        ("delete run", lambda: services.delete_run(VIEWER, shop, run.run_id, data_dir)),
        ("train", lambda: services.train(VIEWER, shop, "popularity", data_dir=data_dir)),
        (
            "set active model",
            lambda: services.set_active_model(
                VIEWER, shop, run.run_id, lambda d, r: chosen.append((d, r)), data_dir
            ),
        ),
        (
            "simulate",
            lambda: services.simulate(
                VIEWER,
                shop,
                [{"model": "popularity"}],
                SimulationConfig(rounds=1),
                data_dir=data_dir,
            ),
        ),
        (
            "export",
            lambda: services.export_lists(
                VIEWER, shop, run.run_id, tmp_path / "out.csv", data_dir=data_dir
            ),
        ),
        ("export", lambda: services.export(VIEWER, "lists", lambda: b"x", data_dir)),
        ("fetch sample", lambda: services.fetch_sample(VIEWER, shop, 100, 1, data_dir)),
        ("train", lambda: services.check(VIEWER, Right.TRAIN, "train", "p on shop", data_dir)),
    ]
    for _action, call in forged:
        with pytest.raises(PermissionDenied):
            call()
    assert _digest(data_dir) == before  # store, runs and simulations untouched
    assert chosen == []
    assert not (tmp_path / "out.csv").exists()
    entries = audit.read(data_dir)[n:]
    assert [(e.action, e.outcome, e.who) for e in entries] == [
        (a, "denied", VIEWER.email) for a, _ in forged
    ]
    with pytest.raises(PermissionDenied):
        services.audit_log(ANALYST, data_dir)  # the log itself is for admins


def test_analyst_and_admin_writes(shop: str, data_dir: Path, tmp_path: Path) -> None:
    run = services.train(ANALYST, shop, "popularity", data_dir=data_dir)
    assert [r.run_id for r in list_runs(shop, data_dir)] == [run.run_id]
    assert _last(data_dir).message == f"saved run {run.run_id}"
    chosen: list[tuple[str, str | None]] = []
    services.set_active_model(
        ANALYST, shop, run.run_id, lambda d, r: chosen.append((d, r)), data_dir
    )
    assert chosen == [(shop, run.run_id)]
    out = services.export_lists(ANALYST, shop, run.run_id, tmp_path / "out.csv", data_dir=data_dir)
    assert (tmp_path / "out.csv").exists() and out["rows"] > 0
    assert services.export(ANALYST, "lists", lambda: b"csv", data_dir) == b"csv"
    services.check(ANALYST, Right.TRAIN, "train", "p on shop", data_dir)  # allowed: not logged
    sim = services.simulate(
        ANALYST,
        shop,
        [{"model": "popularity"}],
        SimulationConfig(rounds=1, users=10, k=5),
        data_dir=data_dir,
    )
    assert [s.sim_id for s in list_results(shop, data_dir)] == [sim.sim_id]
    with pytest.raises(PermissionDenied):
        services.delete_run(ANALYST, shop, run.run_id, data_dir)
    services.delete_run(ADMIN, shop, run.run_id, data_dir)
    assert list_runs(shop, data_dir) == []
    services.delete_dataset(ADMIN, shop, data_dir)
    assert list_datasets(data_dir) == []
    log = audit.read(data_dir)
    assert [(e.who, e.action, e.outcome) for e in log] == [
        ("local", "import", "ok"),
        (ANALYST.email, "train", "ok"),
        (ANALYST.email, "set active model", "ok"),
        (ANALYST.email, "export", "ok"),
        (ANALYST.email, "export", "ok"),
        (ANALYST.email, "simulate", "ok"),
        (ANALYST.email, "delete run", "denied"),
        (ADMIN.email, "delete run", "ok"),
        (ADMIN.email, "delete dataset", "ok"),
    ]
    assert log[5].message == f"saved simulation {sim.sim_id}"
    frame = services.audit_log(ADMIN, data_dir)
    assert list(frame.columns) == list(audit.COLUMNS)
    assert frame["action"].iloc[0] == "delete dataset"  # newest first


def test_unexpected_exception_is_logged(data_dir: Path) -> None:
    def boom() -> bytes:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        services.export(ADMIN, "lists", boom, data_dir)
    entry = _last(data_dir)
    assert (entry.outcome, entry.message) == ("error", "RuntimeError: disk on fire")
    assert issubclass(PermissionDenied, LtrecError)
