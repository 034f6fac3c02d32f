"""Overview: headline KPIs of the active dataset."""

import streamlit as st

from ltrec.ui.state import active_dataset, empty_state

st.title("Overview")
name = active_dataset()
if name is None:
    empty_state()
    st.stop()
st.caption(f"Dataset: {name}")
