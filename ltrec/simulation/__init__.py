"""Feedback-loop simulation (DESIGN §7, after Mansoury et al. 2020).

Typical use::

    from ltrec.simulation import SimulationConfig, simulate
    boost = {"strategy": "tail_boost", "beta": 0.5}
    result = simulate("demo", [{"model": "popularity"}, {"model": "ease", "rerank": boost}],
                      SimulationConfig(rounds=20, k=10, users=500))
    result.final(); result.series("exposure_gini")
"""

from ltrec.simulation.config import (
    CalibrationConfig,
    PolicyConfig,
    SimulationConfig,
    parse_policy,
)
from ltrec.simulation.engine import load_world, run_simulation, simulate
from ltrec.simulation.result import (
    FINAL_METRICS,
    ROUND_METRICS,
    SimulationInfo,
    SimulationResult,
    delete_result,
    list_results,
    load_result,
    save_result,
)
from ltrec.simulation.users import CalibratedUserModel, TruthUserModel, fit_calibrated

__all__ = [
    "FINAL_METRICS",
    "ROUND_METRICS",
    "CalibratedUserModel",
    "CalibrationConfig",
    "PolicyConfig",
    "SimulationConfig",
    "SimulationInfo",
    "SimulationResult",
    "TruthUserModel",
    "delete_result",
    "fit_calibrated",
    "list_results",
    "load_result",
    "load_world",
    "parse_policy",
    "run_simulation",
    "save_result",
    "simulate",
]
