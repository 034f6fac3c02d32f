"""CSV export of any result table: small-cell suppression and formula-injection escaping.

Spreadsheet programs execute a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and a
leading tab or carriage return can hide one) as a formula ("CSV injection", OWASP). Every text
cell that starts with one of those is prefixed with ``'`` so it shows as text. Numbers are left
alone (a negative number is not a formula). Rows describing fewer than ``k`` users (the
``users`` column) have every count and rate blanked and ``suppressed`` set, as in the tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltrec.config import get_settings

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> object:
    """``'``-prefix a string that a spreadsheet would read as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def suppress(frame: pd.DataFrame, k: int | None = None, users: str = "users") -> pd.DataFrame:
    """Blank every numeric cell of rows with fewer than ``k`` users; add ``suppressed``.

    Frames without a ``users`` column describe items or buckets, not people: unchanged (but a
    ``suppressed`` column that is already there is respected).
    """
    k = get_settings().small_cell_k if k is None else k
    out = frame.copy()
    if users in out.columns:
        small = out[users].fillna(0).to_numpy() < k
        flag = small | (out["suppressed"].to_numpy(dtype=bool) if "suppressed" in out else False)
        out["suppressed"] = flag
    elif "suppressed" in out.columns:
        flag = out["suppressed"].to_numpy(dtype=bool)
    else:
        return out
    num = [c for c in out.columns if c != "suppressed" and pd.api.types.is_numeric_dtype(out[c])]
    for c in num:
        out[c] = out[c].astype("float64").where(~flag, np.nan)
    return out


def to_csv(frame: pd.DataFrame, k: int | None = None, users: str = "users") -> bytes:
    """UTF-8 CSV of ``frame`` with suppression (see :func:`suppress`) and escaped text cells."""
    out = suppress(frame, k, users)
    for c in out.columns:
        if out[c].dtype == object or isinstance(out[c].dtype, pd.CategoricalDtype | pd.StringDtype):
            out[c] = out[c].astype(object).map(escape_cell)
    out.columns = [str(escape_cell(str(c))) for c in out.columns]
    return out.to_csv(index=False).encode("utf-8")
