"""A small fixture shop written through ``ltrec.store.writing`` (the demo builder's stand-in).

Three categories of 12 items plus 4 cold items; 90 users, each with a favourite category and
Zipf-like preferences inside it; 70 days of views, carts and purchases (with impressions).
Small enough that every model trains in well under a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltrec.store import writing
from ltrec.store.finalize import finalize

CATEGORIES = ("Home > Kitchen", "Shoes > Running", "Garden > Tools")
WORDS = {
    "Home > Kitchen": ("knife", "pan", "whisk", "board"),
    "Shoes > Running": ("trainer", "sneaker", "runner", "spike"),
    "Garden > Tools": ("spade", "rake", "hoe", "shears"),
}


def shop_frames(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    items = []
    for c, cat in enumerate(CATEGORIES):
        for j in range(12):
            w = WORDS[cat][j % 4]
            items.append(
                (
                    f"{cat[:1].lower()}{j:02d}",
                    f"{w.title()} {j}",
                    f"A {w} for {cat}",
                    cat,
                    f"brand{c}{j % 3}",
                    float(10 + 7 * j + 3 * c),
                    True,
                )
            )
    for j in range(4):
        cat = CATEGORIES[j % 3]
        w = WORDS[cat][0]
        items.append((f"new{j}", f"New {w} {j}", f"A new {w}", cat, "fresh", 30.0, True))
    items_df = pd.DataFrame(
        items,
        columns=["item_id", "title", "description", "category", "brand", "price", "in_stock"],
    )
    users = [
        (f"u{n:03d}", ("north", "south")[n % 2], ("mobile", "desktop")[n % 3 == 0])
        for n in range(90)
    ]
    users_df = pd.DataFrame(users, columns=["user_id", "region", "device"])
    rows = []
    t0 = pd.Timestamp("2024-03-01")
    zipf = 1.0 / np.arange(1, 13) ** 1.1
    zipf /= zipf.sum()
    for n, (uid, _, _) in enumerate(users):
        cat = n % 3
        ids = items_df["item_id"].to_numpy()[cat * 12 : cat * 12 + 12]
        for _ in range(int(rng.integers(6, 14))):
            item = (
                ids[rng.choice(12, p=zipf)]
                if rng.random() < 0.9
                else rng.choice(items_df["item_id"].to_numpy()[:36])
            )
            ts = t0 + pd.Timedelta(minutes=int(rng.integers(0, 70 * 24 * 60)))
            rows.append((uid, item, "impression", ts))
            rows.append((uid, item, "view", ts + pd.Timedelta(seconds=5)))
            r = rng.random()
            if r < 0.5:
                rows.append((uid, item, "cart", ts + pd.Timedelta(minutes=1)))
            if r < 0.4:
                rows.append((uid, item, "purchase", ts + pd.Timedelta(minutes=2)))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "ts"])
    events["session_id"] = events["user_id"] + "-s"
    events["quantity"] = 1
    events["price"] = 10.0
    events["source"] = "organic"
    return events, items_df, users_df


def build_shop(name: str = "shop", seed: int = 7) -> None:
    """Write the fixture shop as dataset ``name`` in the current LTREC_DATA_DIR."""
    events, items, users = shop_frames(seed)
    with writing(name, replace=True) as con:
        con.register("ev", events)
        con.execute(
            "INSERT INTO events SELECT user_id, item_id, event_type, ts, session_id, quantity,"
            " price, source FROM ev"
        )
        con.register("it", items)
        con.execute(
            "INSERT INTO items (item_id, title, description, category, brand, price, in_stock)"
            " SELECT * FROM it"
        )
        con.execute("ALTER TABLE users ADD COLUMN region VARCHAR")
        con.execute("ALTER TABLE users ADD COLUMN device VARCHAR")
        con.register("us", users)
        con.execute("INSERT INTO users SELECT * FROM us")
        finalize(con)
