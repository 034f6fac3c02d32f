"""Data strings never become markup (issue 16 §6), without a browser.

The ``xss`` dataset of the browser suite (HTML in titles, categories, brands, a segment and ids)
is built with the real importer; every chart a page draws from it holds the strings escaped
(``&lt;a href=...&gt;``, which plotly shows as the literal text) and never the raw tags, and the
markdown helpers make the same strings inert in Streamlit messages.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from ltrec.analytics.backend import open_store
from ltrec.analytics.view import ViewParams, compute
from ltrec.charts.funnel import funnel_figure, heatmap_figure, tail_purchase_figure
from ltrec.charts.longtail import category_tail_figure
from ltrec.charts.metrics import delta_chart, metrics_table, tradeoff_scatter
from ltrec.charts.rerank import sweep_figure
from ltrec.charts.simulation import metric_figure, rounds_figure
from ltrec.charts.text import html_text, html_texts, markdown_message, markdown_text
from ltrec.cli import main
from ltrec.rerank.sweep import SweepResult
from ltrec.simulation.config import SimulationConfig
from ltrec.simulation.result import ROUND_METRICS, SimulationResult
from tests.e2e.harness import (
    EVIL_LINK,
    XSS_CATEGORY,
    XSS_CATEGORY_LINK,
    XSS_SEGMENT,
    write_xss_files,
)

#: Raw markup that must never reach plotly from data (the fixed templates use only <br>/<extra>).
RAW_TAGS = ("<a ", "<a>", "</a>", "<img", "<script", "</script", "<b ")
HOSTILE = [EVIL_LINK, "<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "a & b <c>"]


def strings(obj: object) -> Iterator[str]:
    """Every string in a figure's JSON (trace text, ticks, names, templates, annotations)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from strings(v)


def assert_inert(fig, *shown: str) -> None:
    """No raw tag from the data anywhere in ``fig``; each of ``shown`` is there, escaped."""
    texts = list(strings(json.loads(fig.to_json())))
    bad = [t for t in texts if any(tag in t for tag in RAW_TAGS)]
    assert bad == []
    for s in shown:
        assert html_text(s) in texts, s


@pytest.fixture(scope="module")
def xss(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The browser suite's hostile dataset, imported by the real CLI."""
    root = tmp_path_factory.mktemp("xss")
    events, items, users = write_xss_files(root / "src")
    data = root / "data"
    args = ["--data-dir", str(data), "import", "xss", "--events", str(events)]
    assert main([*args, "--items", str(items), "--users", str(users)]) == 0
    return data


def view(data: Path, kind: str, **params):
    store = open_store("xss", data)
    return compute(kind, store, ViewParams(**params))


def test_category_chart_shows_hostile_categories_as_text(xss) -> None:
    ct = view(xss, "tail_by_category")
    assert {XSS_CATEGORY, XSS_CATEGORY_LINK} <= set(ct.frame["category"])  # stored as written
    fig = category_tail_figure(ct)
    assert_inert(fig, XSS_CATEGORY, XSS_CATEGORY_LINK)
    assert set(fig.data[0].x) == set(html_texts(ct.frame["category"]))


@pytest.mark.parametrize("build", [funnel_figure, heatmap_figure, tail_purchase_figure])
def test_segment_charts_show_hostile_segments_as_text(xss, build) -> None:
    sf = view(xss, "segment_funnel", segment="tier")
    assert XSS_SEGMENT in set(sf.frame["segment"])
    fig = build(sf)
    assert_inert(fig, XSS_SEGMENT)


def test_segment_dimension_title_is_escaped(xss) -> None:
    sf = view(xss, "segment_funnel", segment="tier")
    sf = dataclasses.replace(sf, dimension="<a href='https://evil.example/'>tier</a>")
    for build in (funnel_figure, heatmap_figure, tail_purchase_figure):
        assert_inert(build(sf), sf.dimension)


def test_metric_charts_escape_setting_names() -> None:
    names = HOSTILE[:3]
    frame = pd.DataFrame(
        {
            "metric": ["ndcg@10"] * 3,
            "setting": names,
            "mean": [0.1, 0.2, 0.3],
            "low": [0.05, 0.1, 0.2],
            "high": [0.15, 0.3, 0.4],
            "n": [100] * 3,
            "delta": [None, 0.1, 0.2],
            "delta_low": [None, 0.05, 0.1],
            "delta_high": [None, 0.15, 0.3],
            "rel_delta": [None, 1.0, 2.0],
            "p_value": [None, 0.01, 0.02],
            "better": [None, True, True],
        }
    )
    assert_inert(metrics_table(frame), *names)
    deltas = pd.DataFrame(
        {
            "setting": names[1:],
            "metric": ["ndcg@10", "ndcg@10"],
            "delta": [0.1, -0.1],
            "low": [0.05, -0.2],
            "high": [0.15, 0.05],
            "base": [0.1, 0.1],
            "value": [0.2, 0.0],
            "p_value": [0.01, 0.3],
            "higher_is_better": [True, True],
            "rel_delta": [1.0, -1.0],
        }
    )
    assert_inert(delta_chart(deltas), *names[1:])
    points = pd.DataFrame(
        {"setting": names, "x": [0.1, 0.2, 0.3], "y": [0.3, 0.2, 0.1], "front": [True] * 3}
    )
    assert_inert(tradeoff_scatter(points), *names)


def test_sweep_marks_escape_setting_names() -> None:
    table = pd.DataFrame(
        {
            "value": [0.0, 0.5],
            "ndcg@10": [0.3, 0.2],
            "aplt@10": [0.1, 0.3],
            "pareto": [True, True],
        }
    )
    result = SweepResult("tail_boost", "beta", "ndcg@10", "aplt@10", table)
    marks = pd.DataFrame({"setting": HOSTILE[:2], "x": [0.1, 0.3], "y": [0.3, 0.2]})
    assert_inert(sweep_figure(result, marks), *HOSTILE[:2])


def test_simulation_charts_escape_policy_labels() -> None:
    labels = [EVIL_LINK, "<script>alert(1)</script>"]
    rows = [
        {"policy": lab, "round": r, **dict.fromkeys(ROUND_METRICS, 0.5)}
        for lab in labels
        for r in (1, 2)
    ]
    result = SimulationResult(
        config=SimulationConfig(rounds=2),
        policies=[],
        labels=labels,
        user_model={"name": "truth"},
        rounds=pd.DataFrame(rows),
    )
    fig = rounds_figure(result)
    assert_inert(fig, *labels)
    # the hover names the trace by reference: a label is never part of a template
    assert {t.hovertemplate for t in fig.data} == {
        "round %{x}: %{y:.4g}<extra>%{fullData.name}</extra>"
    }
    assert_inert(metric_figure(result, "tail_share"), *labels)


@given(st.text(max_size=60))
def test_html_text_round_trips_through_plotlys_entities(text: str) -> None:
    """What plotly shows (its entity decoding) is exactly the data, and no tag survives."""
    out = html_text(text)
    assert "<" not in out and ">" not in out
    assert html.unescape(out) == text


def test_html_texts_keeps_numbers_and_gaps() -> None:
    assert html_texts(["<b>", 3, None, 2.5]) == ["&lt;b&gt;", 3, None, 2.5]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (EVIL_LINK, '\\<a href="https:\u2060//evil.example/"\\>x\\</a\\>'),
        ("[x](https://evil.example/)", "\\[x\\](https:\u2060//evil.example/)"),
        ("![i](x.png)", "!\\[i\\](x.png)"),
        (":red[alert] :smile:", "\\:red\\[alert\\] \\:smile:"),
        ("a_b*c _x_ $y$", "a_b\\*c \\_x\\_ \\$y\\$"),
        ("- a\n1. b\n  + c\n===", "\\- a\n1\\. b\n  \\+ c\n\\==="),
        # GFM autolinks are found in the parsed text: a word joiner breaks each pattern
        ("HTTP://x www.y.org a@b.c", "HTTP:\u2060//x www\u2060.y.org a@\u2060b.c"),
        # text without markup stays as written (a message's source stays readable)
        ("semi.csv: looks semicolon-separated; missing item_id", None),
    ],
)
def test_markdown_text_escapes_what_would_be_markup(text: str, expected: str | None) -> None:
    assert markdown_text(text) == (text if expected is None else expected)


MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])


@given(st.text(alphabet=st.sampled_from(list("ab1 _*`[]()<>!#:=+-.|~$&\\\"'/@w")), max_size=40))
def test_markdown_text_renders_as_the_plain_text(text: str) -> None:
    """Through a CommonMark parser with raw HTML on, the escaped text is one paragraph holding
    exactly the text (joiners aside): no tag, link, emphasis or entity is made of it."""
    text = text.strip()
    if not text:
        return
    shown = MARKDOWN.render(markdown_text(text))
    expected = markdown_text_visible(text)
    assert shown == f"<p>{expected}</p>\n"


def markdown_text_visible(text: str) -> str:
    """The paragraph a renderer should produce: the text with its joiners, HTML-escaped."""
    joined = re.sub(r"(?i)https?:(?=//)|www(?=\.)|@", lambda m: m.group(0) + "\u2060", text)
    return (
        joined.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace('"', "&quot;")
    )


def test_markdown_message_keeps_code_spans_and_escapes_the_rest() -> None:
    msg = f"column '{EVIL_LINK}' is missing; run `ltrec import NAME --map a=b`"
    assert markdown_message(msg) == (
        "column '" + markdown_text(EVIL_LINK) + "' is missing; run "
        "`ltrec import NAME --map a=b`"
    )
    # stray backticks from the data cannot open a span: they are escaped, the real span kept
    assert markdown_message("a `<b>` and ``c`") == "a `<b>` and \\`\\`c\\`"
