"""Segments: funnels by segment dimension x popularity bucket, intervals, suppression."""

import streamlit as st

from ltrec.analytics.view import ViewParams
from ltrec.charts.funnel import RATES, funnel_figure, heatmap_figure, tail_purchase_figure
from ltrec.errors import LtrecError
from ltrec.ui import cache
from ltrec.ui.state import active_dataset, show_error
from ltrec.ui.widgets import pct, require_events, table_with_download, view_controls

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

st.caption(
    f"Dataset **{name}** · cells with fewer than {sf.k} users are suppressed "
    "(blank), and totals count shown cells only"
)
if not sf.has_views:
    st.info(
        "This data has no views (a purchase log), so funnel rates are not defined; the "
        "tail share of each segment's purchases is shown."
    )
else:
    rate = st.radio(
        "Rate",
        list(RATES),
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
table_with_download(
    sf.frame,
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
