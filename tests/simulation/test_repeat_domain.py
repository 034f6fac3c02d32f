"""The simulator reads the repeat-purchase flag where training, evaluation and serving do: the
dataset's meta (``repeat_domain``, set by the grocery preset), not the split (issue 20).

A simulation starts from every event of the dataset (no split), so while the flag came from
the split, a grocery was simulated as a fashion shop: each policy's lists dropped what the
household bought before, the opposite of what the Studio and the API show for that data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ltrec.simulation import SimulationConfig, parse_policy
from ltrec.simulation.engine import _PolicyState, load_world
from ltrec.store import writing
from tests.analytics.conftest import synthetic_shop, write_store


def _shop(data_dir: Path, repeat: bool) -> str:
    """The simulator tests' plain shop; ``repeat``: its meta marks a repeat-purchase domain."""
    ev, it, us = synthetic_shop(users=120, items=60, sessions=2500, seed=5)
    write_store("shop", data_dir, ev, it, us)
    if repeat:
        with writing("shop", data_dir, data_changed=False) as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('repeat_domain', 'true')")
    return "shop"


def _popularity_lists(data_dir: Path, repeat: bool) -> tuple[_PolicyState, np.ndarray, np.ndarray]:
    """A popularity policy's first-round state, its lists (k = 5) of every user, and
    popularity's own top 5 items."""
    cfg = SimulationConfig(user_model="calibrated")
    data, _, prices, stock = load_world(_shop(data_dir, repeat), cfg, data_dir)
    state = _PolicyState(parse_policy({"model": "popularity"}), "popularity", data)
    state.fit(cfg.bucket_cuts, prices, stock)
    lists = state.recommend(np.arange(data.n_users), 5)
    top = np.lexsort((np.arange(data.n_items), -state.model.pop_))[:5]  # ties: lower index
    return state, lists, top


def test_a_repeat_purchase_dataset_is_simulated_as_one(data_dir: Path) -> None:
    state, lists, top = _popularity_lists(data_dir, repeat=True)
    assert state.data.repeat_domain and state.model.repeat_
    # Bought items may come back: every household gets the best-sellers, their own included.
    assert (lists == top).all()
    # A round's events are appended (the data the next retraining reads): still repeat data.
    n = state.data.n_users
    hit = np.zeros(lists.shape, bool)
    hit[:, 0] = True
    state.append(np.arange(n), lists, hit, hit, hit, t=float(state.data.last_ts.data.max()) + 1)
    assert state.data.repeat_domain
    state.fit(SimulationConfig().bucket_cuts, np.full(state.data.n_items, np.nan), None)
    assert state.model.repeat_


def test_other_data_keeps_dropping_what_the_user_has_seen(data_dir: Path) -> None:
    state, lists, top = _popularity_lists(data_dir, repeat=False)
    assert not state.data.repeat_domain and not state.model.repeat_
    seen = state.data.matrix
    for u in range(state.data.n_users):
        row = seen.indices[seen.indptr[u] : seen.indptr[u + 1]]
        assert not np.isin(lists[u], row).any()  # never an item the user interacted with
    assert not (lists == top).all()  # so some households' lists differ from the top 5
