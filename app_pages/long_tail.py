"""Long Tail: rank-frequency, Lorenz curves, bucket table, categories, weekly trend."""

import streamlit as st

from ltrec.charts.longtail import (
    category_tail_figure,
    lorenz_figure,
    rank_frequency_figure,
    trend_figure,
)
from ltrec.definitions import GINI_FORMULA
from ltrec.errors import LtrecError
from ltrec.ui import cache
from ltrec.ui.state import active_dataset, show_error
from ltrec.ui.widgets import (
    exposure_note,
    metric_column,
    pct,
    require_events,
    table_with_download,
    view_controls,
)

st.title("Long Tail")
try:
    name, meta = require_events(active_dataset())
    profile = meta["profile"]
    params = view_controls("lt", meta)
    rf = cache.view("rank_frequency", name, params)
    lz = cache.view("lorenz", name, params)
    bt = cache.view("bucket_table", name, params)
    ct = cache.view("tail_by_category", name, params) if profile.has_categories else None
    tr = cache.view("tail_trend", name, params)
    if profile.has_conversion:
        conv, buyers = cache.view("item_conversion", name, params), None
    else:
        conv, buyers = None, cache.view("tail_buyers", name, params)
except LtrecError as err:
    show_error(err)
    st.stop()

exp = bt.exposure_event
st.caption(
    f"Dataset **{name}** · "
    + (f"exposure = {exp}s" if exp else "exposure not measured")
    + f" · popularity = distinct users ({params.event})"
)
exposure_note(profile)

left, right = st.columns(2)
with left:
    st.markdown(
        "**Rank-frequency (log-log)**",
        help="Each item's popularity against its rank "
        "(1 = most popular). Shaded: the rank range of each bucket. Items with zero "
        "popularity cannot be drawn on a log axis and are counted below.",
    )
    st.plotly_chart(rank_frequency_figure(rf), key="fig_lt_rf")
    if rf.cold_items:
        st.caption(f"{rf.cold_items:,} items have no {params.event} at all (cold, in the tail).")
with right:
    st.markdown(
        "**Lorenz curves**",
        help="Cumulative share of events against the share of "
        "items, items sorted ascending, every catalogue item included. Gini: "
        + GINI_FORMULA,
    )
    st.plotly_chart(lorenz_figure(lz), key="fig_lt_lorenz")

st.subheader(
    "Buckets",
    help="Head is the smallest set of top items that makes the first cut's "
    "share of interactions; each further cut adds a bucket; the rest is the tail.",
)
columns = ["bucket", "items", "cold_items", "item_share"]
if exp:
    columns += ["exposure_events", "exposure_share"]
columns += ["purchase_events", "purchase_share"]
if profile.rate_available("view_purchase"):
    columns += ["views", "purchases", "view_purchase", "view_purchase_lo", "view_purchase_hi"]
elif profile.has_purchases:
    columns += ["purchases", "buyer_share"]
show = bt.frame[columns]
table_with_download(
    show,
    f"{name}_buckets.csv",
    key="lt_buckets_csv",
    column_config={
        "item_share": pct("% of catalogue", "items in the bucket / all catalogue items"),
        "exposure_events": st.column_config.NumberColumn("exposure", help=f"{exp} events"),
        "exposure_share": pct("% of exposure", f"{exp} events on the bucket / all {exp} events"),
        "purchase_events": st.column_config.NumberColumn("purchase events"),
        "purchase_share": pct("% of purchases", "purchase events on the bucket / all purchases"),
        "views": st.column_config.NumberColumn(
            "viewing pairs",
            help="(user, item) pairs that reached the view stage (viewed, carted or bought)",
        ),
        "purchases": st.column_config.NumberColumn(
            "buying pairs", help="(user, item) pairs with a purchase: distinct buyers per item"
        ),
        "buyer_share": pct(
            "% of buyers", "buying pairs on the bucket / all buying pairs (not exposure)"
        ),
        "view_purchase": metric_column("view_purchase"),
        "view_purchase_lo": pct("95% low", "Wilson score interval, lower bound"),
        "view_purchase_hi": pct("95% high", "Wilson score interval, upper bound"),
    },
)

EXPOSURE_COLS = ["exposure", "tail_exposure", "tail_exposure_share"]
if ct is not None:
    st.subheader(
        "Tail share by category",
        help="Buckets are catalogue-wide; for each top-level "
        "category: share of its items in the tail, and the tail's share of its "
        + ("exposure and " if exp else "")
        + "purchases.",
    )
    st.plotly_chart(category_tail_figure(ct), key="fig_lt_cat")
    with st.expander("Category table"):
        table_with_download(
            ct.frame if exp else ct.frame.drop(columns=EXPOSURE_COLS),
            f"{name}_categories.csv",
            key="lt_cat_csv",
            column_config={
                "tail_item_share": pct("tail % of items", "tail items / items of the category"),
                "exposure": st.column_config.NumberColumn("exposure", help=f"{exp} events"),
                "tail_exposure_share": pct(
                    "tail % of exposure",
                    f"{exp} events on tail items / all {exp} events of the category",
                ),
                "tail_purchase_share": pct(
                    "tail % of purchases",
                    "purchase events on tail items / all purchase events of the category",
                ),
            },
        )

st.subheader(
    "Weekly trend",
    help="Per week (Monday start): tail items' share of "
    + ("exposure and " if exp else "")
    + "purchase events, with the buckets fixed over the whole date range.",
)
st.plotly_chart(trend_figure(tr), key="fig_lt_trend")

if conv is not None:
    st.subheader(
        "Item conversion",
        help="View → purchase of viewing users per item, with Wilson "
        "bounds, and shrunk toward the catalogue average by an empirical-Bayes Beta prior "
        f"(fitted by moments: a = {conv.prior.a:.2f}, b = {conv.prior.b:.2f}).",
    )
    items = conv.frame[conv.frame["views"] > 0].head(200)
    table_with_download(
        items,
        f"{name}_item_conversion.csv",
        key="lt_items_csv",
        height=360,
        column_config={
            "shrunk": metric_column("shrunk"),
            "view_purchase": metric_column("view_purchase"),
        },
    )
elif buyers is not None:
    st.subheader(
        buyers.label,
        help="Item conversion needs views and purchases, which this data does not both have; "
        f"instead: tail items with at least {buyers.min_buyers} distinct buyers, and how many "
        "of those buyers bought the item at more than one time.",
    )
    table_with_download(
        buyers.frame,
        f"{name}_tail_buyers.csv",
        key="lt_buyers_csv",
        height=360,
        column_config={
            "repeat_rate": pct("repeat rate", "repeat buyers / buyers"),
            "repeat_rate_lo": pct("95% low", "Wilson score interval, lower bound"),
            "repeat_rate_hi": pct("95% high", "Wilson score interval, upper bound"),
        },
    )
