"""The Experiments page: what each arm of a live A/B experiment did (issue 22 §3).

The analysis is :func:`ltrec.app.experiments.experiment_result` (a typed result); this module
only picks the experiment and shows the result: verdicts first, the sample-ratio check, what
the data lacks, then the metrics table with intervals and differences, and the method.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from ltrec.app.experiments import (
    MAX_WINDOW_HOURS,
    METRICS,
    WINDOW_HOURS,
    ExperimentResult,
    experiment_result,
    list_experiments,
)
from ltrec.charts.experiments import difference_figure
from ltrec.charts.text import markdown_text
from ltrec.errors import LtrecError
from ltrec.ui.state import active_dataset, data_root, empty_state, require_local, show_error
from ltrec.ui.state import version as file_version


@st.cache_data(show_spinner="Analysing the experiment…", max_entries=16)
def _result(name: str, root: str, version: str, exp_id: str, window: float) -> ExperimentResult:
    # version: the store's file version, so new traffic (a flush swaps the file) recomputes
    return experiment_result(name, exp_id, window_hours=window, data_dir=root)


def _label(exp) -> str:
    state = "running" if exp.stopped_at is None else "stopped"
    arms = " vs ".join(exp.arms)
    return f"{exp.id} · {arms} · {state} · started {exp.started_at[:16].replace('T', ' ')}"


def no_experiments_text(name: str) -> str:
    return (
        f"No experiments on '{name}' yet. Start one by serving two to four arms, e.g. "
        f'`ltrec serve {name} --arm control=\'{{}}\' --arm boost=\'{{"strategy": "tail_boost", '
        '"beta": 0.3}\'`; each user gets one arm and what they are shown is logged.'
    )


def page() -> None:
    """The whole page (app_pages/experiments.py calls only this)."""
    st.title("Experiments")
    name = active_dataset()
    if name is None:
        empty_state()
        st.stop()
    require_local(name)
    try:
        exps = list_experiments(name, data_root())
    except LtrecError as err:
        show_error(err)
        st.stop()
    if not exps:
        st.info(no_experiments_text(name))
        st.stop()
    by_id = {e.id: e for e in exps}
    left, right = st.columns([3, 1])
    with left:
        exp_id = st.selectbox(
            "Experiment",
            list(by_id),
            format_func=lambda i: _label(by_id[i]),
            key="ex_id",
            help="Newest first. An experiment is one set of arms and split served by "
            "`ltrec serve`; its data stays after it stops.",
        )
    with right:
        window = st.number_input(
            "Attribution window (hours)",
            min_value=0.25,
            max_value=MAX_WINDOW_HOURS,
            value=WINDOW_HOURS,
            step=1.0,
            key="ex_window",
            help="A view or purchase counts for a list when that list showed the item to the "
            "user at most this long before it.",
        )
    try:
        result = _result(name, str(data_root()), file_version(name), exp_id, float(window))
    except LtrecError as err:
        show_error(err)
        st.stop()
    show(result)


def show(result: ExperimentResult) -> None:
    """Verdicts, warnings, the metrics table and the method of one result."""
    exp_arms = ", ".join(
        f"{markdown_text(a.arm)} {a.share:.0%} `{json.dumps(a.policy)}`" for a in result.arms
    )
    state = "running" if result.running else f"stopped {result.stopped_at}"
    st.caption(
        f"Dataset **{markdown_text(result.dataset)}** · {state} · arms: {exp_arms} · control: "
        f"{markdown_text(result.control)}"
    )
    if result.srm.warning:
        st.warning(result.srm.warning)
    st.subheader("Verdict")
    for arm in result.arms:
        head, _, rest = arm.verdict.partition(": ")
        st.markdown(f"**{markdown_text(head)}**: {markdown_text(rest)}")
    if result.missing:
        st.info(result.missing)
    if not any(a.users for a in result.arms):
        return
    if any(a.vs_control for a in result.arms):
        st.plotly_chart(difference_figure(result), key="fig_ex_diff")
    st.subheader("Per arm")
    st.dataframe(
        _table(result),
        hide_index=True,
        column_config={
            "users": st.column_config.NumberColumn("users", help="users the arm served"),
            "value": st.column_config.TextColumn("value [95% interval]"),
            "vs control": st.column_config.TextColumn(
                f"vs control [{result.difference_level:.1%} interval]",
                help="relative difference to the control (absolute for a control of 0)",
            ),
        },
    )
    st.caption(
        "Intervals: "
        + result.method
        + f". Events count for a list shown at most {result.window_hours:g} h before; "
        "tail = the last popularity bucket of the store. Metric definitions: "
        + "; ".join(f"{METRICS[k].name}: {METRICS[k].formula}" for k in result.shown)
        + ". Sample-ratio check: chi-square of users per arm against the configured split"
        + (f" (p = {result.srm.p_value:.3g})." if result.srm.p_value is not None else ".")
    )


def _table(result: ExperimentResult) -> pd.DataFrame:
    """One row per arm and metric, values formatted as the metric's record says."""
    rows = []
    for a in result.arms:
        for key in result.shown:
            m = METRICS[key]
            v = a.metrics[key]
            value = m.format(v.mean)
            if v.low is not None:
                value += f" [{m.format(v.low)}, {m.format(v.high)}]"
            d = a.vs_control.get(key)
            diff = ""
            if d is not None and d.rel is not None and d.rel_low is not None:
                diff = f"{d.rel:+.1%} [{d.rel_low:+.1%}, {d.rel_high:+.1%}]"
            elif d is not None and d.low is not None:
                diff = f"{d.delta:+.3g} [{d.low:+.3g}, {d.high:+.3g}]"
            if d is not None and d.detected:
                diff += " detected"
            rows.append(
                {
                    "arm": a.arm,
                    "users": a.users,
                    "metric": m.name,
                    "value": value,
                    "vs control": diff,
                }
            )
    return pd.DataFrame(rows)
