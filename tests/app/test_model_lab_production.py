"""AppTest of the Model Lab's "Promote to production": a background all-data fit of the chosen
run, marked as the dataset's production run; the runs table and caption show it."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from ltrec.app import services
from ltrec.app.auth import LOCAL
from ltrec.models.registry import list_runs, production_run, run_manifest
from ltrec.ui import training
from tests.app.conftest import APP

PAGE = "app_pages/model_lab.py"


@pytest.fixture(autouse=True)
def _jobs():
    training.clear()
    yield
    training.wait("demo", timeout=60)
    training.clear()


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_promote_from_the_page(demo: str) -> None:
    src = services.train(LOCAL, demo, "popularity").run_id
    at = _open()
    assert at.selectbox(key="lab_run").value == src
    assert not any(c.value.startswith("Production run") for c in at.caption)
    at.button(key="lab_promote").click().run()
    assert not at.exception, at.exception
    job = training.wait(demo, timeout=90)
    assert job is not None and job.status == "done", job and job.error
    assert (job.kind, job.source) == ("promote", src)
    at.run()
    assert not at.exception, at.exception

    prod = production_run(demo)
    assert prod == job.run_id and prod != src
    manifest = run_manifest(demo, prod)
    assert manifest["split"]["kind"] == "none" and manifest["from_run"] == src
    assert [r.run_id for r in list_runs(demo)] == [src, prod]
    assert any(f"Promoted run {src}" in s.value for s in at.success)
    assert any(c.value.startswith(f"Production run: **{prod}**") for c in at.caption)
    table = at.dataframe[0].value.set_index("run")
    assert table["fit"].to_dict() == {prod: "production", src: ""}
    # the production run itself offers no button to promote it again
    at.selectbox(key="lab_run").set_value(prod).run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if b.key == "lab_promote"]
    # comparing lists only runs with a test split
    assert at.multiselect(key="lab_compare").options == [src]


def test_a_viewer_cannot_start_a_promotion(demo: str, data_dir) -> None:  # noqa: ANN001
    from ltrec.app import audit
    from ltrec.app.auth import PermissionDenied, Principal, Role

    src = services.train(LOCAL, demo, "popularity").run_id
    viewer = Principal("vi@example.com", Role.VIEWER, name="Vi")
    with pytest.raises(PermissionDenied, match="may not train"):
        training.promote(demo, src, data_dir=data_dir, principal=viewer)
    assert training.current(demo) is None  # nothing started
    entry = audit.read(data_dir)[-1]
    assert (entry.who, entry.action, entry.outcome) == (viewer.email, "promote", "denied")
    assert production_run(demo) is None and [r.run_id for r in list_runs(demo)] == [src]
