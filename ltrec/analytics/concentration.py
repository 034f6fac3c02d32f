"""Exposure concentration: Lorenz curves and the catalogue-wide Gini coefficient (DESIGN §3).

Over the whole catalogue, zero-exposure items included, with per-item counts sorted ascending
``x_(1) <= ... <= x_(n)``:

    G = sum_i (2i - n - 1) x_(i) / (n * sum_i x_i)

(the standard sample Gini, e.g. Damgaard & Weiner 2000; used for exposure concentration of
recommenders by Fleder & Hosanagar 2009 and Mansoury et al. 2020). G is 0 when every item gets
the same exposure and (n - 1) / n when one item gets all of it; an all-zero series has no
concentration to measure (NaN). The one implementation is :func:`ltrec.definitions.gini`.
The Lorenz curve joins
``(k / n, sum_{i<=k} x_(i) / sum x)`` for k = 0..n.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from ltrec.analytics.backend import Scope, Store
from ltrec.config import EVENT_TYPES
from ltrec.definitions import gini


def lorenz_points(values: np.ndarray | list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve ``(population share, value share)``, n + 1 points from (0, 0) to (1, 1)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    pop = np.arange(n + 1, dtype=float) / max(n, 1)
    total = x.sum()
    cum = np.concatenate([[0.0], np.cumsum(x)])
    share = cum / total if total > 0 else pop.copy()  # no exposure at all: treat as equality
    return pop, share


#: Name of the purchase-concentration series: distinct buyers per item.
BUYERS = "buyers"


def item_event_counts(store: Store, scope: Scope = Scope()) -> ir.Table:
    """Ibis table ``(item_id, category, impression, view, cart, purchase, buyers)`` of event
    counts and distinct buyers over every catalogue item in the scope (zeros included)."""
    ev = store.events(scope)
    per = ev.group_by("item_id").agg(
        **{f"n_{t}": ev.count(where=ev.event_type == t) for t in EVENT_TYPES},
        n_buyers=ev.user_id.nunique(where=ev.event_type == "purchase"),
    )
    cat = store.items(scope)
    j = cat.left_join(per, cat.item_id == per.item_id)
    return j.select(
        cat.item_id,
        cat.category,
        **{t: ibis.coalesce(per[f"n_{t}"], 0).cast("int64") for t in (*EVENT_TYPES, BUYERS)},
    )


@dataclass
class Lorenz:
    """Lorenz curves and Gini per event type (and ``buyers``: distinct buyers per item, the
    purchase concentration shown when the data does not measure exposure).

    Attributes:
        curves: series -> ``(population share, exposure share)`` arrays (n + 1 points).
        gini: event type -> Gini over the catalogue.
        totals: event type -> number of events.
        items: catalogue size n.
    """

    curves: dict[str, tuple[np.ndarray, np.ndarray]]
    gini: dict[str, float]
    totals: dict[str, int]
    items: int

    def frame(self) -> pd.DataFrame:
        """One row per event type: events, Gini."""
        return pd.DataFrame(
            {
                "event": list(self.gini),
                "events": [self.totals[e] for e in self.gini],
                "gini": list(self.gini.values()),
            }
        )


def lorenz(
    store: Store,
    scope: Scope = Scope(),
    events: tuple[str, ...] | None = None,
    *,
    skip_empty: bool = True,
) -> Lorenz:
    """Lorenz curves and Gini of per-item event counts for each type in ``events``.

    Args:
        events: series to draw (event types or ``buyers``); default: the event types the
            dataset profile lists, plus ``buyers`` when the data does not measure exposure.
        skip_empty: leave out series with no events at all in the scope (a flat line would
            only confuse).
    """
    if events is None:
        profile = store.profile()
        events = tuple(profile.funnel_stages)
        if profile.exposure_event is None and profile.has_purchases:
            events = (*events, BUYERS)
    df = item_event_counts(store, scope).drop("item_id", "category").to_pandas()
    curves, ginis, totals = {}, {}, {}
    for e in events:
        x = df[e].to_numpy(dtype=float)
        if skip_empty and x.sum() == 0:
            continue
        curves[e] = lorenz_points(x)
        ginis[e] = float(gini(x))  # a float for a 1-d input
        totals[e] = int(x.sum())
    return Lorenz(curves, ginis, totals, len(df))
