"""What every writer runs last, inside its write: row counts in ``meta`` and derived tables.

Import and the demo builder both call :func:`finalize` just before their write is swapped in,
so anything derived from the whole dataset (counts, per-user derivations that pages would
otherwise recompute on every view) is computed once per import.
"""

from __future__ import annotations

import duckdb

from ltrec.store.connect import write_meta


def finalize(con: duckdb.DuckDBPyConnection) -> None:
    """Refresh ``meta`` row counts (and, as analytics adds them, derived tables)."""
    counts = {
        f"rows_{table}": con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
        for table in ("events", "items", "users", "rejects")
    }
    write_meta(con, counts)
