"""Plotly figures of evaluation results: pure functions, typed results in, ``go.Figure`` out.

* :func:`metrics_frame` / :func:`metrics_table`: every metric per setting with its 95%
  interval and its change against a base setting (paired interval, p-value).
* :func:`delta_chart`: a forest chart of those changes with error bars.
* :func:`tradeoff_points` / :func:`tradeoff_scatter`: accuracy against tail share (or any two
  metrics) per setting, with the Pareto front highlighted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ltrec.charts.text import html_text, html_texts
from ltrec.definitions import METRICS, signed_pct
from ltrec.evaluation.aggregate import HIGHER_IS_BETTER, EvalResult, base_name
from ltrec.evaluation.pareto import pareto_front

GOOD = "#2ca02c"
BAD = "#d62728"
NEUTRAL = "#7f7f7f"
FRONT = "#ff7f0e"

#: Help shown next to each metric (DESIGN §3: the definition beside the number).
HELP: dict[str, str] = {k: m.help for k, m in METRICS.items()}


def _fmt(v: Any, digits: int = 3) -> str:  # v: a frame cell (number, None or NaN)
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{float(v):.{digits}f}"


def _interval(low: Any, high: Any, digits: int = 3) -> str:
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    return f"[{_fmt(low, digits)}, {_fmt(high, digits)}]"


def metric_label(key: str) -> str:
    """``"ndcg@10"`` -> ``"NDCG@10"`` (the definitions' name; the key when it has none)."""

    base, _, k = key.partition("@")
    rec = METRICS.get(base)
    return key if rec is None else rec.label(int(k) if k.isdigit() else None)


def change_words(
    key: str,
    delta: float | None,
    low: float | None,
    high: float | None,
    base: float | None,
    higher_is_better: bool | None = None,
) -> str:
    """A change against the base in words, from its paired 95% interval (no p-values):
    ``"clearly better: +12.0% NDCG@10 [+8.0%, +16.0%]"`` when the interval excludes 0,
    ``"no detectable difference: +1.0% NDCG@10 [-2.0%, +4.0%]"`` when it contains 0.

    Changes are relative to the base value (absolute when the base is 0); a metric without a
    direction (e.g. overlap) says "clearly higher/lower".
    """

    if delta is None or pd.isna(delta):
        return ""
    up = HIGHER_IS_BETTER.get(base_name(key)) if higher_is_better is None else higher_is_better
    scale = abs(float(base)) if base is not None and not pd.isna(base) and base != 0 else None
    parts = [delta, low, high]
    if scale is not None:
        text = [signed_pct(None if x is None or pd.isna(x) else x / scale) for x in parts]
    else:
        text = ["–" if x is None or pd.isna(x) else f"{float(x):+.3g}" for x in parts]
    interval = f" [{text[1]}, {text[2]}]" if None not in (low, high) else ""
    number = f"{text[0]} {metric_label(key)}{interval}"
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return f"no interval: {number}"
    if low <= 0 <= high or delta == 0:
        return f"no detectable difference: {number}"
    if up is None:
        return f"clearly {'higher' if delta > 0 else 'lower'}: {number}"
    return f"clearly {'better' if (delta > 0) == up else 'worse'}: {number}"


def change_sentences(
    deltas: pd.DataFrame, base: str, metrics: Sequence[str]
) -> list[str]:  # fmt: skip
    """One sentence per compared setting: its changes against ``base`` on ``metrics``, in
    words (:func:`change_words`), e.g. ``"ease against popularity: clearly better: +12.0%
    NDCG@10 [+8.0%, +16.0%]; no detectable difference: ..."``."""
    if deltas is None or deltas.empty:
        return []
    out = []
    for setting, g in deltas.groupby("setting", sort=False):
        rows = g.set_index("metric")
        words = []
        for m in metrics:
            if m in rows.index:
                c = rows.loc[m].to_dict()
                words.append(change_words(m, c["delta"], c["low"], c["high"], c["base"]))
        out.append(f"{setting} against {base}: " + "; ".join(w for w in words if w) + ".")
    return out


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
            row.update(
                dict.fromkeys(["delta", "delta_low", "delta_high", "rel_delta", "delta_base"])
            )
            row.update({"p_value": None, "better": None})
            if d is not None and (setting, m) in d.index:
                # a full (setting, metric) key of the MultiIndex: one row
                x = cast("pd.Series[Any]", d.loc[(setting, m)]).to_dict()
                up = HIGHER_IS_BETTER.get(base_name(m), True)
                row.update(
                    delta=x["delta"],
                    delta_low=x["low"],
                    delta_high=x["high"],
                    rel_delta=x["rel_delta"],
                    delta_base=x["base"],
                    p_value=x["p_value"],
                    better=None if x["delta"] == 0 else bool((x["delta"] > 0) == up),
                )
            rows.append(row)
    return pd.DataFrame(rows)


def metrics_table(frame: pd.DataFrame, *, height: int | None = None) -> go.Figure:
    """A table figure of :func:`metrics_frame`: metric, setting, value [interval], change.

    Changes are words with the relative change and its paired 95% interval
    (:func:`change_words`, never a p-value). Better changes (by the metric's direction) are
    green, worse red; a change whose paired interval contains 0 is grey, whatever its sign.
    """
    if frame.empty:
        return go.Figure(layout={"title": "No results to compare"})
    deltas, colours = [], []
    for _, r in frame.iterrows():
        if r["delta"] is None or pd.isna(r["delta"]):
            deltas.append("base" if r["better"] is None and _is_base(frame, r) else "")
            colours.append("white")
            continue
        base = r.get("delta_base")
        if base is None or pd.isna(base):  # a frame without the base value: from rel_delta
            rel = r["rel_delta"]
            base = r["delta"] / rel if rel is not None and not pd.isna(rel) and rel else None
        deltas.append(
            change_words(r["metric"], r["delta"], r["delta_low"], r["delta_high"], base)
        )
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
    labels = [metric_label(m) for m in frame["metric"]]
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
                    labels,
                    html_texts(frame["setting"].astype(str)),
                    values,
                    frame["n"].tolist(),
                    deltas,
                    helps,
                ],
                "align": "left",
                "fill_color": [["white"] * len(frame)] * 4 + [colours] + [["white"] * len(frame)],
            },
            columnwidth=[80, 150, 140, 40, 290, 200],  # a setting label fits at 1280 px
        )
    )
    fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0}, height=height)
    return fig


def _is_base(frame: pd.DataFrame, row: pd.Series) -> bool:
    # The base setting is the one that never has a delta.
    with_delta = frame.loc[frame["delta"].notna(), "setting"].unique()
    return len(with_delta) > 0 and row["setting"] not in with_delta


#: Relative changes beyond +-REL_CAP are drawn at the cap (a triangle pointing on) with their
#: value written beside them, so one metric moving by thousands of percent does not flatten
#: the others to a dot at 0.
REL_CAP = 1.0


def delta_chart(deltas: pd.DataFrame, *, relative: bool = True, height: int = 420) -> go.Figure:
    """Forest chart of changes against the base: one marker per (metric, setting), with the
    paired 95% interval as error bars and the change written beside it; green where better,
    red where worse, grey when the interval contains 0.

    Args:
        deltas: :func:`ltrec.evaluation.compare_many` (or :func:`compare`) output.
        relative: plot the change as a share of the base value (metrics on different scales
            then fit one axis); intervals are scaled by the same base, and markers and bars
            are capped at +-:data:`REL_CAP` (the label keeps the true value).
    """

    fig = go.Figure()
    if deltas is None or deltas.empty:
        fig.update_layout(title="No settings to compare with the base")
        return fig
    df = deltas.copy()
    if "setting" not in df.columns:
        df["setting"] = "setting"
    scale = df["base"].abs().where(df["base"].abs() > 0) if relative else pd.Series(1.0, df.index)
    capped_any = False
    for setting, g in df.groupby("setting", sort=False):
        s = scale.loc[g.index]
        raw = (g["delta"] / s).astype(float)
        lo = (g["low"].astype(float) / s).fillna(raw)
        hi = (g["high"].astype(float) / s).fillna(raw)
        cap = REL_CAP if relative else np.inf
        x = raw.clip(-cap, cap)
        lo, hi = lo.clip(-cap, cap), hi.clip(-cap, cap)
        capped = (raw.abs() > cap).to_numpy()
        capped_any = capped_any or bool(capped.any())
        sig = ~((g["low"].astype(float) <= 0) & (g["high"].astype(float) >= 0))
        up = g["higher_is_better"].astype(bool)
        better = (g["delta"] > 0) == up
        colour = np.where(~sig | (g["delta"] == 0), NEUTRAL, np.where(better, GOOD, BAD))
        symbol = np.where(
            capped, np.where(raw > 0, "triangle-right", "triangle-left"), "circle"
        )
        text = [
            signed_pct(float(v)) if relative else f"{v:+.3f}" for v in raw.to_numpy(dtype=float)
        ]
        fig.add_trace(
            go.Scatter(
                x=x.astype(float).tolist(),
                y=[metric_label(m) for m in g["metric"]],
                mode="markers+text",
                text=text,
                textposition="top center",
                name=html_text(setting),
                marker={"color": colour.tolist(), "size": 10, "symbol": symbol.tolist()},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": (hi - x).astype(float).clip(lower=0).tolist(),
                    "arrayminus": (x - lo).astype(float).clip(lower=0).tolist(),
                },
                customdata=np.stack([g["value"], g["base"]], axis=1).tolist(),
                hovertemplate=(
                    "%{y}: %{text}<br>value %{customdata[0]:.4f} vs base %{customdata[1]:.4f}"
                    "<extra>%{fullData.name}</extra>"
                ),
            )
        )
    fig.add_vline(x=0, line_color=NEUTRAL, line_dash="dot")
    title = "change vs base" + (" (relative)" if relative else "")
    if capped_any:
        title += f"; beyond ±{REL_CAP:.0%} drawn at the edge (▶ ◀), value written"
    fig.update_layout(
        height=height,
        xaxis_title=title,
        xaxis_tickformat="+.0%" if relative else "+.3f",
        yaxis={"autorange": "reversed"},
        margin={"l": 10, "r": 10, "t": 30, "b": 40},
    )
    if capped_any:
        fig.update_xaxes(range=[-REL_CAP * 1.25, REL_CAP * 1.25])
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
