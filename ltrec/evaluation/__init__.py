"""Evaluation: temporal splits, full-catalogue metrics, intervals and paired tests (DESIGN §6)."""

from ltrec.evaluation.split import Split, SplitConfig, load_events, temporal_split

__all__ = ["Split", "SplitConfig", "load_events", "temporal_split"]
