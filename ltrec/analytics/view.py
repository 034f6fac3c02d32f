"""One typed parameter set for every analytics view, and a dispatcher the pages and caches use.

Pages keep their state in the URL; :class:`ViewParams` is that state, validated. Its JSON form is
the cache key (with the dataset name and file version), so no DataFrame is ever hashed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ltrec.analytics import concentration, conversion, longtail, popularity, segments, stats
from ltrec.analytics.backend import Scope, Store
from ltrec.analytics.popularity import BucketConfig, PopularityConfig, PopularityEvent
from ltrec.config import get_settings
from ltrec.errors import ConfigError


class ViewParams(BaseModel):
    """What a page shows: bucket cuts, popularity event, date range, category, segment.

    Attributes:
        cuts: cumulative-share cuts (DESIGN §3), e.g. ``(0.8,)`` or ``(0.5, 0.8)``.
        event: what popularity counts (see :class:`PopularityConfig`).
        start, end: inclusive date range, or None.
        category: top-level category, or None for all.
        segment: a user segment column (``users`` table or derived), for the Segments page.
        k: small-cell threshold (segments with fewer users are suppressed).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cuts: tuple[float, ...] = Field(default_factory=lambda: get_settings().bucket_cuts)
    event: PopularityEvent = "interaction"
    start: date | None = None
    end: date | None = None
    category: str | None = Field(None, min_length=1, max_length=500)
    segment: str | None = Field(None, min_length=1, max_length=200)
    k: int = Field(default_factory=lambda: get_settings().small_cell_k, ge=1, le=1_000_000)

    @field_validator("cuts")
    @classmethod
    def _cuts(cls, cuts: tuple[float, ...]) -> tuple[float, ...]:
        return BucketConfig(cuts=cuts).cuts

    def scope(self) -> Scope:
        return Scope(start=self.start, end=self.end, category=self.category)

    def buckets(self) -> BucketConfig:
        return BucketConfig(cuts=self.cuts, popularity=PopularityConfig(event=self.event))

    def key(self) -> str:
        """Canonical JSON: the cache key of this view."""
        return self.model_dump_json()


def _stats(store: Store, p: ViewParams) -> stats.DatasetStats:
    return stats.store_stats(store, "", p.scope(), p.buckets())


def _gems(store: Store, p: ViewParams) -> conversion.HiddenGems:
    return conversion.hidden_gems(store, p.scope(), p.buckets())


def _boost(store: Store, p: ViewParams) -> Any:
    # lazy: cycle analytics.view <-> analytics.opportunities (which imports ViewParams)
    from ltrec.analytics.opportunities import boost_candidates

    return boost_candidates(store, p)


def _opportunities(by: str | None) -> Callable[[Store, ViewParams], Any]:
    def run(store: Store, p: ViewParams) -> Any:
        # lazy: cycle analytics.view <-> analytics.opportunities (which imports ViewParams)
        from ltrec.analytics.opportunities import opportunities

        return opportunities(store, by, p)

    return run


def _funnel(store: Store, p: ViewParams) -> segments.SegmentFunnel:
    if p.segment is None:
        raise ConfigError("choose a segment dimension")
    return segments.segment_funnel(store, p.segment, p.scope(), p.buckets(), p.k)


VIEWS: dict[str, Callable[[Store, ViewParams], Any]] = {
    "profile": lambda s, p: s.profile(),
    "segment_dimensions": lambda s, p: segments.segment_dimensions(s),
    "segment_funnel": _funnel,
    "stats": _stats,
    "buckets": lambda s, p: popularity.popularity_buckets(s, p.scope(), p.buckets()),
    "rank_frequency": lambda s, p: popularity.rank_frequency(s, p.scope(), p.buckets()),
    "lorenz": lambda s, p: concentration.lorenz(s, p.scope()),
    "bucket_table": lambda s, p: longtail.bucket_table(s, p.scope(), p.buckets()),
    "tail_by_category": lambda s, p: longtail.tail_by_category(s, p.scope(), p.buckets()),
    "tail_trend": lambda s, p: longtail.tail_trend(s, p.scope(), p.buckets()),
    "item_conversion": lambda s, p: conversion.item_conversion(s, p.scope(), p.buckets()),
    "hidden_gems": _gems,
    "tail_buyers": lambda s, p: conversion.tail_buyers(s, p.scope(), p.buckets()),
    # the Overview's "N candidates to boost" and the Opportunities page: one definition
    "boost_candidates": _boost,
    "opportunities_category": _opportunities("category"),
    "opportunities_brand": _opportunities("brand"),
    "opportunities_none": _opportunities(None),
}


def compute(kind: str, store: Store, params: ViewParams) -> Any:
    """Run the analytics view ``kind`` (a key of :data:`VIEWS`) with ``params``."""
    return VIEWS[kind](store, params)
