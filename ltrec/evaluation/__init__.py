"""Evaluation: temporal splits, full-catalogue metrics, intervals and paired tests (DESIGN §6)."""

from ltrec.evaluation.aggregate import (
    EvalResult,
    MetricValue,
    PairedTest,
    compare,
    compare_many,
    evaluate,
    paired_test,
    segment_breakdown,
)
from ltrec.evaluation.pareto import pareto_front
from ltrec.evaluation.split import (
    Split,
    SplitConfig,
    default_split,
    load_events,
    temporal_split,
)

__all__ = [
    "EvalResult",
    "MetricValue",
    "PairedTest",
    "Split",
    "SplitConfig",
    "compare",
    "compare_many",
    "evaluate",
    "load_events",
    "paired_test",
    "pareto_front",
    "segment_breakdown",
    "temporal_split",
    "default_split",
]
