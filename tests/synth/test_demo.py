"""The demo shop: schema, determinism, long tail, funnel, hidden gems, ground truth, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest

from ltrec.cli import main
from ltrec.errors import BadInputError, ConfigError
from ltrec.store import connect, writing
from ltrec.synth.demo import DEFAULT_EVENTS, DEFAULT_ITEMS, DEFAULT_USERS, DemoConfig, build_demo
from ltrec.synth.truth import has_truth, load_truth

TABLES = ("events", "items", "users", "truth_users", "truth_items")


def _gini(x: np.ndarray) -> float:
    """G = sum_i (2i - n - 1) x_(i) / (n sum x), x ascending, i = 1..n (written out again here)."""
    x = np.sort(np.asarray(x, dtype=float))
    n = len(x)
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * x) / (n * x.sum()))


def _open(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory):
    """The default-size demo shop, built once for this module (a few seconds)."""
    root = tmp_path_factory.mktemp("demo")
    report = build_demo(DemoConfig(), data_dir=root)
    con = _open(root / "demo.duckdb")
    yield report, con
    con.close()


def _checksums(path: Path) -> dict[str, tuple]:
    con = _open(path)
    try:
        out = {
            t: con.execute(f"SELECT count(*), sum(hash(t)) FROM {t} t").fetchone()  # noqa: S608
            for t in TABLES
        }
        out["meta"] = con.execute(
            "SELECT count(*), sum(hash(t)) FROM meta t "
            "WHERE key NOT IN "
            "('import_id', 'updated_at', 'name', 'data_import_id', 'data_changed_at')"
        ).fetchone()
        return out
    finally:
        con.close()


# ------------------------------------------------------------------------------ config


def test_sizes_scale_from_events():
    assert DemoConfig().sizes() == (DEFAULT_USERS, DEFAULT_ITEMS, DEFAULT_EVENTS)
    users, items, events = DemoConfig(events=10_000_000).sizes()
    assert events == 10_000_000 and users == 100_000 and 18_000 <= items <= 22_000
    assert DemoConfig(users=1_000).sizes()[2] == 100_000
    assert DemoConfig(users=300, items=99, events=5_000).sizes() == (300, 99, 5_000)


@pytest.mark.parametrize(
    "kwargs",
    [{"users": -3}, {"events": 10}, {"bogus": 1}, {"name": "../x"}, {"source_mix": (0, 0, 0)}],
)
def test_bad_config_is_bad_input(kwargs):
    with pytest.raises(ConfigError) as err:
        DemoConfig(**kwargs)
    assert err.value.exit_code == 2 and "invalid demo setting" in str(err.value)


# ------------------------------------------------------------------------------ shape


def test_schema_and_counts(shop):
    report, con = shop
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert set(TABLES) | {"meta", "rejects"} <= tables
    assert con.execute("SELECT count(*) FROM users").fetchone()[0] == DEFAULT_USERS
    assert con.execute("SELECT count(*) FROM items").fetchone()[0] == DEFAULT_ITEMS
    n_events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    assert abs(n_events - DEFAULT_EVENTS) / DEFAULT_EVENTS < 0.08
    assert sum(report.events.values()) == n_events
    types = dict(con.execute("SELECT event_type, count(*) FROM events GROUP BY 1").fetchall())
    assert set(types) == {"impression", "view", "cart", "purchase"}
    sources = {r[0] for r in con.execute("SELECT DISTINCT source FROM events").fetchall()}
    assert sources == {"organic", "search", "recommendation"}
    nulls = con.execute(
        "SELECT count(*) FILTER (WHERE session_id IS NULL OR quantity IS NULL OR price IS NULL"
        " OR ts IS NULL OR source IS NULL OR quantity < 1 OR price <= 0) FROM events"
    ).fetchone()[0]
    assert nulls == 0
    # Six months, every day present, and weekends busier than weekdays (weekly seasonality).
    days, weekend, weekday = con.execute(
        """SELECT count(DISTINCT ts::DATE),
                  count(*) FILTER (WHERE isodow(ts) >= 6) / count(DISTINCT ts::DATE)
                      FILTER (WHERE isodow(ts) >= 6),
                  count(*) FILTER (WHERE isodow(ts) < 6) / count(DISTINCT ts::DATE)
                      FILTER (WHERE isodow(ts) < 6)
           FROM events WHERE event_type = 'impression'"""
    ).fetchone()
    assert 170 <= days <= 190 and weekend > 1.1 * weekday
    first, last = con.execute("SELECT min(ts), max(ts) FROM events").fetchone()
    assert str(first) >= "2025-01-01" and str(last) < "2025-07-01"  # DemoConfig.end
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    assert meta["source"] == "demo" and meta["seed"] == "42"
    assert int(meta["rows_events"]) == n_events and int(meta["demo_users"]) == DEFAULT_USERS


def test_items_look_like_a_shop(shop):
    _, con = shop
    items = con.execute("SELECT * FROM items").df()
    assert items[["title", "description", "category", "brand", "price"]].notna().all().all()
    parts = items.category.str.split(" > ")
    assert (parts.str.len() == 3).all()  # Top > Sub > Leaf
    tops = parts.str[0]
    assert 10 <= tops.nunique() <= 14
    subs_per_top = parts.str[1].groupby(tops).nunique()
    assert (subs_per_top >= 2).all()
    assert (items.groupby(tops).brand.nunique() >= 3).all()
    assert items.title.nunique() > 0.8 * len(items)
    # Log-normal prices: right-skewed, positive, and different levels per top category.
    assert (items.price > 0).all() and items.price.mean() > items.price.median()
    med = items.price.groupby(tops).median()
    assert med.max() / med.min() > 3
    out = 1 - items.in_stock.mean()
    assert 0.01 <= out <= 0.1
    last = con.execute("SELECT max(ts) FROM events").fetchone()[0]
    new = (items.created_at > last - np.timedelta64(30, "D")).mean()
    assert 0.02 <= new <= 0.12


def test_texts_cluster_by_category(shop):
    from sklearn.feature_extraction.text import TfidfVectorizer

    _, con = shop
    items = con.execute("SELECT title || '. ' || description AS t, category FROM items").df()
    x = TfidfVectorizer().fit_transform(items.t)
    sim = (x @ x.T).toarray()
    top = items.category.str.split(" > ").str[0].to_numpy()
    leaf = items.category.to_numpy()
    same_leaf = leaf[:, None] == leaf[None, :]
    same_top = top[:, None] == top[None, :]
    off = ~np.eye(len(items), dtype=bool)
    within, across = sim[same_leaf & off].mean(), sim[~same_top].mean()
    assert within > 3 * across and within > 0.2


def test_users_have_segments(shop):
    _, con = shop
    users = con.execute("SELECT * FROM users").df()
    for col in ("region", "device", "tier", "age_band", "signup_date"):
        assert users[col].notna().all(), col
    assert set(users.device) == {"mobile", "desktop", "tablet"}
    assert set(users.tier) == {"standard", "plus"}
    start = con.execute("SELECT min(ts)::DATE FROM events").fetchone()[0]
    new_share = (users.signup_date >= np.datetime64(start)).mean()
    assert 0.15 <= new_share <= 0.4
    # Nobody acts before signing up.
    early = con.execute(
        "SELECT count(*) FROM events e JOIN users u USING (user_id)"
        " WHERE e.ts::DATE < u.signup_date"
    ).fetchone()[0]
    assert early == 0


def test_events_reference_users_and_items_in_funnel_order(shop):
    _, con = shop
    orphans = con.execute(
        """SELECT count(*) FILTER (WHERE i.item_id IS NULL),
                  count(*) FILTER (WHERE u.user_id IS NULL)
           FROM events e LEFT JOIN items i USING (item_id) LEFT JOIN users u USING (user_id)"""
    ).fetchone()
    assert orphans == (0, 0)
    before_listing = con.execute(
        "SELECT count(*) FROM events e JOIN items i USING (item_id) WHERE e.ts < i.created_at"
    ).fetchone()[0]
    assert before_listing == 0
    # Every cart follows a view, every purchase a cart, of the same item in the same session.
    for later, earlier in (("view", "impression"), ("cart", "view"), ("purchase", "cart")):
        missing = con.execute(
            """SELECT count(*) FROM events a WHERE a.event_type = $later AND NOT EXISTS (
                   SELECT 1 FROM events b WHERE b.event_type = $earlier
                   AND b.session_id = a.session_id AND b.item_id = a.item_id AND b.ts <= a.ts)""",
            {"later": later, "earlier": earlier},
        ).fetchone()[0]
        assert missing == 0, (later, earlier)
    assert (
        con.execute("SELECT count(DISTINCT user_id) FROM events").fetchone()[0]
        > 0.8 * DEFAULT_USERS
    )


# ------------------------------------------------------------------------------ behaviour


def _item_counts(con, event_type: str) -> np.ndarray:
    return con.execute(
        """SELECT count(e.item_id) AS n FROM items i
           LEFT JOIN events e ON e.item_id = i.item_id AND e.event_type = $t
           GROUP BY i.item_id""",
        {"t": event_type},
    ).fetchnumpy()["n"]


def test_long_tail_gini_in_band(shop):
    report, con = shop
    views = _item_counts(con, "view")
    assert len(views) == DEFAULT_ITEMS
    g = _gini(views)
    assert 0.6 <= g <= 0.75
    assert report.gini_views == pytest.approx(g, abs=1e-9)
    assert 0.5 <= _gini(_item_counts(con, "impression")) <= 0.85


def test_funnel_rates_realistic(shop):
    report, _ = shop
    f = report.funnel
    assert 0.1 <= f["impression_to_view"] <= 0.5
    assert 0.02 <= f["view_to_cart"] <= 0.09
    assert 0.2 <= f["cart_to_purchase"] <= 0.4


def test_hidden_gems_tail_converts_for_matching_users(shop):
    """Tail items (bottom 80% by views) convert at least about as well as head items among
    the users whose tastes they match, while receiving far less exposure."""
    _, con = shop
    gt = load_truth(con)
    ev = con.execute(
        "SELECT user_id, item_id, event_type FROM events WHERE event_type IN ('view', 'purchase')"
    ).df()
    u, i = gt.user_index(ev.user_id.to_numpy()), gt.item_index(ev.item_id.to_numpy())
    matching = gt.match(u, i) > 0.5
    is_view = (ev.event_type == "view").to_numpy()
    n = gt.n_items
    views_all = np.bincount(i[is_view], minlength=n)
    head = np.zeros(n, dtype=bool)
    head[np.argsort(-views_all, kind="stable")[: n // 5]] = True
    assert views_all[~head].sum() / views_all.sum() < 0.45  # 80% of items, under 45% of views

    v = np.bincount(i[is_view & matching], minlength=n).astype(float)
    b = np.bincount(i[~is_view & matching], minlength=n).astype(float)
    prior_rate, strength = b.sum() / v.sum(), 30.0  # empirical-Bayes beta prior
    shrunk = (b + strength * prior_rate) / (v + strength)
    seen = v > 0
    head_rate, tail_rate = shrunk[head & seen].mean(), shrunk[~head & seen].mean()
    assert tail_rate >= 0.95 * head_rate
    # Pooled (raw) conversion over all viewers too: the tail is not worse.
    b_all = np.bincount(i[~is_view], minlength=n)
    raw_head = b_all[head].sum() / views_all[head].sum()
    raw_tail = b_all[~head].sum() / views_all[~head].sum()
    assert raw_tail >= 0.9 * raw_head


def test_niche_users_lean_to_the_tail(shop):
    _, con = shop
    gt = load_truth(con)
    assert 0.1 <= gt.niche.mean() <= 0.3
    ev = con.execute("SELECT user_id, item_id FROM events WHERE event_type = 'view'").df()
    u, i = gt.user_index(ev.user_id.to_numpy()), gt.item_index(ev.item_id.to_numpy())
    pop_rank = np.argsort(np.argsort(-gt.popularity))
    tail = pop_rank[i] >= gt.n_items // 5
    assert tail[gt.niche[u]].mean() > tail[~gt.niche[u]].mean() + 0.05


# ------------------------------------------------------------------------------ truth


def test_truth_api(shop):
    _, con = shop
    gt = load_truth(con)
    assert gt.taste.shape == (DEFAULT_USERS, gt.model.dim)
    assert gt.factor.shape == (DEFAULT_ITEMS, gt.model.dim)
    np.testing.assert_allclose(np.linalg.norm(gt.factor, axis=1), 1, atol=1e-5)
    ids = con.execute("SELECT user_id FROM users ORDER BY user_id").fetchnumpy()["user_id"]
    assert sorted(gt.user_ids.tolist()) == list(ids)
    assert gt.user_ids[gt.user_index(["U0007"])[0]] == "U0007"
    with pytest.raises(BadInputError):
        gt.item_index(["nope"])

    users = np.arange(0, DEFAULT_USERS, 50)
    items = np.arange(DEFAULT_ITEMS)
    click = gt.click_prob(users[:, None], items[None, :])
    buy = gt.purchase_prob(users[:, None], items[None, :])
    assert click.shape == buy.shape == (len(users), DEFAULT_ITEMS)
    for p in (click, buy, gt.cart_prob(users[:, None], items[None, :])):
        assert np.all((p >= 0) & (p <= 1))
    # Matching items are far more likely to be clicked and bought than average ones.
    m = gt.match(users[:, None], items[None, :])
    top = np.argsort(-m, axis=1)[:, :10]
    rows = np.arange(len(users))[:, None]
    assert buy[rows, top].mean() > 3 * buy.mean()
    assert click[rows, top].mean() > 1.5 * click.mean()
    # Elementwise and broadcast calls agree; position bias decreases with rank.
    np.testing.assert_allclose(
        gt.click_prob(users, items[: len(users)]), np.diag(click[:, : len(users)])
    )
    ex = gt.examine_prob(np.arange(1, 11))
    assert ex[0] == 1 and np.all(np.diff(ex) < 0)
    with pytest.raises(BadInputError):
        gt.examine_prob([0])


def test_truth_is_the_model_that_generated_the_log(shop):
    """Observed click and purchase rates match the stored model's predictions."""
    _, con = shop
    gt = load_truth(con)
    imp = con.execute(
        "SELECT user_id, item_id, session_id FROM events WHERE event_type = 'impression'"
    ).df()
    views = con.execute("SELECT count(*) FROM events WHERE event_type = 'view'").fetchone()[0]
    u, i = gt.user_index(imp.user_id.to_numpy()), gt.item_index(imp.item_id.to_numpy())
    expected_views = gt.click_prob(u, i).sum()
    assert views == pytest.approx(expected_views, rel=0.03)
    v = con.execute("SELECT user_id, item_id FROM events WHERE event_type = 'view'").df()
    u, i = gt.user_index(v.user_id.to_numpy()), gt.item_index(v.item_id.to_numpy())
    buys = con.execute("SELECT count(*) FROM events WHERE event_type = 'purchase'").fetchone()[0]
    assert buys == pytest.approx(gt.purchase_prob(u, i).sum(), rel=0.08)


def test_imported_dataset_has_no_truth():
    with writing("plain") as con:
        con.execute("INSERT INTO events (user_id, item_id, event_type) VALUES ('u', 'i', 'view')")
    con = connect("plain")
    assert not has_truth(con)
    with pytest.raises(BadInputError, match="no ground-truth"):
        load_truth(con)


# ------------------------------------------------------------------------------ determinism


def test_same_seed_same_data(tmp_path):
    cfg = DemoConfig(users=300, items=150, events=20_000, seed=7, chunk_sessions=500)
    a = build_demo(cfg, data_dir=tmp_path / "a")
    b = build_demo(cfg, data_dir=tmp_path / "b")
    assert a.events == b.events
    sums_a = _checksums(tmp_path / "a" / "demo.duckdb")
    assert sums_a == _checksums(tmp_path / "b" / "demo.duckdb")
    build_demo(cfg.model_copy(update={"seed": 8}), data_dir=tmp_path / "c")
    sums_c = _checksums(tmp_path / "c" / "demo.duckdb")
    assert sums_c["events"] != sums_a["events"] and sums_c["items"] != sums_a["items"]


def test_small_and_chunked_build(tmp_path):
    # Many small chunks: sessions stay numbered uniquely and the progress reaches 1.
    seen: list[float | None] = []
    cfg = DemoConfig(name="tiny", users=50, items=40, events=3_000, chunk_sessions=500)
    report = build_demo(cfg, data_dir=tmp_path, progress=lambda done, msg: seen.append(done))
    assert seen[-1] == 1.0 and report.items == 40 and report.users == 50
    con = _open(tmp_path / "tiny.duckdb")
    n_sess, per_user = con.execute(
        "SELECT count(DISTINCT session_id), max(n) FROM"
        " (SELECT session_id, count(DISTINCT user_id) n FROM events GROUP BY 1)"
    ).fetchone()
    # A session whose items were all listed later than it started has no events.
    assert 0.95 * report.sessions <= n_sess <= report.sessions and per_user == 1
    assert (
        report.to_dict()["events_total"] == con.execute("SELECT count(*) FROM events").fetchone()[0]
    )


# ------------------------------------------------------------------------------ CLI


def test_cli_demo(data_dir, capsys):
    assert (
        main(["demo", "--name", "shop", "--users", "200", "--events", "5000", "--seed", "3"]) == 0
    )
    assert (data_dir / "shop.duckdb").is_file()
    assert "demo shop 'shop'" in capsys.readouterr().out
    assert main(["demo", "--name", "shop", "--users", "200", "--events", "5000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("name", "users", "items", "events", "seconds", "gini_views", "funnel"):
        assert key in out
    assert out["users"] == 200 and set(out["events"]) == {"impression", "view", "cart", "purchase"}
    assert main(["demo", "--users", "-1"]) == 2
    assert "invalid demo setting" in capsys.readouterr().err
