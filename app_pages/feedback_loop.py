"""Feedback Loop: simulate 2-4 policies over rounds and watch exposure concentrate or spread."""

import json

import streamlit as st

from ltrec.app import services
from ltrec.app.auth import Right
from ltrec.charts.simulation import final_table, rounds_figure
from ltrec.charts.text import markdown_text
from ltrec.errors import LtrecError
from ltrec.models.base import model_names
from ltrec.simulation import SimulationConfig, list_results, load_result
from ltrec.simulation.result import ROUND_METRICS
from ltrec.simulation.verdict import verdicts
from ltrec.ui import auth
from ltrec.ui.simulation import dataset_has_truth, policy_editor
from ltrec.ui.state import active_dataset, data_root, empty_state, require_local, show_error

st.title("Feedback Loop")
name = active_dataset()
if name is None:
    empty_state()
    st.stop()
require_local(name)  # models train on a local sample of external data
st.caption(
    "Each round every policy recommends K items to the same sample of users; a user model "
    "decides views (with a position bias) and purchases; the new events are added to that "
    "policy's copy of the data and its model is retrained (Mansoury et al. 2020). The store "
    "is never changed."
)
truth = dataset_has_truth(name)
st.info(
    "User model: **the demo shop's ground truth** (the generator's own preferences)."
    if truth
    else "User model: **a model fitted on this dataset, calibrated to probabilities** "
    "(EASE scores, Platt scaling against held-out behaviour); this dataset has no ground truth."
)

with st.container(border=True):
    n = st.slider("Policies", 2, 4, 3, key="fl_n")
    policies = [policy_editor(j, model_names()) for j in range(n)]
    c1, c2, c3, c4, c5 = st.columns(5)
    rounds = c1.number_input("Rounds (1–100)", 1, 100, 10, key="fl_rounds")
    k = c2.number_input("List length K (1–50 items)", 1, 50, 10, key="fl_k")
    users = c3.number_input("Users per round (1–100,000)", 1, 100_000, 500, key="fl_users")
    every = c4.number_input(
        "Retrain every (rounds)", 1, 100, 1, key="fl_every", help="1 = after every round."
    )
    seed = c5.number_input(
        "Seed", 0, 2**31 - 1, 42, key="fl_seed", help="The same seed replays the same draws."
    )
    may_run = auth.can(Right.SIMULATE)
    run = st.button(
        "Run simulation",
        type="primary",
        key="fl_run",
        disabled=not may_run,
        help=None if may_run else "Simulations need the analyst role.",
    )

if run:
    bar = st.progress(0.0, text="starting")
    try:
        config = SimulationConfig(
            rounds=int(rounds), k=int(k), users=int(users), retrain_every=int(every), seed=int(seed)
        )
        result = services.simulate(
            auth.current(),
            name,
            policies,
            config,
            progress=lambda done, msg: bar.progress(done, text=markdown_text(msg)),  # a label
            data_dir=data_root(),
        )
        st.session_state["fl_open"] = result.sim_id
        bar.progress(1.0, text=f"finished in {result.seconds:.1f} s, saved as {result.sim_id}")
    except LtrecError as err:
        bar.empty()
        show_error(err)

st.subheader("Results")
saved = list_results(name, data_root())
if not saved:
    st.caption("No simulations yet: choose policies above and run one.")
    st.stop()
ids = [s.sim_id for s in saved]
titles = {s.sim_id: s.title for s in saved}
opened = st.session_state.get("fl_open")
sim_id = st.selectbox(
    "Saved simulation",
    ids,
    index=ids.index(opened) if opened in ids else 0,
    format_func=titles.get,
    key=f"fl_pick_{opened}",
)
try:
    result = load_result(name, sim_id, data_root())
except LtrecError as err:
    show_error(err)
    st.stop()
um = result.user_model
st.markdown(f"**User model: {um.get('name')}** — {um.get('description', '')}")
cfg = result.config
st.caption(
    f"{cfg.rounds} rounds · K = {cfg.k} · {cfg.users} users per round · retrain every "
    f"{cfg.retrain_every} · seed {cfg.seed} · {result.seconds:.1f} s"
)
st.plotly_chart(rounds_figure(result), key="fl_rounds_fig")
st.markdown(
    "**Final comparison**",
    help="; ".join(f"{m}: {d}" for m, d in ROUND_METRICS.items() if not m.startswith("cum_")),
)
st.dataframe(final_table(result), hide_index=True, key="fl_final")
st.subheader("Verdict")
st.caption(
    "Per policy over all rounds; a boosted policy is set against the same model without "
    "re-ranking (the boost's doing), a model against popularity (the model's doing). One "
    "seeded run: differences are comparisons, not tests."
)
for line in verdicts(result):
    st.markdown(f"- {markdown_text(line)}")
with st.expander("Policies as JSON (for `ltrec simulate --policy`)"):
    for label, p in zip(result.labels, result.policies, strict=True):
        body = {k: v for k, v in p.model_dump(mode="json").items() if v not in (None, {})}
        st.code(f"{label}: {json.dumps(body)}", language="json")
