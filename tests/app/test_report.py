"""The stakeholder report's content (fast; the browser test is tests/e2e/test_report.py).

One module-scoped data dir: the test demo shop with a popularity run, a hostile catalogue (HTML
and script in titles and categories) and a purchase-only order log. Each report is built once.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest

from ltrec.app.report import (
    CSP,
    DEFAULT_SETTING,
    EFFECT_METRICS,
    build_report,
    render_html,
    write_report,
)
from ltrec.cli import main
from tests.analytics.conftest import orders_store
from tests.e2e.test_report import HOSTILE_TITLE, hostile_shop

SECTIONS = ["tail", "categories", "effect", "simulation", "profile", "definitions"]


@pytest.fixture(scope="module")
def root(_demo_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ltrec.models.train import train
    from ltrec.store.importing import import_dataset

    root = tmp_path_factory.mktemp("report")
    shutil.copy(_demo_file, root / "demo.duckdb")
    train("demo", "popularity", n_boot=0, data_dir=root)
    events, items, users = hostile_shop(root / "xss-src")
    import_dataset("xss", events=events, items=items, users=users, data_dir=root)
    orders_store("shop", root)
    return root


@pytest.fixture(scope="module")
def demo_report(root: Path):
    return build_report("demo", data_dir=root, n_boot=100)


@pytest.fixture(scope="module")
def xss_page(root: Path) -> str:
    return render_html(build_report("xss", simulation="none", data_dir=root, n_boot=50))


def test_demo_report_has_every_section_with_the_app_numbers(root: Path, demo_report) -> None:
    from ltrec.analytics.backend import open_store
    from ltrec.analytics.opportunities import opportunities
    from ltrec.analytics.stats import dataset_stats

    assert [s.key for s in demo_report.sections] == SECTIONS
    assert [s.key for s in demo_report.sections if s.omitted] == []
    stats = dataset_stats("demo", data_dir=root)
    tail = demo_report.section("tail").facts
    assert tail["tail_item_share"] == stats.tail_item_share
    assert tail["tail_exposure_share"] == stats.tail_exposure_share
    assert tail["gini_exposure"] == stats.gini_exposure
    headline = demo_report.section("tail").tables[0].rows
    assert headline[0] == ["Tail share of items", f"{stats.tail_item_share:.1%}"]
    opp = opportunities(open_store("demo", root), by="category")
    cats = demo_report.section("categories").facts
    assert cats["categories"] == len(opp.categories) and cats["items"] == len(opp.items)
    assert [r[1] for r in demo_report.section("categories").tables[0].rows] == (
        opp.categories["name"].head(10).tolist()
    )


def test_effect_is_the_pipeline_evaluation_of_base_and_setting(root: Path, demo_report) -> None:
    from ltrec.app.pipeline import RecSession

    effect = demo_report.section("effect").facts
    session = RecSession.open("demo", effect["run_id"], data_dir=root)
    base = session.evaluate(10, 100, seed=0)
    boosted = session.with_config(DEFAULT_SETTING).evaluate(10, 100, seed=0)
    m = effect["metrics"]
    assert list(m) == [f"{k}@10" for k in EFFECT_METRICS]
    for key in ("ndcg@10", "aplt@10"):
        assert m[key]["base"] == base.metrics[key].mean
        assert m[key]["value"] == boosted.metrics[key].mean
        assert m[key]["low"] <= m[key]["delta"] <= m[key]["high"]
    assert demo_report.run_id == effect["run_id"] and demo_report.model == "popularity"
    assert demo_report.setting_label == "tail_boost beta=0.3"


def test_simulation_compares_the_model_alone_with_the_setting(demo_report) -> None:
    sim = demo_report.section("simulation")
    assert sim.facts["labels"] == ["popularity", "popularity + tail_boost 0.3"]
    assert sim.facts["rounds"] == 5
    shares = [r["tail_share_all"] for r in sim.facts["final"]]
    assert all(0.0 <= s <= 1.0 for s in shares)
    assert f"tail items filled {shares[1]:.1%} of the slots" in " ".join(sim.text)


def test_page_is_self_contained(demo_report) -> None:
    page = render_html(demo_report)
    assert page.startswith("<!DOCTYPE html>")
    assert f'content="{CSP}"' in page
    # no element loads anything: no src/href to a URL, no link/iframe/object elements
    assert re.findall(r"""<(?:script|img|iframe|link|object|embed)[^>]*\bsrc=""", page) == []
    assert "<link" not in page and "<iframe" not in page
    # plotly.js inlined exactly once, one drawn div per figure
    assert page.count("plotly.js v") == 1
    n_figs = sum(len(s.figures) for s in demo_report.sections)
    assert page.count('<div class="chart">') == n_figs == 4
    assert re.findall(r'<section id="([a-z]+)">', page) == SECTIONS


def test_hostile_titles_and_categories_are_text(xss_page: str, root: Path) -> None:
    from tests.e2e.harness import XSS_CATEGORY, XSS_CATEGORY_LINK

    assert HOSTILE_TITLE.format(i=32) not in xss_page  # nothing shop-made is markup
    assert "<script>window.__pwned" not in xss_page
    assert html.escape(HOSTILE_TITLE.format(i=32)) in xss_page  # shown, as text
    for raw in (XSS_CATEGORY, XSS_CATEGORY_LINK):
        assert raw not in xss_page
    assert html.escape(XSS_CATEGORY_LINK) in xss_page
    assert 'href="https://evil.example/' not in xss_page


def test_missing_data_omits_a_section_with_one_sentence(root: Path) -> None:
    report = build_report("shop", simulation="none", data_dir=root)
    assert [s.key for s in report.sections] == SECTIONS
    effect = report.section("effect")
    assert effect.omitted.startswith("No evaluated model run to measure the setting on")
    assert "`ltrec train shop --model ease`" in effect.omitted
    assert report.section("simulation").omitted == (
        "No simulation was run for this report (--simulation none)."
    )
    tail = report.section("tail")
    assert tail.facts["exposure_event"] is None and tail.facts["tail_exposure_share"] is None
    assert "not measured" in tail.text[0]
    assert [r[0] for r in tail.tables[0].rows] == [
        "Tail share of items", "Tail share of purchases", "Tail share of buyers",
        "Gini of buyers",
    ]  # fmt: skip
    assert report.section("categories").omitted == (
        "Not available for this data: this dataset's items table has no category values, so "
        "there is nothing to group by"
    )
    page = render_html(report)
    assert page.count('<p class="omitted">') == 3
    assert "<code>ltrec train shop --model ease</code>" in page


def test_cli_writes_the_report_and_prints_json(root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sub" / "report.html"
    args = ["--data-dir", str(root), "report", "xss", "--out", str(out)]
    assert main([*args, "--simulation", "none", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["out"] == str(out) and body["bytes"] == out.stat().st_size
    assert body["dataset"] == "xss" and body["setting"]["strategy"] == "tail_boost"
    assert [s["key"] for s in body["sections"]] == SECTIONS
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary left


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--setting", '{"strategy": "nope"}'], "unknown strategy 'nope'"),
        (["--setting", '{"strategy": "none"}'], "the base order is the model alone"),
        (["--run", "20990101-000000-ease-abcdef"], "20990101-000000-ease-abcdef"),
        (["--simulation", "../x"], "invalid simulation id"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(root, tmp_path, capsys, extra, message) -> None:
    out = tmp_path / "report.html"
    args = ["--data-dir", str(root), "report", "demo", "--out", str(out), "--json", *extra]
    assert main(args) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert message in err["message"] and err["exit_code"] == 2
    assert not out.exists()


def test_out_must_be_html(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    assert main(["--data-dir", str(root), "report", "demo", "--out", str(out)]) == 2
    assert not out.exists()


def test_write_replaces_a_file_whole(demo_report, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    out.write_text("old")
    summary = write_report(demo_report, out)
    assert out.read_text() == render_html(demo_report)
    assert summary["bytes"] == out.stat().st_size
