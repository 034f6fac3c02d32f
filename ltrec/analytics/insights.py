"""Plain-language pointers for the Overview page ("what to look at next"), from typed results."""

from __future__ import annotations

from dataclasses import dataclass

from ltrec.analytics.conversion import HiddenGems
from ltrec.analytics.stats import DatasetStats


@dataclass
class Pointer:
    """One suggestion: the text, and the page that answers it (a path under ``app_pages/``)."""

    text: str
    page: str


def next_steps(stats: DatasetStats, gems: HiddenGems | None = None) -> list[Pointer]:
    """Suggestions ordered by how much they matter for this dataset."""
    out: list[Pointer] = []
    exp = stats.exposure_event
    if exp is None or stats.tail_exposure_share is None or stats.gini_exposure is None:
        return _without_exposure(stats, gems, out)
    if stats.tail_item_share > 0 and stats.tail_exposure_share < 0.5 * stats.tail_item_share:
        ratio = stats.tail_item_share / max(stats.tail_exposure_share, 1e-9)
        out.append(
            Pointer(
                f"The tail is {stats.tail_item_share:.0%} of the catalogue but gets only "
                f"{stats.tail_exposure_share:.0%} of {exp}s ({ratio:.1f}x under-exposed): "
                "see where exposure goes by category and week.",
                "app_pages/long_tail.py",
            )
        )
    if stats.tail_exposure_share > 0 and stats.tail_purchase_share > stats.tail_exposure_share:
        out.append(
            Pointer(
                f"Tail items take {stats.tail_purchase_share:.0%} of purchases from "
                f"{stats.tail_exposure_share:.0%} of {exp}s: they convert better than their "
                "exposure suggests.",
                "app_pages/long_tail.py",
            )
        )
    if gems is not None and len(gems.frame):
        out.append(
            Pointer(
                f"{len(gems.frame)} tail items convert at least "
                f"{gems.frame['lift'].min():.1f}x the catalogue average while being rarely shown: "
                "candidates to boost.",
                "app_pages/long_tail.py",
            )
        )
    if stats.gini_exposure >= 0.6:
        out.append(
            Pointer(
                f"Exposure is concentrated (Gini {stats.gini_exposure:.2f}): compare the Lorenz "
                "curves of the event types this data has.",
                "app_pages/long_tail.py",
            )
        )
    out.append(_SEGMENTS)
    return out


_SEGMENTS = Pointer(
    "See which customer segments buy from the tail, with confidence intervals.",
    "app_pages/segments.py",
)


def _without_exposure(
    stats: DatasetStats, gems: HiddenGems | None, out: list[Pointer]
) -> list[Pointer]:
    """Purchase-only data: no exposure claims; purchase concentration and repeat buyers."""
    if stats.gini_buyers is not None and stats.gini_buyers >= 0.6:
        out.append(
            Pointer(
                f"Purchases are concentrated (Gini of buyers per item {stats.gini_buyers:.2f}): "
                "see which items and categories the buyers go to.",
                "app_pages/long_tail.py",
            )
        )
    alt = gems.alternative if gems is not None else None
    if alt is not None and len(alt.frame):
        out.append(
            Pointer(f"{alt.label}: {len(alt.frame)} items to look at.", "app_pages/long_tail.py")
        )
    out.append(_SEGMENTS)
    return out
