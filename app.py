"""ltrec: the Streamlit app. Navigation and the shared sidebar; every page lives in pages/."""

import streamlit as st

from ltrec.ui.state import dataset_picker

st.set_page_config(
    page_title="ltrec: long-tail exposure", page_icon=":material/trending_up:", layout="wide"
)

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/long_tail.py", title="Long Tail", icon=":material/show_chart:"),
    st.Page("pages/segments.py", title="Segments", icon=":material/groups:"),
    st.Page("pages/model_lab.py", title="Model Lab", icon=":material/model_training:"),
    st.Page("pages/rerank_studio.py", title="Rerank Studio", icon=":material/tune:"),
    st.Page("pages/feedback_loop.py", title="Feedback Loop", icon=":material/autorenew:"),
    st.Page("pages/data.py", title="Data", icon=":material/database:"),
]

nav = st.navigation(PAGES)
st.sidebar.markdown("**ltrec** · see, model and fix long-tail exposure")
dataset_picker()
nav.run()
