"""Overview: headline KPIs, where exposure goes, a mini Lorenz chart, hidden gems, next steps."""

import streamlit as st

from ltrec.analytics.insights import next_steps
from ltrec.charts.longtail import bucket_share_figure, lorenz_figure
from ltrec.charts.text import markdown_text
from ltrec.errors import LtrecError
from ltrec.ui import cache
from ltrec.ui.report import report_button
from ltrec.ui.state import active_dataset, show_error
from ltrec.ui.widgets import (
    exposure_note,
    kpi,
    metric_column,
    pct,
    require_events,
    table_with_download,
    view_controls,
)

st.title("Overview")
try:
    name, meta = require_events(active_dataset())
    params = view_controls("ov", meta, event=False, category=False)
    stats = cache.view("stats", name, params)
    buckets = cache.view("bucket_table", name, params)
    lz = cache.view("lorenz", name, params)
    boost = cache.view("boost_candidates", name, params)  # the one "candidates to boost"
    gems = boost.gems  # uncapped: the table shows its first 10
except LtrecError as err:
    show_error(err)
    st.stop()

profile = meta["profile"]
exp = stats.exposure_event
span = f"{stats.first_ts:%Y-%m-%d} → {stats.last_ts:%Y-%m-%d}" if stats.first_ts else "no events"
st.caption(
    f"Dataset **{name}** · {span} · " + (f"exposure = {exp}s" if exp else "exposure not measured")
)
exposure_note(profile)
report_button(name, key="ov_report")  # the stakeholder report (same as `ltrec report NAME`)
present = {t: stats.events.get(t, 0) for t in profile.funnel_stages}

c = st.columns(5)
c[0].metric("Users", f"{stats.users:,}", help="Distinct users in the users table or the events.")
c[1].metric(
    "Items",
    f"{stats.items:,}",
    help="Catalogue size: items table plus any item seen in the events.",
)
c[2].metric(
    "Events",
    f"{sum(present.values()):,}",
    help=" · ".join(f"{t}: {n:,}" for t, n in present.items()),
)
days = (stats.last_ts - stats.first_ts).days + 1 if stats.first_ts else 0
c[3].metric("Time span", f"{days:,} days", help=span)
if exp and stats.gini_exposure is not None:
    kpi(c[4], "gini_exposure", stats.gini_exposure, note=f"Exposure here: {exp} events.")
elif stats.gini_buyers is not None:
    kpi(c[4], "gini_buyers", stats.gini_buyers)
cols = st.columns(max(len(present), 1))
for col, (t, n) in zip(cols, present.items(), strict=False):
    col.metric(f"{t}s", f"{n:,}", help=f"Number of {t} events in the selected dates.")

st.subheader("The tail: share of catalogue vs share of exposure and purchases")
cuts = ", ".join(f"{x:g}" for x in stats.bucket_cuts)
t = st.columns(3)
kpi(t[0], "tail_item_share", stats.tail_item_share, note=f"Cuts here: {cuts}.")
if exp and stats.tail_exposure_share is not None:
    kpi(t[1], "tail_exposure_share", stats.tail_exposure_share, note=f"Exposure here: {exp}s.")
elif stats.tail_buyer_share is not None:
    kpi(t[1], "tail_buyer_share", stats.tail_buyer_share)
kpi(t[2], "tail_purchase_share", stats.tail_purchase_share)
st.plotly_chart(bucket_share_figure(buckets, height=260), key="fig_ov_buckets")

left, right = st.columns([2, 3])
with left:
    st.markdown(
        "**Lorenz curves**",
        help="Cumulative share of events against the share of "
        "items, items sorted from least to most. The further below the diagonal, the "
        "more concentrated.",
    )
    st.plotly_chart(lorenz_figure(lz, points=300, height=340), key="fig_ov_lorenz")
with right:
    st.markdown(
        "**Top hidden gems**",
        help="Tail items whose view→purchase conversion, shrunk "
        "toward the catalogue average by an empirical-Bayes beta prior, is at least 1.2x "
        "that average, and whose exposure is at most the median.",
    )
    if not gems.measurable:
        st.info(f"No hidden gems section for this data: {gems.reason}.")
        if gems.alternative is not None:
            alt = gems.alternative
            st.markdown(
                f"**{alt.label}**",
                help=f"Tail items with at least {alt.min_buyers} "
                "distinct buyers. A repeat buyer bought the item at more than one time.",
            )
            table_with_download(
                alt.frame.head(10),
                f"{name}_tail_buyers.csv",
                key="ov_tail_buyers_csv",
                column_config={
                    "repeat_rate": pct("repeat rate", "repeat buyers / buyers"),
                    "repeat_rate_lo": pct("95% low", "Wilson score interval, lower bound"),
                    "repeat_rate_hi": pct("95% high", "Wilson score interval, upper bound"),
                },
            )
    elif gems.reason:
        st.info(f"No hidden gems: {gems.reason}.")
    else:
        show = gems.frame[
            ["item_id", "title", "category", "exposure", "views", "purchases", "shrunk", "lift"]
        ].head(10)
        table_with_download(
            show,
            f"{name}_hidden_gems.csv",
            key="ov_gems_csv",
            column_config={
                "shrunk": metric_column("shrunk"),
                "lift": st.column_config.NumberColumn(
                    "lift", format="%.2fx", help="shrunk conversion / catalogue mean"
                ),
                "exposure": st.column_config.NumberColumn("exposure", help=f"{exp} events"),
            },
        )

st.subheader("What to look at next")
# the view travels with the link (dataset, cuts, dates): the counts agree on the next page
keep = {k: st.query_params[k] for k in ("ds", "cuts", "from", "to") if k in st.query_params}
for p in next_steps(stats, gems, boost):
    # the sentence as text (it wraps), the link short: a long link label is cut at 1280 px
    st.markdown(markdown_text(p.text))
    st.page_link(p.page, label=f"Open {p.title}", icon="➡️", query_params=keep)
