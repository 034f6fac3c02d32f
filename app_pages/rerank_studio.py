"""Rerank Studio: one user's lists side by side under 2-4 settings, aggregate metrics over a user
sample, the strength sweep with its Pareto front, a share link and exports."""

import pandas as pd
import streamlit as st

from ltrec.analytics.export import to_csv
from ltrec.app.auth import Right
from ltrec.config import get_settings
from ltrec.definitions import METRICS, fmt, pct, signed_pct
from ltrec.errors import LtrecError
from ltrec.ui import auth, studio
from ltrec.ui.state import active_dataset, empty_state, show_error
from ltrec.ui.widgets import kpi

st.title("Rerank Studio")
name = active_dataset()
if name is None:
    empty_state()
    st.stop()

try:
    runs = studio.list_runs(name)
    if not runs:
        studio.train_prompt(name)
        st.stop()
    ids = [r.run_id for r in runs]
    info = {r.run_id: r for r in runs}
    wanted = studio.qp("run")
    if "rs_run" not in st.session_state or st.session_state["rs_run"] not in ids:
        st.session_state["rs_run"] = wanted if wanted in ids else studio.active_run_id(name, runs)
    top = st.columns([3, 1, 2])
    run_id = top[0].selectbox(
        "Model run",
        ids,
        key="rs_run",
        format_func=lambda r: f"{info[r].model} · {r}" + (" · stale" if info[r].stale else ""),
        help="The base model whose top candidates are re-ranked (the Model Lab's active run "
        "by default).",
    )
    st.query_params["run"] = run_id
    studio.remember_run(name, run_id)
    studio._init("rs_k", studio.qp_int("k", get_settings().k, 1, 50))
    k = int(top[1].number_input("List length K", 1, 50, key="rs_k"))
    st.query_params["k"] = str(k)
    allow_stale = info[run_id].stale and st.checkbox(
        "Use the stale run anyway",
        key="rs_allow_stale",
        help="The dataset changed since this run was trained; retrain it in the Model Lab.",
    )
    with st.spinner("Loading the model and its data…"):
        sr = studio.studio_run(name, run_id, allow_stale=allow_stale)
except LtrecError as err:
    show_error(err)
    st.stop()

kpi(top[2], "run_tail_item_share", sr.context.tail.mean())

# ------------------------------------------------------------------------------ the user
url_user = studio.qp("user")
default_user = (
    url_user if url_user in sr.data.user_index else studio.opening_user(name, sr, info[run_id], k)
)
pick, past = st.columns([1, 2], gap="large")
with pick:
    user_id = studio.user_picker(name, sr, default_user)
if user_id is None:
    st.stop()
st.query_params["user"] = user_id
user = sr.data.user_index[user_id]

hist = studio.history(name, run_id, user, n=10)
n_hist = int(sr.data.matrix[user].nnz)
tail_pref = sr.context.user_tail_share(user)
with past:
    st.markdown(
        f"**Recent history of {studio.plain(user_id)}** · {n_hist} items in training"
        + (f" · {pct(tail_pref)} on tail items" if tail_pref is not None else "")
    )
    if hist.empty:
        st.info("This user has no training history: the model's fallback (popularity) ranks.")
    else:
        studio.history_table(hist)

# ------------------------------------------------------------------------------ the lists


@st.fragment
def studio_block(name: str, run_id: str, user: int, k: int) -> None:
    """Settings, lists, aggregate and sweep: a slider change reruns only this block."""
    sr = studio.studio_run(name, run_id, allow_stale=bool(st.session_state.get("rs_allow_stale")))
    studio._init("rs_cols", studio.qp_int("cols", 3, studio.MIN_COLS, studio.MAX_COLS))
    n = (
        st.segmented_control(
            "Columns", [2, 3, 4], key="rs_cols", help="How many settings to compare side by side."
        )
        or 3
    )
    st.query_params["cols"] = str(n)
    rec = studio.recommendation(name, info[run_id], k)
    studio.recommendation_block(rec)
    initial, problems = studio.settings_from_url(n, studio.opening_settings(rec))
    for p in problems:  # they quote the link's values
        st.warning(studio.plain(p))
    settings = []
    for i, col in enumerate(st.columns(n)):  # one row of settings, then one row of lists
        with col.container(border=True, height=260):
            settings.append(studio.setting_widgets(i + 1, initial[i]))
    cols = st.columns(n)
    studio.settings_to_url(settings)
    labels = studio.unique_labels(settings)

    m = max(cfg.pool for cfg in settings)
    lists, list_frames = studio.user_lists(name, run_id, user, k, settings)
    frames = []
    for i, col in enumerate(cols):
        ranked, stats, frame = lists.lists[i], lists.stats[i], list_frames[i]
        frames.append(frame.assign(setting=labels[i]))
        with col:
            base_tail = lists.base.stats(sr.context).tail_share
            a, b = st.columns(2)
            change = stats.tail_share - base_tail if stats.n else 0.0
            a.metric(
                METRICS["tail_share"].name,
                fmt("tail_share", stats.tail_share),
                f"{signed_pct(change)} vs base" if i else "the base",
                delta_color="normal" if i and change else "off",
                delta_arrow="auto" if i and change else "off",
                help=METRICS["tail_share"].help,
            )
            b.metric(
                METRICS["overlap"].name,
                fmt("overlap", stats.overlap),
                f"{int(frame['new'].sum())} new",
                delta_color="off",
                delta_arrow="off",
                help=f"{METRICS['overlap'].help}; new items are outside the base top K.",
            )
            a.metric(
                METRICS["arp"].name,
                fmt("arp", stats.arp),
                help=METRICS["arp"].help,
            )
            b.metric(
                METRICS["mean_base_score"].name,
                fmt("mean_base_score", stats.mean_base_score),
                help=METRICS["mean_base_score"].help,
            )
            studio.list_table(frame, key=f"rs_list_{i}")
            for note in ranked.notes:
                st.caption(studio.plain(note))
    st.caption(
        f"Candidates: the base model's top {m} for this user, seen items excluded. "
        "'Why it is there' names the history items that contributed most to each item's "
        "score and what the re-ranker did (the reasons of `ltrec recommend` and the export). "
        f"Moved items are coloured in 'vs base'; new = not in the base top {k}."
    )
    shown = pd.concat(frames, ignore_index=True)
    export_shown = shown[
        ["setting", "rank", "item_id", "title", "base_score", "score", "reason", "why"]
    ].rename(columns={"why": "reasons"})
    st.download_button(
        "Download these lists (CSV)",
        to_csv(export_shown.assign(user_id=user_id)),
        file_name=f"{name}_{user_id}_lists.csv",
        mime="text/csv",
        key="rs_dl_shown",
        help="Text cells that start with = + - @ are prefixed with ' (no spreadsheet formulas).",
    )

    # -------------------------------------------------------------------------- aggregate
    st.subheader("Over a sample of users")
    if (why := studio.no_test_split(info[run_id])) is not None:
        st.info(why)
        return
    left, mid, right = st.columns([2, 3, 3])  # the sweep's column label fits
    studio._init("rs_sample", studio.qp_int("sample", 200, 20, 5000))
    n_users = int(
        left.number_input(
            "Users in the sample",
            20,
            5000,
            step=50,
            key="rs_sample",
            help="Test users of the run's split, drawn with a fixed seed.",
        )
    )
    st.query_params["sample"] = str(n_users)
    seed = get_settings().seed
    try:
        with st.spinner("Re-ranking the sample…"):
            smp = studio.sample(name, run_id, n_users, seed, m)
            table = studio.aggregate_figure(name, run_id, n_users, seed, m, k, settings, labels)
    except LtrecError as err:
        show_error(err)
        return
    st.caption(
        f"{len(smp)} test users · 95% bootstrap intervals · changes against **"
        f"{studio.plain(labels[0])}** with paired intervals (grey: the interval contains 0)."
    )
    st.plotly_chart(table, key="rs_fig_metrics")

    # -------------------------------------------------------------------------- sweep
    st.subheader("Trade-off sweep")
    if not auth.can(Right.RERANK):
        st.caption("Sweeps and exports need the analyst role.")
        return
    sweepable = [i for i, cfg in enumerate(settings) if cfg.STRENGTH]
    if not sweepable:
        st.info("Choose a strategy in one column to sweep its strength.")
        return
    studio._init("rs_sweep", studio.qp_int("sweep", sweepable[0] + 1, 1, n) - 1)
    if st.session_state["rs_sweep"] not in sweepable:
        st.session_state["rs_sweep"] = sweepable[0]
    which = mid.selectbox(
        "Sweep the strategy of",
        sweepable,
        key="rs_sweep",
        format_func=lambda i: f"column {i + 1}: {labels[i]}",
    )
    st.query_params["sweep"] = str(which + 1)
    studio._init("rs_target", studio.qp_int("target", 30, 0, 100))
    target = right.slider(
        "Target tail share (%)",
        0,
        100,
        key="rs_target",
        help="The solver finds the smallest strength whose lists reach this mean tail share.",
    )
    st.query_params["target"] = str(target)
    cfg = settings[which]
    try:
        with st.spinner("Sweeping…"):
            fig = studio.sweep_chart(
                name, run_id, n_users, seed, m, k, cfg, settings, labels, target / 100
            )
            answer = studio.solved(name, run_id, n_users, seed, m, k, cfg, target / 100)
    except LtrecError as err:
        show_error(err)
        return
    st.plotly_chart(fig, key="rs_fig_sweep")
    (st.success if answer["reachable"] else st.warning)(studio.plain(answer["message"]))
    studio.apply_button(which + 1, answer, key="rs_solver_apply")

    # -------------------------------------------------------------------------- share, export
    st.subheader("Share and export")
    st.caption("Link to this view (copy it: it reproduces the run, user, columns and settings)")
    st.code(studio.share_link(), language=None, wrap_lines=True)
    pick = st.selectbox(
        "Export every user's list under",
        range(n),
        format_func=lambda i: labels[i],
        key="rs_export_col",
    )
    if st.button("Prepare the export", key="rs_export_go"):
        try:
            with st.spinner(f"Ranking all {sr.data.n_users:,} users…"):
                data = studio.export_all(name, run_id, k, settings[pick])
        except LtrecError as err:
            show_error(err)
            return
        st.download_button(
            f"Download every user's list ({labels[pick]})",
            data,
            file_name=f"{name}_{run_id}_lists.csv",
            mime="text/csv",
            key="rs_export_dl",
            help="user_id, rank, item_id, base_score, final_score, base_rank, reason, title, "
            "category, bucket, rank_change, reasons: the layout of `ltrec export --rerank`.",
        )


studio_block(name, run_id, user, k)

# ------------------------------------------------------------------------------ tuning
studio.tune_block(name, run_id)
