"""Plotly figure of an experiment: each arm's change against the control, metric by metric, with
its interval (a forest plot; the result's Bonferroni-adjusted ``difference_level``). Pure: an
:class:`~ltrec.app.experiments.ExperimentResult` in, a figure out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pandas as pd
import plotly.graph_objects as go

from ltrec.charts.text import html_text


class _Arm(Protocol):
    @property
    def arm(self) -> str: ...


class ExperimentResult(Protocol):
    """What the figure reads of :class:`ltrec.app.experiments.ExperimentResult` (charts sit
    below the application layer, so they name the shape, not the class)."""

    @property
    def arms(self) -> Sequence[_Arm]: ...

    @property
    def control(self) -> str: ...

    @property
    def difference_level(self) -> float: ...

    def table(self) -> pd.DataFrame: ...


#: One colour per non-control arm, in arm order (at most three).
ARM_COLOURS = ("#6a3d9a", "#1f78b4", "#e6550d")


def difference_figure(result: ExperimentResult, height: int = 360) -> go.Figure:
    """Relative change against the control (arm / control - 1) per metric, interval bars; a
    metric whose control is 0 (no relative change) or without an interval is left out, and a
    hollow marker means the interval includes zero (no detectable difference)."""
    table = result.table()
    fig = go.Figure()
    others = [a.arm for a in result.arms if a.arm != result.control]
    for j, arm in enumerate(others):
        d = table[(table["arm"] == arm) & table["rel"].notna() & table["rel_low"].notna()]
        if d.empty:
            continue
        rel, lo, hi = (d[c].to_numpy(dtype=float) for c in ("rel", "rel_low", "rel_high"))
        fig.add_trace(
            go.Scatter(
                x=rel,
                y=d["name"].tolist(),
                mode="markers",
                name=html_text(arm),
                marker={
                    "size": 11,
                    "color": ARM_COLOURS[j % len(ARM_COLOURS)],
                    "symbol": ["circle" if x else "circle-open" for x in d["detected"]],
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": hi - rel,
                    "arrayminus": rel - lo,
                },  # fmt: skip
                hovertemplate="%{y}: %{x:+.1%}<extra>" + html_text(arm) + "</extra>",
            )
        )
    fig.add_vline(x=0, line_dash="dot", line_color="#888")
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 40},
        xaxis={
            "title": f"change against {html_text(result.control)} "
            f"({result.difference_level:.1%} interval)",
            "tickformat": "+.0%",
        },  # fmt: skip
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": 1.1},
    )
    return fig
