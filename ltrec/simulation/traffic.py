"""Simulated shoppers for a live experiment: what the demo shop's ground-truth users do with the
lists a server shows them (issue 22 §4: the A/B and A/A checks and their benchmark).

The response rule is the feedback-loop simulator's (:mod:`ltrec.simulation.engine`): the item
at rank r is viewed with ``P(examine | r) * P(click | examined)``, carted with ``P(cart |
click)``, bought with ``P(purchase | cart)``, the probabilities from the generator's own user
model (:class:`ltrec.simulation.users.TruthUserModel`, position bias ``r^-eta``). Nothing here
knows which arm showed a list: arms differ only by what they show.

:func:`respond` turns served lists into the events a shop would post back, :func:`drive`
sends a population through a server's API;
:func:`aa_table` builds a ``live_events`` table of an A/A experiment (the same lists, users
split in two by a seeded hash, fresh response draws), for calibrating the analysis
(:func:`ltrec.app.experiments.analyse`) over many seeded repeats without a server.
"""

# SQL here inserts a registered frame into a fixed table name.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ltrec.app.live_events import _DDL  # the server's own table definition
from ltrec.simulation.users import TruthUserModel
from ltrec.synth.truth import GroundTruth


def respond(
    truth: GroundTruth,
    user_ids: Sequence[str],
    lists: Sequence[Sequence[str]],
    rng: np.random.Generator,
    prices: Mapping[str, float] | None = None,
) -> list[dict]:
    """The events ground-truth users post back for the lists they were shown.

    Args:
        truth: the demo shop's ground truth. user_ids: one per list. lists: item ids, best
            first. rng: the draws. prices: item id -> price; purchases carry ``quantity`` 1 and
            the item's price when given.

    Returns:
        ``{"user_id", "item_id", "event_type"[, "quantity", "price"]}`` dicts: a view, then a
        cart and a purchase when they happen, list by list in order.
    """
    k = max((len(x) for x in lists), default=0)
    if k == 0:
        return []
    model = TruthUserModel.for_ids(truth, np.asarray(truth.user_ids), np.asarray(truth.item_ids))
    users = truth.user_index(list(user_ids))  # the maps are the identity: truth indices
    item_of = {it: j for j, it in enumerate(truth.item_ids)}
    idx = np.full((len(lists), k), -1, dtype=np.int64)
    for r, items in enumerate(lists):
        idx[r, : len(items)] = [item_of.get(str(i), -1) for i in items]
    click, cart, buy = model.probabilities(np.asarray(users), idx)
    exam = model.examine(np.arange(1, k + 1))
    draws = rng.random((3, len(lists), k))
    viewed = (idx >= 0) & (draws[0] < exam[None, :] * click)
    carted = viewed & (draws[1] < cart)
    bought = carted & (draws[2] < buy)
    out: list[dict] = []
    for r, c in zip(*np.nonzero(viewed), strict=True):
        user, item = str(user_ids[r]), str(lists[r][c])
        out.append({"user_id": user, "item_id": item, "event_type": "view"})
        if carted[r, c]:
            out.append({"user_id": user, "item_id": item, "event_type": "cart"})
        if bought[r, c]:
            ev: dict[str, Any] = {"user_id": user, "item_id": item, "event_type": "purchase"}
            if prices is not None and item in prices and prices[item] is not None:
                ev |= {"quantity": 1, "price": float(prices[item])}
            out.append(ev)
    return out


def drive(
    post: Callable[[str, dict], dict],
    truth: GroundTruth,
    user_ids: Sequence[str],
    rng: np.random.Generator,
    *,
    rounds: int = 1,
    k: int = 10,
    prices: Mapping[str, float] | None = None,
    batch: int = 100,
) -> dict[str, int]:
    """Every user asks a server for a list of ``k`` (``rounds`` times, ``batch`` users per
    ``POST /v1/recommendations``) and posts back what :func:`respond` draws (``POST
    /v1/events``, at most 1,000 events a request). ``post(path, body)`` sends one request and
    returns its JSON (raising on a failure). Returns ``{"lists", "events"}`` counts."""
    lists = events = 0
    for _ in range(rounds):
        for i in range(0, len(user_ids), batch):
            users = [str(u) for u in user_ids[i : i + batch]]
            got = post("/v1/recommendations", {"user_ids": users, "k": k})
            shown = [[x["item_id"] for x in r["items"]] for r in got["results"]]
            evs = respond(truth, users, shown, rng, prices)
            for j in range(0, len(evs), 1000):
                post("/v1/events", {"events": evs[j : j + 1000]})
            lists += len(shown)
            events += len(evs)
    return {"lists": lists, "events": events}


def _half(user: str, seed: int) -> str:
    h = hashlib.sha256(f"aa-{seed}\x00{user}".encode()).digest()
    return "a1" if h[0] < 128 else "a2"


def aa_table(
    truth: GroundTruth,
    served: pd.DataFrame,
    seed: int,
    prices: Mapping[str, float] | None = None,
    exp_id: str = "exp-aa",
) -> duckdb.DuckDBPyConnection:
    """An in-memory ``live_events`` of one A/A experiment: the lists in ``served`` (columns
    ``request_id, user_id, item_id, position``), users split into arms ``a1``/``a2`` by a hash
    salted with ``seed``, responses drawn afresh with ``seed``."""
    t0 = datetime(2026, 1, 1)
    # by user first: request ids are random, and the draws must not depend on them
    served = served.sort_values(["user_id", "request_id", "position"], kind="stable")
    req = served["request_id"].to_numpy()
    bounds = np.r_[np.flatnonzero(np.r_[True, req[1:] != req[:-1]]), len(req)]
    item_col = served["item_id"].to_numpy()
    lists = [item_col[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    users = served["user_id"].to_numpy()[bounds[:-1]].tolist()
    rng = np.random.default_rng([seed, 22])
    arm = {u: _half(u, seed) for u in set(users)}
    imp = served.assign(
        event_type="impression",
        ts=t0,
        source="recommendation",
        arm=served["user_id"].map(arm),
        quantity=None,
        price=None,
    )
    ev = pd.DataFrame(
        respond(truth, users, lists, rng, prices),
        columns=["user_id", "item_id", "event_type", "quantity", "price"],
    )
    ev = ev.assign(
        ts=t0 + timedelta(minutes=5),
        source="api",
        arm=ev["user_id"].map(arm),
        position=None,
        request_id=None,
    )
    cols = ["user_id", "item_id", "event_type", "ts", "source", "arm", "position",
            "request_id", "quantity", "price"]  # fmt: skip
    types = {"position": "Int64", "quantity": "Int64", "price": "float64"}
    rows = pd.concat([imp[cols].astype(types), ev[cols].astype(types)], ignore_index=True)
    rows.insert(0, "seq", np.arange(1, len(rows) + 1))
    rows["experiment"] = exp_id
    con = duckdb.connect()
    con.execute(_DDL)
    con.register("aa_rows", rows)
    con.execute(f"INSERT INTO live_events ({', '.join(rows.columns)}) SELECT * FROM aa_rows")
    con.unregister("aa_rows")
    return con
