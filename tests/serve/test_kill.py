"""SIGKILL ``ltrec serve`` during a burst of events: after a restart, every acknowledged event is
in the store exactly once, and in the users' live history.

Six clients post batches of three events each (distinct users, explicit timestamps, so an event
is known by its content) while the server flushes every 20 ms; the server is killed once 120
batches are acknowledged, at a moment that falls at any point of an append or a flush. Two
rounds: the second restart also replays the log the first one left.
"""

from __future__ import annotations

import signal
import threading
from datetime import datetime

import httpx
import pytest

from ltrec.app.live_events import TABLE
from ltrec.store import connect

from .harness import Server, Shop

pytestmark = pytest.mark.slow

ITEMS = ("SKU-0004", "SKU-0010", "SKU-0042", "SKU-0130")
TYPES = ("view", "cart", "purchase")


def burst(server: Server, shop: Shop, round_: int, until: int) -> dict[int, tuple]:
    """Post until ``until`` batches are acknowledged, then SIGKILL; returns seq -> event."""
    acked: dict[int, tuple] = {}
    lock = threading.Lock()
    enough = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30, headers=shop.auth(shop.writer)) as c:
            i = 0
            while True:
                batch = [
                    {
                        "user_id": f"kill-{round_}-{n}-{i}-{j}",
                        "item_id": ITEMS[(n + i + j) % len(ITEMS)],
                        "event_type": TYPES[(i + j) % len(TYPES)],
                        "ts": f"2026-01-{1 + n:02d}T10:{i % 60:02d}:{j:02d}",
                    }
                    for j in range(3)
                ]
                try:
                    resp = c.post("/v1/events", json={"events": batch})
                except httpx.TransportError:
                    return  # the server is gone: this batch was never acknowledged
                assert resp.status_code == 200, resp.text
                body = resp.json()
                assert body["last_seq"] - body["first_seq"] == 2
                with lock:
                    for seq, e in zip(
                        range(body["first_seq"], body["last_seq"] + 1), batch, strict=True
                    ):
                        ts = datetime.fromisoformat(e["ts"])
                        acked[seq] = (e["user_id"], e["item_id"], e["event_type"], ts)
                    if len(acked) >= 3 * until:
                        enough.set()
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    assert enough.wait(timeout=300)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=60)
    for t in threads:
        t.join(timeout=60)
    with lock:
        return dict(acked)


def stored(shop: Shop) -> list[tuple]:
    con = connect("demo", shop.data_dir)
    try:
        sql = f"SELECT seq, user_id, item_id, event_type, ts FROM {TABLE} ORDER BY seq"  # noqa: S608
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_sigkill_during_a_burst_loses_and_duplicates_nothing(shop: Shop) -> None:
    args = ("--run", shop.knn_run, "--flush-every", "0.02")
    acked: dict[int, tuple] = {}
    for round_ in range(2):
        server = Server(shop.data_dir, *args)
        acked |= burst(server, shop, round_, until=120)
        server.kill()
        assert server.proc.returncode == -signal.SIGKILL

    server = Server(shop.data_dir, *args)
    try:
        server.wait_flushed()
        # the live history holds them too: a user of each round has its one event
        for seq in (min(acked), max(acked)):
            user = acked[seq][0]
            got = server.get(f"/v1/recommendations/{user}", shop.reader).json()
            assert (got["fallback"], got["history_items"]) == (False, 1), got
    finally:
        assert server.stop() == -signal.SIGTERM, server.output()

    rows = stored(shop)
    seqs = [r[0] for r in rows]
    assert len(seqs) == len(set(seqs))  # no event twice
    by_seq = {r[0]: r[1:] for r in rows}
    missing = [s for s in acked if s not in by_seq]
    assert missing == []
    assert {s: by_seq[s] for s in acked} == acked
    # every stored event is one a client sent in full (an unacknowledged batch may be
    # stored whole when the kill came between its fsync and its answer)
    assert all(r[1].startswith("kill-") for r in rows)
