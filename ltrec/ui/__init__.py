"""Streamlit-only helpers shared by the pages. The only part of ltrec that imports streamlit."""
