"""AppTest of the Opportunities page and of the Overview's "N candidates to boost" link."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ltrec.analytics.backend import open_store
from ltrec.analytics.opportunities import boost_candidates, opportunities
from ltrec.analytics.view import ViewParams
from tests.analytics.conftest import synthetic_shop, write_store
from tests.app.conftest import APP
from tests.app.test_overview import ABSENT, orders, visible_labels  # noqa: F401 - a fixture

PAGE = "app_pages/opportunities.py"


def _open(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(PAGE).run()
    return at


def _links(at: AppTest) -> list:
    return list(at.get("page_link"))


def _qp(at: AppTest, key: str) -> str:
    v = at.query_params[key]
    return v[0] if isinstance(v, list) else v


def gems_shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    """10 head items 200 users view (5% to 15% buy), 40 tail items that 6 users view and 4 buy
    (hidden gems: more than the Overview's old top 20), 20 tail items 6 users view, none buys."""
    rows, t = [], datetime(2024, 1, 1)
    users = [f"u{k:03d}" for k in range(200)]
    for j in range(10):
        for k, u in enumerate(users):
            rows += [(u, f"h{j}", "impression"), (u, f"h{j}", "view")]
            if k % (7 + j) == 0:
                rows.append((u, f"h{j}", "purchase"))
    for j in range(60):
        for m in range(6):
            u = users[(6 * j + m) % 200]
            rows += [(u, f"t{j:02d}", "impression"), (u, f"t{j:02d}", "view")]
            if j < 40 and m < 4:
                rows.append((u, f"t{j:02d}", "purchase"))
    ev = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type"])
    ev["ts"] = [t + timedelta(minutes=i) for i in range(len(ev))]
    ids = [f"h{j}" for j in range(10)] + [f"t{j:02d}" for j in range(60)]
    items = pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"Item {i}" for i in ids],
            "category": ["Home > Kitchen"] * 10 + ["Toys > Kites"] * 30 + ["Garden"] * 30,
            "brand": ["Acme"] * 10 + ["Kitey"] * 60,
        }
    )
    return ev, items


@pytest.fixture
def gems(data_dir, monkeypatch) -> str:
    ev, items = gems_shop()
    write_store("gems", data_dir, ev, items)
    monkeypatch.setenv("LTREC_DATASET", "gems")
    return "gems"


def test_overview_link_counts_every_candidate_and_the_page_lists_them(gems, data_dir) -> None:
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["cuts"] = "0.5,0.8"
    at.run()
    assert not at.exception, at.exception
    said = [m.value for m in at.markdown if "candidates to boost" in m.value]
    assert len(said) == 1
    n = int(re.match(r"([\d,]+) candidates to boost", said[0]).group(1).replace(",", ""))
    # the sentence is followed by its link (a short label: a long one is cut at 1280 px)
    # (two pointers lead there: the candidates, then the neglected categories)
    link = [ln.proto for ln in _links(at) if ln.proto.label == "Open Opportunities"][0]
    assert link.page == "opportunities"  # the page's url path
    # the link carries the view: dataset and cuts (the same candidates on the next page)
    assert "ds=gems" in link.query_string and "cuts=0.5%2C0.8" in link.query_string
    # one definition: the count is the full list of the analytics function
    store = open_store("gems", data_dir)
    params = ViewParams(cuts=(0.5, 0.8))
    assert n == boost_candidates(store, params).count == 40  # uncapped (was the top 20)
    page = _open(cuts="0.5,0.8")
    assert not page.exception, page.exception
    assert any(f"{n:,} candidates to boost" in m.value for m in page.markdown)
    assert page.subheader[-1].value == f"Items to boost ({n:,})"
    items = page.dataframe[-1].value
    assert len(items) == n
    want = opportunities(store, "category", params).items
    assert list(items["item_id"]) == list(want["item_id"])
    for col in ("exposure", "views", "purchases", "shrunk", "shrunk_low", "bucket"):
        assert col in items.columns, col
    assert (items["bucket"] == "tail").all()
    # the shown frame is the download (every row): one button per table
    assert [b.proto.label for b in page.get("download_button")] == ["Download CSV"] * 2
    assert "op_items_csv" in page.get("download_button")[-1].proto.id


def test_page_on_demo_ranks_categories_and_switches_to_brands(demo) -> None:
    at = _open()
    assert not at.exception, at.exception
    assert at.title[0].value == "Opportunities"
    assert [s.value for s in at.subheader][:1] == ["Neglected categories"]
    groups = at.dataframe[0].value
    assert list(groups["rank"]) == list(range(1, len(groups) + 1))
    assert groups["verdict"].str.contains("of the catalogue").all()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [t["name"] for t in spec["data"]] == [
        "share of the catalogue",
        "share of exposure (impressions)",
        "share of demand (purchases)",
    ]
    at.radio(key="op_by").set_value("brand").run()
    assert not at.exception, at.exception
    assert at.subheader[0].value == "Neglected brands"
    assert _qp(at, "by") == "brand"


def test_category_filter_keeps_whole_catalogue_numbers(demo, data_dir) -> None:
    store = open_store("demo", data_dir)
    full = opportunities(store).categories
    top = full["name"].iloc[0].split(" > ")[0]
    at = _open(cat=top)
    assert not at.exception, at.exception
    rows = at.dataframe[0].value
    want = full[full["name"].str.split(" > ").str[0] == top]
    assert list(rows["name"]) == list(want["name"])
    assert list(rows["catalogue_share"]) == pytest.approx(list(want["catalogue_share"]))


@pytest.mark.usefixtures("orders")  # the Overview tests' order-lines shop
def test_purchase_only_data_without_categories() -> None:
    at = _open()
    assert not at.exception, at.exception
    infos = [i.value for i in at.info]
    assert any(i.startswith("Exposure is not measured") for i in infos)
    assert any("has no categories or brands" in i for i in infos)
    assert not [s.value for s in at.subheader if s.value.startswith("Neglected")]
    labels = visible_labels(at)
    assert not [x for x in labels if any(a in x for a in ABSENT) or "exposure" in x], labels
    items = at.dataframe[-1].value
    assert {"buyers", "repeat_rate"} <= set(items.columns)
    # the Overview counts the same list and links here
    ov = AppTest.from_file(APP, default_timeout=90).run()
    boost = [m.value for m in ov.markdown if "candidates to boost" in m.value]
    assert [b.replace("\u2060", "") for b in boost] == [
        f"{len(items):,} candidates to boost: tail items whose buyers come back: "
        "share of distinct buyers who bought the item on more than one occasion "
        "(ranked by the lower 95% bound)."
    ]


def test_items_table_without_brands_or_groups_is_not_drawn(data_dir, monkeypatch) -> None:
    ev, it, us = synthetic_shop(users=60, items=30, sessions=500, seed=5)
    write_store("nocat", data_dir, ev, it.drop(columns=["category"]), us)
    monkeypatch.setenv("LTREC_DATASET", "nocat")
    at = _open()
    assert not at.exception, at.exception
    assert sum("has no categories or brands" in i.value for i in at.info) == 1
    assert not at.get("plotly_chart")
    assert at.subheader[-1].value.startswith("Items to boost")
