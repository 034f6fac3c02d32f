"""Issue 22 §4: a simulated population through the real server.

The demo shop's ground-truth users (:mod:`ltrec.simulation.traffic`) ask a real ``ltrec serve``
with two arms (item-kNN as is, and with a tail boost) for lists, and post back what they view,
cart and buy; the analysis (:func:`ltrec.app.experiments.experiment_result`) must find the
boosted arm's tail share of purchases higher with an interval above zero. Then a seeded batch
of A/A experiments (the control arm's served lists, users split in two by a salted hash,
fresh response draws; analysis-level, as the server path is the same for both halves) must
show no difference on any metric in at least 95% of repeats.
"""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime

import numpy as np
import pytest

from ltrec.app.experiments import PRIMARY, analyse, experiment_result, tail_and_catalogue
from ltrec.app.live_experiments import Experiment, derive_id
from ltrec.serve import keys
from ltrec.simulation.traffic import aa_table, drive, respond
from ltrec.store import connect
from ltrec.synth.demo import DemoConfig, build_demo
from ltrec.synth.truth import PreferenceModel, load_truth

from .harness import Server, cli

BOOST = '{"strategy": "tail_boost", "beta": 0.5}'
USERS, ROUNDS, K = 1000, 1, 10
AA_REPEATS = 20


@pytest.fixture(scope="module")
def ab(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ab-shop")
    # The demo generator with keener shoppers (views and purchases a few times likelier than
    # the default shop's), so that a test-sized run has enough purchases to measure: responses
    # still depend on taste match only, never on popularity or on the arm.
    keen = PreferenceModel(click_base=-1.5, cart_base=-3.0, buy_base=-1.0)
    build_demo(DemoConfig(users=USERS, items=300, events=10_000, seed=3, model=keen), root)
    run = json.loads(cli(root, "train", "demo", "--model", "itemknn", "--json").stdout)["run_id"]
    writer, _ = keys.create("sim", "writer", data_dir=root)
    con = connect("demo", root)
    try:
        truth = load_truth(con)
        prices = dict(con.execute("SELECT item_id, price FROM items").fetchall())
        users = [r[0] for r in con.execute("SELECT user_id FROM users ORDER BY 1").fetchall()]
    finally:
        con.close()
    # The experiment's record written first with a fixed salt (the server continues a running
    # experiment with the same arms and split), so every user's arm, and every figure, repeats.
    arms = {"control": {}, "boost": json.loads(BOOST)}
    exp = Experiment(derive_id("demo", arms, (0.5, 0.5)), "demo", arms, (0.5, 0.5),
                     "ab5a1700ab5a1700", datetime.now(UTC).isoformat())  # fmt: skip
    folder = root / "api" / "experiments" / "demo"
    folder.mkdir(parents=True)
    (folder / f"{exp.id}.json").write_text(json.dumps(exp.to_json()))
    srv = Server(root, "--run", run, "--arm", "control={}", "--arm", f"boost={BOOST}",
                 "--flush-every", "0.2")  # fmt: skip

    def post(path: str, body: dict) -> dict:
        resp = srv.post(path, writer, json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    try:
        drive(post, truth, users, np.random.default_rng(22), rounds=ROUNDS, k=K, prices=prices)
    finally:  # a clean stop flushes every acknowledged event into the store
        assert srv.stop() == -signal.SIGTERM, srv.output()
    return root, truth, prices


def test_boost_raises_the_tail_share_of_purchases(ab) -> None:
    root, _, _ = ab
    res = experiment_result("demo", data_dir=root, n_boot=1000, seed=0)
    control, boost = res.arm("control"), res.arm("boost")
    print(res.summary())
    assert res.experiment == derive_id("demo", {"control": {}, "boost": json.loads(BOOST)},
                                       (0.5, 0.5))  # fmt: skip
    assert control.users + boost.users == USERS
    assert res.srm.warning is None
    assert res.missing is None  # views, purchases and prices were all posted
    assert boost.impressions == boost.users * ROUNDS * K
    assert boost.metrics[PRIMARY].mean > control.metrics[PRIMARY].mean
    diff = boost.vs_control[PRIMARY]
    assert diff.detected and diff.low > 0, diff
    assert boost.verdict.startswith("boost: tail purchases +")


def test_aa_shows_no_difference_in_at_least_95_percent_of_repeats(ab) -> None:
    root, truth, prices = ab
    exp0 = experiment_result("demo", data_dir=root, n_boot=0)
    con = connect("demo", root)
    try:
        served = con.execute(
            "SELECT request_id, user_id, item_id, position FROM live_events "
            "WHERE experiment = ? AND arm = 'control' AND event_type = 'impression'",
            [exp0.experiment],
        ).df()
    finally:
        con.close()
    tail, items = tail_and_catalogue("demo", root)
    exp = Experiment("exp-aa", "demo", {"a1": {}, "a2": {}}, (0.5, 0.5), "-", "2026-01-01")
    found = primary = 0
    for seed in range(AA_REPEATS):
        res = analyse(aa_table(truth, served, seed, prices), exp, tail=tail, items=items,
                      n_boot=1000, seed=seed)  # fmt: skip
        diffs = res.arm("a2").vs_control
        found += any(d.detected for d in diffs.values())
        primary += diffs[PRIMARY].detected
    print(f"A/A: a difference in {found} of {AA_REPEATS} ({primary} on {PRIMARY})")
    # the verdict as a whole (every metric) shows no difference in >= 95% of repeats
    assert found <= AA_REPEATS // 20


def test_simulated_responses_are_a_seeded_funnel(ab) -> None:
    _, truth, prices = ab
    users = [str(u) for u in truth.user_ids[:200]]
    lists = [[str(i) for i in truth.item_ids[j % 50 : j % 50 + 10]] for j in range(200)]
    events = respond(truth, users, lists, np.random.default_rng(0), prices)
    assert events == respond(truth, users, lists, np.random.default_rng(0), prices)
    pairs = {
        t: {(e["user_id"], e["item_id"]) for e in events if e["event_type"] == t}
        for t in ("view", "cart", "purchase")
    }
    assert pairs["purchase"] <= pairs["cart"] <= pairs["view"]
    assert pairs["purchase"]  # keen shoppers buy
    for e in events:
        if e["event_type"] == "purchase":
            assert (e["quantity"], e["price"]) == (1, prices[e["item_id"]])
        else:
            assert "price" not in e
