"""A/B arms of ``ltrec serve`` (issue 22): the experiment record, the stable assignment of users
to arms, and where experiments are kept.

An experiment is a set of two to four named arms (each a policy: a re-ranking setting, ``{}``
for the base order, or ``{"run": RUN_ID, ...}`` for another run under a setting) with a split.
Its id is derived from (dataset, arms, split), so the same arms after a restart continue the same
experiment with the same salt and every user keeps their arm; new arms or a new split derive a
new id. ``--experiment ID`` names one instead. Starting other arms stops the running experiment
(``stopped_at``), as does ``ltrec serve NAME --stop-experiment``; a stopped experiment keeps its
record and its rows in ``live_events``. The same arms started again after a stop are a new
experiment (a new id and salt): a stopped one never resumes.

Records: ``<data dir>/api/experiments/<dataset>/<id>.json``, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ltrec import safejson
from ltrec.errors import BadInputError, ConfigError, NotFoundError
from ltrec.files import atomic_write
from ltrec.rerank.pipeline import parse_config
from ltrec.store.connect import data_dir as _data_dir

#: Fewest and most arms an experiment has.
MIN_ARMS, MAX_ARMS = 2, 4
#: An arm name: a letter, then letters, digits, "_" or "-" (it is a label in reports).
_ARM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
#: An explicit experiment id (it is a file name).
_EXP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

__all__ = [
    "Experiment",
    "NotFoundError",
    "arm_setting",
    "assign",
    "begin",
    "experiments",
    "load_experiment",
    "parse_arms",
    "parse_split",
    "stop",
]


@dataclass(frozen=True)
class Experiment:
    """One experiment of a served dataset (see the module doc)."""

    id: str
    dataset: str
    arms: dict[str, dict]  # arm name -> policy; insertion order = arm order
    split: tuple[float, ...]  # fractions, sum 1, in arm order
    salt: str
    started_at: str  # ISO 8601 UTC
    stopped_at: str | None = None

    @property
    def control(self) -> str:
        """The first arm: the one every other arm is compared with."""
        return next(iter(self.arms))

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["split"] = list(self.split)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Experiment:
        return cls(
            id=str(obj["id"]),
            dataset=str(obj["dataset"]),
            arms={str(k): dict(v) for k, v in obj["arms"].items()},
            split=tuple(float(x) for x in obj["split"]),
            salt=str(obj["salt"]),
            started_at=str(obj["started_at"]),
            stopped_at=None if obj.get("stopped_at") is None else str(obj["stopped_at"]),
        )


def assign(user_id: str, exp: Experiment) -> str:
    """The arm of a user: a salted SHA-256 of the id, as a fraction of 2**64, falls into the
    arm whose cumulative split first exceeds it. Pure: anyone with the record can recompute it."""
    digest = hashlib.sha256(f"{exp.salt}\x00{user_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    total = 0.0
    for arm, share in zip(exp.arms, exp.split, strict=True):
        total += share
        if u < total:
            return arm
    return next(reversed(exp.arms))  # u above a sum rounded just below 1


# ----------------------------------------------------------------------------- parsing


def arm_setting(policy: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """An arm's policy as (run id or None for the server's run, re-ranking setting)."""
    rest = dict(policy)
    run = rest.pop("run", None)
    return run, rest


def parse_arms(specs: Sequence[str]) -> dict[str, dict]:
    """``NAME=JSON`` per arm -> name -> policy, each policy checked by the re-ranking setting's
    own validation.

    Raises:
        ConfigError: a bad arm (named), fewer than two or more than four, a repeated name.
    """
    if not MIN_ARMS <= len(specs) <= MAX_ARMS:
        raise ConfigError(
            f"an experiment has {MIN_ARMS} to {MAX_ARMS} arms; {len(specs)} given",
            hint='for example --arm control=\'{}\' --arm boost=\'{"strategy": "tail_boost", '
            '"beta": 0.3}\'',
        )
    arms: dict[str, dict] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip()
        if not sep or not _ARM_NAME.match(name):
            raise ConfigError(
                f"bad --arm {spec[:60]!r}: give NAME=JSON with a name of letters, digits, _ "
                "or - (up to 32, starting with a letter)",
                hint='for example --arm boost=\'{"strategy": "tail_boost", "beta": 0.3}\'',
            )
        if name in arms:
            raise ConfigError(f"arm {name!r} is given twice", hint="give each arm its own name")
        try:
            policy = safejson.loads(text, f"the policy of arm {name!r}")
        except ConfigError as err:
            raise ConfigError(err.message, hint=err.hint) from None
        if not isinstance(policy, dict):
            raise ConfigError(
                f"arm {name!r}: the policy must be a JSON object",
                hint='{} (the base order), a re-ranking setting, or {"run": "<run id>"}',
            )
        run, rest = arm_setting(policy)
        if run is not None and (not isinstance(run, str) or not run.strip()):
            raise ConfigError(
                f'arm {name!r}: "run" must be a run id (text)', hint="see `ltrec runs NAME`"
            )
        try:
            parse_config(rest)
        except ConfigError as err:
            raise ConfigError(f"arm {name!r}: {err.message}", hint=err.hint) from None
        arms[name] = policy
    return arms


def parse_split(text: str | None, n_arms: int) -> tuple[float, ...]:
    """``"50,50"`` (percentages, one per arm, summing to 100) -> fractions; None: equal."""
    if text is None:
        return tuple(1.0 / n_arms for _ in range(n_arms))
    parts = [p.strip() for p in text.split(",")]
    try:
        shares = [float(p) for p in parts]
    except ValueError:
        raise BadInputError(
            f"bad --split {text[:60]!r}: give one percentage per arm, e.g. --split 50,50"
        ) from None
    if len(shares) != n_arms:
        raise BadInputError(
            f"--split gives {len(shares)} shares for {n_arms} arms",
            hint="give one percentage per arm, in the order of the --arm options",
        )
    if any(not 0 < s < 100 for s in shares):
        raise BadInputError(f"bad --split {text!r}: each share must be above 0 and below 100")
    if abs(sum(shares) - 100) > 1e-6:
        raise BadInputError(
            f"bad --split {text!r}: the shares sum to {sum(shares):g}, not 100",
            hint="percentages, e.g. --split 90,10",
        )
    return tuple(s / 100 for s in shares)


def _check_id(exp_id: str) -> str:
    if not _EXP_ID.match(exp_id):
        raise BadInputError(
            f"bad --experiment {exp_id[:80]!r}: use letters, digits, '.', '_' or '-' "
            "(up to 64, starting with a letter or digit)"
        )
    return exp_id


def _identity(dataset: str, arms: dict[str, dict], split: Sequence[float]) -> str:
    return json.dumps(
        {"dataset": dataset, "arms": [[k, v] for k, v in arms.items()],
         "split": [round(float(s), 9) for s in split]},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )  # fmt: skip


def derive_id(dataset: str, arms: dict[str, dict], split: Sequence[float], gen: int = 0) -> str:
    """``exp-<10 hex>`` of (dataset, arms, split); ``gen`` counts restarts after a stop."""
    text = _identity(dataset, arms, split) + (f"#{gen}" if gen else "")
    return "exp-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


# ----------------------------------------------------------------------------- records


def _folder(data_dir: Path | str | None, name: str) -> Path:
    return _data_dir(data_dir) / "api" / "experiments" / name


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _save(data_dir: Path | str | None, exp: Experiment) -> None:
    folder = _folder(data_dir, exp.dataset)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / f"{exp.id}.json", json.dumps(exp.to_json(), indent=2) + "\n")


def experiments(data_dir: Path | str | None, name: str) -> list[Experiment]:
    """Every experiment of dataset ``name``, oldest first."""
    folder = _folder(data_dir, name)
    if not folder.is_dir():
        return []
    out = [Experiment.from_json(json.loads(p.read_text())) for p in folder.glob("*.json")]
    return sorted(out, key=lambda e: (e.started_at, e.id))


def running(data_dir: Path | str | None, name: str) -> Experiment | None:
    """The experiment not stopped yet (at most one), else None."""
    live = [e for e in experiments(data_dir, name) if e.running]
    return live[-1] if live else None


def load_experiment(
    data_dir: Path | str | None, name: str, exp_id: str | None = None
) -> Experiment:
    """One experiment: ``exp_id``, else the running one, else the newest.

    Raises:
        NotFoundError: no experiment, or an unknown id (the known ones are named).
    """
    every = experiments(data_dir, name)
    if exp_id is None:
        if not every:
            raise NotFoundError(
                f"dataset '{name}' has no experiments",
                hint=f"start one: ltrec serve {name} --arm control='{{}}' --arm boost='...'",
            )
        live = [e for e in every if e.running]
        return live[-1] if live else every[-1]
    for e in every:
        if e.id == exp_id:
            return e
    known = ", ".join(e.id for e in every) or "none"
    raise NotFoundError(
        f"no experiment {exp_id!r} on dataset '{name}' (experiments: {known})",
        hint=f"see the ids with `ltrec experiment {name} --json`",
    )


def stop(data_dir: Path | str | None, name: str) -> Experiment:
    """Stop the running experiment (its record and rows stay); returns it stopped.

    Raises:
        NotFoundError: none runs.
    """
    exp = running(data_dir, name)
    if exp is None:
        known = ", ".join(e.id for e in experiments(data_dir, name)) or "none"
        raise NotFoundError(f"no experiment runs on dataset '{name}' (experiments: {known})")
    done = replace(exp, stopped_at=_now())
    _save(data_dir, done)
    return done


def begin(
    data_dir: Path | str | None,
    name: str,
    arms: dict[str, dict],
    split: Sequence[float],
    exp_id: str | None = None,
) -> tuple[Experiment, Experiment | None]:
    """The experiment a server with these arms runs: the running one when its arms and split
    are these (a restart), else a new one; any other running experiment is stopped first.
    Returns (experiment, the one stopped or None). Call with the dataset's server lock held.

    Raises:
        BadInputError: ``exp_id`` names an experiment with other arms or split, or a stopped one.
    """
    every = {e.id: e for e in experiments(data_dir, name)}
    want = _identity(name, arms, split)
    if exp_id is None:
        gen = 0
        while (found := every.get(derive_id(name, arms, split, gen))) is not None and (
            not found.running
        ):
            gen += 1
        target = derive_id(name, arms, split, gen)
    else:
        target = _check_id(exp_id)
        found = every.get(target)
        if found is not None and _identity(name, found.arms, found.split) != want:
            raise BadInputError(
                f"experiment {target!r} has other arms or another split ("
                + ", ".join(f"{a} {s:.0%}" for a, s in zip(found.arms, found.split, strict=True))
                + ")",
                hint="new arms or a new split are a new experiment: give another --experiment "
                "id, or leave it out for a derived one",
            )
        if found is not None and not found.running:
            raise BadInputError(
                f"experiment {target!r} was stopped at {found.stopped_at}: a stopped experiment "
                "does not resume",
                hint="give another --experiment id, or leave it out for a derived one",
            )
    stopped = None
    for e in every.values():
        if e.running and e.id != target:  # one runs at a time
            stopped = replace(e, stopped_at=_now())
            _save(data_dir, stopped)
    found = every.get(target)
    if found is not None:
        return found, stopped
    exp = Experiment(
        id=target,
        dataset=name,
        arms={k: dict(v) for k, v in arms.items()},
        split=tuple(float(s) for s in split),
        salt=secrets.token_hex(8),
        started_at=_now(),
    )
    _save(data_dir, exp)
    return exp, stopped
