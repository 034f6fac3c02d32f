"""Model Lab: train models in the background, compare runs, choose the active model."""

import streamlit as st

from ltrec.app import services
from ltrec.app.auth import Right
from ltrec.charts.metrics import (
    change_sentences,
    delta_chart,
    metrics_frame,
    metrics_table,
    tradeoff_points,
    tradeoff_scatter,
)
from ltrec.charts.runs import HEADLINE, full_params, runs_tradeoff
from ltrec.charts.text import markdown_text
from ltrec.definitions import metric
from ltrec.errors import LtrecError
from ltrec.evaluation import compare_many
from ltrec.models.base import get_model_class, model_names
from ltrec.models.registry import production_run
from ltrec.ui import auth, training
from ltrec.ui.models import (
    active_run,
    config_form,
    data_note,
    evaluate,
    model_summary,
    runs_table,
    set_active_run,
    stale_note,
)
from ltrec.ui.models import (
    runs as cached_runs,
)
from ltrec.ui.state import active_dataset, data_root, empty_state, require_local, show_error

NEEDS_ANALYST = "Training needs the analyst role."
COMPARE_METRICS = ("ndcg", "recall", "aplt", "tail_recall", "coverage", "gini", "arp", "novelty")

st.title("Model Lab")
name = active_dataset()
if name is None:
    empty_state()
    st.stop()
require_local(name)  # models train on a local sample of external data


# ---------------------------------------------------------------------------- train
st.subheader("Train a model")
models = model_names()
model = st.selectbox("Model", models, key="lab_model", help="Every model of the registry.")
try:
    cls = get_model_class(model)
except LtrecError as err:
    show_error(err)
    st.stop()
if summary := model_summary(model, cls):
    st.caption(summary)
with st.form("lab_train"):
    params = config_form(cls.config_cls, f"lab_{model}")
    k = st.number_input(
        "List length K for the evaluation (1–100 items)", 1, 100, 10, key="lab_k"
    )
    may_train = auth.can(Right.TRAIN)
    submitted = st.form_submit_button(
        "Train", type="primary", disabled=not may_train, help=None if may_train else NEEDS_ANALYST
    )
if submitted:
    try:
        who = auth.current()
        training.start(name, model, params, k=int(k), data_dir=data_root(), principal=who)
    except LtrecError as err:
        show_error(err)


# Poll only while a job runs, so idle sessions do not rerun every second.
_job = training.current(name)


@st.fragment(run_every=1.0 if _job is not None and _job.running else None)
def _progress() -> None:
    job = training.current(name)
    if job is None:
        return
    if job.running:
        left = f", about {job.eta:.0f} s left" if job.eta is not None else ""
        st.progress(job.done, text=f"{job.model}: {job.message} ({job.elapsed:.0f} s{left})")
        return
    if job.status == "failed" and job.error is not None:
        show_error(job.error)
    elif job.status == "done" and job.kind == "promote":
        st.success(
            f"Promoted run {job.source}: fitted {job.model} on all data in {job.elapsed:.1f} s; "
            f"run {job.run_id} is the production run"
        )
    elif job.status == "done":
        st.success(f"Trained {job.model} in {job.elapsed:.1f} s: run {job.run_id}")
        if job.note:
            st.warning(job.note)
    if st.session_state.get("lab_seen_job") != job.job_id:
        st.session_state["lab_seen_job"] = job.job_id
        st.rerun(scope="app")  # refresh the runs table once the run is saved


_progress()

# ---------------------------------------------------------------------------- runs
st.subheader("Runs")
try:
    runs = cached_runs(name)
except LtrecError as err:
    show_error(err)
    st.stop()
if not runs:
    st.info("No runs yet: train one above, or run `ltrec train NAME --model ease`.")
    st.stop()
production = production_run(name, data_root())
dicts = [r.to_dict(production) for r in runs]
ids = [r.run_id for r in runs][::-1]  # newest first
evaluated = [r.run_id for r in runs if not r.all_data][::-1]  # runs with a test split
current = active_run(name)
if note := stale_note(runs):
    st.warning(note)
st.dataframe(
    runs_table(runs, active=current, production=production),
    hide_index=True,
    key="lab_runs",
    column_config={
        "active": st.column_config.TextColumn("", help="the active model other pages use"),
        "settings": st.column_config.TextColumn(
            "key settings", help="the settings that tell runs of a model apart; every "
            "parameter under 'Full parameters' below"
        ),
        **{
            m: st.column_config.TextColumn(
                metric(m).label(), help=f"{metric(m).help}; mean [95% bootstrap interval]"
            )
            for m in HEADLINE
        },
        "data": st.column_config.TextColumn("data", help="fingerprint of the training data"),
        "stale": st.column_config.TextColumn(
            "stale", help="the dataset changed since this run was trained: retrain it"
        ),
        "fit": st.column_config.TextColumn(
            "fit",
            help="production: the run export and serving use; all data: fitted on every event "
            "(no test split, so no figures of its own)",
        ),
    },
)
if current:
    st.caption(f"Active model: **{current}** (the other pages use it; also in the URL).")
if production:
    st.caption(
        f"Production run: **{production}** (fitted on all data; `ltrec export` and serving "
        "use it when no run is named)."
    )

left, right = st.columns(2)
with left:
    chosen = st.selectbox("Run", ids, key="lab_run")
    if note := data_note(runs, chosen):
        st.warning(note)
    with st.expander("Full parameters"):
        info = next(r for r in runs if r.run_id == chosen)
        st.code(full_params(info.manifest.get("params")), language="json")
    may_choose = auth.can(Right.SET_ACTIVE_MODEL)
    if may_choose and st.button("Use as the active model", key="lab_activate"):
        try:
            services.set_active_model(auth.current(), name, chosen, set_active_run, data_root())
            st.rerun()
        except LtrecError as err:
            show_error(err)
    may_promote = auth.can(Right.TRAIN)
    if chosen != production and st.button(
        "Promote to production",
        key="lab_promote",
        disabled=not may_promote or (_job is not None and _job.running),
        help="fit this run's model and settings on all the data (nothing held out) and make "
        "that run the production run"
        if may_promote
        else NEEDS_ANALYST,
    ):
        try:
            training.promote(name, chosen, data_dir=data_root(), principal=auth.current())
            st.rerun()
        except LtrecError as err:
            show_error(err)
with right:
    if auth.can(Right.DELETE):
        sure = st.checkbox(f"Yes, delete run {chosen}", key=f"lab_sure_{chosen}")
    if auth.can(Right.DELETE) and st.button("Delete run", key="lab_delete", disabled=not sure):
        try:
            services.delete_run(auth.current(), name, chosen, data_root())
            if chosen == current:
                set_active_run(name, None)
            st.rerun()
        except LtrecError as err:
            show_error(err)

st.markdown(
    "**Accuracy against tail share**",
    help="NDCG@K against APLT@K (share of tail items per list) of every run, with 95% "
    "bootstrap intervals; the Pareto front is highlighted.",
)
st.plotly_chart(runs_tradeoff(dicts), key="lab_scatter")

# ---------------------------------------------------------------------------- compare
st.subheader("Compare runs")
picked = st.multiselect(
    "Runs to compare (the first is the base)",
    evaluated,
    default=evaluated[:2],
    key="lab_compare",
    help="runs fitted on all data have no test split and are not listed",
)
if len(picked) >= 2 and st.button("Compare", key="lab_compare_go"):
    try:
        kk = int(next(d for d in dicts if d["run_id"] == picked[0]).get("k") or 10)
        results = {rid: evaluate(name, rid, kk) for rid in picked}
        metrics = [f"{m}@{kk}" for m in COMPARE_METRICS]
        metrics = [m for m in metrics if all(m in r.metrics for r in results.values())]
        deltas = compare_many(results, picked[0], metrics=metrics, n_boot=300)
        key = [m for m in (f"ndcg@{kk}", f"aplt@{kk}", f"coverage@{kk}") if m in metrics]
        for line in change_sentences(deltas, picked[0], key):
            st.markdown(f"- {markdown_text(line)}")
        st.plotly_chart(
            metrics_table(metrics_frame(results, deltas, metrics=metrics)), key="lab_table"
        )
        c1, c2 = st.columns(2)
        with c1:
            st.plotly_chart(delta_chart(deltas), key="lab_deltas")
        with c2:
            st.plotly_chart(tradeoff_scatter(tradeoff_points(results)), key="lab_tradeoff")
    except LtrecError as err:
        show_error(err)
elif len(picked) < 2:
    st.caption("Pick two or more runs.")
