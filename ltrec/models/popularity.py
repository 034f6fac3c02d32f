"""Most-popular baseline: every user gets the same ranking by item popularity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from ltrec.models.base import ModelConfig, Recommender, popularity_scores
from ltrec.progress import Progress

if TYPE_CHECKING:
    from ltrec.models.data import InteractionData


class PopularityConfig(ModelConfig):
    """``by="users"``: distinct training users per item (DESIGN §3), ties by total weight;
    ``by="weight"``: summed event weights (view 1, cart 3, purchase 5)."""

    by: Literal["users", "weight"] = Field("users", description="What makes an item popular.")


class Popularity(Recommender):
    """Scores every item by its training popularity, for every user alike.

    Not personalised, and the reference that personalised models must beat; it also shows the
    popularity bias the re-rankers correct. Users without history get the same list.
    """

    name = "popularity"
    config_cls = PopularityConfig
    config: PopularityConfig  # the instance of config_cls that __init__ makes
    live_history = True  # trivially: the history changes nothing but what is excluded as seen

    def _fit(self, data: InteractionData, progress: Progress | None) -> None:
        cfg = self.config
        if cfg.by == "users":
            self.scores_ = popularity_scores(data.item_pop, data.item_weight)
        else:
            self.scores_ = np.asarray(data.item_weight, dtype=np.float64)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        s = self.scores_ if items is None else self.scores_[items]
        return np.broadcast_to(s.astype(np.float32), (len(users), len(s)))

    def _fallback(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._score(users, items)

    def _score_history(self, x, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:  # noqa: ANN001
        return self._score(users, items)

    def _state(self) -> dict[str, np.ndarray]:
        return {"scores": self.scores_}

    def _set_state(self, arrays) -> None:  # noqa: ANN001 - Mapping[str, ndarray]
        self.scores_ = np.asarray(arrays["scores"], dtype=np.float64)
