"""The stakeholder report (issue 17 §4): one self-contained HTML file of the findings.

:func:`build_report` computes a typed :class:`Report` (sections of sentences, tables, figures and
raw ``facts``); :func:`render_html` turns it into one HTML page that opens offline (plotly.js is
inlined once, a Content-Security-Policy forbids every network request) and prints cleanly to PDF
(A4 page rules, charts sized to the printable width and never split across pages);
:func:`write_report` writes it atomically. ``ltrec report`` and the app's download button both
call :func:`report_html`, so the file is the same whichever way it was made.

Sections, in order: the tail's share of the catalogue vs of exposure (and purchases), the
neglected categories (:func:`ltrec.analytics.opportunities.opportunities`), the chosen setting's
expected effect on accuracy and tail exposure with 95% intervals (:meth:`RecSession.evaluate` on
the run's test split, paired against the model alone), the verdict of a short feedback-loop
simulation (:mod:`ltrec.simulation`), the data's profile and the definitions used. A section
whose data is missing (no model run, no categories, purchase-only data ...) is replaced by one
sentence that says why.

Every shop string (ids, titles, categories) is HTML-escaped where it meets the page; chart
labels go through :func:`ltrec.charts.text.html_text` (plotly's own markup subset).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.io as pio
import plotly.offline

from ltrec.analytics.backend import open_store
from ltrec.analytics.opportunities import opportunities
from ltrec.analytics.view import ViewParams, compute
from ltrec.app.pipeline import RecSession
from ltrec.app.tune import tuning_run
from ltrec.charts.longtail import bucket_share_figure, lorenz_figure
from ltrec.charts.report import effect_figure
from ltrec.charts.simulation import rounds_figure
from ltrec.definitions import METRICS, metric, pct
from ltrec.errors import BadInputError, LtrecError
from ltrec.evaluation.aggregate import compare
from ltrec.files import atomic_write
from ltrec.models.registry import run_manifest
from ltrec.progress import Progress
from ltrec.rerank import parse_config, to_dict
from ltrec.simulation import SimulationConfig, load_result, simulate
from ltrec.simulation.result import check_sim_id

#: The setting reported when none is given: the Rerank Studio's first re-ranked column.
DEFAULT_SETTING: dict[str, Any] = {"strategy": "tail_boost", "beta": 0.3}
#: The short simulation the report runs when no saved one is named.
SIM_ROUNDS, SIM_USERS = 5, 500
#: Models too slow to refit every simulated round in a report: EASE stands in (and says so).
SLOW_MODELS = ("two_tower", "ncf")
SIM_STAND_IN = "ease"
#: Rows shown of the opportunity tables (the app and the CLI have the full lists).
TOP_ROWS = 10
#: Plotly figures are drawn at this width: the printable width of A4 at 12 mm margins (~703 px).
FIG_WIDTH = 680
#: Metrics of the effect table (keys of :data:`ltrec.definitions.METRICS`), in order.
EFFECT_METRICS = ("ndcg", "recall", "aplt", "tail_coverage", "gini")
#: The simulation's figures named in the report (keys of METRICS).
SIM_METRICS = ("tail_share", "coverage")


# ---------------------------------------------------------------------------- the typed report


@dataclass(frozen=True)
class Table:
    """A small table: a caption, column titles and rows of display text (escaped on render)."""

    caption: str
    columns: list[str]
    rows: list[list[str]]

    def to_dict(self) -> dict[str, Any]:
        return {"caption": self.caption, "columns": self.columns, "rows": self.rows}


@dataclass
class Section:
    """One part of the report.

    Attributes:
        key: stable id (``tail``, ``categories``, ``effect``, ``simulation``, ``profile``,
            ``definitions``); the HTML section's id.
        title: heading.
        text: sentences (plain text).
        tables, figures: what is shown after the sentences.
        facts: the raw numbers behind the sentences (``--json``, tests).
        omitted: when set, the section has no data: only this one sentence is shown.
    """

    key: str
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Any] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    omitted: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "included": self.omitted is None,
            "omitted": self.omitted,
            "text": self.text,
            "tables": [t.to_dict() for t in self.tables],
            "figures": len(self.figures),
            "facts": _clean(self.facts),
        }


@dataclass
class Report:
    """The findings of one dataset under one setting."""

    dataset: str
    created_at: str
    run_id: str | None
    model: str | None
    setting: dict[str, Any]
    setting_label: str
    sections: list[Section]

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "created_at": self.created_at,
            "run_id": self.run_id,
            "model": self.model,
            "setting": self.setting,
            "setting_label": self.setting_label,
            "sections": [s.to_dict() for s in self.sections],
        }


def _clean(obj: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    return obj


# ---------------------------------------------------------------------------- formatting


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    return f"{float(x):.{digits}f}"


def _interval(lo: float | None, hi: float | None, digits: int = 3, sign: bool = True) -> str:
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return "no interval"
    f = f"{{:{'+' if sign else ''}.{digits}f}}"
    return f"[{f.format(lo)}, {f.format(hi)}]"


# ---------------------------------------------------------------------------- sections


def _tail_section(store: Any, stats: Any, buckets: Any, lz: Any) -> Section:
    s = Section("tail", "The tail: share of the catalogue vs share of exposure")
    exp = stats.exposure_event
    s.facts = {
        "tail_item_share": stats.tail_item_share,
        "tail_exposure_share": stats.tail_exposure_share,
        "tail_purchase_share": stats.tail_purchase_share,
        "exposure_event": exp,
        "gini_exposure": stats.gini_exposure,
        "gini_buyers": stats.gini_buyers,
        "bucket_cuts": list(stats.bucket_cuts),
    }
    cuts = ", ".join(f"{c:g}" for c in stats.bucket_cuts)
    if exp is not None and stats.tail_exposure_share is not None:
        s.text.append(
            f"The tail is {pct(stats.tail_item_share)} of the catalogue's {stats.items:,} items "
            f"but gets {pct(stats.tail_exposure_share)} of {exp}s and "
            f"{pct(stats.tail_purchase_share)} of purchases."
        )
        s.text.append(
            f"Exposure Gini ({exp}s per item, the whole catalogue): {stats.gini_exposure:.3f} "
            "(0 = every item shown equally, near 1 = one item shown to everyone)."
        )
    else:
        s.text.append(str(stats.profile.exposure_note))
        s.text.append(
            f"The tail is {pct(stats.tail_item_share)} of the catalogue's {stats.items:,} items "
            f"and takes {pct(stats.tail_purchase_share)} of purchases."
        )
        if stats.gini_buyers is not None:
            s.text.append(
                f"Purchase concentration (Gini of distinct buyers per item): "
                f"{stats.gini_buyers:.3f}."
            )
    s.text.append(
        f"Head and tail by popularity: the head is the smallest set of top items that makes "
        f"{cuts} of interactions; the tail is the rest."
    )
    kpis = ["tail_item_share", "tail_exposure_share", "tail_purchase_share", "gini_exposure"]
    if exp is None:
        kpis = ["tail_item_share", "tail_purchase_share", "tail_buyer_share", "gini_buyers"]
    # the keys of the definitions are the DatasetStats fields (the numbers the Overview shows)
    rows = [[METRICS[key].name, METRICS[key].format(getattr(stats, key))] for key in kpis]
    s.tables.append(Table("Headline numbers", ["", "value"], rows))
    df = buckets.frame
    cols = ["bucket", "items", "item_share"]
    titles = ["bucket", "items", "share of items"]
    if exp is not None:
        cols.append("exposure_share")
        titles.append(f"share of {exp}s")
    cols.append("purchase_share")
    titles.append("share of purchases")
    rows = [
        [str(r["bucket"]), _num(int(r["items"]))] + [pct(float(r[c])) for c in cols[2:]]
        for _, r in df.iterrows()
    ]
    s.tables.append(Table("Popularity buckets", titles, rows))
    s.figures.append(bucket_share_figure(buckets, height=260))
    s.figures.append(lorenz_figure(lz, points=300, height=340))
    return s


def _categories_section(store: Any) -> Section:
    s = Section("categories", "Neglected categories and items to boost")
    opp = opportunities(store, by="category")
    cats, items = opp.categories, opp.items
    if cats.empty:
        s.omitted = opp.note or "This data has no categories to compare."
        return s
    if opp.note:
        s.text.append(str(opp.note))
    under = int((cats["status"] == "under").sum())
    s.facts = {"categories": int(len(cats)), "under_exposed": under, "items": int(len(items))}
    s.text.append(
        f"{len(cats):,} categories, {under:,} of them clearly under-exposed (the upper 95% bound "
        f"of their exposure share below their share of the catalogue); the top "
        f"{min(TOP_ROWS, len(cats))} are shown."
    )
    top = cats.head(TOP_ROWS)
    s.tables.append(
        Table(
            "Neglected categories",
            ["rank", "category", "status", "in words"],
            [[_num(int(r["rank"])), str(r["name"]), str(r["status"]), str(r["verdict"])]
             for _, r in top.iterrows()],
        )
    )  # fmt: skip
    if len(items):
        s.text.append(
            f"{len(items):,} items to boost; the top {min(TOP_ROWS, len(items))} are shown (the "
            "app's Opportunities page and `ltrec opportunities` have the full list)."
        )
        s.tables.append(_items_table(items.head(TOP_ROWS)))
    return s


#: Evidence columns of an item to boost, as D's table names them: column -> (title, format).
ITEM_EVIDENCE: dict[str, tuple[str, str]] = {
    "exposure": ("exposure", "count"),
    "views": ("views", "count"),
    "purchases": ("purchases", "count"),
    "shrunk": ("shrunk conversion", "pct"),
    "lift": ("x shop average", "times"),
    "buyers": ("buyers", "count"),
    "repeat_buyers": ("repeat buyers", "count"),
    "repeat_rate": ("repeat rate", "pct"),
}


def _items_table(items: pd.DataFrame) -> Table:
    shown = [c for c in ITEM_EVIDENCE if c in items.columns and items[c].notna().any()]
    cols = ["rank", "item", "title", "category", *[ITEM_EVIDENCE[c][0] for c in shown]]
    rows = []
    for _, r in items.iterrows():
        row = [_num(int(r["rank"])), str(r["item_id"]), _text(r.get("title")),
               _text(r.get("category"))]  # fmt: skip
        for c in shown:
            v, kind = r[c], ITEM_EVIDENCE[c][1]
            if pd.isna(v):
                row.append("–")
            elif kind == "count":
                row.append(_num(int(v)))
            elif kind == "pct":
                row.append(pct(float(v)))
            else:
                row.append(f"{float(v):.2f}x")
        rows.append(row)
    return Table("Items to boost", cols, rows)


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def _effect_section(
    name: str, run_id: str | None, setting: Any, k: int, n_boot: int, data_dir: Any
) -> tuple[Section, str | None, str | None]:
    """The setting's expected effect on the run's test split; also returns run id and model."""
    s = Section("effect", "The chosen setting's expected effect")
    try:
        rid = tuning_run(name, run_id, data_dir)
    except LtrecError as err:
        if run_id is not None:
            raise  # a run the user named: a bad argument, not a missing section
        s.omitted = (
            f"No evaluated model run to measure the setting on ({err.message}); train one with "
            f"`ltrec train {name} --model ease` or in the Model Lab."
        )
        return s, None, None
    base = RecSession.open(name, rid, data_dir=data_dir)
    model = base.model.name
    boosted = base.with_config(setting)
    seed = int(getattr(base.model.config, "seed", 0) or 0)
    r0 = base.evaluate(k, n_boot, seed=seed)
    r1 = boosted.evaluate(k, n_boot, seed=seed)
    names = [f"{m}@{k}" for m in EFFECT_METRICS if f"{m}@{k}" in r0.metrics]
    d = compare(r1, r0, metrics=names, n_boot=n_boot, seed=seed)
    label = setting.label()
    s.facts = {
        "run_id": rid,
        "model": model,
        "k": k,
        "users": int(r0.metrics[f"ndcg@{k}"].n),
        "metrics": {r["metric"]: {x: r[x] for x in ("base", "value", "delta", "low", "high",
                                                     "rel_delta")} for _, r in d.iterrows()},
    }  # fmt: skip
    by = d.set_index("metric")
    nd, ap = by.loc[f"ndcg@{k}"].to_dict(), by.loc[f"aplt@{k}"].to_dict()
    s.text.append(
        f"Setting: {label}, on run {rid} ({model}), measured on the run's test split "
        f"({s.facts['users']:,} users, lists of {k}); intervals are 95% paired bootstrap "
        "intervals of the change."
    )
    rel = nd["rel_delta"]
    rel_text = f" ({rel:+.1%})" if rel is not None and np.isfinite(rel) else ""
    s.text.append(
        f"Accuracy (NDCG@{k}) goes from {nd['base']:.3f} to {nd['value']:.3f}{rel_text}, "
        f"change {_interval(nd['low'], nd['high'])}; the tail's share of each list (APLT@{k}) "
        f"goes from {pct(ap['base'])} to {pct(ap['value'])}, change "
        f"{_interval(ap['low'], ap['high'])}."
    )
    rows = []
    for m in EFFECT_METRICS:
        key = f"{m}@{k}"
        if key not in by.index:
            continue
        r = by.loc[key].to_dict()
        rec = metric(m)
        up = rec.higher_is_better
        lo, hi = r["low"], r["high"]
        if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
            word = "no interval"
        elif lo <= 0 <= hi:
            word = "no detectable change"
        else:
            word = "better" if (r["delta"] > 0) == up else "worse"
        rows.append(
            [rec.label(k), rec.format(r["base"]), rec.format(r["value"]),
             f"{r['delta']:+.3f} {_interval(lo, hi)}", word]
        )  # fmt: skip
    s.tables.append(
        Table("Model alone vs with the setting", ["metric", "model alone", label,
                                                  "change [95% interval]", "reading"], rows)
    )  # fmt: skip
    fig_metrics = {f"{m}@{k}": metric(m).label(k) for m in ("ndcg", "recall", "aplt")}
    s.figures.append(effect_figure(d, fig_metrics, label))
    return s, rid, model


def _policies(model: str | None, params: dict[str, Any], setting: Any) -> tuple[list, str]:
    """The two simulated policies (model alone, model + setting) and a sentence on the model."""
    if model is None:
        model, params, why = "popularity", {}, "popularity stands in (no model run yet)"
    elif model in SLOW_MODELS:
        why = f"{SIM_STAND_IN.upper()} stands in for the {model} run (refitted every round)"
        model, params = SIM_STAND_IN, {}
    else:
        why = f"the run's model ({model}) is refitted every round"
    base = {"model": model, "params": params}
    return [base, {**base, "rerank": to_dict(setting)}], why


def _simulation_section(
    name: str,
    simulation: str,
    model: str | None,
    params: dict[str, Any],
    setting: Any,
    k: int,
    data_dir: Any,
    progress: Progress,
) -> Section:
    s = Section("simulation", "The simulation's verdict")
    if simulation == "none":
        s.omitted = "No simulation was run for this report (--simulation none)."
        return s
    if simulation == "auto":
        policies, why = _policies(model, params, setting)
        cfg = SimulationConfig(rounds=SIM_ROUNDS, users=SIM_USERS, k=k)
        result = simulate(name, policies, cfg, save=False, data_dir=data_dir, progress=progress)
        s.text.append(
            f"A short feedback-loop simulation: {cfg.rounds} rounds of {cfg.users} users, lists "
            f"of {cfg.k}; {why}."
        )
    else:
        result = load_result(name, simulation, data_dir)
        s.text.append(f"The saved simulation {result.sim_id} ({result.config.rounds} rounds).")
    um = result.user_model
    s.text.append(f"Who responds: {um.get('name')}: {um.get('description', '')}".rstrip(": "))
    final = result.final().set_index("policy")
    # the tail's share of all slots over all rounds (one round is noisy; slots per round are
    # the same for every policy, so this is the mean of the rounds' shares weighted by slots)
    r = result.rounds.assign(tail_slots=result.rounds["tail_share"] * result.rounds["slots"])
    sums = r.groupby("policy", sort=False)[["tail_slots", "slots"]].sum()
    final["tail_share_all"] = sums["tail_slots"] / sums["slots"].replace(0, np.nan)
    final = final.reindex(result.labels).reset_index()
    s.facts = {"labels": list(result.labels), "rounds": int(result.config.rounds),
               "final": final.to_dict("records")}  # fmt: skip
    if len(final) >= 2:
        a, b = final.iloc[0], final.iloc[-1]
        s.text.append(
            f"Over {result.config.rounds} rounds, tail items filled {pct(b['tail_share_all'])} "
            f"of the slots under {b['policy']} against {pct(a['tail_share_all'])} under "
            f"{a['policy']}; exposure Gini {b['exposure_gini_cum']:.3f} against "
            f"{a['exposure_gini_cum']:.3f}; purchases {int(b['cum_purchases']):,} (tail "
            f"{int(b['cum_tail_purchases']):,}) against {int(a['cum_purchases']):,} (tail "
            f"{int(a['cum_tail_purchases']):,})."
        )
    rows = [
        [str(r["policy"]), pct(r["tail_share_all"]), _num(r["exposure_gini_cum"]),
         pct(r["coverage_cum"]), _num(int(r["cum_purchases"])),
         _num(int(r["cum_tail_purchases"]))]
        for _, r in final.iterrows()
    ]  # fmt: skip
    s.tables.append(
        Table("All rounds", ["policy", "tail share of slots", "exposure Gini",
                             "catalogue coverage", "purchases", "tail purchases"], rows)
    )  # fmt: skip
    s.figures.append(rounds_figure(result, height=620))
    return s


def _profile_section(stats: Any) -> Section:
    p = stats.profile
    s = Section("profile", "The data")
    span = (
        f"{stats.first_ts:%Y-%m-%d} to {stats.last_ts:%Y-%m-%d}" if stats.first_ts else "no events"
    )
    rows = [
        ["users", f"{stats.users:,}"],
        ["items", f"{stats.items:,}"],
        *[[f"{t} events", f"{n:,}"] for t, n in p.event_counts.items()],
        ["time span", span],
        ["exposure measured as", f"{p.exposure_event}s" if p.exposure_event else "not measured"],
        *[[col, "yes" if has else "no"] for col, has in p.optional_columns().items()],
        ["user segments", ", ".join(p.segment_columns) or "none"],
        [
            "repeat purchases",
            "no purchases"
            if p.repeat_purchase_share is None
            else f"{pct(p.repeat_purchase_share)} of bought (user, item) pairs",
        ],
    ]
    s.tables.append(Table("Dataset profile", ["", "value"], rows))
    s.facts = p.to_dict()
    s.text.append(f"{sum(p.event_counts.values()):,} events from {span}.")
    return s


#: How a metric's direction reads in the definitions table.
BETTER = {"higher": "higher", "lower": "lower"}


def _definitions_section(keys: list[str]) -> Section:
    s = Section("definitions", "Definitions used")
    chosen = [METRICS[k] for k in keys if k in METRICS]
    if not chosen:
        s.omitted = "No metric definitions are recorded for the numbers above."
        return s
    rows = []
    for m in chosen:
        rows.append([m.name, m.formula, m.unit, BETTER.get(m.direction, "–"), m.reference or "–"])
    s.tables.append(Table("Metrics", ["metric", "formula", "unit", "better", "source"], rows))
    s.text.append("Every number in this report follows these definitions (ltrec.definitions).")
    s.facts = {"keys": [m.key for m in chosen]}
    return s


# ---------------------------------------------------------------------------- build


def build_report(
    name: str,
    *,
    run: str | None = None,
    setting: Any = None,
    k: int = 10,
    simulation: str = "auto",
    n_boot: int = 200,
    data_dir: Path | str | None = None,
    progress: Progress | None = None,
) -> Report:
    """The report of dataset ``name`` for the re-ranking ``setting`` (JSON text, dict or config;
    None: :data:`DEFAULT_SETTING`) on run ``run`` (None: the production run's evaluation run,
    else the newest run, as ``ltrec tune`` picks).

    Args:
        simulation: ``"auto"`` (a short simulation of the model alone vs with the setting),
            ``"none"``, or the id of a saved simulation to report.

    Raises:
        ConfigError: a bad setting (before any data is read).
        DatasetNotFoundError: no such dataset.
        RegistryError / NoTestSplitError: a run named explicitly that cannot be evaluated.
    """
    cfg = parse_config(DEFAULT_SETTING if setting is None else setting)
    if getattr(cfg, "strategy", "none") == "none" and not cfg.rules.active:
        raise BadInputError(
            "the report compares a re-ranking setting with the model alone: the base order "
            "is the model alone",
            hint='give a setting such as \'{"strategy": "tail_boost", "beta": 0.3}\'',
        )
    if simulation not in ("auto", "none"):
        check_sim_id(simulation)
    if not 1 <= int(k) <= 100:
        raise BadInputError(f"k must be 1..100, got {k}")
    if run is not None:  # a run the user named must exist and be evaluable: check it first
        tuning_run(name, run, data_dir)
    say = progress or (lambda done, msg: None)
    say(0.0, f"reading {name}")
    store = open_store(name, data_dir)
    params = ViewParams()
    stats = compute("stats", store, params)
    sections = [
        _tail_section(
            store, stats, compute("bucket_table", store, params), compute("lorenz", store, params)
        )
    ]
    say(0.1, "neglected categories")
    cats = _guard("categories", "Neglected categories", lambda: _categories_section(store))
    sections.append(cats)
    say(0.2, "evaluating the setting")
    effect, rid, model = _effect_section(name, run, cfg, k, n_boot, data_dir)
    sections.append(effect)
    run_params: dict[str, Any] = {}
    if rid is not None:
        run_params = dict(run_manifest(name, rid, data_dir).get("params") or {})
    say(0.5, "simulating")
    sections.append(
        _guard(
            "simulation",
            "The simulation's verdict",
            lambda: _simulation_section(
                name,
                simulation,
                model,
                run_params,
                cfg,
                k,
                data_dir,
                lambda d, m: say(0.5 + 0.45 * d, m),
            ),
        )  # fmt: skip
    )
    sections.append(_profile_section(stats))
    sections.append(_definitions_section(_metric_keys(stats)))
    say(1.0, "report ready")
    return Report(
        dataset=name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        run_id=rid,
        model=model,
        setting=to_dict(cfg),
        setting_label=cfg.label(),
        sections=sections,
    )


def _metric_keys(stats: Any) -> list[str]:
    """Definition keys of the numbers the report shows."""
    keys = ["tail_item_share", "tail_purchase_share", *EFFECT_METRICS, *SIM_METRICS]
    if stats.exposure_event is not None:
        keys[1:1] = ["tail_exposure_share", "gini_exposure"]
    else:
        keys[1:1] = ["gini_buyers", "tail_buyer_share"]
    return list(dict.fromkeys(keys))


def _guard(key: str, title: str, make: Callable[[], Section]) -> Section:
    """A section, or the section omitted with the domain error's sentence (the report still
    has every other part: a simulation that cannot run must not cost the whole report)."""
    try:
        return make()
    except LtrecError as err:
        return Section(key, title, omitted=f"Not available for this data: {err.message}")


# ---------------------------------------------------------------------------- render

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #1f2328; margin: 0 auto; max-width: 720px; padding: 24px 20px 48px; }
header h1 { font-size: 24px; margin: 0 0 4px; }
header p { margin: 2px 0; color: #57606a; }
section { margin-top: 28px; }
h2 { font-size: 18px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px;
     break-after: avoid; page-break-after: avoid; }
p { margin: 6px 0; }
p.omitted { color: #57606a; font-style: italic; }
table { border-collapse: collapse; width: 100%; margin: 10px 0; font-size: 12.5px;
        break-inside: avoid; page-break-inside: avoid; table-layout: auto; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { text-align: left; vertical-align: top; padding: 3px 6px; border-bottom: 1px solid #eaeef2;
         overflow-wrap: break-word; }
th { background: #f6f8fa; white-space: nowrap; }
td.long { overflow-wrap: anywhere; }
.chart { width: 680px; max-width: 100%; margin: 8px 0; break-inside: avoid;
         page-break-inside: avoid; overflow: hidden; }
code { font-size: 12px; }
@page { size: A4; margin: 12mm; }
@media print {
  body { max-width: none; padding: 0; }
  section { break-inside: auto; }
  .modebar-container { display: none !important; }
}
"""

#: Nothing may load from anywhere: scripts and styles are inline, images only data: URLs.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; "
    "form-action 'none'"
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _code_spans(text: str) -> str:
    """Escaped text with `code` spans of fixed template text (commands) as <code>."""
    parts = _e(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in t.rows)
    return (
        f"<table><caption>{_e(t.caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _cell(value: str) -> str:
    # a long unbroken token (an id, a URL) may break anywhere, so no table outgrows the page;
    # words elsewhere stay whole
    long = any(len(w) > LONG_TOKEN for w in str(value).split())
    return f'<td class="long">{_e(value)}</td>' if long else f"<td>{_e(value)}</td>"


#: Longest token a table cell keeps whole.
LONG_TOKEN = 24


def _figure_html(fig: Any, div_id: str) -> str:
    fig = fig.update_layout(width=FIG_WIDTH, autosize=False)
    inner = pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displayModeBar": False, "responsive": False},
    )
    return f'<div class="chart">{inner}</div>'


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (plotly.js inlined once, no network)."""
    parts = []
    n_fig = 0
    toc = []
    for s in report.sections:
        toc.append(f'<li><a href="#{_e(s.key)}">{_e(s.title)}</a></li>')
        body = [f'<section id="{_e(s.key)}"><h2>{_e(s.title)}</h2>']
        if s.omitted is not None:
            body.append(f'<p class="omitted">{_code_spans(s.omitted)}</p>')
        else:
            body += [f"<p>{_code_spans(t)}</p>" for t in s.text]
            body += [_table_html(t) for t in s.tables]
            for fig in s.figures:
                n_fig += 1
                body.append(_figure_html(fig, f"fig-{s.key}-{n_fig}"))
        body.append("</section>")
        parts.append("".join(body))
    run = f"run {report.run_id} ({report.model})" if report.run_id else "no evaluated model run"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>ltrec report: {_e(report.dataset)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
        "</head><body><header>"
        f"<h1>Long-tail report: {_e(report.dataset)}</h1>"
        f"<p>Setting: {_e(report.setting_label)} · {_e(run)} · made "
        f"{_e(report.created_at)} by ltrec</p></header>"
        f"<nav><ul>{''.join(toc)}</ul></nav>"
        f"{''.join(parts)}</body></html>\n"
    )


def write_report(report: Report, out: Path | str) -> dict[str, Any]:
    """Write :func:`render_html` to ``out`` (``.html``) atomically; a summary for ``--json``."""

    out = Path(out)
    check_out(out)
    text = render_html(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, text)
    return {**report.to_dict(), "out": str(out), "bytes": len(text.encode("utf-8"))}


def check_out(out: Path) -> None:
    if out.suffix.lower() not in (".html", ".htm"):
        raise BadInputError(
            f"cannot write {out.name!r}: the report is an HTML file",
            hint="end --out with .html",
        )


def report_html(name: str, **kw: Any) -> bytes:
    """:func:`build_report` + :func:`render_html` as UTF-8 bytes (the app's download)."""
    return render_html(build_report(name, **kw)).encode("utf-8")
