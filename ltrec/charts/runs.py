"""Tables and figures of saved model runs (the Model Lab page): pure functions of run dicts.

A run dict is :meth:`ltrec.models.registry.RunInfo.to_dict` output: ``run_id, model, created_at,
params, fingerprint, k, metrics`` with ``metrics["ndcg@10"] = {"mean", "low", "high", "n"}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ltrec.charts.metrics import tradeoff_scatter
from ltrec.evaluation.aggregate import HIGHER_IS_BETTER
from ltrec.evaluation.pareto import pareto_front

#: Headline metrics of the runs table, in order.
HEADLINE = ("ndcg", "recall", "aplt", "coverage", "gini")


def _metric(run: Mapping[str, Any], name: str) -> dict[str, Any]:
    k = run.get("k") or 10
    return dict((run.get("metrics") or {}).get(f"{name}@{k}") or {})


def _cell(v: Mapping[str, Any]) -> str:
    mean, lo, hi = v.get("mean"), v.get("low"), v.get("high")
    if mean is None:
        return "–"
    if lo is None or hi is None:
        return f"{mean:.4f}"
    return f"{mean:.4f} [{lo:.4f}, {hi:.4f}]"


def runs_frame(runs: Sequence[Mapping[str, Any]], active: str | None = None) -> pd.DataFrame:
    """One row per run, newest first: id, model, params, created, data fingerprint, K and the
    headline metrics as ``mean [95% CI]`` text."""
    rows = []
    for r in runs:
        row = {
            "active": "●" if r.get("run_id") == active else "",
            "run": r.get("run_id"),
            "model": r.get("model"),
            "params": json.dumps(
                {k: v for k, v in (r.get("params") or {}).items() if k != "seed"},
                sort_keys=True,
            ),
            "created": str(r.get("created_at") or "")[:19].replace("T", " "),
            "data": r.get("fingerprint"),
            "k": r.get("k"),
        }
        for m in HEADLINE:
            row[m] = _cell(_metric(r, m))
        rows.append(row)
    cols = ["active", "run", "model", "params", "created", "data", "k", *HEADLINE]
    return pd.DataFrame(rows, columns=cols).iloc[::-1].reset_index(drop=True)


def runs_tradeoff_points(
    runs: Sequence[Mapping[str, Any]], *, x: str = "aplt", y: str = "ndcg"
) -> pd.DataFrame:
    """Points for :func:`runs_tradeoff`: ``setting, x, x_low, x_high, y, y_low, y_high, front``
    (the shape of :func:`ltrec.charts.metrics.tradeoff_points`); runs lacking a metric skipped."""
    rows = []
    for r in runs:
        mx, my = _metric(r, x), _metric(r, y)
        if mx.get("mean") is None or my.get("mean") is None:
            continue
        rows.append(
            {
                "setting": f"{r.get('model')} · {str(r.get('run_id'))[-6:]}",
                "x": mx["mean"],
                "x_low": mx.get("low"),
                "x_high": mx.get("high"),
                "y": my["mean"],
                "y_low": my.get("low"),
                "y_high": my.get("high"),
            }
        )
    df = pd.DataFrame(rows)
    if df.empty:
        return df.assign(front=pd.Series(dtype=bool))
    up = (HIGHER_IS_BETTER.get(x, True), HIGHER_IS_BETTER.get(y, True))
    df["front"] = pareto_front(df[["x", "y"]].to_numpy(dtype=float), up)
    return df


def runs_tradeoff(runs: Sequence[Mapping[str, Any]], *, height: int = 420) -> go.Figure:
    """Accuracy (NDCG) against tail share (APLT) of every run, Pareto front highlighted."""
    return tradeoff_scatter(
        runs_tradeoff_points(runs), x_title="tail share (APLT)", y_title="NDCG", height=height
    )
