"""The app's stakeholder-report button: the same report as ``ltrec report NAME``."""

from __future__ import annotations

import html

import streamlit as st

from ltrec.errors import LtrecError
from ltrec.ui.state import data_root

HELP = (
    "One self-contained HTML file for stakeholders: the tail's share of the catalogue vs of "
    "exposure, the neglected categories, the expected effect of a tail boost (beta 0.3) on "
    "accuracy and tail exposure with 95% intervals, a short feedback-loop simulation, the data's "
    "profile and the definitions used. Opens offline; prints to PDF. Takes a few seconds."
)


def _report(name: str) -> bytes:
    # lazy: the report stack (models, simulation, tuning) loads on the click, not with Overview
    from ltrec.app.report import report_html

    try:
        return report_html(name, data_dir=data_root())
    except LtrecError as err:  # the download still gives a page that says why
        msg = html.escape(str(err))
        return f"<!DOCTYPE html><meta charset='utf-8'><p>No report: {msg}</p>".encode()


def report_button(name: str, *, key: str) -> None:
    """A download button that builds the report when clicked (not on every rerun)."""
    st.download_button(
        "Download the stakeholder report (HTML)",
        data=lambda: _report(name),
        file_name=f"{name}_report.html",
        mime="text/html",
        key=key,
        help=HELP,
        on_click="ignore",
    )
