"""CSV export: escaping and small-cell suppression."""

from __future__ import annotations

import io

import pandas as pd

from ltrec.analytics.export import to_csv


def test_formula_cells_and_headers_are_escaped() -> None:
    df = pd.DataFrame({"=cmd": ["=1+1", "+SUM(A1)", "-2", "@x", "ok", "\tx"], "n": range(6)})
    out = to_csv(df).decode()
    assert "'=cmd" in out and "'=1+1" in out and "'+SUM(A1)" in out and "'@x" in out
    back = pd.read_csv(io.StringIO(out))
    assert back["n"].tolist() == list(range(6))  # numbers untouched


def test_small_cells_are_blank_in_export() -> None:
    df = pd.DataFrame({"segment": ["a", "b"], "users": [3, 40], "views": [7, 90]})
    back = pd.read_csv(io.BytesIO(to_csv(df, k=10)))
    assert back["users"].isna().tolist() == [True, False]
    assert back["views"].isna().tolist() == [True, False]
    assert back["suppressed"].tolist() == [True, False]
    plain = pd.DataFrame({"bucket": ["head"], "items": [3]})  # no users column: no suppression
    assert pd.read_csv(io.BytesIO(to_csv(plain, k=10)))["items"].tolist() == [3]
