"""Cached analytics for the pages.

``st.cache_data`` keyed by (view kind, dataset, dataset file version, parameters as JSON): an
import swaps the file, its version changes, and the next call recomputes. Nothing large is ever
hashed. The DuckDB connection itself is the per-process ``st.cache_resource`` of
:mod:`ltrec.ui.state`; each computation runs on its own cursor.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ltrec.analytics.view import ViewParams, compute
from ltrec.ui import state

TTL_S = 3600
MAX_ENTRIES = 256


@st.cache_data(ttl=TTL_S, max_entries=MAX_ENTRIES, show_spinner="Computing ...")
def _cached(kind: str, name: str, version: str, params: str) -> Any:
    del version  # part of the cache key only
    store = state.store(name)
    return compute(kind, store, ViewParams.model_validate_json(params))


def view(kind: str, name: str, params: ViewParams) -> Any:
    """The analytics view ``kind`` of dataset ``name`` with ``params``, cached."""
    return _cached(kind, name, state.version(name), params.key())


@st.cache_data(ttl=TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def _meta(name: str, version: str) -> dict[str, Any]:
    del version
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
    return _meta(name, state.version(name))
