"""Simulation results: typed, saved as JSON + Parquet, reopened without pickle.

``data/simulations/<dataset>/<id>/`` holds ``simulation.json`` (format, configs, policies, the
user model used, data summary, final metrics) and ``rounds.parquet`` (one row per policy and
round). A result is written into a temporary folder beside its target and renamed into place
(:func:`ltrec.files.atomic_path`), like the model registry, so a crash never leaves half a result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltrec.config import get_settings
from ltrec.definitions import ROUND_METRICS
from ltrec.errors import BadInputError, LtrecError
from ltrec.files import atomic_path
from ltrec.simulation.config import PolicyConfig, SimulationConfig
from ltrec.store.connect import check_name

FORMAT = "ltrec-simulation/1"
SUMMARY = "simulation.json"
ROUNDS = "rounds.parquet"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_MAX_JSON_BYTES = 20 * 1024**2

#: Columns of :meth:`SimulationResult.final` besides ``policy``.
FINAL_METRICS = (
    "exposure_gini",
    "exposure_gini_cum",
    "tail_share",
    "coverage_cum",
    "arp",
    "popularity_gini",
    "cum_clicks",
    "cum_purchases",
    "cum_tail_purchases",
    "cum_revenue",
)


class SimulationNotFoundError(BadInputError):
    """No saved simulation with that id."""


def simulations_dir(dataset: str, data_dir: Path | str | None = None) -> Path:
    root = Path(data_dir) if data_dir is not None else get_settings().data_dir
    return root / "simulations" / check_name(dataset)


def check_sim_id(sim_id: str) -> str:
    if not isinstance(sim_id, str) or not _ID.match(sim_id) or sim_id in (".", ".."):
        raise BadInputError(f"invalid simulation id {sim_id!r}")
    return sim_id


def new_sim_id() -> str:
    """``20250131-142501-1a2b3c``: sortable by creation time, unique."""
    return f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def _clean(obj: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


@dataclass
class SimulationResult:
    """What a simulation produced.

    Attributes:
        rounds: one row per (policy, round): ``policy``, ``round`` and :data:`ROUND_METRICS`.
        policies: the policies in input order; ``labels`` their display names (unique).
        user_model: ``{"kind": "truth" | "calibrated", "name", "description", ...}``.
        data: summary of the starting data (users, items, interactions, fingerprint).
    """

    config: SimulationConfig
    policies: list[PolicyConfig]
    labels: list[str]
    user_model: dict[str, Any]
    rounds: pd.DataFrame
    data: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    sim_id: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    seconds: float = 0.0

    def final(self) -> pd.DataFrame:
        """One row per policy: the last round's exposure metrics and the cumulative totals."""
        if self.rounds.empty:
            return pd.DataFrame(columns=["policy", *FINAL_METRICS])
        last = self.rounds.sort_values("round").groupby("policy", sort=False).tail(1)
        last = last.set_index("policy").reindex(self.labels).reset_index()
        return last[["policy", *FINAL_METRICS]]

    def series(self, metric: str) -> pd.DataFrame:
        """``round`` x ``policy`` table of one per-round metric."""
        if metric not in self.rounds.columns:
            raise BadInputError(f"unknown metric {metric!r}; choose from {list(ROUND_METRICS)}")
        wide = self.rounds.pivot(index="round", columns="policy", values=metric)
        return wide[[c for c in self.labels if c in wide.columns]]

    def to_dict(self, series: bool = True) -> dict[str, Any]:
        """JSON-ready: configs, user model, final metrics per policy, and per-round series."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "id": self.sim_id,
            "dataset": self.dataset,
            "created_at": self.created_at,
            "seconds": round(float(self.seconds), 3),
            "config": self.config.model_dump(mode="json"),
            "policies": [
                {**p.model_dump(mode="json"), "name": lab}
                for lab, p in zip(self.labels, self.policies, strict=True)
            ],
            "user_model": self.user_model,
            "data": self.data,
            "final": {
                r["policy"]: {m: r[m] for m in FINAL_METRICS}
                for r in self.final().to_dict("records")
            },
        }
        if series:
            out["rounds"] = {
                lab: {m: g[m].tolist() for m in ["round", *ROUND_METRICS] if m in g.columns}
                for lab, g in self.rounds.groupby("policy", sort=False)
            }
        return _clean(out)


# ---------------------------------------------------------------------------- persistence


def save_result(result: SimulationResult, dataset: str, data_dir: Path | str | None = None) -> Path:
    """Write a result under ``data/simulations/<dataset>/<id>/`` atomically; returns the folder.

    Sets ``result.dataset`` and ``result.sim_id`` (a new id unless it has one).
    """
    result.dataset = check_name(dataset)
    result.sim_id = check_sim_id(result.sim_id or new_sim_id())
    folder = simulations_dir(dataset, data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / result.sim_id
    if final.exists():
        raise BadInputError(f"simulation {result.sim_id} already exists")
    tmp = folder / f".tmp-{result.sim_id}-{uuid.uuid4().hex[:6]}"
    with atomic_path(final, tmp=tmp):
        tmp.mkdir()
        result.rounds.to_parquet(tmp / ROUNDS, index=False)
        text = json.dumps(result.to_dict(series=False), indent=2, allow_nan=False)
        (tmp / SUMMARY).write_text(text)
    return final


def _read_summary(folder: Path) -> dict[str, Any]:
    path = folder / SUMMARY
    try:
        if path.is_symlink() or path.stat().st_size > _MAX_JSON_BYTES:
            raise ValueError("not a plain file of sensible size")
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LtrecError(
            f"simulation {folder.name}: {SUMMARY} is missing or unreadable ({exc})",
            hint="delete the folder and run the simulation again",
        ) from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise LtrecError(f"simulation {folder.name} is not an ltrec simulation")
    return raw


def load_result(dataset: str, sim_id: str, data_dir: Path | str | None = None) -> SimulationResult:
    """Reopen a saved simulation (JSON validated by pydantic, Parquet read by pandas)."""
    folder = simulations_dir(dataset, data_dir) / check_sim_id(sim_id)
    if not folder.is_dir() or folder.is_symlink():
        raise SimulationNotFoundError(
            f"simulation '{sim_id}' not found for dataset '{dataset}'",
            hint=f"list them with `ltrec simulate {dataset} --list`",
        )
    raw = _read_summary(folder)
    try:
        config = SimulationConfig(**raw["config"])
        pols = raw["policies"]
        labels = [str(p["name"]) for p in pols]
        policies = [PolicyConfig(**{k: v for k, v in p.items() if k != "name"}) for p in pols]
        if (folder / ROUNDS).is_symlink():
            raise ValueError("rounds file is a symlink")
        rounds = pd.read_parquet(folder / ROUNDS)
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise LtrecError(
            f"simulation {sim_id} is damaged ({exc.__class__.__name__}: {exc})",
            hint="delete it and run the simulation again",
        ) from exc
    return SimulationResult(
        config=config,
        policies=policies,
        labels=labels,
        user_model=dict(raw.get("user_model") or {}),
        rounds=rounds,
        data=dict(raw.get("data") or {}),
        dataset=dataset,
        sim_id=sim_id,
        created_at=str(raw.get("created_at", "")),
        seconds=float(raw.get("seconds") or 0.0),
    )


@dataclass(frozen=True)
class SimulationInfo:
    """A saved simulation as listed."""

    sim_id: str
    summary: dict[str, Any]

    @property
    def title(self) -> str:
        labels = [str(p.get("name", "?")) for p in self.summary.get("policies", [])]
        rounds = (self.summary.get("config") or {}).get("rounds")
        return f"{self.sim_id} · {rounds} rounds · {' vs '.join(labels)}"


def list_results(dataset: str, data_dir: Path | str | None = None) -> list[SimulationInfo]:
    """Saved simulations of a dataset, newest first; unreadable folders are skipped."""
    folder = simulations_dir(dataset, data_dir)
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        if p.name.startswith(".") or not p.is_dir() or p.is_symlink():
            continue
        try:
            out.append(SimulationInfo(p.name, _read_summary(p)))
        except LtrecError:
            continue
    out.sort(key=lambda s: (str(s.summary.get("created_at", "")), s.sim_id), reverse=True)
    return out


def delete_result(dataset: str, sim_id: str, data_dir: Path | str | None = None) -> None:
    """Remove a saved simulation (renamed away first, then deleted)."""
    folder = simulations_dir(dataset, data_dir) / check_sim_id(sim_id)
    if not folder.is_dir() or folder.is_symlink():
        raise SimulationNotFoundError(f"simulation '{sim_id}' not found for dataset '{dataset}'")
    trash = folder.parent / f".tmp-deleted-{sim_id}-{uuid.uuid4().hex[:6]}"
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)
