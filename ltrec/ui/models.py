"""The active model of each dataset, cached loaded runs, and config forms for the pages.

The active run id of a dataset lives in ``st.session_state`` (key ``active_run:<dataset>``) and
in the URL (``?run=<id>``), so a shared link opens the same model. Other pages call
:func:`active_run` for the id and :func:`active_model` for the loaded, checksum-verified run
(``st.cache_resource`` keyed by (dataset, run id), a few entries at most: models can be large).
A cached run is checked for staleness on every :func:`load` (the registry decides), so a
re-import after it was cached still refuses it.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, cast

import annotated_types as at
import pandas as pd
import streamlit as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ltrec import safejson
from ltrec.app.pipeline import RecSession
from ltrec.charts.runs import runs_frame
from ltrec.errors import ConfigError, LtrecError
from ltrec.evaluation import EvalResult
from ltrec.models.registry import (
    LoadedRun,
    RunInfo,
    check_fresh,
    list_runs,
    load_run,
    run_manifest,
    runs_dir,
)
from ltrec.ui.state import data_root, version

RUN_PARAM = "run"


def _key(dataset: str) -> str:
    return f"active_run:{dataset}"


def _listing(folder: Path) -> tuple[tuple[str, int], ...]:
    """What changes when a run is added, deleted, promoted or rewritten (cheap: stats only)."""
    try:
        entries = [(p.name, p.stat().st_mtime_ns) for p in folder.iterdir()]
        return (("", folder.stat().st_mtime_ns), *sorted(entries))
    except FileNotFoundError:
        return ()


@st.cache_resource(max_entries=8, show_spinner=False, ttl=3600)
def _runs(dataset: str, root: str, file_version: str, listing: tuple) -> list[RunInfo]:
    del file_version, listing  # cache keys only: staleness follows the data, runs the folder
    return list_runs(dataset, root)


def runs(dataset: str) -> list[RunInfo]:
    """The dataset's runs, oldest first, with their staleness (:func:`list_runs`), cached
    until the dataset file or the runs folder changes (each listing reads the dataset's meta:
    a DuckDB attach per call)."""
    root = data_root()
    try:
        file_version = version(dataset)
    except LtrecError:  # deleted: list_runs says every run is stale
        file_version = "missing"
    return list(_runs(dataset, str(root), file_version, _listing(runs_dir(dataset, root))))


def fresh_check(dataset: str, run_id: str, *, allow_stale: bool = False) -> None:
    """Raise :class:`StaleRunError` for a stale run (unless ``allow_stale``), from the cached
    listing; the registry's :func:`check_fresh` words the error."""
    info = next((r for r in runs(dataset) if r.run_id == run_id), None)
    if info is None or info.stale:
        root = data_root()
        check_fresh(dataset, run_id, run_manifest(dataset, run_id, root), root,
                    allow_stale=allow_stale)  # fmt: skip


def run_ids(dataset: str) -> list[str]:
    return [r.run_id for r in runs(dataset)]


def active_run(dataset: str) -> str | None:
    """The active run id of ``dataset`` (session first, then ``?run=``), if it still exists."""
    chosen = st.session_state.get(_key(dataset)) or st.query_params.get(RUN_PARAM)
    if not chosen or chosen not in run_ids(dataset):
        st.session_state.pop(_key(dataset), None)
        return None
    st.session_state[_key(dataset)] = chosen
    return str(chosen)


def set_active_run(dataset: str, run_id: str | None) -> None:
    """Make ``run_id`` the active model of ``dataset`` (None: no active model)."""
    if run_id is None:
        st.session_state.pop(_key(dataset), None)
        if RUN_PARAM in st.query_params:
            del st.query_params[RUN_PARAM]
        return
    st.session_state[_key(dataset)] = run_id
    st.query_params[RUN_PARAM] = run_id


@st.cache_resource(max_entries=4, show_spinner="Loading the model ...")
def _load(dataset: str, run_id: str, root: str) -> LoadedRun:
    return load_run(dataset, run_id, root, allow_stale=True)  # checked by load(), uncached


def load(dataset: str, run_id: str, *, allow_stale: bool = False) -> LoadedRun:
    """A verified, loaded run (cached per process by dataset and run id).

    Raises:
        StaleRunError: the dataset changed since the run was trained (unless ``allow_stale``).
    """
    fresh_check(dataset, run_id, allow_stale=allow_stale)  # a re-import refuses a cached run
    return _load(dataset, run_id, str(data_root()))


def runs_table(
    runs: list[RunInfo], active: str | None, production: str | None = None
) -> pd.DataFrame:
    """The Model Lab's runs table (newest first) with a ``stale`` column (what changed) and a
    ``fit`` column: "production" for the production run, "all data" for other all-data runs,
    blank for evaluation runs (fitted on the split: their figures are their own)."""
    frame = runs_frame([r.to_dict(production) for r in runs], active=active)
    reasons = {r.run_id: "stale" for r in runs if r.stale}
    # after the metrics: what to read first comes first (column names are unique: an int)
    at = cast(int, frame.columns.get_loc("created"))
    frame.insert(at, "stale", frame["run"].map(lambda rid: reasons.get(rid, "")))
    fits = {r.run_id: "all data" for r in runs if r.all_data}
    if production is not None:
        fits[production] = "production"
    frame.insert(at + 1, "fit", frame["run"].map(lambda rid: fits.get(rid, "")))
    return frame


def stale_note(runs: list[RunInfo]) -> str | None:
    """One sentence for the page when some runs are stale (None when none is)."""
    stale = [r for r in runs if r.stale]
    if not stale:
        return None
    reason = stale[-1].staleness.reason if stale[-1].staleness else ""
    n = len(stale)
    return (
        f"{n} of {len(runs)} runs {'is' if n == 1 else 'are'} stale: {reason}. Stale runs are "
        "refused by the Rerank Studio and by `ltrec recommend/evaluate/export` (unless "
        "--allow-stale); train them again on the current data."
    )


def data_note(runs: list[RunInfo], run_id: str | None) -> str | None:
    """The run's data note (why its model cannot beat popularity on this data), or None."""
    info = next((r for r in runs if r.run_id == run_id), None)
    return None if info is None else info.manifest.get("data_note")


def active_model(dataset: str) -> LoadedRun | None:
    """The loaded active run of ``dataset``, or None when none is chosen."""
    run_id = active_run(dataset)
    return None if run_id is None else load(dataset, run_id)


@st.cache_resource(max_entries=16, show_spinner="Evaluating the run on its split ...")
def _evaluate(dataset: str, run_id: str, k: int, root: str, file_version: str) -> EvalResult:
    del file_version  # cache key only: a re-import invalidates the result
    return RecSession.open(dataset, run_id, data_dir=root).evaluate(k)


def evaluate(dataset: str, run_id: str, k: int) -> EvalResult:
    """A run re-evaluated on its split with per-user values (for paired comparisons), cached.

    Kept as a resource, not pickled: the result holds per-user frames and catalogue state.
    """
    return _evaluate(dataset, run_id, int(k), str(data_root()), version(dataset))


# ---------------------------------------------------------------------------- config forms


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    # annotated_types types a bound as SupportsGe etc.; a config's bounds are numbers
    lo: Any = None
    hi: Any = None
    for m in info.metadata:
        if isinstance(m, at.Ge):
            lo = m.ge
        elif isinstance(m, at.Gt):
            lo = m.gt
        elif isinstance(m, at.Le):
            hi = m.le
        elif isinstance(m, at.Lt):
            hi = m.lt
    return lo, hi


#: One sentence per model for the training form (the docstrings point at module docs).
MODEL_SUMMARY: dict[str, str] = {
    "popularity": "Recommends the most popular items to everyone: the baseline to beat.",
    "itemknn": "Items similar to the user's items (cosine over who interacted with them).",
    "ease": "A closed-form item-to-item model (EASE, Steck 2019): strong and fast on "
    "catalogues up to ~10,000 items.",
    "als": "Matrix factorisation for implicit feedback (alternating least squares).",
    "rp3beta": "A random walk user → item → user → item that penalises popular items.",
    "content": "Items similar by co-purchases and by their text; scores new items too.",
    "two_tower": "A neural two-tower model over ids, categories and product text (TensorFlow; "
    "minutes to train).",
    "ncf": "Neural collaborative filtering over ids, categories and product text "
    "(TensorFlow; minutes to train).",
}


def model_summary(model: str, cls: type) -> str:
    """The form's one-line description of ``model`` (never a pointer into the code)."""
    if model in MODEL_SUMMARY:
        return MODEL_SUMMARY[model]
    first = (cls.__doc__ or "").strip().splitlines()[:1]
    text = first[0] if first else ""
    for ref in ("; see the module docstring", " (see the module docstring)", "; see module doc"):
        text = text.replace(ref, "")
    return text


def field_label(name: str, lo: float | None, hi: float | None) -> str:
    """``"lambda_"`` with bounds (0, None) -> ``"Lambda (≥ 0)"``: words, then the range."""
    words = name.rstrip("_").replace("_", " ")
    label = words[:1].upper() + words[1:]
    if lo is not None and hi is not None:
        return f"{label} ({lo:g}–{hi:g})"
    if lo is not None:
        return f"{label} (≥ {lo:g})"
    if hi is not None:
        return f"{label} (≤ {hi:g})"
    return label


def field_widget(name: str, info: FieldInfo, key: str) -> Any:
    """One input widget for a pydantic field: type, bounds and description as help."""
    ann = info.annotation
    default = info.get_default(call_default_factory=True)
    lo, hi = _bounds(info)
    label = field_label(name, lo, hi)
    help_ = info.description
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        label = field_label(name, None, None)
        options = list(typing.get_args(ann))
        return st.selectbox(label, options, index=options.index(default), help=help_, key=key)
    if ann is bool:
        return st.checkbox(field_label(name, None, None), value=bool(default), help=help_, key=key)
    if ann is int:
        return int(
            st.number_input(
                label,
                min_value=None if lo is None else int(lo),
                max_value=None if hi is None else int(hi),
                value=int(default),
                step=1,
                help=help_,
                key=key,
            )
        )
    if ann is float:
        return float(
            st.number_input(
                label,
                min_value=None if lo is None else float(lo),
                max_value=None if hi is None else float(hi),
                value=float(default),
                help=help_,
                key=key,
                format="%g",
            )
        )
    text = st.text_input(
        field_label(name, None, None), value=json.dumps(default),
        help=(help_ or "") + " (JSON; null = the default rule)", key=key,
    )  # fmt: skip
    try:
        safejson.check(text, label)  # no RecursionError from a deeply nested entry
        return json.loads(text)
    except (json.JSONDecodeError, ConfigError):
        return text  # the model's config validation says what is wrong with it


def config_form(cls: type[BaseModel], prefix: str) -> dict[str, Any]:
    """Widgets for every field of a config class, two per row; returns the chosen values."""
    out: dict[str, Any] = {}
    cols = st.columns(2)
    for j, (name, info) in enumerate(cls.model_fields.items()):
        with cols[j % 2]:
            out[name] = field_widget(name, info, f"{prefix}_{name}")
    return out
