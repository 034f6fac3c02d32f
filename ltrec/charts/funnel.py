"""Plotly figures of segment funnels: rates with Wilson interval bars, segment x bucket heatmap."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ltrec.analytics.segments import ALL, SegmentFunnel
from ltrec.charts.longtail import TAIL_COLOUR
from ltrec.charts.text import html_text, html_texts
from ltrec.definitions import METRICS, bucket_colour

RATES = {r: METRICS[r].name for r in ("view_cart", "cart_purchase", "view_purchase")}


def funnel_figure(sf: SegmentFunnel, rate: str = "view_purchase", height: int = 420) -> go.Figure:
    """One bar per segment value and bucket: the rate with its 95% Wilson interval.

    Suppressed cells have no bar (their hover says why); the ``all`` bucket is the segment's
    total over shown cells.
    """
    df = sf.frame[sf.frame["segment"] != ALL]
    fig = go.Figure()
    for bucket in [*sf.buckets, "all"]:
        d = df[df["bucket"] == bucket]
        y = d[rate].to_numpy(dtype=float)
        colour = bucket_colour(bucket)
        fig.add_trace(
            go.Bar(
                x=html_texts(d["segment"]),
                y=y,
                name=bucket,
                marker_color=colour,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": d[f"{rate}_hi"].to_numpy(dtype=float) - y,
                    "arrayminus": y - d[f"{rate}_lo"].to_numpy(dtype=float),
                },
                customdata=np.stack([d["users"].fillna(-1), d["suppressed"]], axis=-1),
                hovertemplate="%{x}: %{y:.1%}<br>users %{customdata[0]}<extra>"
                + bucket
                + "</extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        height=height,
        yaxis_tickformat=".0%",
        yaxis_title=RATES.get(rate, rate),
        xaxis_title=html_text(sf.dimension),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.12, "title": "bucket"},
    )
    return fig


def heatmap_figure(sf: SegmentFunnel, rate: str = "view_purchase", height: int = 380) -> go.Figure:
    """Segment x bucket heatmap of a conversion rate; suppressed cells are blank."""
    df = sf.frame[(sf.frame["segment"] != ALL) & (sf.frame["bucket"] != "all")]
    segs = list(dict.fromkeys(df["segment"]))
    z = np.full((len(segs), len(sf.buckets)), np.nan)
    text = np.full(z.shape, "", dtype=object)
    for _, r in df.iterrows():
        i, j = segs.index(r["segment"]), sf.buckets.index(r["bucket"])
        z[i, j] = r[rate]
        text[i, j] = (
            "suppressed" if r["suppressed"] else ("" if np.isnan(r[rate]) else f"{r[rate]:.1%}")
        )
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=sf.buckets,
            y=html_texts(segs),
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            colorbar={"title": RATES.get(rate, rate), "tickformat": ".0%"},
            hovertemplate="%{y} × %{x}: %{text}<extra></extra>",
        )
    )
    fig.update_layout(
        height=height,
        xaxis_title="popularity bucket",
        yaxis_title=html_text(sf.dimension),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig


def tail_purchase_figure(sf: SegmentFunnel, height: int = 340) -> go.Figure:
    """Share of each segment's purchases that are tail items (shown cells only)."""
    df = sf.frame[(sf.frame["bucket"] == "all")]
    fig = go.Figure(
        go.Bar(
            x=html_texts(df["segment"]),
            y=df["tail_purchase_share"],
            marker_color=TAIL_COLOUR,
            hovertemplate="%{x}: %{y:.1%} of purchases are tail items<extra></extra>",
        )
    )
    fig.update_layout(
        height=height,
        yaxis_tickformat=".0%",
        xaxis_title=html_text(sf.dimension),
        yaxis_title="tail share of purchases",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig
