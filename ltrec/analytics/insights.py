"""Plain-language pointers for the Overview page ("what to look at next"), from typed results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ltrec.analytics.conversion import GemsConfig, HiddenGems
from ltrec.analytics.stats import DatasetStats
from ltrec.definitions import fmt, pct

if TYPE_CHECKING:  # a type only: the module imports scipy
    from ltrec.analytics.opportunities import BoostCandidates


@dataclass
class Pointer:
    """One suggestion: the text, and the page that answers it (a path under ``app_pages/``)."""

    text: str
    page: str

    @property
    def title(self) -> str:
        """The page's navigation title (``app_pages/long_tail.py`` -> "Long Tail")."""
        return self.page.rsplit("/", 1)[-1].removesuffix(".py").replace("_", " ").title()


#: The page that lists the items to boost and the neglected categories.
OPPORTUNITIES = "app_pages/opportunities.py"


def next_steps(
    stats: DatasetStats, gems: HiddenGems | None = None, boost: BoostCandidates | None = None
) -> list[Pointer]:
    """Suggestions ordered by how much they matter for this dataset.

    With ``boost`` (:func:`ltrec.analytics.opportunities.boost_candidates`), the candidates are
    counted from it, in full, and the pointer leads to the Opportunities page.
    """
    out: list[Pointer] = []
    if boost is not None:
        return _with_boost(stats, gems, boost)
    exp = stats.exposure_event
    if exp is None or stats.tail_exposure_share is None or stats.gini_exposure is None:
        return _without_exposure(stats, gems, out)
    if stats.tail_item_share > 0 and stats.tail_exposure_share < 0.5 * stats.tail_item_share:
        ratio = stats.tail_item_share / max(stats.tail_exposure_share, 1e-9)
        out.append(
            Pointer(
                f"The tail is {pct(stats.tail_item_share)} of the catalogue but gets only "
                f"{pct(stats.tail_exposure_share)} of {exp}s ({ratio:.1f}x under-exposed): "
                "see where exposure goes by category and week.",
                "app_pages/long_tail.py",
            )
        )
    if stats.tail_exposure_share > 0 and stats.tail_purchase_share > stats.tail_exposure_share:
        out.append(
            Pointer(
                f"Tail items take {pct(stats.tail_purchase_share)} of purchases from "
                f"{pct(stats.tail_exposure_share)} of {exp}s: they convert better than their "
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
                f"Exposure is concentrated (Gini {fmt('gini_exposure', stats.gini_exposure)}): "
                "compare the Lorenz curves of the event types this data has.",
                "app_pages/long_tail.py",
            )
        )
    out.append(_SEGMENTS)
    return out


def _with_boost(
    stats: DatasetStats, gems: HiddenGems | None, boost: BoostCandidates
) -> list[Pointer]:
    """The pointers, the candidates' one replaced by "N candidates to boost" (Opportunities)."""
    out = [p for p in next_steps(stats, gems) if p.page != _SEGMENTS.page]
    out = [p for p in out if "candidates to boost" not in p.text and p.text != _alt_text(gems)]
    if boost.count:
        if boost.basis == "conversion":
            what = (
                f"tail items that convert at least {GemsConfig().min_lift:g}x the shop average "
                "while rarely shown"
            )
        else:
            what = boost.label[0].lower() + boost.label[1:]
        at = 1 if out and stats.exposure_event is not None else 0
        out.insert(at, Pointer(f"{boost.count:,} candidates to boost: {what}.", OPPORTUNITIES))
    profile = stats.profile
    if profile is not None and (profile.has_categories or profile.has_brands):
        groups = "categories" if profile.has_categories else "brands"
        out.append(
            Pointer(
                f"See which {groups} get less exposure than their share of the catalogue, "
                "and how they convert."
                if stats.exposure_event is not None
                else f"See which {groups} sell less than their share of the catalogue.",
                OPPORTUNITIES,
            )
        )
    out.append(_SEGMENTS)
    return out


def _alt_text(gems: HiddenGems | None) -> str | None:
    alt = gems.alternative if gems is not None else None
    return f"{alt.label}: {len(alt.frame)} items to look at." if alt is not None else None


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
                "Purchases are concentrated (Gini of buyers per item "
                f"{fmt('gini_buyers', stats.gini_buyers)}): see which items and categories the "
                "buyers go to.",
                "app_pages/long_tail.py",
            )
        )
    alt = gems.alternative if gems is not None else None
    if alt is not None and len(alt.frame):
        out.append(Pointer(_alt_text(gems) or "", "app_pages/long_tail.py"))
    out.append(_SEGMENTS)
    return out
