"""Plotly figures of the Rerank Studio: pure functions, typed results in, ``go.Figure`` out.

* :func:`sweep_figure`: a strategy's strength sweep as accuracy against tail share, the Pareto
  front highlighted and joined, the page's chosen settings marked on it, and an optional
  target tail share.
* :func:`marks_frame`: the chosen settings' points from their evaluation results.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

from ltrec.charts.metrics import BAD, FRONT, NEUTRAL
from ltrec.charts.text import html_texts
from ltrec.evaluation.aggregate import EvalResult
from ltrec.rerank.sweep import SweepResult

MARK = "#1f77b4"


def marks_frame(
    results: Mapping[str, EvalResult], *, x: str = "aplt", y: str = "ndcg"
) -> pd.DataFrame:
    """``setting, x, y`` per evaluated setting (``x``/``y`` metric names without ``@K``)."""
    rows = [{"setting": name, "x": r[x].mean, "y": r[y].mean} for name, r in results.items()]
    return pd.DataFrame(rows, columns=["setting", "x", "y"])


def sweep_figure(
    result: SweepResult,
    marks: pd.DataFrame | None = None,
    *,
    target: float | None = None,
    height: int = 440,
) -> go.Figure:
    """Accuracy against tail share along a strength sweep.

    Args:
        result: :func:`ltrec.rerank.sweep.sweep` output; its ``accuracy`` and ``tail`` columns
            are the axes, its ``pareto`` column the front.
        marks: the page's settings (:func:`marks_frame`), drawn as labelled stars.
        target: a target tail share, drawn as a vertical line.
    """
    t = result.table
    fig = go.Figure()
    if t.empty:
        fig.update_layout(title="No sweep to plot", height=height)
        return fig
    t = t.sort_values("value")
    x, y = t[result.tail].astype(float), t[result.accuracy].astype(float)
    labels = [f"{result.parameter}={v:g}" for v in t["value"]]
    fig.add_trace(
        go.Scatter(
            x=x.tolist(),
            y=y.tolist(),
            mode="lines+markers",
            name=f"{result.strategy} sweep",
            line={"color": NEUTRAL, "width": 1},
            marker={"color": NEUTRAL, "size": 7},
            text=labels,
            hovertemplate="%{text}<br>tail share %{x:.1%}<br>accuracy %{y:.4f}<extra></extra>",
        )
    )
    front = t[t["pareto"].astype(bool)].sort_values(result.tail)
    if len(front):
        fig.add_trace(
            go.Scatter(
                x=front[result.tail].astype(float).tolist(),
                y=front[result.accuracy].astype(float).tolist(),
                mode="lines+markers",
                name="Pareto front",
                line={"color": FRONT, "dash": "dash"},
                marker={"color": FRONT, "size": 10},
                text=[f"{result.parameter}={v:g}" for v in front["value"]],
                hovertemplate="%{text}<br>tail share %{x:.1%}<br>accuracy %{y:.4f}"
                "<extra>Pareto front</extra>",
            )
        )
    if marks is not None and len(marks):
        fig.add_trace(
            go.Scatter(
                x=marks["x"].astype(float).tolist(),
                y=marks["y"].astype(float).tolist(),
                mode="markers+text",
                name="your settings",
                text=html_texts(marks["setting"].astype(str)),
                textposition="top center",
                marker={"color": MARK, "size": 15, "symbol": "star"},
                hovertemplate="%{text}<br>tail share %{x:.1%}<br>accuracy %{y:.4f}<extra></extra>",
            )
        )
    if target is not None:
        fig.add_vline(
            x=target, line_color=BAD, line_dash="dot", annotation_text=f"target {target:.0%}"
        )
    fig.update_layout(
        height=height,
        xaxis_title=f"tail share ({result.tail})",
        yaxis_title=result.accuracy,
        xaxis_tickformat=".0%",
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 10, "r": 10, "t": 30, "b": 40},
    )
    return fig
