"""Issue 19 §1: what the pages compute in Python does not grow with the event count.

Two demo shops with the same users and items, one with 5x the events of the other. The data
path of the heavy pages (every cached analytics view the Overview, Long Tail, Segments and
Opportunities pages draw, and the Rerank Studio's history of a user) runs under tracemalloc on
both; the Python peak of the bigger shop stays under 2x the smaller one's. A page that read the
events into pandas (a ``.df()`` of every event, or the split's training frame) grows 5x and
fails. DuckDB's own memory is not Python's: the app caps it (``app_duckdb_memory_mb``).
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest

from ltrec.analytics.view import ViewParams, compute

pytestmark = pytest.mark.slow

SMALL, FACTOR = 30_000, 5
#: The views behind the heavy pages (ltrec.ui.cache.view kinds) and their parameters.
VIEWS = [
    ("stats", ViewParams()),
    ("bucket_table", ViewParams()),
    ("rank_frequency", ViewParams()),
    ("lorenz", ViewParams()),
    ("tail_by_category", ViewParams()),
    ("tail_trend", ViewParams()),
    ("item_conversion", ViewParams()),
    ("hidden_gems", ViewParams()),
    ("boost_candidates", ViewParams()),
    ("opportunities_category", ViewParams()),
    ("segment_funnel", ViewParams(segment="region")),
]


def _shop(root: Path, events: int) -> tuple[Path, str]:
    from ltrec.models.train import train
    from ltrec.synth.demo import DemoConfig, build_demo

    build_demo(DemoConfig(users=600, items=300, events=events, seed=3), data_dir=root)
    return root, train("demo", "popularity", n_boot=0, data_dir=root).run_id


@pytest.fixture(scope="module")
def shops(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    return [
        _shop(tmp_path_factory.mktemp(f"growth{n}"), n) for n in (SMALL, SMALL * FACTOR)
    ]


def _python_peak(root: Path, run_id: str) -> tuple[int, int]:
    """(Python peak in bytes over every view and the Studio's history, events in the shop)."""
    from ltrec.analytics.backend import from_cursor
    from ltrec.app import studio as logic
    from ltrec.app.pipeline import RecSession
    from ltrec.store import connect, cursor

    con = connect("demo", root)
    session = RecSession.open("demo", run_id, data_dir=root)  # loaded before the count
    catalogue = logic.Catalogue.build(session.data, session.context, None)
    users = session.data.matrix.getnnz(axis=1).argsort()[-20:]  # the longest histories
    try:
        n_events = int(con.execute("SELECT count(*) FROM events").fetchone()[0])
        # warm: the first call of a view imports its modules, which is not data (the history
        # is not warmed: a split that read its training frame would keep it, unseen)
        for kind, params in VIEWS:
            compute(kind, from_cursor(cursor(con)), params)
        gc.collect()
        tracemalloc.start()
        peak = 0
        try:
            for kind, params in VIEWS:
                tracemalloc.reset_peak()
                compute(kind, from_cursor(cursor(con)), params)
                peak = max(peak, tracemalloc.get_traced_memory()[1])
            for user in users:
                tracemalloc.reset_peak()
                logic.history_frame(session.data, catalogue, int(user), 10, cur=cursor(con))
                peak = max(peak, tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    finally:
        con.close()
    return peak, n_events


def test_python_peak_grows_far_less_than_the_events(shops) -> None:
    (small_peak, small_n), (big_peak, big_n) = (_python_peak(*s) for s in shops)
    assert big_n >= 4 * small_n  # the demo's event count is approximate
    assert big_peak < 2 * small_peak, (small_peak, big_peak)
