"""Plotly figure builders: pure functions of typed results, ``go.Figure`` out (no streamlit)."""
