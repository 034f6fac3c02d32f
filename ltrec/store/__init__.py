"""Embedded DuckDB store: one file per dataset (DESIGN §2)."""

from ltrec.store.connect import (
    check_name,
    connect,
    cursor,
    dataset_path,
    delete_dataset,
    exists,
    file_version,
    list_datasets,
    read_meta,
    writing,
)

__all__ = [
    "check_name",
    "connect",
    "cursor",
    "dataset_path",
    "delete_dataset",
    "exists",
    "file_version",
    "list_datasets",
    "read_meta",
    "writing",
]
