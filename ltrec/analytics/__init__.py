"""Long-tail exposure, conversion and segment analytics as Ibis expressions (DESIGN §3).

Every function takes a :class:`~ltrec.analytics.backend.Store` (any Ibis backend holding the
canonical tables) and returns a typed result with a pandas frame and its metadata, so the same
code runs on DuckDB (default, :func:`open_store`) and on Spark or another Ibis engine.
"""

from ltrec.analytics.backend import Scope, Store, from_cursor, open_store

__all__ = ["Scope", "Store", "from_cursor", "open_store"]
