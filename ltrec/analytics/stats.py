"""Headline numbers of a dataset (``ltrec stats NAME [--json]`` and the Overview page).

JSON keys are a public interface (only ever add keys): ``users``, ``items``, ``events`` (counts
by event type, all four canonical types), ``first_ts``, ``last_ts``, ``gini_exposure``,
``exposure_event``, ``tail_item_share``, ``tail_exposure_share``, ``tail_purchase_share``,
``bucket_cuts``; added: ``gini_buyers``, ``tail_buyer_share`` and ``profile`` (the dataset
profile of :mod:`ltrec.store.profile`). On data that does not measure exposure (no impressions
and no views: purchase-only logs), ``exposure_event``, ``gini_exposure`` and
``tail_exposure_share`` are null, never a made-up number; ``gini_buyers`` (purchase
concentration) is the figure to read there. Definitions: DESIGN §3 and
:mod:`ltrec.analytics.longtail`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltrec.analytics.backend import Scope, Store, open_store
from ltrec.analytics.concentration import BUYERS
from ltrec.analytics.longtail import item_table
from ltrec.analytics.popularity import BucketConfig
from ltrec.config import EVENT_TYPES
from ltrec.definitions import gini
from ltrec.store.profile import DatasetProfile


@dataclass
class DatasetStats:
    """Headline numbers of one dataset.

    Attributes:
        users: distinct users (users table and events together).
        items: catalogue size (items table and events together).
        events: event counts by type (all four canonical types; ``profile`` lists only the
            types present).
        first_ts, last_ts: time span of the events (None when there are none).
        gini_exposure: Gini of per-item exposure event counts over every catalogue item; None
            when the data does not measure exposure.
        exposure_event: which event type counts as exposure (impression, else view, else None:
            the dataset profile's rule).
        tail_item_share: share of catalogue items in the tail bucket.
        tail_exposure_share, tail_purchase_share: tail items' share of exposure / purchase
            events (exposure: None when not measured).
        bucket_cuts: the cumulative-share cuts that define the buckets.
        gini_buyers: Gini of distinct buyers per item over every catalogue item (purchase
            concentration); None without purchases.
        tail_buyer_share: tail items' share of (buyer, item) pairs; None without purchases.
        profile: the dataset profile (:class:`ltrec.store.profile.DatasetProfile`).
    """

    name: str
    users: int
    items: int
    events: dict[str, int]
    first_ts: datetime | None
    last_ts: datetime | None
    gini_exposure: float | None
    exposure_event: str | None
    tail_item_share: float
    tail_exposure_share: float | None
    tail_purchase_share: float
    bucket_cuts: tuple[float, ...]
    gini_buyers: float | None = None
    tail_buyer_share: float | None = None
    profile: DatasetProfile | None = None

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["first_ts"] = self.first_ts.isoformat() if self.first_ts else None
        d["last_ts"] = self.last_ts.isoformat() if self.last_ts else None
        d["bucket_cuts"] = list(self.bucket_cuts)
        d["profile"] = self.profile.to_dict() if self.profile else None
        return d

    def summary(self) -> str:
        span = (
            f"{self.first_ts:%Y-%m-%d} .. {self.last_ts:%Y-%m-%d}"
            if self.first_ts and self.last_ts
            else "no events"
        )
        ev = ", ".join(f"{t} {n:,}" for t, n in self.events.items() if n) or "none"
        if self.exposure_event is not None and self.gini_exposure is not None:
            conc = f"exposure ({self.exposure_event}) Gini over the catalogue: "
            conc += f"{self.gini_exposure:.3f}"
            tail_exp = f"{self.tail_exposure_share or 0.0:.1%} of exposure, "
        else:
            conc = "exposure: not measured (no impressions or views)"
            if self.gini_buyers is not None:
                conc += f"; purchase concentration (buyers per item) Gini: {self.gini_buyers:.3f}"
            tail_exp = ""
        lines = [
            f"dataset {self.name}: {self.users:,} users, {self.items:,} items",
            f"events: {ev}",
            f"time span: {span}",
            conc,
            f"tail (cuts {', '.join(map(str, self.bucket_cuts))}): "
            f"{self.tail_item_share:.1%} of items, {tail_exp}"
            f"{self.tail_purchase_share:.1%} of purchases",
        ]
        if self.profile is not None:
            p = self.profile
            present = {**p.optional_columns(), "repeat purchases": p.has_repeat_purchases}
            has = [k for k, v in present.items() if v]
            lines.append(
                f"profile: stages {' > '.join(p.funnel_stages) or 'none'}; "
                f"has {', '.join(has) or 'no extra columns'}; "
                f"segments {', '.join(p.segment_columns) or 'none'}"
            )
        return "\n".join(lines)


def store_stats(
    store: Store, name: str, scope: Scope = Scope(), cfg: BucketConfig | None = None
) -> DatasetStats:
    """:class:`DatasetStats` of any :class:`Store` (DuckDB, Spark, ...)."""
    cfg = cfg or BucketConfig()
    # one query per item (bucket + counts of every type), one for the span, one for users
    it = item_table(store, scope, cfg).to_pandas()
    counts = {t: int(it[t].sum()) for t in EVENT_TYPES}
    profile = store.profile()
    exp = profile.exposure_event
    tail = (it["bucket"] == len(cfg.cuts)).to_numpy()
    ev = store.events(scope)
    span = ev.aggregate(first=ev.ts.min(), last=ev.ts.max()).to_pandas()
    users = int(store.users().count().to_pandas())

    def share(col: str) -> float:
        total = float(it[col].sum())
        return float(it.loc[tail, col].sum()) / total if total > 0 else 0.0

    return DatasetStats(
        name=name,
        users=users,
        items=int(len(it)),
        events=counts,
        first_ts=_ts(span["first"].iloc[0]),
        last_ts=_ts(span["last"].iloc[0]),
        gini_exposure=_measured(it[exp]) if exp else None,
        exposure_event=exp,
        tail_item_share=float(tail.mean()) if len(it) else 0.0,
        tail_exposure_share=share(exp) if exp else None,
        tail_purchase_share=share("purchase"),
        bucket_cuts=tuple(cfg.cuts),
        gini_buyers=_measured(it[BUYERS]) if profile.has_purchases else None,
        tail_buyer_share=share(BUYERS) if profile.has_purchases else None,
        profile=profile,
    )


def _measured(counts: pd.Series) -> float | None:
    """Gini of per-item counts; None when there are no events in the scope (nothing to measure)."""
    g = gini(counts.to_numpy(dtype=float))
    return None if np.isnan(g) else float(g)


def _ts(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()


def dataset_stats(name: str, data_dir: Path | str | None = None) -> DatasetStats:
    """Headline numbers of the dataset ``name`` (opened read-only from ``data_dir``)."""
    return store_stats(open_store(name, data_dir), name)
