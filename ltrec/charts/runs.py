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
from ltrec.definitions import fmt
from ltrec.evaluation.aggregate import HIGHER_IS_BETTER
from ltrec.evaluation.pareto import pareto_front

#: Headline metrics of the runs table, in order.
HEADLINE = ("ndcg", "recall", "aplt", "coverage", "gini")


def _metric(run: Mapping[str, Any], name: str) -> dict[str, Any]:
    k = run.get("k") or 10
    return dict((run.get("metrics") or {}).get(f"{name}@{k}") or {})


def _cell(name: str, v: Mapping[str, Any]) -> str:
    mean, lo, hi = v.get("mean"), v.get("low"), v.get("high")
    if mean is None:
        return "–"
    if lo is None or hi is None:
        return fmt(name, mean)
    return f"{fmt(name, mean)} [{fmt(name, lo)}, {fmt(name, hi)}]"


#: The two or three settings that tell runs of a model apart (the rest: "full parameters").
KEY_PARAMS: dict[str, tuple[str, ...]] = {
    "popularity": ("by",),
    "itemknn": ("neighbours", "shrinkage"),
    "ease": ("lambda_", "binary"),
    "als": ("factors", "regularization", "alpha"),
    "rp3beta": ("alpha", "beta", "neighbours"),
    "content": ("mix", "neighbours"),
    "two_tower": ("dim", "epochs", "learning_rate"),
    "ncf": ("factors", "epochs", "learning_rate"),
}
#: Parameters never shown as key settings (they do not change what the model learns).
NOT_KEY = ("seed", "threads", "max_memory_gb", "deterministic", "xla", "precision")


def key_settings(model: str | None, params: Mapping[str, Any] | None) -> str:
    """``"neighbours=100, shrinkage=10"``: the model's key settings (:data:`KEY_PARAMS`, else
    its first three parameters)."""
    params = dict(params or {})
    names = KEY_PARAMS.get(str(model)) or tuple(p for p in params if p not in NOT_KEY)[:3]
    return ", ".join(f"{n.rstrip('_')}={params[n]:g}" if isinstance(params[n], float)
                     else f"{n.rstrip('_')}={params[n]}" for n in names if n in params)  # fmt: skip


def full_params(params: Mapping[str, Any] | None) -> str:
    """Every parameter of a run as sorted JSON (the seed left out)."""
    return json.dumps(
        {k: v for k, v in (params or {}).items() if k != "seed"}, sort_keys=True, indent=1
    )


def runs_frame(runs: Sequence[Mapping[str, Any]], active: str | None = None) -> pd.DataFrame:
    """One row per run, newest first: id, model, its key settings, the headline metrics as
    ``mean [95% CI]`` text, created, data fingerprint and K (every parameter:
    :func:`full_params`)."""
    rows = []
    for r in runs:
        row = {
            "active": "●" if r.get("run_id") == active else "",
            "run": r.get("run_id"),
            "model": r.get("model"),
            "settings": key_settings(r.get("model"), r.get("params")),
        }
        for m in HEADLINE:
            row[m] = _cell(m, _metric(r, m))
        row.update(
            created=str(r.get("created_at") or "")[:19].replace("T", " "),
            data=r.get("fingerprint"),
            k=r.get("k"),
        )
        rows.append(row)
    cols = ["active", "run", "model", "settings", *HEADLINE, "created", "data", "k"]
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
