"""Figures of a feedback-loop simulation: pure functions of a
:class:`~ltrec.simulation.SimulationResult`."""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ltrec.charts.text import html_text
from ltrec.definitions import ROUND_METRICS
from ltrec.definitions import metric as record


class SimulationResult(Protocol):
    """What the figures read of :class:`ltrec.simulation.SimulationResult` (charts sit below the
    simulator in the import contract, so they name the shape, not the class)."""

    labels: list[str]
    rounds: pd.DataFrame
    data: dict[str, Any]

    def final(self) -> pd.DataFrame: ...

    def series(self, metric: str) -> pd.DataFrame: ...

#: The six per-round panels of the Feedback Loop page: (metric, title).
#: Titles are the metric records' names (ltrec.definitions): the simulator's tail share is the
#: share of recommendation slots, not the data's "Tail share of exposure".
PANELS: tuple[tuple[str, str], ...] = (
    ("exposure_gini", f"{record('exposure_gini').name} (this round)"),
    ("tail_share", f"{record('tail_share').name} of recommendations (this round)"),
    ("coverage_cum", f"{record('coverage_cum').name} (so far)"),
    ("arp", f"{record('arp').name} (mean popularity shown)"),
    ("cum_purchases", "Cumulative purchases"),
    ("cum_tail_purchases", "Cumulative tail purchases"),
)
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")

#: Column titles of :func:`final_table`.
FINAL_TITLES = {
    "policy": "policy",
    "exposure_gini": "exposure Gini (last round)",
    "exposure_gini_cum": "exposure Gini (all rounds)",
    "tail_share": "tail share (last round)",
    "coverage_cum": "coverage (all rounds)",
    "arp": "ARP (last round)",
    "popularity_gini": "interaction Gini (end)",
    "cum_clicks": "clicks",
    "cum_purchases": "purchases",
    "cum_tail_purchases": "tail purchases",
    "cum_revenue": "revenue",
}


def rounds_figure(result: SimulationResult, *, height: int = 640) -> go.Figure:
    """Six panels (:data:`PANELS`), one line per policy over the rounds."""
    fig = make_subplots(rows=3, cols=2, subplot_titles=[t for _, t in PANELS], vertical_spacing=0.1)
    for j, label in enumerate(result.labels):
        g = result.rounds[result.rounds["policy"] == label].sort_values("round")
        colour = COLOURS[j % len(COLOURS)]
        name = html_text(label)  # a policy's label is typed by the user
        for p, (metric, _) in enumerate(PANELS):
            fig.add_trace(
                go.Scatter(
                    x=g["round"].tolist(),
                    y=g[metric].astype(float).tolist(),
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=p == 0,
                    line={"color": colour},
                    hovertemplate="round %{x}: %{y:.4g}<extra>%{fullData.name}</extra>",
                ),
                row=p // 2 + 1,
                col=p % 2 + 1,
            )
    fig.update_xaxes(title_text="round", row=3)
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.12},
    )
    return fig


def metric_figure(result: SimulationResult, metric: str, *, height: int = 320) -> go.Figure:
    """One per-round metric (any of :data:`ROUND_METRICS`), one line per policy."""
    wide = result.series(metric)
    fig = go.Figure()
    for j, label in enumerate(wide.columns):
        fig.add_trace(
            go.Scatter(
                x=wide.index.tolist(),
                y=wide[label].astype(float).tolist(),
                mode="lines+markers",
                name=html_text(label),
                line={"color": COLOURS[j % len(COLOURS)]},
            )
        )
    fig.update_layout(
        height=height,
        xaxis_title="round",
        yaxis_title=metric,
        title=ROUND_METRICS.get(metric, metric),
        margin={"l": 10, "r": 10, "t": 40, "b": 40},
    )
    return fig


def final_table(result: SimulationResult) -> pd.DataFrame:
    """The final comparison: one row per policy, readable column titles, rounded values."""
    df = result.final()
    if not result.data.get("prices", True) or df["cum_revenue"].isna().all():
        df = df.drop(columns="cum_revenue")
    return df.rename(columns=FINAL_TITLES).round(4)
