"""Pareto fronts of trade-off sweeps (accuracy vs tail share, DESIGN §6)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ltrec.errors import BadInputError


def pareto_front(points: np.ndarray, maximize: Sequence[bool] = (True, True)) -> np.ndarray:
    """Mask of the non-dominated points.

    Point p dominates q if p is at least as good as q in every objective and strictly better in
    one (Pareto 1906; the usual multi-objective definition). Duplicated points do not dominate
    each other, so both stay on the front. Points with a NaN are never on the front.

    Args:
        points: ``[n, m]`` objective values (e.g. NDCG, tail share).
        maximize: per objective, True to maximise, False to minimise.

    Returns:
        ``bool [n]``, True for points on the front.
    """
    p = np.asarray(points, dtype=float)
    if p.ndim != 2:
        raise BadInputError(f"points must be [n, objectives], got shape {p.shape}")
    if len(maximize) != p.shape[1]:
        raise BadInputError(f"{p.shape[1]} objectives but {len(maximize)} directions")
    signs = np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)
    q = p * signs
    ok = ~np.isnan(q).any(axis=1)
    # ge[i, j]: i is at least as good as j everywhere; gt: strictly better somewhere.
    ge = (q[:, None, :] >= q[None, :, :]).all(axis=2)
    gt = (q[:, None, :] > q[None, :, :]).any(axis=2)
    dominates = ge & gt & ok[:, None] & ok[None, :]
    return ok & ~dominates.any(axis=0)
