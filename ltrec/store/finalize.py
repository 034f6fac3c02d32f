"""What every writer runs last, inside its write: row counts and the dataset profile in ``meta``,
and derived tables.

Import and the demo builder both call :func:`finalize` just before their write is swapped in,
so anything derived from the whole dataset (counts, per-user derivations that pages would
otherwise recompute on every view) is computed once per import.

``user_derived`` holds the derived segments of DESIGN §2, one row per user (users table and
event users together):

- ``interactions``: view, cart and purchase events; ``activity_level``: ``none`` (0), else
  ``light`` / ``medium`` / ``heavy`` by terciles of interactions over active users;
- ``first_ts``: first event of any type; ``tenure``: ``new`` when the first event is within the
  last :data:`NEW_DAYS` days of the data, else ``returning`` (NULL without events);
- ``tail_share``: share of the user's interactions on tail items (the default buckets of
  DESIGN §3 over the whole data: popularity = distinct interacting users, cut = the last of
  ``Settings.bucket_cuts``); ``tail_affinity``: ``none`` (0), ``low`` (< 10%), ``medium``
  (< 30%), ``high`` (NULL without interactions).

The tail is :func:`ltrec.definitions.tail_mask` of that popularity (ties by item_id, as the
analytics' buckets); a test checks that both agree.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from ltrec.config import get_settings
from ltrec.definitions import tail_mask
from ltrec.store.connect import scalar, write_meta
from ltrec.store.profile import write_profile

#: A user first seen within this many days of the last event is "new".
NEW_DAYS = 30
#: Tail-affinity band edges (share of interactions on tail items).
AFFINITY_EDGES = (0.1, 0.3)

#: Popularity (distinct interacting users) of every catalogue item, ordered by item id: the
#: input of :func:`ltrec.definitions.tail_mask`.
_POPULARITY = """
WITH pop AS (
    SELECT item_id, count(DISTINCT user_id) AS p FROM events
    WHERE event_type IN ('view', 'cart', 'purchase') GROUP BY item_id
),
-- catalogue = items rows plus any event item without one (anti-joins, not a UNION over events:
-- the distinct over every event was a third of an import's finalize)
cat AS (SELECT CAST(item_id AS VARCHAR) AS item_id FROM items
        UNION ALL SELECT item_id FROM (SELECT DISTINCT item_id FROM events)
                  ANTI JOIN items USING (item_id))
SELECT cat.item_id, coalesce(pop.p, 0) AS p
FROM cat LEFT JOIN pop ON cat.item_id = pop.item_id
ORDER BY cat.item_id
"""

_USER_DERIVED = """
CREATE OR REPLACE TABLE user_derived AS
WITH tail AS (SELECT item_id FROM derived_tail_items),
per AS (
    SELECT e.user_id,
           count(*) FILTER (WHERE e.event_type IN ('view', 'cart', 'purchase')) AS interactions,
           count(*) FILTER (WHERE e.event_type IN ('view', 'cart', 'purchase')
                            AND t.item_id IS NOT NULL) AS tail_interactions,
           min(e.ts) AS first_ts
    FROM events e LEFT JOIN tail t ON e.item_id = t.item_id
    GROUP BY e.user_id
),
-- everyone = users with events plus users rows without any
everyone AS (SELECT user_id FROM per
             UNION ALL SELECT CAST(user_id AS VARCHAR) FROM users ANTI JOIN per USING (user_id)),
cuts AS (
    SELECT quantile_cont(interactions, 1 / 3) AS q1, quantile_cont(interactions, 2 / 3) AS q2
    FROM per WHERE interactions > 0
),
span AS (SELECT max(ts) AS last_ts FROM events)
SELECT everyone.user_id,
       coalesce(per.interactions, 0) AS interactions,
       CASE WHEN coalesce(per.interactions, 0) = 0 THEN 'none'
            WHEN per.interactions <= cuts.q1 THEN 'light'
            WHEN per.interactions <= cuts.q2 THEN 'medium'
            ELSE 'heavy' END AS activity_level,
       per.first_ts,
       CASE WHEN per.first_ts IS NULL THEN NULL
            WHEN per.first_ts >= span.last_ts - to_days($new_days) THEN 'new'
            ELSE 'returning' END AS tenure,
       CASE WHEN coalesce(per.interactions, 0) > 0
            THEN per.tail_interactions / per.interactions END AS tail_share,
       CASE WHEN coalesce(per.interactions, 0) = 0 THEN NULL
            WHEN per.tail_interactions = 0 THEN 'none'
            WHEN per.tail_interactions / per.interactions < $low THEN 'low'
            WHEN per.tail_interactions / per.interactions < $mid THEN 'medium'
            ELSE 'high' END AS tail_affinity
FROM everyone
LEFT JOIN per ON everyone.user_id = per.user_id
CROSS JOIN cuts CROSS JOIN span
"""


def build_user_derived(con: duckdb.DuckDBPyConnection, cut: float | None = None) -> None:
    """(Re)build ``user_derived`` (see the module docstring) inside a write."""
    cut = get_settings().bucket_cuts[-1] if cut is None else cut
    pop = con.execute(_POPULARITY).fetchnumpy()
    ids = np.asarray(pop["item_id"], dtype=object)
    # the one bucketing rule (ties by item id: the rows come sorted by it)
    tail = pa.table(
        {"item_id": pa.array(ids[tail_mask(np.asarray(pop["p"]), (cut,))], pa.string())}
    )
    con.register("derived_tail_items", tail)
    try:
        con.execute(
            _USER_DERIVED,
            {
                "new_days": NEW_DAYS,
                "low": AFFINITY_EDGES[0],
                "mid": AFFINITY_EDGES[1],
            },
        )
    finally:
        con.unregister("derived_tail_items")
    write_meta(con, {"derived_tail_cut": cut, "derived_new_days": NEW_DAYS})


def finalize(con: duckdb.DuckDBPyConnection) -> None:
    """Build derived tables, refresh ``meta`` row counts and the dataset profile
    (:mod:`ltrec.store.profile`, ``meta.profile``)."""
    build_user_derived(con)
    counts = {
        f"rows_{table}": scalar(con.execute(f"SELECT count(*) FROM {table}"))  # noqa: S608 - fixed names
        for table in ("events", "items", "users", "rejects", "user_derived")
    }
    write_meta(con, counts)
    # user_derived has one row per user of the users table or the events: the profile's users
    write_profile(con, users=counts["rows_user_derived"])
