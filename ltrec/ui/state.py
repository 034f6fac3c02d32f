"""The active dataset and its cached read-only connection.

One DuckDB connection per (dataset file version) per process, in ``st.cache_resource``; each
query runs on its own ``cursor()`` because a connection is not thread-safe and Streamlit serves
sessions from several threads. When an import swaps the file, its version changes and the next
call opens the new file.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import streamlit as st

from ltrec.config import get_settings
from ltrec.errors import LtrecError
from ltrec.store import connect, file_version, list_datasets
from ltrec.store import cursor as store_cursor

DATASET_KEY = "dataset"


@st.cache_resource(max_entries=8, show_spinner=False)
def _connection(name: str, root: str, version: str) -> duckdb.DuckDBPyConnection:
    del version  # part of the cache key only
    return connect(name, Path(root))


def data_root() -> Path:
    return get_settings().data_dir


def datasets() -> list[str]:
    return list_datasets(data_root())


def active_dataset() -> str | None:
    """The dataset chosen in the sidebar (or by ``?ds=`` in the URL, or LTREC_DATASET)."""
    names = datasets()
    if not names:
        return None
    chosen = st.session_state.get(DATASET_KEY) or st.query_params.get("ds")
    if chosen not in names:
        default = get_settings().dataset
        chosen = default if default in names else names[0]
    st.session_state[DATASET_KEY] = chosen
    return chosen


def version(name: str) -> str:
    """The file version of a dataset: use it in cache keys so caches follow imports."""
    return file_version(name, data_root())


def cursor(name: str) -> duckdb.DuckDBPyConnection:
    """A fresh cursor on the cached read-only connection of ``name``."""
    return store_cursor(_connection(name, str(data_root()), version(name)))


def show_error(err: LtrecError) -> None:
    st.error(err.message)
    if err.hint:
        st.caption(err.hint)


def dataset_picker() -> str | None:
    """The sidebar's dataset selector; returns the active dataset or None when there is none."""
    names = datasets()
    if not names:
        st.sidebar.info("No datasets yet.")
        return None
    current = active_dataset()
    chosen = st.sidebar.selectbox(
        "Dataset", names, index=names.index(current), help="Each dataset is one DuckDB file."
    )
    if chosen != current:
        st.session_state[DATASET_KEY] = chosen
    st.query_params["ds"] = chosen
    return chosen


def empty_state() -> None:
    """What a page shows when there is no dataset to show."""
    st.info(
        "There is no dataset to show yet. Build the demo shop with `ltrec demo` "
        "(or `make run`), or import your own events with `ltrec import NAME --events FILE`."
    )
