"""The opportunities chart: each group's share of the catalogue, of exposure and of demand,
side by side with 95% error bars (typed result in, ``go.Figure`` out)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ltrec.analytics.opportunities import Opportunities
from ltrec.charts.text import html_texts
from ltrec.definitions import PCT_D3

#: Series colours: the catalogue neutral, exposure and demand distinct.
COLOURS = {"catalogue": "#9e9e9e", "exposure": "#1f77b4", "demand": "#2ca02c"}


def shares_figure(opp: Opportunities, top: int = 12, height: int | None = None) -> go.Figure:
    """Horizontal bars for the first ``top`` ranked groups (rank 1 at the top): share of the
    catalogue, of exposure and of demand, the estimates with their 95% intervals. A series the
    data does not measure is not drawn."""
    df = opp.categories.head(top).iloc[::-1]
    names = html_texts(df["name"])
    fig = go.Figure()
    fig.add_bar(
        y=names,
        x=df["catalogue_share"],
        name="share of the catalogue",
        orientation="h",
        marker_color=COLOURS["catalogue"],
        hovertemplate=f"%{{y}}: %{{x:{PCT_D3}}} of the catalogue<extra></extra>",
    )
    for kind, event in (("exposure", opp.exposure_event), ("demand", opp.demand_event)):
        if event is None:
            continue
        x = df[f"{kind}_share"].to_numpy(dtype=float)
        fig.add_bar(
            y=names,
            x=x,
            name=f"share of {kind} ({event}s)",
            orientation="h",
            marker_color=COLOURS[kind],
            error_x={
                "type": "data",
                "symmetric": False,
                "array": np.maximum(df[f"{kind}_share_high"].to_numpy(dtype=float) - x, 0),
                "arrayminus": np.maximum(x - df[f"{kind}_share_low"].to_numpy(dtype=float), 0),
            },
            hovertemplate=f"%{{y}}: %{{x:{PCT_D3}}} of {event}s<extra></extra>",
        )
    fig.update_layout(
        barmode="group",
        height=height or max(260, 70 + 48 * len(df)),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.08, "x": 0},
        xaxis={"tickformat": PCT_D3, "title": None},
        yaxis={"automargin": True},
    )
    return fig
