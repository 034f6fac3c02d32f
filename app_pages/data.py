"""Data: import a file (preview, mapping, dry run, commit, rejects) and manage datasets."""

import streamlit as st

from ltrec.ui.auth import audit_section
from ltrec.ui.data import datasets_section, import_section

st.title("Data")
st.caption(
    "Every import is checked first: a dry run shows what would be imported and what would be "
    "skipped, and nothing is written until you press Import."
)
import_section()
st.divider()
datasets_section()
audit_section()
