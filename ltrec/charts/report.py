"""Figures of the stakeholder report (:mod:`ltrec.app.report`): typed result in, figure out."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ltrec.charts.text import html_text

BASE_COLOUR = "#7f7f7f"
SETTING_COLOUR = "#d62728"


def effect_figure(
    deltas: pd.DataFrame, labels: dict[str, str], setting: str, *, height: int = 300
) -> go.Figure:
    """Base vs setting for a few metrics, each on its own panel row as paired bars.

    Args:
        deltas: :func:`ltrec.evaluation.compare` output (``metric, base, value, low, high``;
            ``low``/``high`` bound the change, so the setting's interval is ``base + low``..
            ``base + high``).
        labels: metric -> display name (the order of the bars).
        setting: the setting's name (shop-independent, still escaped for plotly).
    """
    df = deltas.set_index("metric").loc[[m for m in labels if m in set(deltas["metric"])]]
    names = [labels[m] for m in df.index]
    value = df["value"].astype(float)
    low = (df["base"] + df["low"].astype(float)).fillna(value)
    high = (df["base"] + df["high"].astype(float)).fillna(value)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            name="model alone",
            orientation="h",
            y=names,
            x=df["base"].astype(float).tolist(),
            marker_color=BASE_COLOUR,
        )
    )
    fig.add_trace(
        go.Bar(
            name=html_text(setting),
            orientation="h",
            y=names,
            x=value.tolist(),
            marker_color=SETTING_COLOUR,
            error_x={
                "type": "data",
                "symmetric": False,
                "array": (high - value).clip(lower=0).tolist(),
                "arrayminus": (value - low).clip(lower=0).tolist(),
            },
        )
    )
    fig.update_layout(
        barmode="group",
        height=height,
        margin={"l": 10, "r": 40, "t": 30, "b": 30},
        legend={"orientation": "h", "y": 1.12},
        yaxis={"autorange": "reversed"},
        xaxis_title="value (95% interval of the setting's value)",
    )
    return fig
