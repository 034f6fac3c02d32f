"""AppTest of the Model Lab page, and the background training job table."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from ltrec.app.auth import LOCAL
from ltrec.errors import TrainingBusyError
from ltrec.models.registry import list_runs
from ltrec.store.connect import training_lock
from ltrec.ui import training
from tests.app.conftest import APP

PAGE = "app_pages/model_lab.py"


@pytest.fixture(autouse=True)
def _jobs():
    training.clear()
    yield
    training.wait("demo", timeout=60)
    training.clear()


def _open(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _train(at: AppTest, model: str, **fields) -> AppTest:
    at.selectbox(key="lab_model").set_value(model).run()
    for name, value in fields.items():
        at.selectbox(key=f"lab_{model}_{name}").set_value(value)
    next(b for b in at.button if b.label == "Train").click().run()
    assert not at.exception, at.exception
    job = training.wait("demo", timeout=90)
    assert job is not None and job.status == "done", job and job.error
    at.run()
    assert not at.exception, at.exception
    return at


def test_empty_data_dir() -> None:
    at = _open()
    assert at.title[0].value == "Model Lab"
    assert any("no dataset" in i.value for i in at.info)


def test_train_from_the_page_then_activate_compare_delete(demo) -> None:
    at = _open()
    assert any("No runs yet" in i.value for i in at.info)
    # The form is generated from the config: popularity's `by` is a Literal -> a selectbox.
    at = _train(at, "popularity")
    runs = at.dataframe[0].value
    assert runs["model"].tolist() == ["popularity"]
    assert runs["ndcg"].iloc[0].count("[") == 1  # mean [low, high]
    assert any("Trained popularity" in s.value for s in at.success)

    at = _train(at, "popularity", by="weight")
    runs = at.dataframe[0].value
    assert len(runs) == 2 and runs["settings"].tolist() == ["by=weight", "by=users"]
    # key settings in the table, every parameter on expand
    assert list(runs.columns[:4]) == ["active", "run", "model", "settings"]
    at.selectbox(key="lab_run").set_value(runs["run"].iloc[0]).run()
    assert at.code[0].value == '{\n "by": "weight"\n}'
    at.selectbox(key="lab_run").set_value(runs["run"].iloc[1]).run()
    assert at.code[0].value == '{\n "by": "users"\n}'

    run_id = at.selectbox(key="lab_run").value
    at.button(key="lab_activate").click().run()
    assert at.query_params["run"] == run_id  # AppTest: one value is a str
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[run_id, "active"] == "●" and (table["active"] == "●").sum() == 1

    at.multiselect(key="lab_compare").set_value(table.index.tolist()).run()

    at.button(key="lab_compare_go").click().run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) >= 4  # runs scatter, table, deltas, trade-off
    table = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert "change vs base" in json.dumps(table)
    assert "p=" not in json.dumps(table)  # words and intervals, never a p-value
    # one sentence per compared run, in words
    base, other = at.multiselect(key="lab_compare").value
    (line,) = [m.value for m in at.markdown if m.value.startswith("- ")]
    line = line.replace("\u2060", "").replace("\\", "")  # the markdown escapes of data text
    assert line.startswith(f"- {other} against {base}: ")
    # two popularity runs: their NDCG difference is within the interval
    assert line.count("NDCG@10") == 1
    assert re.search(r"no detectable difference: [-+][\d.]+% NDCG@10", line), line

    assert at.button(key="lab_delete").disabled
    at.checkbox(key=f"lab_sure_{run_id}").check().run()
    at.button(key="lab_delete").click().run()
    assert not at.exception, at.exception
    assert [r.run_id for r in list_runs("demo")] != [] and run_id not in {
        r.run_id for r in list_runs("demo")
    }
    assert len(at.dataframe[0].value) == 1


def test_active_run_from_url(demo) -> None:
    at = _open()
    _train(at, "popularity")
    run_id = list_runs("demo")[0].run_id
    at = _open(run=run_id)
    assert any(run_id in c.value for c in at.caption)
    at = _open(run="no-such-run")
    assert not any("Active model" in c.value for c in at.caption)


def test_one_training_per_dataset(demo) -> None:
    # Another process holds the registry's training lock: the job fails with a clear message.
    with training_lock("demo"):
        training.start("demo", "popularity", principal=LOCAL)
        job = training.wait("demo")
    assert job.status == "failed"
    assert isinstance(job.error, TrainingBusyError)
    assert "already being trained" in job.error.message
    assert list_runs("demo") == []
    # A job still running in this process: a second request is refused, nothing starts.
    training._jobs["demo"] = training.Job("demo", "popularity", {})
    with pytest.raises(TrainingBusyError):
        training.start("demo", "popularity", principal=LOCAL)
    training._jobs["demo"].status = "done"


def test_training_form_speaks_in_words(demo) -> None:
    from ltrec.ui.models import MODEL_SUMMARY

    at = _open()
    at.selectbox(key="lab_model").set_value("ease").run()
    assert not at.exception, at.exception
    assert MODEL_SUMMARY["ease"] in [c.value for c in at.caption]
    assert not any("docstring" in c.value or "module doc" in c.value for c in at.caption)
    labels = [w.label for w in (*at.number_input, *at.selectbox, *at.checkbox, *at.text_input)]
    form = [lab for lab in labels if lab not in ("Dataset", "Model")]
    assert form and not [lab for lab in form if "_" in lab]  # no raw config names
    assert "List length K for the evaluation (1–100 items)" in labels
