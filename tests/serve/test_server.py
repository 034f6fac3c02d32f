"""``ltrec serve`` end to end: a real uvicorn server in a subprocess, real HTTP.

Auth (401 / 403, a revoke taking effect at once), every endpoint, bad input (always JSON),
the same lists as ``ltrec recommend --json``, an event changing the next item-kNN list at once
(exactly the list a local session computes after the same event), the flush into the store
without making the run stale, and a reload under load without one failed request.
"""

from __future__ import annotations

import json
import signal
import threading
import urllib.parse
from collections import Counter

import httpx
import numpy as np
import pytest

from ltrec.app import audit
from ltrec.app.live_events import TABLE
from ltrec.app.pipeline import RecSession
from ltrec.models.registry import list_runs
from ltrec.serve import keys
from ltrec.store import connect

from .harness import Server, Shop, cli

TAIL_BOOST = '{"strategy": "tail_boost", "beta": 0.5}'


@pytest.fixture(scope="module")
def server(shop: Shop):
    srv = Server(shop.data_dir, "--run", shop.knn_run, "--flush-every", "0.2")
    yield srv
    assert srv.stop() == -signal.SIGTERM, srv.output()
    assert "Traceback" not in srv.output()


def known_users(shop: Shop, n: int) -> list[str]:
    con = connect("demo", shop.data_dir)
    try:
        sql = "SELECT DISTINCT user_id FROM events ORDER BY user_id LIMIT ?"
        return [r[0] for r in con.execute(sql, [n]).fetchall()]
    finally:
        con.close()


def assert_error(resp: httpx.Response, status: int, kind: str, field: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    err = resp.json()["error"]
    assert (err["status"], err["type"]) == (status, kind), err
    if field is not None:
        assert err["field"] == field, err
    return err


# ----------------------------------------------------------------------------- auth


def test_no_key_is_401_and_a_wrong_role_is_403(server: Server, shop: Shop) -> None:
    assert_error(server.get("/v1/recommendations/U0001", None), 401, "Unauthorized")
    resp = server.get("/v1/recommendations/U0001", "ltrec_00000000_" + "x" * 43)
    assert_error(resp, 401, "Unauthorized")
    assert resp.headers["www-authenticate"] == "Bearer"
    assert_error(server.get("/metrics", None), 401, "Unauthorized")
    event = {"user_id": "U0001", "item_id": "SKU-0001", "event_type": "view"}
    assert_error(server.post("/v1/events", shop.reader, json=event), 403, "Forbidden")
    assert_error(server.post("/v1/admin/reload", shop.reader, json={}), 403, "Forbidden")
    assert server.get("/v1/recommendations/U0001", shop.writer).status_code == 200


def test_a_revoked_key_stops_working_at_once(server: Server, shop: Shop) -> None:
    key, record = keys.create("short-lived", "reader", data_dir=shop.data_dir)
    assert server.get("/v1/recommendations/U0001", key).status_code == 200
    keys.revoke("short-lived", data_dir=shop.data_dir)
    assert_error(server.get("/v1/recommendations/U0001", key), 401, "Unauthorized")
    actions = [(e.action, e.target, e.outcome) for e in audit.read(shop.data_dir)]
    assert ("create api key", "api key short-lived", "ok") in actions
    assert ("revoke api key", "api key short-lived", "ok") in actions
    stored = keys.keys_path(shop.data_dir).read_text()
    assert key not in stored and record.sha256 in stored


# ----------------------------------------------------------------------------- lists


def test_lists_equal_ltrec_recommend_json(server: Server, shop: Shop) -> None:
    users = [*known_users(shop, 3), "nobody-knows-me"]
    for user in users:
        for rerank in (None, TAIL_BOOST):
            args = ["recommend", "demo", "--run", shop.knn_run, "--user", user, "--k", "7"]
            args += ["--json"] + (["--rerank", rerank] if rerank else [])
            want = json.loads(cli(shop.data_dir, *args).stdout)
            params = {"k": 7, **({"rerank": rerank} if rerank else {})}
            got = server.get(f"/v1/recommendations/{user}", shop.reader, params=params).json()
            assert got.pop("user_id") == user
            # no experiment runs: its keys are there, empty (and nothing is logged)
            assert [got.pop(k) for k in ("experiment", "arm", "request_id")] == [None] * 3
            # The one difference, by design: the CLI's `fallback` stays a bool (its JSON keys
            # only grow), the API's names the ranking used, as `fallback_kind` does in both.
            assert got.pop("fallback") == (want.pop("fallback") and want["fallback_kind"])
            assert got == want


def test_an_unknown_user_gets_the_flagged_popularity_fallback(server: Server, shop: Shop) -> None:
    got = server.get("/v1/recommendations/never%2Fseen", shop.reader, params={"k": 5}).json()
    assert got["user_id"] == "never/seen"  # ids are text as the shop writes them, "/" too
    assert (got["known_user"], got["fallback"], got["history_items"]) == (False, "popularity", 0)
    assert [it["rank"] for it in got["items"]] == [1, 2, 3, 4, 5]
    for it in got["items"]:
        assert set(it) >= {"item_id", "title", "category", "bucket", "score", "base_score"}
        assert [r["kind"] for r in it["reasons"]] == ["fallback"]


def test_batch_equals_one_user_at_a_time(server: Server, shop: Shop) -> None:
    users = known_users(shop, 4)
    body = {"user_ids": users, "k": 5, "rerank": json.loads(TAIL_BOOST)}
    got = server.post("/v1/recommendations", shop.reader, json=body).json()
    assert (got["run_id"], got["k"]) == (shop.knn_run, 5)
    singles = [
        server.get(
            f"/v1/recommendations/{u}", shop.reader, params={"k": 5, "rerank": TAIL_BOOST}
        ).json()
        for u in users
    ]
    assert got["results"] == singles


def test_similar_items_are_the_item_knn_neighbours(server: Server, shop: Shop) -> None:
    session = RecSession.open("demo", shop.knn_run, data_dir=shop.data_dir)
    got = server.get("/v1/items/SKU-0004/similar", shop.reader, params={"k": 5}).json()
    data = session.data
    one = np.zeros(data.n_items, dtype=np.float32)
    one[data.item_index["SKU-0004"]] = max(data.weights.values())
    items, _ = session.model.recommend_history(one, 5)
    assert [it["item_id"] for it in got["items"]] == [str(data.item_ids[i]) for i in items]
    assert "SKU-0004" not in [it["item_id"] for it in got["items"]]
    assert_error(server.get("/v1/items/NOPE/similar", shop.reader), 422, "BadEvent", "item_id")


# ----------------------------------------------------------------------------- events


def test_an_event_changes_the_next_item_knn_list_at_once(server: Server, shop: Shop) -> None:
    user = known_users(shop, 1)[0]
    before = server.get(f"/v1/recommendations/{user}", shop.reader).json()
    # the first item (by index) the user has not seen whose purchase changes the list
    local = RecSession.open("demo", shop.knn_run, data_dir=shop.data_dir)
    u = local.user_index(user)
    seen = set(local.history(np.array([u])).indices.tolist())
    plain = [it["item_id"] for it in local.recommend(user, 10)["items"]]
    assert plain == [it["item_id"] for it in before["items"]]
    item = None
    for j in range(local.data.n_items):
        if j in seen:
            continue
        trial = RecSession.from_parts(local.model, local.data, local.context, run=local.run)
        trial.add_events(user, str(local.data.item_ids[j]), "purchase")
        if [it["item_id"] for it in trial.recommend(user, 10)["items"]] != plain:
            item = str(local.data.item_ids[j])
            break
    assert item is not None
    event = {"user_id": user, "item_id": item, "event_type": "purchase"}
    resp = server.post("/v1/events", shop.writer, json=event)
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 1 and resp.json()["durable"] is True
    after = server.get(f"/v1/recommendations/{user}", shop.reader).json()
    local.add_events(user, item, "purchase")
    want = local.recommend(user, 10)
    assert [it["item_id"] for it in after["items"]] == [it["item_id"] for it in want["items"]]
    assert after["items"] != before["items"]
    assert after["history_items"] == before["history_items"] + 1
    assert any(item in r["item_ids"] for it in after["items"] for r in it["reasons"])

    server.wait_flushed()
    con = connect("demo", shop.data_dir)
    try:
        sql = f"SELECT user_id, item_id, event_type, source FROM {TABLE} WHERE item_id = ?"  # noqa: S608
        rows = con.execute(sql, [item]).fetchall()
    finally:
        con.close()
    assert rows == [(user, item, "purchase", "api")]
    # live events do not make the served run stale
    assert [r.stale for r in list_runs("demo", shop.data_dir)] == [False, False]


def test_a_new_user_gets_a_live_history(server: Server, shop: Shop) -> None:
    event = {"user_id": "brand-new", "item_id": "SKU-0004", "event_type": "cart",
             "ts": "2026-01-02T03:04:05Z"}  # fmt: skip
    assert server.post("/v1/events", shop.writer, json=event).status_code == 200
    got = server.get("/v1/recommendations/brand-new", shop.reader).json()
    assert (got["known_user"], got["fallback"], got["history_items"]) == (False, False, 1)
    assert "SKU-0004" not in [it["item_id"] for it in got["items"]]


def test_a_batch_of_events_is_all_or_nothing(server: Server, shop: Shop) -> None:
    start = server.health()["events"]["last_seq"]
    bad = {"events": [
        {"user_id": "batcher", "item_id": "SKU-0004", "event_type": "view"},
        {"user_id": "batcher", "item_id": "SKU-9999", "event_type": "view"},
    ]}  # fmt: skip
    err = assert_error(server.post("/v1/events", shop.writer, json=bad), 422, "BadEvent")
    assert err["field"] == "events[1].item_id" and "SKU-9999" in err["message"]
    assert server.health()["events"]["last_seq"] == start
    good = {"events": [{**e, "item_id": "SKU-0004"} for e in bad["events"]]}
    got = server.post("/v1/events", shop.writer, json=good).json()
    assert (got["accepted"], got["first_seq"], got["last_seq"]) == (2, start + 1, start + 2)


@pytest.mark.parametrize(
    ("event", "field", "words"),
    [
        ({"user_id": "u", "item_id": "NOPE", "event_type": "view"}, "item_id", "unknown item"),
        ({"user_id": "u", "item_id": "SKU-0004", "event_type": "fav"}, "event_type", "'fav'"),
        ({"user_id": " nan ", "item_id": "SKU-0004", "event_type": "view"}, "user_id", "missing"),
        ({"user_id": "a\tb", "item_id": "SKU-0004", "event_type": "view"}, "user_id", "control"),
        (
            {"user_id": "u", "item_id": "SKU-0004", "event_type": "view", "ts": "soon"},
            "ts",
            "unparseable",
        ),
        ({"user_id": "u", "item_id": "SKU-0004", "event_type": "view", "ts": 0}, "ts", "range"),
        (
            {"user_id": "u" * 257, "item_id": "SKU-0004", "event_type": "view"},
            "user_id",
            "257 characters",
        ),
    ],
)
def test_bad_events_are_422_naming_the_field(
    server: Server, shop: Shop, event: dict, field: str, words: str
) -> None:
    err = assert_error(server.post("/v1/events", shop.writer, json=event), 422, "BadEvent", field)
    assert words in err["message"]


def test_bad_requests_are_json_errors(server: Server, shop: Shop) -> None:
    r = shop.reader
    resp = server.get(
        "/v1/recommendations/U0001", r, params={"rerank": '{"strategy": "tail_boost", "beta": "x"}'}
    )
    err = assert_error(resp, 422, "BadRerankSetting", "rerank.beta")
    assert "beta" in err["message"]
    assert_error(
        server.get("/v1/recommendations/U0001", r, params={"rerank": "{oops"}),
        422,
        "BadRerankSetting",
        "rerank",
    )
    assert_error(
        server.get("/v1/recommendations/U0001", r, params={"k": 0}), 422, "BadRequest", "k"
    )
    assert_error(
        server.get("/v1/recommendations/U0001", r, params={"k": "ten"}), 422, "BadRequest", "k"
    )
    assert_error(server.get("/v1/recommendations/" + "u" * 300, r), 422, "BadRequest", "user_id")
    assert_error(server.get("/v1/recommendations/", r), 422, "BadRequest", "user_id")
    assert_error(server.get("/v1/items/%20/similar", r), 422, "BadRequest", "item_id")
    assert_error(server.get("/nowhere", r), 404, "NotFound")
    assert_error(server.client.delete("/v1/events"), 405, "MethodNotAllowed")
    w = shop.writer
    big = {"events": [{"user_id": "u" * 250, "item_id": "SKU-0004", "event_type": "view"}] * 4000}
    assert_error(server.post("/v1/events", w, json=big), 413, "BodyTooLarge")
    too_many = {"events": [{"user_id": "u", "item_id": "SKU-0004", "event_type": "view"}] * 1001}
    assert_error(server.post("/v1/events", w, json=too_many), 422, "BadRequest", "events")
    assert_error(server.post("/v1/events", w, content=b"{not json"), 400, "BadBody")
    assert_error(server.post("/v1/events", w, content=b"[" * 100 + b"]" * 100), 400, "BadBody")
    assert_error(server.post("/v1/events", w, json={"user_id": "u"}), 422, "BadRequest", "item_id")
    batch = {"user_ids": ["u"] * 101}
    assert_error(server.post("/v1/recommendations", r, json=batch), 422, "BadRequest", "user_ids")
    # a body sent in chunks without a length is still cut off at the limit
    chunks = (b"x" * 65536 for _ in range(40))
    assert_error(server.post("/v1/events", w, content=chunks), 413, "BodyTooLarge")


# ----------------------------------------------------------------------------- status


def scrape(server: Server, shop: Shop) -> dict[str, float]:
    text = server.get("/metrics", shop.reader).text
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_metrics_count_requests_fallbacks_and_tail_items(server: Server, shop: Shop) -> None:
    before = scrape(server, shop)
    lists = [
        server.get(f"/v1/recommendations/{u}", shop.reader, params={"k": 4}).json()
        for u in (*known_users(shop, 2), "metrics-stranger")
    ]
    after = scrape(server, shop)
    key = (
        'ltrec_http_requests_total{method="GET",route="/v1/recommendations/{user_id}",status="200"}'
    )
    assert after[key] - before.get(key, 0) == 3
    assert after["ltrec_lists_served_total"] - before["ltrec_lists_served_total"] == 3
    fb = sum(1 for x in lists if x["fallback"])
    assert after["ltrec_fallback_lists_total"] - before["ltrec_fallback_lists_total"] == fb
    tail = sum(1 for x in lists for it in x["items"] if it["bucket"] == "tail")
    assert after["ltrec_tail_items_served_total"] - before["ltrec_tail_items_served_total"] == tail
    assert after["ltrec_items_served_total"] - before["ltrec_items_served_total"] == 12
    route = 'route="/v1/recommendations/{user_id}"'
    hist = f'ltrec_http_request_duration_seconds_count{{method="GET",{route}}}'
    assert after[hist] - before[hist] == 3
    health = server.health()
    assert (health["status"], health["run_id"], health["model"]) == ("ok", shop.knn_run, "itemknn")


def test_openapi_docs(server: Server) -> None:
    spec = server.client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/health", "/metrics", "/v1/recommendations/{user_id}", "/v1/recommendations",
        "/v1/items/{item_id}/similar", "/v1/events", "/v1/admin/reload",
    }  # fmt: skip
    assert "swagger-ui" in server.client.get("/docs").text


# ----------------------------------------------------------------------------- reload


def test_reload_under_load_fails_no_request(server: Server, shop: Shop) -> None:
    users = [*known_users(shop, 5), "load-stranger"]
    event = {"user_id": "reload-user", "item_id": "SKU-0004", "event_type": "view"}
    assert server.post("/v1/events", shop.writer, json=event).status_code == 200
    statuses: Counter[int] = Counter()
    runs: Counter[str] = Counter()
    stop = threading.Event()

    def hammer(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60, headers=shop.auth()) as c:
            i = n
            while not stop.is_set():
                user = urllib.parse.quote(users[i % len(users)])
                resp = c.get(f"/v1/recommendations/{user}", params={"k": 5})
                statuses[resp.status_code] += 1
                if resp.status_code == 200:
                    runs[resp.json()["run_id"]] += 1
                i += 1

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    try:
        for run in (shop.pop_run, shop.knn_run, shop.pop_run, shop.knn_run):
            resp = server.post("/v1/admin/reload", shop.writer, json={"run_id": run})
            assert resp.status_code == 200, resp.text
            assert resp.json()["run_id"] == run
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(statuses) == {200}, statuses
    assert set(runs) == {shop.pop_run, shop.knn_run}
    assert server.health()["run_id"] == shop.knn_run
    # the live history survives the reloads
    got = server.get("/v1/recommendations/reload-user", shop.reader).json()
    assert got["history_items"] == 1
    err = assert_error(
        server.post("/v1/admin/reload", shop.writer, json={"run_id": "no-such-run"}),
        422,
        "RegistryError",
    )
    assert "no-such-run" in err["message"]
    assert server.health()["run_id"] == shop.knn_run
    reloads = [e for e in audit.read(shop.data_dir) if e.action == "reload served run"]
    assert [(e.who, e.outcome) for e in reloads] == [("api key test-writer", "ok")] * 4 + [
        ("api key test-writer", "error")
    ]
    assert reloads[0].message == f"{shop.knn_run} -> {shop.pop_run}"


def test_serve_refuses_a_second_server_and_a_missing_dataset(server: Server, shop: Shop) -> None:
    second = cli(shop.data_dir, "serve", "demo", "--port", "0", check=False)
    assert second.returncode == 2
    assert "already served by another `ltrec serve`" in second.stderr
    missing = cli(shop.data_dir, "serve", "nosuch", "--port", "0", check=False)
    assert missing.returncode == 2 and "dataset 'nosuch' not found" in missing.stderr
    assert server.health()["status"] == "ok"


def test_reload_without_a_run_serves_the_newly_promoted_run(server: Server, shop: Shop) -> None:
    promoted = json.loads(
        cli(shop.data_dir, "promote", "demo", "--run", shop.pop_run, "--json").stdout
    )
    resp = server.post("/v1/admin/reload", shop.writer, content=b"")
    assert resp.status_code == 200, resp.text
    assert resp.json()["run_id"] == promoted["production"] != shop.pop_run
    health = server.health()
    assert (health["run_id"], health["model"]) == (promoted["production"], "popularity")
    got = server.get("/v1/recommendations/never-seen", shop.reader).json()
    assert got["run_id"] == promoted["production"]
