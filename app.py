"""ltrec: the Streamlit app. Navigation and the shared sidebar; every page lives in app_pages/."""

from pathlib import Path

import streamlit as st

# A shipped file: a ":material/...:" favicon is fetched from Google's font CDN, unreachable offline.
ICON = Path(__file__).parent / "assets" / "favicon.png"
st.set_page_config(page_title="ltrec: long-tail exposure", page_icon=str(ICON), layout="wide")

# The first session of a server process imports the analytics stack (pandas, ibis, scipy:
# seconds on a busy machine): paint a progress line first, so the window is never blank.
_loading = st.empty()
_loading.caption("Opening ltrec… loading the analytics libraries (first visit only)")
from ltrec.ui.auth import gate  # noqa: E402
from ltrec.ui.state import dataset_picker  # noqa: E402

_loading.empty()

PAGES = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("app_pages/long_tail.py", title="Long Tail", icon=":material/show_chart:"),
    st.Page("app_pages/segments.py", title="Segments", icon=":material/groups:"),
    st.Page("app_pages/opportunities.py", title="Opportunities", icon=":material/lightbulb:"),
    st.Page("app_pages/model_lab.py", title="Model Lab", icon=":material/model_training:"),
    st.Page("app_pages/rerank_studio.py", title="Rerank Studio", icon=":material/tune:"),
    st.Page("app_pages/feedback_loop.py", title="Feedback Loop", icon=":material/autorenew:"),
    st.Page("app_pages/experiments.py", title="Experiments", icon=":material/science:"),
    st.Page("app_pages/data.py", title="Data", icon=":material/database:"),
]

# Before any page: the serving check (a non-local address needs sign-in), sign-in, the role.
st.sidebar.markdown("**ltrec** · see, model and fix long-tail exposure")
gate()
nav = st.navigation(PAGES)
dataset_picker()
nav.run()
