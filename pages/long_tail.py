"""Long Tail: rank-frequency, Lorenz curves, bucket table, categories, weekly trend."""

import streamlit as st

st.title("Long Tail")
