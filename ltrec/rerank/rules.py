"""Business rules: hard filters and pinned items, applied around any strategy.

Filters (every one a hard constraint, never violated by a pipeline's output):

* ``in_stock``: drop items flagged out of stock.
* ``price_min`` / ``price_max``: keep items with min <= price <= max; an item of unknown price
  is dropped when a bound is set (the rule cannot be shown to hold for it).
* ``include_categories``: keep only items in these categories; ``exclude_categories``: drop
  items in these. A name matches its own category and every sub-category below it in a path
  (``Home`` matches ``Home > Kitchen > Knives``).

Pins place a named item at a fixed 1-based position when it passes the filters; the strategy
fills the other positions. A pin whose item fails a filter is skipped and the list says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ltrec.config import ConfigBase
from ltrec.errors import ConfigError
from ltrec.rerank.base import Context

#: Separator of category paths (DESIGN §2: ``Home > Kitchen > Knives``).
PATH_SEP = ">"


class Pin(BaseModel):
    """Show ``item`` (an external item id) at ``position`` (1-based)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str = Field(min_length=1, max_length=200)
    position: int = Field(ge=1, le=1000)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        # URL form: "SKU-1@3" (the last '@' separates, so ids may contain '@').
        if isinstance(value, str):
            item, sep, pos = value.rpartition("@")
            if not sep or not item or not pos.strip().isdigit():
                raise ValueError(f"a pin is item@position, e.g. SKU-1@1; got {value!r}")
            return {"item": item, "position": int(pos)}
        return value

    def to_text(self) -> str:
        return f"{self.item}@{self.position}"


class RulesConfig(ConfigBase):
    """Hard business rules (see the module docstring)."""

    in_stock: bool = Field(False, description="Drop out-of-stock items.")
    price_min: float | None = Field(None, ge=0, le=1e9, description="Lowest price shown.")
    price_max: float | None = Field(None, ge=0, le=1e9, description="Highest price shown.")
    include_categories: tuple[str, ...] = Field(
        (), max_length=200, description="Show only these categories (and their sub-categories)."
    )
    exclude_categories: tuple[str, ...] = Field(
        (), max_length=200, description="Never show these categories (or sub-categories)."
    )
    pins: tuple[Pin, ...] = Field((), max_length=50, description="Items pinned at positions.")

    @field_validator("include_categories", "exclude_categories", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("pins", mode="before")
    @classmethod
    def _pins_listify(cls, value: Any) -> Any:
        return (value,) if isinstance(value, (str, dict)) else value

    @model_validator(mode="after")
    def _consistent(self) -> RulesConfig:
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_min > self.price_max
        ):
            raise ValueError(f"price_min {self.price_min} is above price_max {self.price_max}")
        positions = [p.position for p in self.pins]
        if len(set(positions)) != len(positions):
            raise ValueError("two pins share a position; give each pinned item its own")
        items = [p.item for p in self.pins]
        if len(set(items)) != len(items):
            raise ValueError("an item is pinned twice")
        return self

    @property
    def active(self) -> bool:
        return self != _NO_RULES

    @property
    def filters(self) -> bool:
        return bool(
            self.in_stock
            or self.price_min is not None
            or self.price_max is not None
            or self.include_categories
            or self.exclude_categories
        )


_NO_RULES = RulesConfig()  # compared with on every list: built once, not per call


def _category_matches(names: tuple[str, ...], wanted: tuple[str, ...], label: str) -> np.ndarray:
    """[n_categories] flags: the category is one of ``wanted`` or lies below one in its path."""

    def parts(name: str) -> list[str]:
        return [p.strip().lower() for p in name.split(PATH_SEP)]

    flags = np.zeros(len(names), dtype=bool)
    for w in wanted:
        wp = parts(w)
        hit = np.array([parts(n)[: len(wp)] == wp for n in names], dtype=bool)
        if not hit.any():
            shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
            raise ConfigError(
                f"{label}: no category is called {w!r}",
                hint=f"categories are: {shown or 'none in this dataset'}",
            )
        flags |= hit
    return flags


def item_mask(rules: RulesConfig, context: Context) -> np.ndarray:
    """[n_items] True where an item passes every filter of ``rules``."""
    ok = np.ones(context.n_items, dtype=bool)
    if rules.in_stock:
        ok &= context.in_stock
    if rules.price_min is not None:
        ok &= np.nan_to_num(context.price, nan=-np.inf) >= rules.price_min
    if rules.price_max is not None:
        ok &= np.nan_to_num(context.price, nan=np.inf) <= rules.price_max
    known = context.category >= 0
    if rules.include_categories:
        flags = _category_matches(
            context.category_names, rules.include_categories, "include_categories"
        )
        ok &= known & flags[np.where(known, context.category, 0)]
    if rules.exclude_categories:
        flags = _category_matches(
            context.category_names, rules.exclude_categories, "exclude_categories"
        )
        ok &= ~(known & flags[np.where(known, context.category, 0)])
    return ok


def resolve_pins(
    rules: RulesConfig, context: Context, mask: np.ndarray
) -> tuple[list[tuple[int, int]], list[str]]:
    """[(item index, position)] of the pins that apply, and notes on the ones skipped."""
    pins, notes = [], []
    for pin in sorted(rules.pins, key=lambda p: p.position):
        idx = context.item_index(pin.item)
        if idx is None:
            notes.append(f"pinned item {pin.item!r} is not in the catalogue; skipped")
        elif not mask[idx]:
            notes.append(f"pinned item {pin.item!r} fails a filter rule; skipped")
        else:
            pins.append((idx, pin.position))
    return pins, notes
