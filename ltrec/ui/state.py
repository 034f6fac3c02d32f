"""The active dataset and its cached read-only connection.

One DuckDB connection per (dataset file version) per process, in ``st.cache_resource``; each
query runs on its own ``cursor()`` because a connection is not thread-safe and Streamlit serves
sessions from several threads. When an import swaps the file, its version changes and the next
call opens the new file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import cast

import duckdb
import streamlit as st

from ltrec.analytics.backend import Store, from_cursor
from ltrec.charts.text import markdown_message
from ltrec.config import get_settings
from ltrec.errors import BadInputError, LtrecError
from ltrec.store import connect, external, file_version, list_datasets
from ltrec.store import cursor as store_cursor

DATASET_KEY = "dataset"


@st.cache_resource(max_entries=8, show_spinner=False)
def _connection(name: str, root: str, version: str) -> duckdb.DuckDBPyConnection:
    del version  # part of the cache key only
    con = connect(name, Path(root))
    bound(con)
    return con


def bound(con: duckdb.DuckDBPyConnection) -> None:
    """Cap DuckDB's memory on a read connection of the server (``app_duckdb_memory_mb``).

    DuckDB's default limit is 80% of RAM, and its hash tables and cached blocks count towards
    the server's resident memory: at 10M events one page's aggregations held 1 GB and kept most
    of it. Capped, a big aggregation spills to disk. The temp folder is per process: two
    servers never share DuckDB's spill files.
    """
    s = get_settings()
    temp = s.duckdb_temp_dir or Path(tempfile.gettempdir()) / f"ltrec-duckdb-{os.getpid()}"
    con.execute("SET memory_limit = ?", [f"{s.app_duckdb_memory_mb}MB"])
    con.execute("SET temp_directory = ?", [str(temp)])


def forget_connections() -> None:
    """Close the cached read connections (after a delete: they hold the removed file open)."""
    _connection.clear()


def data_root() -> Path:
    return get_settings().data_dir


@st.cache_resource(max_entries=8, show_spinner=False, ttl=3600)
def _external(name: str, root: str, version: str) -> Store:
    del version  # part of the cache key only
    return Store(external.open_external(name, Path(root)))


def datasets() -> list[str]:
    """DuckDB datasets, then TOML-defined external ones (:mod:`ltrec.store.external`)."""
    return list_datasets(data_root()) + external.list_external(data_root())


def is_external(name: str) -> bool:
    return external.is_external(name, data_root())


def label(name: str) -> str:
    """How the dataset picker shows a name (external datasets are marked with their engine)."""
    if not is_external(name):
        return name
    try:
        return f"{name} (external: {external.load_config(name, data_root()).backend})"
    except LtrecError:
        return f"{name} (external)"


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
    if is_external(name):
        return external.config_version(name, data_root())
    return file_version(name, data_root())


def store(name: str) -> Store:
    """The analytics :class:`Store` of a dataset: a fresh cursor on the cached DuckDB
    connection, or the cached engine connection of an external dataset."""
    if is_external(name):
        return _external(name, str(data_root()), version(name))
    return from_cursor(cursor(name))


def cursor(name: str) -> duckdb.DuckDBPyConnection:
    """A fresh cursor on the cached read-only connection of ``name``."""
    if is_external(name):
        raise BadInputError(
            f"dataset '{name}' lives on an external engine; this page needs a local copy",
            hint=f"fetch a training sample on the Data page; it becomes the dataset "
            f"'{external.sample_name(name)}'",
        )
    return store_cursor(_connection(name, str(data_root()), version(name)))


def show_error(err: LtrecError) -> None:
    # messages quote the user's data (a column or file name): shown as text, code spans kept
    st.error(markdown_message(err.message))
    if err.hint:
        st.caption(markdown_message(err.hint))


def dataset_picker() -> str | None:
    """The sidebar's dataset selector; returns the active dataset or None when there is none."""
    names = datasets()
    if not names:
        st.sidebar.info("No datasets yet.")
        return None
    current = cast(str, active_dataset())  # names is not empty: it is one of them
    chosen = st.sidebar.selectbox(
        "Dataset",
        names,
        index=names.index(current),
        format_func=label,
        help="Each dataset is one DuckDB file, or a TOML file naming an external engine.",
    )
    if chosen != current:
        st.session_state[DATASET_KEY] = chosen
    st.query_params["ds"] = chosen
    return chosen


def require_local(name: str) -> None:
    """Stop a page that needs the local store (models, simulation) on an external dataset,
    saying how to get a local training sample instead."""
    if not is_external(name):
        return
    st.info(
        f"'{name}' lives on an external engine: the analytics pages query it there, but models "
        f"train on a local sample. Fetch one on the Data page (it becomes the dataset "
        f"'{external.sample_name(name)}'), then choose that dataset in the sidebar."
    )
    # what a Spark dataset offers without a sample (ltrec.models.spark_resident)
    st.caption(
        f"On Spark data, ALS also trains where the data lives: `ltrec train {name} --model als "
        f"--engine spark`; its runs and figures are listed by `ltrec runs {name}`, and every "
        f"user's list is written by `ltrec export {name} --run RUN --out lists.parquet "
        "--engine spark`. This page, the Studio and one-user lists need a local sample."
    )
    st.stop()


def empty_state() -> None:
    """What a page shows when there is no dataset to show."""
    st.info(
        "There is no dataset to show yet. Build the demo shop with `ltrec demo` "
        "(or `make run`), or import your own events with `ltrec import NAME --events FILE`."
    )
