"""Saved model runs: ``data/models/<dataset>/<run id>/`` (DESIGN §4).

A run folder holds::

    manifest.json        model, params, data fingerprint, split, metrics, versions, created
                         time, and the sha256 and size of every other file
    vocab.json           user and item ids, index order
    model/config.json    the model's name and params
    model/state.npz      learned arrays (read with allow_pickle=False)
    model/*.weights.h5   Keras weights (Keras models only; architecture rebuilt from code)
    model/ann.faiss      the ANN index of a big catalogue (inner-product models, faiss's own
                         format; ltrec.models.ann), parsed only after its checksum is verified

Safety: a run is written into a temporary folder beside its target and renamed into place
(``os.replace``), so a crash never leaves half a run. Loading checks the manifest's file list
and checksums *before* reading any weights: a tampered, truncated, missing or foreign file, or a
symlink, fails with :class:`RegistryError`. Nothing is unpickled and no saved code runs: arrays
come from ``.npz`` with ``allow_pickle=False``, configs from JSON validated by pydantic, Keras
weights into an architecture built from code.

Staleness: a run records the dataset's ``meta.data_import_id`` (the import its data came from).
:func:`run_staleness` is the one place that decides whether a run is stale (the dataset was
re-imported, appended to, deleted, or deleted and created again since); listing marks such runs
``stale`` and :func:`load_run` refuses them with :class:`~ltrec.errors.StaleRunError` unless the
caller allows stale runs (``--allow-stale``, the Studio's checkbox).

One training per dataset at a time: :func:`~ltrec.store.connect.training_lock` holds an advisory
file lock on ``data/models/<dataset>/.train.lock`` (separate from the store's writer lock, so a
training run may still cache text embeddings in the store).

Production runs (DESIGN §11): a run fitted on every event (``ltrec train --all-data``) has the
manifest ``"split": {"kind": "none"}`` (:func:`is_all_data`) and no test split, so it cannot be
evaluated (:func:`check_evaluable`). :func:`promote` marks one as the dataset's production run in
``data/models/<dataset>/production.json`` (written to a temporary file, fsynced and renamed into
place under the training lock); deleting that run clears the mark, deleting the dataset removes
it with the runs folder. :func:`resolve_run` is the one rule that turns "no run given" into a run
id: the production run, else the caller's active run, else the newest run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.lib import format as npy
from pydantic import ValidationError

from ltrec.errors import RegistryError, StaleRunError
from ltrec.evaluation import SplitConfig
from ltrec.files import atomic_path, atomic_write, fsync_path
from ltrec.models.base import MODELS, Recommender, get_model_class, read_model_config
from ltrec.store.connect import connect, exists, lock_wait, read_meta, runs_dir, training_lock

if TYPE_CHECKING:
    from ltrec.models.data import InteractionData

FORMAT = "ltrec-run/1"
MANIFEST = "manifest.json"
#: The dataset's production mark, beside its run folders (a file, so list_runs skips it).
PRODUCTION = "production.json"
#: The ``split`` of an all-data run's manifest: fitted on every event, nothing held out.
NO_SPLIT: dict[str, str] = {"kind": "none"}
VOCAB = "vocab.json"
MODEL_DIR = "model"
#: File kinds a run may hold; anything else is foreign.
ALLOWED_SUFFIXES = (".json", ".npz", ".h5", ".faiss")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_MAX_MANIFEST_BYTES = 50 * 1024**2
_VERSIONED = (
    "numpy", "scipy", "pandas", "implicit", "pydantic", "duckdb", "keras", "tensorflow",
    "faiss-cpu",
)  # fmt: skip


class NoTestSplitError(RegistryError):
    """An all-data (production) run was asked for figures: it held nothing out to test on."""

    def __init__(self, dataset: str, run_id: str, from_run: str | None) -> None:
        source = f"evaluate its source run {from_run}" if from_run else "evaluate an evaluation run"
        super().__init__(
            f"run {run_id} is a production run: a production run has no test split; {source}",
            hint=f"`ltrec evaluate {dataset} --run {from_run}`"
            if from_run
            else f"list the runs with `ltrec runs {dataset}`",
        )


# ---------------------------------------------------------------------------- paths


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or run_id in (".", ".."):
        raise RegistryError(
            f"invalid run id {run_id!r}", hint="list the runs with `ltrec runs DATASET`"
        )
    return run_id


def new_run_id(model_name: str) -> str:
    """``20240131-142501-ease-1a2b3c``: sortable by creation time, unique."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{model_name}-{uuid.uuid4().hex[:6]}"


# ---------------------------------------------------------------------------- files


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _walk(folder: Path) -> list[Path]:
    """Every entry under ``folder`` (files and folders), symlinks included, sorted."""
    return sorted(folder.rglob("*"))


def library_versions() -> dict[str, str | None]:
    """Versions of Python and the numeric libraries (from metadata: nothing is imported)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("ltrec", *_VERSIONED):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def save_keras_weights(model: Any, folder: Path | str, name: str, config: Mapping) -> list[Path]:
    """Save a Keras model's weights (``<name>.weights.h5``) and its build config (JSON).

    The architecture is never saved: :func:`load_keras_weights` loads the weights into a model
    the caller rebuilt from code with the JSON config, so loading cannot run saved code (this is
    stricter than a ``.keras`` archive, whose ``safe_mode`` only blocks lambdas).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.weights.h5"
    model.save_weights(str(weights))
    cfg = folder / f"{name}.json"
    cfg.write_text(json.dumps(dict(config), sort_keys=True, default=_json_default))
    return [weights, cfg]


def read_keras_config(folder: Path | str, name: str) -> dict[str, Any]:
    """The JSON build config written by :func:`save_keras_weights`."""
    path = Path(folder) / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{path.name} is missing or not JSON", hint="retrain") from exc
    if not isinstance(raw, dict):
        raise RegistryError(f"{path.name} is not a JSON object", hint="retrain")
    return raw


def load_keras_weights(model: Any, folder: Path | str, name: str) -> None:
    """Load ``<name>.weights.h5`` into a model built from code (shapes must match)."""
    path = Path(folder) / f"{name}.weights.h5"
    if not path.is_file():
        raise RegistryError(f"{path.name} is missing", hint="retrain the model")
    try:
        model.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001 - h5py/keras raise many types for a bad file
        raise RegistryError(
            f"{path.name} does not fit the model ({exc.__class__.__name__}: {exc})",
            hint="the run is damaged or from another model version; retrain it",
        ) from exc


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, datetime):
        return obj.isoformat()
    return str(obj)


def _finite(obj: Any) -> Any:
    """NaN and infinities become None, so manifests are strict JSON."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------- save


@dataclass(frozen=True)
class Staleness:
    """Whether a run's training data is still the dataset's data, and if not, what changed."""

    stale: bool
    reason: str | None = None  # one plain sentence: what changed since training
    data_import_id: str | None = None  # the dataset's current one (None: deleted or untracked)

    def to_dict(self) -> dict[str, Any]:
        return {"stale": self.stale, "stale_reason": self.reason}


def dataset_state(dataset: str, data_dir: Path | str | None = None) -> dict[str, str] | None:
    """The dataset meta that staleness reads (``data_import_id``, ``data_change``,
    ``data_changed_at``); None when the dataset does not exist (deleted)."""
    root = Path(data_dir) if data_dir is not None else None
    if not exists(dataset, root):
        # lazy: store.external imports ibis (~0.8 s); only an external dataset needs it
        from ltrec.store.external import config_version, is_external

        # a dataset on an external engine: its TOML's version stands for the import id (a run
        # trained on Spark-resident data records it; ltrec.models.spark_resident)
        if not is_external(dataset, root):
            return None
        return {"data_import_id": config_version(dataset, root)}
    con = connect(dataset, root)
    try:
        meta = read_meta(con)
    finally:
        con.close()
    return {k: meta[k] for k in ("data_import_id", "data_change", "data_changed_at") if k in meta}


_CHANGE_WORDS = {
    "created": "was deleted and created again",
    "replaced": "was replaced (import --replace, or the demo rebuilt)",
    "appended": "had data added (an append import or new vectors)",
}


def run_staleness(
    dataset: str,
    manifest: Mapping[str, Any],
    data_dir: Path | str | None = None,
    *,
    state: Mapping[str, str] | None | Literal[False] = False,
) -> Staleness:
    """Is the run stale? The one place that decides it (listing, loading, pages, CLI).

    A run is fresh when the ``data_import_id`` it recorded at training equals the dataset's
    current ``meta.data_import_id``. It is stale when the dataset was deleted, re-imported
    (replace or append), or deleted and created again with the same name, and also when the run
    recorded no id (trained before ltrec tracked imports: it cannot tell what it was trained
    on). ``state`` is :func:`dataset_state`'s answer when the caller already has it (one read
    for a whole run list); ``False`` reads it here.
    """
    current = dataset_state(dataset, data_dir) if state is False else state
    recorded = manifest.get("data_import_id")
    if current is None:
        return Staleness(True, f"dataset '{dataset}' no longer exists (it was deleted)")
    now = current.get("data_import_id")
    if not isinstance(recorded, str) or not recorded:
        return Staleness(
            True,
            "the run does not record which import of the data it was trained on (it predates "
            "import tracking)",
            now,
        )
    if recorded == now:
        return Staleness(False, None, now)
    what = _CHANGE_WORDS.get(str(current.get("data_change")), "changed")
    when = current.get("data_changed_at")
    return Staleness(
        True,
        f"dataset '{dataset}' {what} after the run was trained"
        + (f" (on {when})" if when else "")
        + f"; data import {str(now)[:8]} now, {recorded[:8]} at training",
        now,
    )


def check_fresh(
    dataset: str,
    run_id: str,
    manifest: Mapping[str, Any],
    data_dir: Path | str | None = None,
    *,
    allow_stale: bool = False,
) -> Staleness:
    """Raise :class:`StaleRunError` for a stale run unless ``allow_stale``; else its staleness."""
    st = run_staleness(dataset, manifest, data_dir)
    if st.stale and not allow_stale:
        source = manifest.get("from_run")
        again = (
            f"fit it again on the current data (`ltrec promote {dataset} --run {source}`)"
            if is_all_data(manifest) and isinstance(source, str)
            else f"retrain it (`ltrec train {dataset} --model {manifest.get('model')}` or the "
            "Model Lab)"
        )
        raise StaleRunError(
            f"run {run_id} is stale: {st.reason}",
            hint=f"{again}, or use it anyway with --allow-stale (the Studio: 'Use the stale run "
            "anyway')",
        )
    return st


@dataclass(frozen=True)
class RunInfo:
    """A run as listed: its id, folder, manifest and staleness (set by :func:`list_runs`)."""

    run_id: str
    path: Path
    manifest: dict[str, Any]
    staleness: Staleness | None = None

    @property
    def stale(self) -> bool:
        return bool(self.staleness is not None and self.staleness.stale)

    @property
    def model(self) -> str:
        return str(self.manifest.get("model"))

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.manifest.get("metrics") or {})

    @property
    def all_data(self) -> bool:
        return is_all_data(self.manifest)

    def to_dict(self, production: str | None = None) -> dict[str, Any]:
        """The ``ltrec runs --json`` entry; ``production`` is the dataset's production run id
        (:func:`production_run`), so ``production`` says whether this run is it."""
        m = self.manifest
        return {
            "run_id": self.run_id,
            "model": m.get("model"),
            "created_at": m.get("created_at"),
            "params": m.get("params"),
            "fingerprint": (m.get("data") or {}).get("fingerprint"),
            "k": m.get("k"),
            "metrics": self.metrics,
            "train_seconds": m.get("train_seconds"),
            "data_import_id": m.get("data_import_id"),
            **(self.staleness or Staleness(False)).to_dict(),
            "all_data": self.all_data,
            "from_run": m.get("from_run"),
            "production": production is not None and production == self.run_id,
        }


def save_run(
    model: Recommender,
    *,
    dataset: str,
    data: InteractionData,
    metrics: Mapping[str, Any] | None = None,
    k: int | None = None,
    extra: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    data_dir: Path | str | None = None,
) -> RunInfo:
    """Write a trained model as a new run, atomically; returns its :class:`RunInfo`.

    Args:
        model: a fitted model.
        dataset: the dataset it was trained on.
        data: the training data (vocabularies, fingerprint, split).
        metrics: ``{"ndcg@10": {"mean", "low", "high", "n"}, ...}`` on the validation split.
        k: the list length of ``metrics``.
        extra: more manifest keys (``train_seconds``, ``text_encoder``, ...). Pass
            ``data_import_id`` as read with the training data (:func:`ltrec.models.train.train`
            does); without it the dataset's current one is recorded.
    """
    run_id = check_run_id(run_id or new_run_id(model.name))
    folder = runs_dir(dataset, data_dir)
    extra = dict(extra or {})
    if "data_import_id" not in extra:
        current = dataset_state(dataset, data_dir)
        extra["data_import_id"] = None if current is None else current.get("data_import_id")
    with training_lock(dataset, data_dir):
        final = folder / run_id
        if final.exists():
            raise RegistryError(f"run {run_id} already exists", hint="use a new run id")
        for stale in folder.glob(".tmp-*"):  # left by a writer that died (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = folder / f".tmp-{run_id}-{uuid.uuid4().hex[:6]}"
        with atomic_path(final, tmp=tmp):  # every file fsynced, then renamed into place
            tmp.mkdir(parents=True)
            model.save(tmp / MODEL_DIR)
            (tmp / VOCAB).write_text(
                json.dumps({"user_ids": data.user_ids.tolist(), "item_ids": data.item_ids.tolist()})
            )
            files = {}
            for p in _walk(tmp):
                if p.is_symlink() or not (p.is_file() or p.is_dir()):
                    raise RegistryError(f"model wrote an unexpected entry {p.name}")
                if p.is_file():
                    if p.suffix not in ALLOWED_SUFFIXES:
                        raise RegistryError(
                            f"model wrote {p.name}; runs hold only {', '.join(ALLOWED_SUFFIXES)}"
                        )
                    files[p.relative_to(tmp).as_posix()] = {
                        "sha256": sha256_file(p),
                        "bytes": p.stat().st_size,
                    }
            split = data.split
            manifest = {
                "format": FORMAT,
                "run_id": run_id,
                "dataset": dataset,
                "model": model.name,
                "params": model.config.model_dump(mode="json"),
                "data": data.summary(),
                "split_config": split.config.model_dump(mode="json") if split else None,
                "k": k,
                "metrics": dict(metrics or {}),
                "versions": library_versions(),
                "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                **extra,
                "files": files,
            }
            (tmp / MANIFEST).write_text(
                json.dumps(_finite(manifest), indent=2, default=_json_default, allow_nan=False)
            )
    return RunInfo(run_id, final, manifest)


# ---------------------------------------------------------------------------- read


def _run_folder(dataset: str, run_id: str, data_dir: Path | str | None) -> Path:
    folder = runs_dir(dataset, data_dir) / check_run_id(run_id)
    if not folder.is_dir() or folder.is_symlink():
        have = [r.run_id for r in list_runs(dataset, data_dir)]
        raise RegistryError(
            f"run '{run_id}' not found for dataset '{dataset}'"
            + (f" (runs: {', '.join(have[-10:])})" if have else " (no runs yet)"),
            hint=f"train one with `ltrec train {dataset} --model ease`",
        )
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    """Parse and sanity-check a run's manifest (no checksum verification)."""
    path = folder / MANIFEST
    try:
        if path.is_symlink() or path.stat().st_size > _MAX_MANIFEST_BYTES:
            raise ValueError("not a plain file of sensible size")
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RegistryError(
            f"run {folder.name}: manifest.json is missing or unreadable ({exc})",
            hint="the run is incomplete or damaged; delete it and train again",
        ) from exc
    ok = (
        isinstance(manifest, dict)
        and manifest.get("format") == FORMAT
        and isinstance(manifest.get("files"), dict)
        and isinstance(manifest.get("model"), str)
    )
    if not ok:
        raise RegistryError(
            f"run {folder.name}: manifest.json is not an ltrec run manifest",
            hint="only runs written by ltrec can be loaded",
        )
    for key, types in _MANIFEST_TYPES.items():
        value = manifest.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            raise RegistryError(
                f"run {folder.name} is damaged: manifest field '{key}' is "
                f"{_json_type(value)}, expected {_json_type(types[0]())}",
                hint="delete the run and train it again",
            )
    return manifest


#: Manifest fields other code reads, and the JSON types they must have when present.
_MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "params": (dict,),
    "data": (dict,),
    "metrics": (dict,),
    "split_config": (dict,),
    "k": (int,),
    "created_at": (str,),
    "train_seconds": (float, int),
    "data_import_id": (str,),
    "dataset": (str,),
    "split": (dict,),
    "from_run": (str,),
    "source": (dict,),
}


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false"}
    for typ, word in names.items():
        if isinstance(value, typ):
            return word
    return "a number" if isinstance(value, int | float) else "null"


def split_config_of(manifest: Mapping[str, Any], run_id: str) -> Any:
    """The run's evaluation :class:`~ltrec.evaluation.SplitConfig` (None: the default split)."""

    cfg = manifest.get("split_config")
    if not cfg:
        return None
    try:
        return SplitConfig(**cfg)
    except (ValidationError, TypeError) as exc:
        raise RegistryError(
            f"run {run_id} is damaged: its split_config is not a valid split setting",
            hint="delete the run and train it again",
        ) from exc


def run_manifest(dataset: str, run_id: str, data_dir: Path | str | None = None) -> dict[str, Any]:
    """The manifest of a run (checked, not checksum-verified): its staleness needs no weights."""
    return read_manifest(_run_folder(dataset, run_id, data_dir))


def verify_run(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Check the run's files against the manifest: exactly those files, exact sizes and sha256.

    Raises:
        RegistryError: naming the first missing, foreign, resized or modified file.
    """
    listed: dict[str, Any] = dict(manifest["files"])
    present: set[str] = set()
    for p in _walk(folder):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            raise RegistryError(f"run {folder.name}: {rel} is a symlink; refusing to load")
        if p.is_dir():
            continue
        if rel == MANIFEST:
            continue
        if rel not in listed:
            raise RegistryError(
                f"run {folder.name}: foreign file {rel} is not in the manifest; refusing to load",
                hint="remove the file or train the model again",
            )
        present.add(rel)
    for rel, meta in listed.items():
        if rel not in present:
            raise RegistryError(
                f"run {folder.name}: file {rel} is missing", hint="train the model again"
            )
        path = folder / rel
        if not isinstance(meta, dict) or path.stat().st_size != meta.get("bytes"):
            raise RegistryError(
                f"run {folder.name}: file {rel} has the wrong size (truncated or replaced)",
                hint="train the model again",
            )
        if sha256_file(path) != meta.get("sha256"):
            raise RegistryError(
                f"run {folder.name}: file {rel} does not match its checksum (modified)",
                hint="train the model again",
            )


@dataclass
class LoadedRun:
    """A verified, loaded run: the model, its manifest and its vocabularies."""

    run_id: str
    model: Recommender
    manifest: dict[str, Any]
    user_ids: np.ndarray
    item_ids: np.ndarray
    staleness: Staleness | None = None  # checked when it was loaded

    @property
    def stale(self) -> bool:
        return bool(self.staleness is not None and self.staleness.stale)

    def user_index(self, user_id: str) -> int:
        """Index of a user id in the training vocabulary, ``-1`` if unknown."""
        hits = np.flatnonzero(self.user_ids == str(user_id))
        return int(hits[0]) if len(hits) else -1


def load_run(
    dataset: str,
    run_id: str,
    data_dir: Path | str | None = None,
    *,
    allow_stale: bool = False,
) -> LoadedRun:
    """Verify a run's checksums and freshness, then load its model and vocabularies.

    Raises:
        StaleRunError: the dataset changed since training (:func:`run_staleness`), unless
            ``allow_stale``.
        RegistryError: a missing, damaged, tampered or foreign run.
    """
    folder = _run_folder(dataset, run_id, data_dir)
    manifest = read_manifest(folder)
    staleness = check_fresh(dataset, run_id, manifest, data_dir, allow_stale=allow_stale)
    verify_run(folder, manifest)  # before any weights are read (read_npz checks npz headers)
    name = manifest["model"]
    if name not in MODELS:
        raise RegistryError(f"run {run_id} holds an unknown model '{name}'")
    saved_name, _ = read_model_config(folder / MODEL_DIR)
    if saved_name != name:
        raise RegistryError(f"run {run_id}: model config says '{saved_name}', manifest '{name}'")
    model = get_model_class(name).load(folder / MODEL_DIR)
    try:
        vocab = json.loads((folder / VOCAB).read_text())
        user_ids = np.asarray(vocab["user_ids"], dtype=str)
        item_ids = np.asarray(vocab["item_ids"], dtype=str)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RegistryError(f"run {run_id}: vocab.json is unreadable", hint="retrain") from exc
    if len(user_ids) != model.n_users_ or len(item_ids) != model.n_items_:
        raise RegistryError(f"run {run_id}: vocabularies do not match the model", hint="retrain")
    return LoadedRun(run_id, model, manifest, user_ids, item_ids, staleness)


def list_runs(dataset: str, data_dir: Path | str | None = None) -> list[RunInfo]:
    """Runs of a dataset, oldest first, each with its staleness. Folders without a readable
    manifest are skipped."""
    folder = runs_dir(dataset, data_dir)
    if not folder.is_dir():
        return []
    state = dataset_state(dataset, data_dir)  # one read for every run
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_dir() or p.is_symlink():
            continue
        try:
            manifest = read_manifest(p)
        except RegistryError:
            continue
        out.append(RunInfo(p.name, p, manifest, run_staleness(dataset, manifest, state=state)))
    out.sort(key=lambda r: (str(r.manifest.get("created_at", "")), r.run_id))
    return out


def delete_run(dataset: str, run_id: str, data_dir: Path | str | None = None) -> None:
    """Remove a run (renamed away first, so it disappears at once, then deleted). Deleting the
    production run clears the production mark (the mark goes first: it never names a missing
    run)."""
    folder = _run_folder(dataset, run_id, data_dir)
    with training_lock(dataset, data_dir, wait=lock_wait()):
        if production_run(dataset, data_dir) == run_id:
            (folder.parent / PRODUCTION).unlink(missing_ok=True)
            fsync_path(folder.parent)
        trash = folder.parent / f".tmp-deleted-{run_id}-{uuid.uuid4().hex[:6]}"
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)


# ---------------------------------------------------------------------------- production


def is_all_data(manifest: Mapping[str, Any]) -> bool:
    """True for a run fitted on every event (``"split": {"kind": "none"}``): no test split."""
    split = manifest.get("split")
    return isinstance(split, Mapping) and split.get("kind") == NO_SPLIT["kind"]


def check_evaluable(dataset: str, run_id: str, manifest: Mapping[str, Any]) -> None:
    """Refuse to evaluate an all-data run (:class:`NoTestSplitError`, exit 2): it has no test
    split; its source run's figures are in its manifest (``source``)."""
    if is_all_data(manifest):
        src = manifest.get("from_run")
        raise NoTestSplitError(dataset, run_id, src if isinstance(src, str) else None)


def production_run(dataset: str, data_dir: Path | str | None = None) -> str | None:
    """The dataset's production run id, or None when none is promoted (or the mark names a run
    that is gone, e.g. its folder was removed by hand)."""
    folder = runs_dir(dataset, data_dir)
    path = folder / PRODUCTION
    try:
        if path.is_symlink() or path.stat().st_size > 64 * 1024:
            return None
        mark = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # no mark (or an unreadable one: treated as none, a promote rewrites it)
    run_id = mark.get("run_id") if isinstance(mark, dict) else None
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        return None
    run = folder / run_id
    return run_id if run.is_dir() and not run.is_symlink() else None


def promote(dataset: str, run_id: str, data_dir: Path | str | None = None) -> None:
    """Mark ``run_id`` (an all-data run of ``dataset``) as the dataset's production run.

    Export and serving use it when no run is named (:func:`resolve_run`). The mark is one small
    JSON file written to a temporary name, fsynced and renamed over the old one, so a crash
    leaves the old mark or the new one, never half of either.

    Raises:
        RegistryError: no such run, a damaged run, or an evaluation run (fit it on all data
            first: ``ltrec promote DATASET --run R`` does both).
    """
    folder = _run_folder(dataset, run_id, data_dir)
    manifest = read_manifest(folder)
    if not is_all_data(manifest):
        raise RegistryError(
            f"run {run_id} was fitted without the last part of the data (its test split); only "
            "a run fitted on all data can be the production run",
            hint=f"`ltrec promote {dataset} --run {run_id}` fits one on all data from it and "
            "promotes that",
        )
    with training_lock(dataset, data_dir, wait=lock_wait()):
        if not folder.is_dir():  # deleted while we waited for the lock
            _run_folder(dataset, run_id, data_dir)
        mark = {
            "run_id": run_id,
            "from_run": manifest.get("from_run"),
            "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        atomic_write(folder.parent / PRODUCTION, json.dumps(mark, indent=2))


def resolve_run(
    dataset: str,
    run_id: str | None,
    data_dir: Path | str | None = None,
    *,
    active: str | None = None,
) -> str:
    """The run to use when a command may leave the run out (export, recommend, serve).

    An explicit ``run_id`` is itself (checked to exist). None: the dataset's production run
    (:func:`promote`), else ``active`` (the caller's chosen run, e.g. the app's active model)
    when it exists, else the newest run.

    Raises:
        RegistryError: an explicit run that does not exist, or a dataset without runs.
    """
    if run_id is not None:
        _run_folder(dataset, run_id, data_dir)
        return run_id
    production = production_run(dataset, data_dir)
    if production is not None:
        return production
    runs = list_runs(dataset, data_dir)
    if active is not None and any(r.run_id == active for r in runs):
        return active
    if not runs:
        raise RegistryError(
            f"dataset '{dataset}' has no model runs to use",
            hint=f"train one with `ltrec train {dataset} --model ease`, then promote it with "
            f"`ltrec promote {dataset} --run RUN`",
        )
    return runs[-1].run_id


# ---------------------------------------------------------------------------- npz headers

#: Most members an ``.npz`` of a run may hold (ltrec's models save a few dozen).
_MAX_NPZ_MEMBERS = 4096


def check_npz(path: Path) -> int:
    """Check an ``.npz`` from its headers alone, before any array is read; returns its bytes.

    ltrec writes ``.npz`` with :func:`numpy.savez` (members stored, not compressed), so a run's
    arrays can never declare more bytes than the file holds: each member must be stored, hold
    one ``.npy`` header with a plain dtype (no objects), and declare exactly the bytes it
    stores. A crafted file declaring a huge array is refused here instead of allocating it.

    Raises:
        RegistryError: naming the file and the first bad member.
    """

    def bad(why: str) -> RegistryError:
        return RegistryError(
            f"{path.name} is damaged: {why}",
            hint="the run is damaged or not written by ltrec; delete it and train again",
        )

    total = 0
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            if len(members) > _MAX_NPZ_MEMBERS:
                raise bad(f"{len(members)} arrays (at most {_MAX_NPZ_MEMBERS})")
            for info in members:
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > size:
                    raise bad(f"array {info.filename!r} is compressed or larger than the file")
                with zf.open(info) as fh:
                    version = npy.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = npy.read_array_header_1_0(fh, max_header_size=10_000)
                    elif version == (2, 0):
                        shape, _, dtype = npy.read_array_header_2_0(fh, max_header_size=10_000)
                    else:
                        raise bad(f"array {info.filename!r} has .npy version {version}")
                    header = fh.tell()
                if dtype.hasobject:
                    raise bad(f"array {info.filename!r} holds Python objects")
                declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if declared != info.file_size - header:
                    raise bad(
                        f"array {info.filename!r} declares shape {tuple(shape)} of {dtype} "
                        f"({declared:,} bytes) but stores {info.file_size - header:,} bytes"
                    )
                total += declared
    except RegistryError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise bad(f"not a plain array archive ({exc.__class__.__name__}: {str(exc)[:200]})") from (
            exc
        )
    return total
