"""Validated import of events (and items, users) from CSV or Parquet into a dataset (DESIGN §2).

The modules follow the data: :mod:`.read` (sniff, decompress, decode) -> :mod:`.presets` and
:mod:`.map` (layouts, column mapping, event values) -> :mod:`.validate` (per-row SQL checks,
reject reasons) -> :mod:`.commit` (rejects, meta, finalize, atomic swap via ``writing``).
:func:`import_dataset` is the one entry point.
"""

from ltrec.store.importing.codes import RejectCode
from ltrec.store.importing.commit import import_dataset
from ltrec.store.importing.map import DROP
from ltrec.store.importing.presets import (
    PRESET_NAMES,
    PRESETS,
    get_preset,
    guess_mapping,
    match_columns,
)
from ltrec.store.importing.read import ReadConfig, SourceFile, sniff
from ltrec.store.importing.report import ImportConfig, ImportReport

__all__ = [
    "DROP",
    "PRESETS",
    "PRESET_NAMES",
    "ImportConfig",
    "ImportReport",
    "ReadConfig",
    "RejectCode",
    "SourceFile",
    "get_preset",
    "guess_mapping",
    "import_dataset",
    "match_columns",
    "sniff",
]
