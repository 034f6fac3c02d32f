"""Plotly figures of evaluation results: pure functions, typed results in, ``go.Figure`` out.

* :func:`metrics_frame` / :func:`metrics_table`: every metric per setting with its 95%
  interval and its change against a base setting (paired interval, p-value).
* :func:`delta_chart`: a forest chart of those changes with error bars.
* :func:`tradeoff_points` / :func:`tradeoff_scatter`: accuracy against tail share (or any two
  metrics) per setting, with the Pareto front highlighted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ltrec.charts.text import html_text, html_texts
from ltrec.definitions import METRICS
from ltrec.evaluation.aggregate import HIGHER_IS_BETTER, EvalResult, base_name
from ltrec.evaluation.pareto import pareto_front

GOOD = "#2ca02c"
BAD = "#d62728"
NEUTRAL = "#7f7f7f"
FRONT = "#ff7f0e"

#: Help shown next to each metric (DESIGN §3: the definition beside the number).
HELP: dict[str, str] = {k: m.help for k, m in METRICS.items()}


def _fmt(v: object, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{float(v):.{digits}f}"


def _interval(low: object, high: object, digits: int = 3) -> str:
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    return f"[{_fmt(low, digits)}, {_fmt(high, digits)}]"


def metrics_frame(
    results: Mapping[str, EvalResult],
    deltas: pd.DataFrame | None = None,
    *,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (metric, setting): value, interval, and the change against the base.

    Args:
        results: setting name -> result (insertion order is display order).
        deltas: :func:`ltrec.evaluation.compare_many` output, or None for no delta columns.
        metrics: metric names to show (default: every metric of the first result).

    Returns:
        ``metric, setting, mean, low, high, n, delta, delta_low, delta_high, rel_delta,
        p_value, better`` (``better``: True / False / None when no delta).
    """
    if not results:
        return pd.DataFrame()
    first = next(iter(results.values()))
    names = list(metrics) if metrics is not None else list(first.metrics)
    d = deltas.set_index(["setting", "metric"]) if deltas is not None and len(deltas) else None
    rows = []
    for m in names:
        for setting, res in results.items():
            if m not in res.metrics:
                continue
            mv = res.metrics[m]
            row = {"metric": m, "setting": setting, **mv.to_dict()}
            row.update(dict.fromkeys(["delta", "delta_low", "delta_high", "rel_delta"]))
            row.update({"p_value": None, "better": None})
            if d is not None and (setting, m) in d.index:
                x = d.loc[(setting, m)]
                up = HIGHER_IS_BETTER.get(base_name(m), True)
                row.update(
                    delta=x["delta"],
                    delta_low=x["low"],
                    delta_high=x["high"],
                    rel_delta=x["rel_delta"],
                    p_value=x["p_value"],
                    better=None if x["delta"] == 0 else bool((x["delta"] > 0) == up),
                )
            rows.append(row)
    return pd.DataFrame(rows)


def metrics_table(frame: pd.DataFrame, *, height: int | None = None) -> go.Figure:
    """A table figure of :func:`metrics_frame`: metric, setting, value [interval], change.

    Changes that are better (by the metric's direction) are green, worse red; a change whose
    paired interval contains 0 is grey, whatever its sign.
    """
    if frame.empty:
        return go.Figure(layout={"title": "No results to compare"})
    deltas, colours = [], []
    for _, r in frame.iterrows():
        if r["delta"] is None or pd.isna(r["delta"]):
            deltas.append("base" if r["better"] is None and _is_base(frame, r) else "")
            colours.append("white")
            continue
        rel = "" if pd.isna(r["rel_delta"]) else f" ({r['rel_delta']:+.1%})"
        p = "" if pd.isna(r["p_value"]) else f", p={r['p_value']:.3g}"
        deltas.append(f"{r['delta']:+.4f}{rel} {_interval(r['delta_low'], r['delta_high'])}{p}")
        crosses = (
            not pd.isna(r["delta_low"])
            and not pd.isna(r["delta_high"])
            and r["delta_low"] <= 0 <= r["delta_high"]
        )
        colours.append(
            "#f0f0f0"
            if crosses or r["better"] is None
            else ("#e5f5e0" if r["better"] else "#fde0dd")
        )
    values = [
        f"{_fmt(m)} {_interval(lo, hi)}"
        for m, lo, hi in zip(frame["mean"], frame["low"], frame["high"], strict=True)
    ]
    helps = [HELP.get(base_name(m), "") for m in frame["metric"]]
    fig = go.Figure(
        go.Table(
            header={
                "values": ["metric", "setting", "value [95% CI]", "n", "change vs base", "what"],
                "align": "left",
                "fill_color": "#e8e8e8",
            },
            cells={
                "values": [
                    frame["metric"].tolist(),
                    html_texts(frame["setting"].astype(str)),
                    values,
                    frame["n"].tolist(),
                    deltas,
                    helps,
                ],
                "align": "left",
                "fill_color": [["white"] * len(frame)] * 4 + [colours] + [["white"] * len(frame)],
            },
            columnwidth=[90, 110, 150, 50, 230, 260],
        )
    )
    fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0}, height=height)
    return fig


def _is_base(frame: pd.DataFrame, row: pd.Series) -> bool:
    # The base setting is the one that never has a delta.
    with_delta = frame.loc[frame["delta"].notna(), "setting"].unique()
    return len(with_delta) > 0 and row["setting"] not in with_delta


def delta_chart(deltas: pd.DataFrame, *, relative: bool = True, height: int = 420) -> go.Figure:
    """Forest chart of changes against the base: one marker per (metric, setting), with the
    paired 95% interval as error bars; green where better, red where worse, grey when the
    interval contains 0.

    Args:
        deltas: :func:`ltrec.evaluation.compare_many` (or :func:`compare`) output.
        relative: plot the change as a share of the base value (metrics on different scales
            then fit one axis); intervals are scaled by the same base.
    """
    fig = go.Figure()
    if deltas is None or deltas.empty:
        fig.update_layout(title="No settings to compare with the base")
        return fig
    df = deltas.copy()
    if "setting" not in df.columns:
        df["setting"] = "setting"
    scale = df["base"].abs().where(df["base"].abs() > 0) if relative else pd.Series(1.0, df.index)
    for setting, g in df.groupby("setting", sort=False):
        s = scale.loc[g.index]
        x = g["delta"] / s
        lo = (g["low"].astype(float) / s).fillna(x)
        hi = (g["high"].astype(float) / s).fillna(x)
        sig = ~((g["low"].astype(float) <= 0) & (g["high"].astype(float) >= 0))
        up = g["higher_is_better"].astype(bool)
        better = (g["delta"] > 0) == up
        colour = np.where(~sig | (g["delta"] == 0), NEUTRAL, np.where(better, GOOD, BAD))
        fig.add_trace(
            go.Scatter(
                x=x.astype(float).tolist(),
                y=g["metric"].tolist(),
                mode="markers",
                name=html_text(setting),
                marker={"color": colour.tolist(), "size": 9},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": (hi - x).astype(float).tolist(),
                    "arrayminus": (x - lo).astype(float).tolist(),
                },
                customdata=np.stack(
                    [g["value"], g["base"], g["p_value"].astype(float)], axis=1
                ).tolist(),
                hovertemplate=(
                    "%{y}: %{x:+.2"
                    + ("%" if relative else "f")
                    + "}<br>value %{customdata[0]:.4f} vs base %{customdata[1]:.4f}"
                    "<br>p = %{customdata[2]:.3g}<extra>%{fullData.name}</extra>"
                ),
            )
        )
    fig.add_vline(x=0, line_color=NEUTRAL, line_dash="dot")
    fig.update_layout(
        height=height,
        xaxis_title="change vs base" + (" (relative)" if relative else ""),
        xaxis_tickformat="+.0%" if relative else "+.3f",
        yaxis={"autorange": "reversed"},
        margin={"l": 10, "r": 10, "t": 30, "b": 40},
    )
    return fig


def tradeoff_points(
    results: Mapping[str, EvalResult], *, x: str = "aplt", y: str = "ndcg"
) -> pd.DataFrame:
    """Points for :func:`tradeoff_scatter`: one per setting with both metrics and intervals.

    ``x`` / ``y`` are metric names with or without ``@K`` (each result's own K is used).
    Returns ``setting, x, x_low, x_high, y, y_low, y_high, front``.
    """
    rows = []
    for name, r in results.items():
        mx, my = r[x], r[y]
        rows.append(
            {
                "setting": name,
                "x": mx.mean,
                "x_low": mx.low,
                "x_high": mx.high,
                "y": my.mean,
                "y_low": my.low,
                "y_high": my.high,
            }
        )
    df = pd.DataFrame(rows)
    if df.empty:
        return df.assign(front=pd.Series(dtype=bool))
    up = (HIGHER_IS_BETTER.get(base_name(x), True), HIGHER_IS_BETTER.get(base_name(y), True))
    df["front"] = pareto_front(df[["x", "y"]].to_numpy(dtype=float), up)
    return df


def tradeoff_scatter(
    points: pd.DataFrame,
    *,
    x_title: str = "tail share (APLT)",
    y_title: str = "NDCG",
    target_x: float | None = None,
    height: int = 440,
) -> go.Figure:
    """Accuracy against tail share per setting, Pareto-optimal settings highlighted and joined.

    Args:
        points: :func:`tradeoff_points` output (or any frame with setting, x, y, front and
            optional interval columns).
        target_x: draw a vertical target line (e.g. "30% tail share").
    """
    fig = go.Figure()
    if points.empty:
        fig.update_layout(title="No settings to plot")
        return fig

    def err(df: pd.DataFrame, axis: str) -> dict | None:
        lo, hi = f"{axis}_low", f"{axis}_high"
        if lo not in df or df[lo].isna().all():
            return None
        v = df[axis].astype(float)
        return {
            "type": "data",
            "symmetric": False,
            "array": (df[hi].astype(float) - v).fillna(0).tolist(),
            "arrayminus": (v - df[lo].astype(float)).fillna(0).tolist(),
            "thickness": 1,
        }

    for on_front, g in ((False, points[~points["front"]]), (True, points[points["front"]])):
        if g.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=g["x"].astype(float).tolist(),
                y=g["y"].astype(float).tolist(),
                mode="markers+text",
                text=html_texts(g["setting"].astype(str)),
                textposition="top center",
                name="Pareto front" if on_front else "dominated",
                marker={"color": FRONT if on_front else NEUTRAL, "size": 11 if on_front else 8},
                error_x=err(g, "x"),
                error_y=err(g, "y"),
            )
        )
    front = points[points["front"]].sort_values("x")
    if len(front) > 1:
        fig.add_trace(
            go.Scatter(
                x=front["x"].astype(float).tolist(),
                y=front["y"].astype(float).tolist(),
                mode="lines",
                name="front",
                line={"color": FRONT, "dash": "dash"},
                hoverinfo="skip",
                showlegend=False,
            )
        )
    if target_x is not None:
        fig.add_vline(x=target_x, line_color=BAD, line_dash="dot", annotation_text="target")
    fig.update_layout(
        height=height,
        xaxis_title=x_title,
        yaxis_title=y_title,
        margin={"l": 10, "r": 10, "t": 30, "b": 40},
    )
    return fig
