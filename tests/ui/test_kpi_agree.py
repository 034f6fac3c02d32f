"""Every page on the demo and on a purchase-only shop: a KPI shown on two pages agrees.

Each page of app.py's ``PAGES`` is rendered once per dataset with AppTest (module-scoped: one
render per page and dataset). A KPI is found wherever a page shows it: an ``st.metric`` labelled
with its record's name (:data:`ltrec.definitions.METRICS`), the tail row of the Long Tail's
bucket table, the Data page's dataset row, a Lorenz curve's "(Gini x)" legend. Every KPI found on
two or more pages must show the same value, formatted by :func:`ltrec.definitions.fmt`, under the
record's name.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ltrec.definitions import METRICS, fmt
from tests.analytics.conftest import orders_store
from tests.app.conftest import APP

PAGES = re.findall(r'st\.Page\(\s*"(app_pages/[A-Za-z0-9_]+\.py)"', Path(APP).read_text())
BY_NAME = {m.name: k for k, m in METRICS.items()}
#: Long Tail bucket-table column -> the KPI its tail row is.
BUCKET_COLUMNS = {
    "item_share": "tail_item_share",
    "exposure_share": "tail_exposure_share",
    "purchase_share": "tail_purchase_share",
    "buyer_share": "tail_buyer_share",
}
#: Data page dataset-table column -> KPI.
DATASET_COLUMNS = {
    "tail_items": "tail_item_share",
    "tail_exposure": "tail_exposure_share",
    "gini": "gini_exposure",
}
GINI_LEGEND = re.compile(r"^(?P<series>.+) \(Gini (?P<value>[^)]+)\)$")

# dataset kind -> (dataset name, exposure event, KPIs that must appear on two pages at least)
KINDS = {
    "demo": (
        "demo",
        "impression",
        {"tail_item_share", "tail_exposure_share", "tail_purchase_share", "gini_exposure"},
    ),
    "purchase_only": (
        "shop",
        None,
        {"tail_item_share", "tail_purchase_share", "tail_buyer_share", "gini_buyers"},
    ),
}

Seen = dict[str, list[tuple[str, str, str]]]  # KPI key -> [(page, label, value)]


def _render(page: str) -> AppTest:
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page(page).run()
    assert not at.exception, (page, at.exception)
    return at


def _columns_config(df) -> dict:
    raw = df.proto.columns
    return json.loads(raw) if raw else {}


def _kpis(page: str, at: AppTest, dataset: str, exposure: str | None, seen: Seen) -> list[str]:
    """Record every KPI the page shows in ``seen``; return mislabelled ones."""
    wrong = []
    for m in at.metric:
        key = BY_NAME.get(m.label)
        for k, rec in METRICS.items():  # a recorded definition must carry its recorded name
            if (m.help or "").startswith(rec.help) and m.label != rec.name:
                wrong.append(f"{page}: {m.label!r} shows {k} (named {rec.name!r})")
        if key is not None:
            seen.setdefault(key, []).append((page, m.label, m.value))
    for el in at.dataframe:
        df = el.value
        if not isinstance(df, pd.DataFrame):
            continue
        config = _columns_config(el)
        if "bucket" in df.columns and "item_share" in df.columns:
            tail = df[df["bucket"].astype(str) == "tail"].iloc[0]
            for col, key in BUCKET_COLUMNS.items():
                if col in df.columns and pd.notna(tail[col]):
                    seen.setdefault(key, []).append((page, "(bucket table)", fmt(key, tail[col])))
        if "dataset" in df.columns and "tail_items" in df.columns:
            row = df[df["dataset"] == dataset].iloc[0]
            for col, key in DATASET_COLUMNS.items():
                if col in df.columns and pd.notna(row[col]):
                    label = config.get(col, {}).get("label", col)
                    seen.setdefault(key, []).append((page, label, fmt(key, row[col])))
    for chart in at.get("plotly_chart"):
        for trace in json.loads(chart.proto.spec)["data"]:
            hit = GINI_LEGEND.match(str(trace.get("name") or ""))
            if not hit:
                continue
            series = hit["series"]
            key = (
                "gini_buyers"
                if series.startswith("buyers per item")
                else "gini_exposure"
                if series == exposure
                else None
            )
            if key is not None:
                seen.setdefault(key, []).append((page, "(Lorenz legend)", hit["value"]))
    return wrong


@pytest.fixture(scope="module", params=list(KINDS))
def rendered(
    request: pytest.FixtureRequest,
    _demo_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Seen, list[str]]]:
    """Every page rendered on one dataset: ``(kind, KPIs seen, mislabelled KPIs)``."""
    kind = request.param
    name, exposure, _ = KINDS[kind]
    root = tmp_path_factory.mktemp(f"kpi_{kind}")
    if kind == "demo":
        from ltrec.models.train import train

        shutil.copy(_demo_file, root / "demo.duckdb")
        train("demo", "ease", n_boot=0, data_dir=root)  # the Studio and Model Lab show a run
    else:
        orders_store(name, root)
    seen: Seen = {}
    wrong: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTREC_DATA_DIR", str(root))
        mp.setenv("LTREC_DATASET", name)
        for page in PAGES:
            wrong += _kpis(page, _render(page), name, exposure, seen)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield kind, seen, wrong


def test_every_page_renders_and_kpis_carry_their_names(rendered) -> None:
    kind, seen, wrong = rendered
    assert not wrong, wrong
    for key, shown in seen.items():
        for page, label, _ in shown:
            if not label.startswith("("):  # a metric or a labelled column
                assert label == METRICS[key].name, (kind, key, page, label)


def test_a_kpi_on_two_pages_has_one_value(rendered) -> None:
    kind, seen, _ = rendered
    shared = {k: v for k, v in seen.items() if len({page for page, _, _ in v}) >= 2}
    # not vacuous: the headline KPIs do appear on two pages at least
    assert KINDS[kind][2] <= set(shared), (kind, sorted(shared))
    for key, shown in shared.items():
        assert len({value for _, _, value in shown}) == 1, (kind, key, shown)
