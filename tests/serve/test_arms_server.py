"""A/B arms through a real ``ltrec serve`` (uvicorn in a subprocess, real HTTP).

Each user gets the list of their arm (exactly what a local session of that arm's run and
setting computes) and keeps the arm across restarts; every served list is in ``live_events`` as
one impression per item (position, request id, experiment, arm); posted events carry the
user's arm; new arms start a new experiment and stopping keeps the data; a bad arm starts
nothing; and a SIGKILL in the middle of traffic loses no acknowledged list.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import urllib.parse
from typing import Any

import httpx
import pytest
from threadpoolctl import threadpool_limits

from ltrec.app import live_experiments as ex
from ltrec.app.live_events import TABLE, ServerBusyError
from ltrec.app.pipeline import RecSession
from ltrec.errors import BadInputError
from ltrec.serve import app
from ltrec.store import connect

from .harness import Server, Shop, cli

BOOST = '{"strategy": "tail_boost", "beta": 0.3}'
ARMS = ("--arm", "control={}", "--arm", f"boost={BOOST}")


def serve(shop: Shop, *extra: str, flush: str = "0.1") -> Server:
    return Server(shop.data_dir, "--run", shop.knn_run, "--flush-every", flush, *extra)


def known_users(shop: Shop, n: int) -> list[str]:
    con = connect("demo", shop.data_dir)
    try:
        sql = "SELECT DISTINCT user_id FROM events ORDER BY user_id LIMIT ?"
        return [r[0] for r in con.execute(sql, [n]).fetchall()]
    finally:
        con.close()


def live(shop: Shop, where: str = "TRUE", params: list | None = None) -> list[tuple]:
    con = connect("demo", shop.data_dir)
    try:
        cols = "seq, user_id, item_id, event_type, source, experiment, arm, position, request_id"
        sql = f"SELECT {cols}, quantity, price FROM {TABLE} WHERE {where} ORDER BY seq"  # noqa: S608
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def exposures(shop: Shop, exp_id: str) -> dict[str, list[tuple]]:
    """request_id -> [(user, position, item, arm)] of one experiment's impressions."""
    out: dict[str, list[tuple]] = {}
    for r in live(shop, "source = 'recommendation' AND experiment = ?", [exp_id]):
        assert r[3] == "impression"
        out.setdefault(r[8], []).append((r[1], r[7], r[2], r[6]))
    return {k: sorted(v, key=lambda x: x[1]) for k, v in out.items()}


def as_rows(body: dict[str, Any]) -> list[tuple]:
    return [(body["user_id"], it["rank"], it["item_id"], body["arm"]) for it in body["items"]]


def experiment_files(shop: Shop) -> list[str]:
    return sorted(e.id for e in ex.experiments(shop.data_dir, "demo"))


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (
            {"arms": ["control={}", 'boost={"strategy": "boost"}']},
            "arm 'boost': bad re-ranking setting: unknown strategy 'boost'",
        ),  # fmt: skip
        (
            {"arms": ["control={}", "boost={beta: 1}"]},
            "the policy of arm 'boost' is not valid JSON",
        ),  # fmt: skip
        (
            {"arms": ["control={}", 'other={"run": "no-such-run"}']},
            "arm 'other': run 'no-such-run'",
        ),  # fmt: skip
        ({"arms": ["control={}"]}, "an experiment has 2 to 4 arms; 1 given"),
        ({"arms": ARMS[1::2], "split": "50,40"}, "the shares sum to 90, not 100"),
        ({"arms": ARMS[1::2], "rerank": BOOST}, "--rerank and --arm together"),
        ({"split": "50,50"}, "--split and --experiment need --arm"),
        ({"experiment": "x"}, "--split and --experiment need --arm"),
    ],
)
def test_a_bad_arm_is_a_clear_error_and_starts_nothing(
    shop: Shop, kwargs: dict[str, Any], words: str
) -> None:
    before = experiment_files(shop)
    # (serve sets one BLAS thread for its process: undone here for the tests that follow)
    with threadpool_limits(limits=None, user_api="blas"), pytest.raises(BadInputError) as err:
        app.serve("demo", shop.knn_run, port=0, data_dir=shop.data_dir, **kwargs)
    assert words in err.value.message
    assert experiment_files(shop) == before


def test_the_cli_refuses_a_bad_arm_with_exit_2(shop: Shop) -> None:
    args = ("--arm", "control={}", "--arm", 'boost={"strategy": "tail_boost", "beta": -1}')
    proc = cli(shop.data_dir, "serve", "demo", "--port", "0", *args, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "arm 'boost': bad re-ranking setting: beta" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert experiment_files(shop) == []


# ----------------------------------------------------------------------------- serving


def test_each_user_gets_their_arm_logged_and_keeps_it_across_restarts(shop: Shop) -> None:
    third = f'pop={{"run": "{shop.pop_run}"}}'
    args = (*ARMS, "--arm", third, "--split", "40,40,20")
    server = serve(shop, *args)
    try:
        exp = ex.load_experiment(shop.data_dir, "demo")
        assert exp.running and list(exp.arms) == ["control", "boost", "pop"]
        assert server.health()["experiment"]["id"] == exp.id
        local = {
            "control": RecSession.open("demo", shop.knn_run, {}, data_dir=shop.data_dir),
            "boost": RecSession.open("demo", shop.knn_run, BOOST, data_dir=shop.data_dir),
            "pop": RecSession.open("demo", shop.pop_run, {}, data_dir=shop.data_dir),
        }
        # four users of each arm (the salt is random per experiment), and a stranger
        pool = known_users(shop, 150)
        users = [u for arm in exp.arms for u in [u for u in pool if ex.assign(u, exp) == arm][:4]]
        users.append("stranger/1")
        served: dict[str, list[tuple]] = {}
        arms = {}
        for user in users:
            path = f"/v1/recommendations/{urllib.parse.quote(user, safe='')}"
            body = server.get(path, shop.reader, params={"k": 5}).json()
            arms[user] = body["arm"]
            assert (body["experiment"], body["arm"]) == (exp.id, ex.assign(user, exp))
            want = local[body["arm"]].recommend(user, 5)
            assert [it["item_id"] for it in body["items"]] == [
                it["item_id"] for it in want["items"]
            ]
            assert body["run_id"] == local[body["arm"]].run_id
            served[body["request_id"]] = as_rows(body)
        assert sorted(arms.values()) == sorted(["control", "boost", "pop"] * 4 + [arms[users[-1]]])
        batch = server.post(
            "/v1/recommendations", shop.reader, json={"user_ids": users[:3], "k": 4}
        ).json()
        for body in batch["results"]:
            assert body["arm"] == arms[body["user_id"]]
            served[body["request_id"]] = as_rows(body)
        assert len(served) == len(users) + 3  # one request id per list
        # a per-request setting would bypass the arms
        resp = server.get("/v1/recommendations/U0001", shop.reader, params={"rerank": BOOST})
        assert resp.status_code == 422 and resp.json()["error"]["field"] == "rerank"
        # posted events carry the user's arm, and a purchase its quantity and price
        buyer = users[0]
        event = {"user_id": buyer, "item_id": "SKU-0004", "event_type": "purchase",
                 "quantity": 2, "price": 9.5}  # fmt: skip
        assert server.post("/v1/events", shop.writer, json=event).status_code == 200
        # a reload moves the arms on the server's run; the arm on its own run keeps it
        resp = server.post("/v1/admin/reload", shop.writer, json={"run_id": shop.pop_run})
        assert resp.status_code == 200, resp.text
        for user in (users[0], users[4], users[8]):  # control, boost, pop
            path = f"/v1/recommendations/{urllib.parse.quote(user, safe='')}"
            body = server.get(path, shop.reader, params={"k": 5}).json()
            assert (body["arm"], body["run_id"]) == (arms[user], shop.pop_run)
            served[body["request_id"]] = as_rows(body)
        resp = server.post("/v1/admin/reload", shop.writer, json={"run_id": shop.knn_run})
        assert resp.status_code == 200, resp.text
        server.wait_flushed()
        metrics = server.get("/metrics", shop.reader).text
        per_arm = {a: sum(1 for rows in served.values() if rows[0][3] == a) for a in exp.arms}
        for a, n in per_arm.items():
            assert f'ltrec_arm_lists_total{{arm="{a}"}} {n}\n' in metrics
        n_rows = sum(len(rows) for rows in served.values())
        assert f"ltrec_impressions_logged_total {n_rows}\n" in metrics
    finally:
        assert server.stop() == -signal.SIGTERM, server.output()
    assert exposures(shop, exp.id) == served
    posted = live(shop, "source = 'api' AND experiment = ?", [exp.id])
    assert [r[1:7] + r[9:] for r in posted] == [
        (buyer, "SKU-0004", "purchase", "api", exp.id, arms[buyer], 2, 9.5)
    ]
    assert posted[0][7:9] == (None, None)  # no position or list of its own

    again = serve(shop, *args)
    try:
        assert again.health()["experiment"]["id"] == exp.id
        for user in users:
            path = f"/v1/recommendations/{urllib.parse.quote(user, safe='')}"
            assert again.get(path, shop.reader).json()["arm"] == arms[user]
    finally:
        assert again.stop() == -signal.SIGTERM, again.output()
    assert ex.load_experiment(shop.data_dir, "demo") == exp  # the same record, still running


def test_new_arms_start_a_new_experiment_and_stopping_keeps_the_data(shop: Shop) -> None:
    old = ex.load_experiment(shop.data_dir, "demo")
    old_rows = exposures(shop, old.id)
    assert old.running and old_rows
    server = serve(shop, *ARMS)
    try:
        new = ex.load_experiment(shop.data_dir, "demo")
        assert new.id != old.id and new.split == (0.5, 0.5)
        assert ex.load_experiment(shop.data_dir, "demo", old.id).stopped_at is not None
        assert "stopped experiment " + old.id in server.output()
        assert server.get("/v1/recommendations/U0001", shop.reader).json()["experiment"] == new.id
        with pytest.raises(ServerBusyError, match="served by a running `ltrec serve`"):
            app.serve("demo", data_dir=shop.data_dir, stop_experiment=True)
        server.wait_flushed()
    finally:
        assert server.stop() == -signal.SIGTERM, server.output()
    assert exposures(shop, old.id) == old_rows  # the stopped experiment's data is kept
    done = cli(shop.data_dir, "serve", "demo", "--stop-experiment")
    assert f"stopped experiment {new.id}" in done.stdout
    assert ex.load_experiment(shop.data_dir, "demo", new.id).stopped_at is not None
    with pytest.raises(BadInputError, match="no experiment runs on dataset 'demo'"):
        app.serve("demo", data_dir=shop.data_dir, stop_experiment=True)

    plain = serve(shop)  # no arms: no experiment, nothing logged for the lists
    try:
        body = plain.get("/v1/recommendations/U0001", shop.reader).json()
        assert (body["experiment"], body["arm"], body["request_id"]) == (None, None, None)
        event = {"user_id": "U0001", "item_id": "SKU-0010", "event_type": "view"}
        seq = plain.post("/v1/events", shop.writer, json=event).json()["last_seq"]
        plain.wait_flushed()
    finally:
        assert plain.stop() == -signal.SIGTERM, plain.output()
    assert [r[4:9] for r in live(shop, "seq >= ?", [seq])] == [("api", None, None, None, None)]
    assert exposures(shop, new.id) != {}  # kept too


# ----------------------------------------------------------------------------- SIGKILL


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_list(shop: Shop) -> None:
    """Four clients fetch lists (GET and batch POST) while the server flushes every 20 ms; it
    is killed once 150 lists are acknowledged. After a restart, every acknowledged list is in
    ``live_events``, item by item, exactly once."""
    users = [*known_users(shop, 60), *(f"kill-stranger-{i}" for i in range(20))]
    server = serve(shop, *ARMS, flush="0.02")
    exp = ex.load_experiment(shop.data_dir, "demo")
    acked: dict[str, list[tuple]] = {}
    lock = threading.Lock()
    enough = threading.Event()

    def client(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=server.url, timeout=30, headers=shop.auth()) as c:
            while True:
                try:
                    if n % 2:
                        resp = c.post("/v1/recommendations", json={
                            "user_ids": rng.sample(users, 3), "k": 4})  # fmt: skip
                        bodies = resp.json()["results"] if resp.status_code == 200 else []
                    else:
                        user = urllib.parse.quote(rng.choice(users), safe="")
                        resp = c.get(f"/v1/recommendations/{user}", params={"k": 6})
                        bodies = [resp.json()] if resp.status_code == 200 else []
                except httpx.TransportError:
                    return  # the server is gone: this list was never acknowledged
                assert resp.status_code == 200, resp.text
                with lock:
                    for body in bodies:
                        acked[body["request_id"]] = as_rows(body)
                    if len(acked) >= 150:
                        enough.set()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    assert enough.wait(timeout=300)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=60)
    for t in threads:
        t.join(timeout=60)
    server.kill()
    assert server.proc.returncode == -signal.SIGKILL

    again = serve(shop, *ARMS)
    try:
        assert again.health()["experiment"]["id"] == exp.id
        again.wait_flushed()
    finally:
        assert again.stop() == -signal.SIGTERM, again.output()
    rows = live(shop, "experiment = ?", [exp.id])
    assert len({r[0] for r in rows}) == len(rows)  # no seq twice
    got = exposures(shop, exp.id)
    with lock:
        assert {rid: got.get(rid) for rid in acked} == acked
    # anything else stored is a whole list the kill cut off between its fsync and its answer
    for rid, items in got.items():
        assert [p for _, p, _, _ in items] == list(range(1, len(items) + 1)), rid
    assert json.dumps(sorted(acked)) == json.dumps(sorted(set(acked) & set(got)))
