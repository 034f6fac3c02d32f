"""Opportunities: what should I fix? Neglected categories and brands, and every item to boost."""

from ltrec.ui.opportunities import render

render()
