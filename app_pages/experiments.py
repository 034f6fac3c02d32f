"""Experiments: what each arm of a live A/B experiment of `ltrec serve` did, with intervals."""

from ltrec.ui.experiments import page

page()
