"""Widgets of the Feedback Loop page: a policy editor and the ground-truth check."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ltrec.rerank import STRATEGIES
from ltrec.synth.truth import has_truth
from ltrec.ui.state import cursor
from ltrec.ui.studio import FIELD_LABELS, NAMES

#: Policy defaults: the self-reinforcing baseline, a personalised model alone, the same model
#: boosted (so the verdicts can tell the model's effect from the boost's), then xQuAD.
DEFAULTS = (
    ("popularity", "none", 0.0),
    ("ease", "none", 0.0),
    ("ease", "tail_boost", 0.5),
    ("ease", "xquad", 0.5),
)


def dataset_has_truth(name: str) -> bool:
    """Whether ``name`` carries the demo generator's ground truth (a cheap meta lookup)."""
    cur = cursor(name)
    try:
        return has_truth(cur)
    finally:
        cur.close()


def policy_editor(j: int, models: list[str]) -> dict[str, Any]:
    """Model, re-ranking strategy and its strength for policy ``j``; returns the policy dict."""
    model0, strat0, strength0 = DEFAULTS[j % len(DEFAULTS)]
    c1, c2, c3 = st.columns([2, 2, 1])
    model = c1.selectbox(
        f"Policy {j + 1}: model",
        models,
        index=models.index(model0) if model0 in models else 0,
        key=f"fl_model_{j}",
    )
    names = list(STRATEGIES)
    strategy = c2.selectbox(
        "re-ranking",
        names,
        index=names.index(strat0),
        key=f"fl_strategy_{j}",
        format_func=lambda s: NAMES.get(s, s),
        help="base order: the model's own order; the others trade accuracy for tail exposure.",
    )
    cls = STRATEGIES[strategy][0]
    policy: dict[str, Any] = {"model": model}
    if cls.STRENGTH:
        info = cls.model_fields[cls.STRENGTH]
        label = FIELD_LABELS.get(cls.STRENGTH, (cls.STRENGTH, ""))[0]
        value = c3.number_input(
            label,
            min_value=0.0,
            max_value=float(cls.STRENGTH_MAX),
            value=float(strength0 or info.get_default()),
            step=0.1,
            key=f"fl_strength_{j}",
            help=FIELD_LABELS.get(cls.STRENGTH, ("", info.description or ""))[1],
        )
        policy["rerank"] = {"strategy": strategy, info.alias or cls.STRENGTH: value}
    elif strategy != "none":
        policy["rerank"] = {"strategy": strategy}
    return policy
