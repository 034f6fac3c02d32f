"""Plotly figures of the long-tail results: pure functions, typed result in, ``go.Figure`` out."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from ltrec.analytics.concentration import Lorenz
from ltrec.analytics.longtail import BucketTable, CategoryTail, TailTrend
from ltrec.analytics.popularity import RankFrequency
from ltrec.charts.text import html_texts
from ltrec.definitions import bucket_colour, fmt

#: Above this many points a trace is drawn with WebGL (``Scattergl``).
WEBGL_ABOVE = 1000
EVENT_COLOURS = {
    "impression": "#7f7f7f",
    "view": "#1f77b4",
    "cart": "#ff7f0e",
    "purchase": "#2ca02c",
    "buyers": "#8c564b",
}
#: Lorenz series named other than by their event type.
SERIES_LABELS = {"buyers": "buyers per item (purchase concentration)"}
TAIL_COLOUR = bucket_colour("tail")


def _scatter(n: int):
    return go.Scattergl if n > WEBGL_ABOVE else go.Scatter


def downsample(x: np.ndarray, y: np.ndarray, points: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``points`` points, evenly spaced in index, always keeping both endpoints."""
    n = len(x)
    if n <= points:
        return x, y
    idx = np.unique(np.linspace(0, n - 1, points).round().astype(int))
    return x[idx], y[idx]


def lorenz_figure(lz: Lorenz, points: int = 1000, height: int = 420) -> go.Figure:
    """Lorenz curves (one per event type, Gini in the legend) and the line of equality."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="equality (Gini 0)",
            line={"dash": "dash", "color": "#999999"},
        )
    )
    for event, (pop, share) in lz.curves.items():
        x, y = downsample(pop, share, points)
        what = "buyers" if event == "buyers" else f"{event}s"
        fig.add_trace(
            _scatter(len(x))(
                x=x,
                y=y,
                mode="lines",
                name=f"{SERIES_LABELS.get(event, event)} (Gini {fmt('gini', lz.gini[event])})",
                line={"color": EVENT_COLOURS.get(event)},
                hovertemplate="%{x:.1%} of items get %{y:.1%} of " + what + "<extra></extra>",
            )
        )
    fig.update_layout(
        height=height,
        xaxis_title="share of catalogue (items sorted by count, ascending)",
        yaxis_title="cumulative share of events",
        legend={"yanchor": "top", "y": 0.99, "xanchor": "left", "x": 0.01},
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return fig


def rank_frequency_figure(rf: RankFrequency, height: int = 420) -> go.Figure:
    """Log-log popularity by rank, each bucket's rank range shaded."""
    fig = go.Figure()
    df = rf.frame
    for name, first, last in rf.boundaries:
        x0 = max(first, 1) * 0.95
        fig.add_vrect(
            x0=x0,
            x1=last * 1.05 if last > first else first * 1.05,
            fillcolor=bucket_colour(name),
            opacity=0.12,
            line_width=0,
        )
        # annotations on a log axis take log10 positions (vrect's own label would put rank
        # 300 at 10^300 and stretch the axis)
        fig.add_annotation(
            x=math.log10(x0),
            y=1,
            yref="paper",
            text=name,
            showarrow=False,
            xanchor="left",
            yanchor="top",
        )
    fig.add_trace(
        _scatter(len(df))(
            x=df["rank"],
            y=df["popularity"],
            mode="lines+markers" if len(df) < 200 else "lines",
            name=f"popularity ({rf.event})",
            hovertemplate="rank %{x}: popularity %{y}<extra></extra>",
        )
    )
    fig.update_layout(
        height=height,
        xaxis_title="item rank (log)",
        yaxis_title=f"popularity: {rf.event} (log)",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        showlegend=False,
    )
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def bucket_share_figure(bt: BucketTable, height: int = 320) -> go.Figure:
    """Each bucket's share of the catalogue, of exposure and of purchases, as grouped bars.

    Without exposure (purchase-only data) the exposure bar is left out and the share of
    buyers (distinct buyers per item, summed) is shown instead.
    """
    df = bt.frame
    if bt.exposure_event is not None:
        rows = {
            "share of items": "item_share",
            f"share of exposure ({bt.exposure_event})": "exposure_share",
            "share of purchases": "purchase_share",
        }
    else:
        rows = {
            "share of items": "item_share",
            "share of purchases": "purchase_share",
            "share of buyers": "buyer_share",
        }
    fig = go.Figure()
    for _, row in df.iterrows():
        fig.add_trace(
            go.Bar(
                name=row["bucket"],
                orientation="h",
                y=list(rows),
                x=[row[c] for c in rows.values()],
                marker_color=bucket_colour(row["bucket"]),
                hovertemplate="%{x:.1%}<extra>" + str(row["bucket"]) + "</extra>",
            )
        )
    fig.update_layout(
        barmode="stack",
        height=height,
        xaxis_tickformat=".0%",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.15},
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def category_tail_figure(ct: CategoryTail, top: int = 25, height: int = 420) -> go.Figure:
    """Per category: tail share of items vs tail share of exposure and of purchases."""
    df = ct.frame.head(top)
    fig = go.Figure()
    for col, label, colour in (
        ("tail_item_share", "tail share of items", "#9ecae1"),
        ("tail_exposure_share", f"tail share of exposure ({ct.exposure_event})", "#ff7f0e"),
        ("tail_purchase_share", "tail share of purchases", TAIL_COLOUR),
    ):
        if col == "tail_exposure_share" and ct.exposure_event is None:
            continue  # not measured: no bar rather than a bar of zeros
        fig.add_trace(
            go.Bar(
                x=html_texts(df["category"]),
                y=df[col],
                name=label,
                marker_color=colour,
                hovertemplate="%{x}: %{y:.1%}<extra>" + label + "</extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        height=height,
        yaxis_tickformat=".0%",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.12},
    )
    return fig


def trend_figure(tr: TailTrend, height: int = 360) -> go.Figure:
    """Weekly tail share of exposure and of purchases."""
    df = tr.frame
    fig = go.Figure()
    for col, label, colour in (
        ("tail_exposure_share", f"tail share of exposure ({tr.exposure_event})", "#ff7f0e"),
        ("tail_purchase_share", "tail share of purchases", TAIL_COLOUR),
    ):
        if col == "tail_exposure_share" and tr.exposure_event is None:
            continue  # not measured: no line rather than a line at zero
        fig.add_trace(
            _scatter(len(df))(
                x=df["week"],
                y=df[col],
                mode="lines+markers",
                name=label,
                line={"color": colour},
                hovertemplate="week of %{x|%Y-%m-%d}: %{y:.1%}<extra>" + label + "</extra>",
            )
        )
    fig.update_layout(
        height=height,
        yaxis_tickformat=".0%",
        xaxis_title="week",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.12},
    )
    return fig
