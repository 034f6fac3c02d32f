"""Segments: funnels by segment dimension x popularity bucket, intervals, suppression."""

import streamlit as st

from ltrec.analytics.view import ViewParams
from ltrec.charts.funnel import RATES, funnel_figure, heatmap_figure, tail_purchase_figure
from ltrec.errors import LtrecError
from ltrec.ui import cache
from ltrec.ui.state import active_dataset, show_error
from ltrec.ui.widgets import (
    exposure_note,
    pct,
    require_events,
    table_with_download,
    view_controls,
)

st.title("Segments")
try:
    name, meta = require_events(active_dataset())
    dims = cache.view("segment_dimensions", name, ViewParams())
    if not dims:
        st.info("This dataset has no user segments: import a users file with attributes.")
        st.stop()
    params = view_controls("sg", meta, segments=dims)
    sf = cache.view("segment_funnel", name, params)
except LtrecError as err:
    show_error(err)
    st.stop()

profile = meta["profile"]
st.caption(
    f"Dataset **{name}** · funnel stages in this data: "
    f"{' → '.join(profile.funnel_stages)} · cells with fewer than {sf.k} users are "
    "suppressed (blank), and totals count shown cells only"
)
exposure_note(profile)
if not sf.rates:
    missing = [t for t in ("view", "cart", "purchase") if not profile.has(t)]
    st.info(
        f"This data has no {' and no '.join(t + 's' for t in missing)}, so no funnel rate "
        "can be measured; the tail share of each segment's purchases is shown."
    )
else:
    if st.session_state.get("sg_rate") not in sf.rates:  # a rate of the previous dataset
        st.session_state.pop("sg_rate", None)
    rate = st.radio(
        "Rate",
        sf.rates,
        format_func=RATES.get,
        horizontal=True,
        key="sg_rate",
        help="Shares of (user, item) pairs: a pair reaches view if the user viewed, "
        "carted or bought the item; cart if carted or bought; purchase if bought.",
    )
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(funnel_figure(sf, rate), key="fig_sg_funnel")
    with right:
        st.plotly_chart(heatmap_figure(sf, rate), key="fig_sg_heat")

st.markdown(
    "**Who buys from the tail**",
    help="Per segment: purchases of tail items / all purchases, over shown cells.",
)
st.plotly_chart(tail_purchase_figure(sf), key="fig_sg_tail")

st.subheader("Funnel table")
# only the counts of stages the data has and the rates it can measure
stages = {"views": "view", "carts": "cart", "purchases": "purchase"}
drop = [c for c, t in stages.items() if not profile.has(t)]
drop += [c for r in RATES if r not in sf.rates for c in (r, f"{r}_lo", f"{r}_hi")]
table_with_download(
    sf.frame.drop(columns=drop),
    f"{name}_segments_{sf.dimension}.csv",
    key="sg_csv",
    k=sf.k,
    column_config={
        "users": st.column_config.NumberColumn("users", help="distinct users in the cell"),
        "view_cart": pct("view→cart", "carting pairs / viewing pairs"),
        "cart_purchase": pct("cart→purchase", "buying pairs / carting pairs"),
        "view_purchase": pct("view→purchase", "buying pairs / viewing pairs"),
        "tail_purchase_share": pct(
            "tail share of purchases", "tail buying pairs / all buying pairs"
        ),
    },
)
