"""Cached analytics for the pages.

Byte-bounded caches (:mod:`ltrec.ui.bytecache`, pickled like ``st.cache_data``) keyed by (view
kind, dataset, data dir, dataset file version, parameters as JSON): an import swaps the file,
its version changes, and the next call recomputes. Nothing large is ever
hashed. The DuckDB connection itself is the per-process ``st.cache_resource`` of
:mod:`ltrec.ui.state`; each computation runs on its own cursor.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ltrec.analytics.view import ViewParams, compute
from ltrec.ui import state
from ltrec.ui.bytecache import bounded

TTL_S = 3600
#: Byte budgets (MiB of pickled results, :mod:`ltrec.ui.bytecache`): item-level frames grow with
#: the catalogue, so a count of entries bounds nothing at a million items.
VIEWS_MB = 128
META_MB = 8


@bounded(VIEWS_MB, TTL_S, on_miss=lambda: st.spinner("Computing ..."))
def _cached(kind: str, name: str, root: str, version: str, params: str) -> Any:
    del root, version  # part of the cache key only
    store = state.store(name)
    return compute(kind, store, ViewParams.model_validate_json(params))


def view(kind: str, name: str, params: ViewParams) -> Any:
    """The analytics view ``kind`` of dataset ``name`` with ``params``, cached."""
    return _cached(kind, name, str(state.data_root()), state.version(name), params.key())


@bounded(META_MB, TTL_S)
def _meta(name: str, root: str, version: str) -> dict[str, Any]:
    del root, version
    store = state.store(name)
    cats = store.items().select("category").distinct().to_pandas()["category"]
    ev = store.table("events")
    span = ev.aggregate(first=ev.ts.min(), last=ev.ts.max(), n=ev.count()).to_pandas()
    return {
        "categories": sorted(str(c) for c in cats),
        "first": span["first"].iloc[0],
        "last": span["last"].iloc[0],
        "events": int(span["n"].iloc[0]),
        "profile": store.profile(),
    }


def dataset_meta(name: str) -> dict[str, Any]:
    """Categories, time span, event count and the dataset profile (``profile``, a
    :class:`~ltrec.store.profile.DatasetProfile`) of a dataset, for the controls; cached."""
    return _meta(name, str(state.data_root()), state.version(name))
