"""Segments: funnels by segment x popularity bucket."""

import streamlit as st

st.title("Segments")
