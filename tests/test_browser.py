"""The MLflow UI, in headless Chromium, against the database of a real (tiny) workflow run."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from pathlib import Path
from urllib.parse import urlparse

import pytest
from browser import open_page
from conftest import REPO
from embrm.io import read_json
from embrm.tracking import run_name
from mlflow_server import MlflowServer

METRIC = "bon_gain_normalized"


def experiment_id(db: Path, name: str) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        row = con.execute(
            "select experiment_id from experiments where name = ?", (name,)
        ).fetchone()
    assert row, f"experiment {name!r} not in {db}"
    return str(row[0])


def toggle_column(page, name: str) -> None:
    """Tick or untick one column in the runs table's column selector (which must be open)."""
    page.get_by_placeholder("Search columns").fill(name)
    title = page.locator(".du-bois-light-tree-title").filter(
        has_text=re.compile(f"^{re.escape(name)}$")
    )
    node = page.locator(".du-bois-light-tree-treenode").filter(has=title)
    node.locator(".du-bois-light-tree-checkbox").click()


def autosize(page, col_id: str) -> None:
    """Fit a column to its content (a double click on its resize handle), for the screenshot."""
    handle = page.locator(f".ag-header-cell[col-id='{col_id}'] .ag-header-cell-resize")
    if handle.count():
        handle.first.dblclick()


@pytest.mark.slow
def test_mlflow_ui_lists_the_runs_and_compares_a_metric(tiny_workflow, tmp_path):
    results = tiny_workflow / "results" / "default"
    # The server gets a copy: it must never write into the shared fixture's database.
    db = tmp_path / "mlflow.db"
    shutil.copy(results.parent / "mlflow.db", db)
    records = [read_json(p) for p in sorted((results / "runs").glob("**/metrics.json"))]
    expected = {run_name(r): r["metrics"]["mean"][METRIC] for r in records}
    assert len(expected) == len(records) > 0
    experiment = experiment_id(db, read_json(results / "tracking/synced.json")["experiment"])

    outside: list[str] = []
    with (
        MlflowServer(db, tmp_path / "artifacts", tmp_path / "server.log") as server,
        open_page(viewport=(1700, 900)) as page,
    ):
        # Nothing may leave the machine: the UI must work from the local server alone.
        def guard(route):
            if urlparse(route.request.url).hostname in ("127.0.0.1", None):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", guard)
        page.goto(f"{server.uri}/#/experiments/{experiment}/runs?workflowType=machine_learning")
        page.get_by_text("workflow · ").first.wait_for(timeout=90_000)
        close = page.get_by_role("button", name="Close")  # the assistant side panel
        if close.count():
            close.first.click()
        # Child runs are nested under the invocation's parent run: expand it.
        page.locator("button[data-component-id*='runnamecellrenderer']").first.click()
        page.get_by_text(next(iter(expected))).first.wait_for(timeout=30_000)
        names = page.locator("a[href*='/runs/']").all_inner_texts()
        assert set(expected) <= set(names)
        assert sum(n.startswith("workflow · ") for n in names) == 1
        assert len(names) == len(expected) + 1

        # Show a metric as a column, as one does to compare runs.
        page.get_by_role("button", name="Columns", exact=True).click()
        for column in (METRIC, "bon_gain", "spearman", "Dataset", "Source", "Models"):
            toggle_column(page, column)
        page.keyboard.press("Escape")
        col_id = f"metrics.`{METRIC}`"
        header = page.locator(f".ag-header-cell[col-id='{col_id}']")
        header.wait_for(timeout=30_000)
        assert header.inner_text().strip() == METRIC
        for column in ("attributes.`Run Name`", col_id, "metrics.`bon_gain`", "metrics.`spearman`"):
            autosize(page, column)

        # Each run's row shows its own value of the metric.
        rows = page.locator(
            ".ag-center-cols-container .ag-row, .ag-pinned-left-cols-container .ag-row"
        )
        shown: dict[str, float] = {}
        for index in range(len(names)):
            row_cells = page.locator(f".ag-row[row-index='{index}']")
            name = row_cells.locator("a[href*='/runs/']").first.inner_text()
            value = row_cells.locator(f".ag-cell[col-id='{col_id}']").first.inner_text()
            if name in expected:
                shown[name] = float(value)
        assert rows.count() >= len(names)
        assert shown.keys() == expected.keys()
        for name, value in shown.items():
            assert value == pytest.approx(expected[name], rel=1e-9, abs=1e-12)

        shot = tmp_path / "mlflow-ui.png"
        page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    assert not outside, outside
    if os.environ.get("EMBRM_UPDATE_DOC_FIGURES"):
        target = REPO / "docs/figures/mlflow-ui.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target)
