"""The real Snakemake workflow end to end: job plan, outputs, determinism, resume."""

from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, TINY_CONFIG, snakemake
from embrm.config import Plan, load

# Columns that legitimately differ between two runs of the same config.
VOLATILE = {"fit_seconds", "predict_seconds", "evaluate_seconds"}


def expected_jobs(plan: Plan) -> dict[str, int]:
    runs = plan.runs
    figures = 1 + len({plan.annotator_spec(r.annotator).get("beta") for r in runs}) // 2
    return {
        "world": len({r.world for r in runs}),
        "pairs": len({(r.world, r.design, r.n, r.seed) for r in runs}),
        "annotate": len({(r.world, r.design, r.n, r.seed, r.annotator) for r in runs}),
        "train": len(runs),
        "evaluate": len(runs),
        "summarize": 1,
        "track": 1,
        "config_snapshot": 1,
        "all": 1,
        "_figures_at_least": figures,
    }


def job_stats(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_dry_run_lists_the_default_grid(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = snakemake(tmp_path, "-n", "--cores", "2")
    stats = job_stats(result.stdout)
    expected = expected_jobs(Plan(load(REPO / "config.yaml")))
    for rule, count in expected.items():
        if not rule.startswith("_"):
            assert stats[rule] == count, rule
    assert stats["figure"] >= expected["_figures_at_least"]
    assert stats["total"] == sum(v for k, v in stats.items() if k != "total")


def test_tiny_workflow_produces_every_output(tiny_workflow):
    plan = Plan(TINY_CONFIG)
    results = tiny_workflow / "results" / "default"
    summary = pd.read_csv(results / "summary.csv")
    assert len(summary) == len(plan.runs)
    assert set(summary["head"]) == {"bt-mlp", "clf-lgb"}
    assert summary["bon_gain"].notna().all() and summary["spearman"].notna().all()
    assert (results / "summary.parquet").exists() and (results / "aggregate.csv").exists()
    for run in plan.runs:
        run_dir = results / "runs" / run.run_dir
        predictions = np.load(run_dir / "predictions.npy")
        assert predictions.shape == (1, 40, 50)
        assert (run_dir / "model").is_dir() and (run_dir / "curves.csv").exists()
    assert list((results / "figures").glob("*.png"))
    with sqlite3.connect(results.parent / "mlflow.db") as db:
        keys = db.execute("select value from tags where key = 'embrm.run_key'").fetchall()
    assert len(keys) == len(set(keys)) == len(plan.runs)


def metric_frame(path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    return frame.drop(columns=[c for c in frame.columns if c in VOLATILE])


@pytest.mark.slow
def test_same_config_gives_identical_numbers_on_one_core(tiny_workflow, tmp_path):
    """The same config (training.threads: 2) at --cores 1: Snakemake lowers the rules' threads
    to 1, but every job still runs the configured 2 threads, so every number and prediction is
    the same to the bit as at --cores 2 (docs/heads.md#determinism)."""
    config = yaml.safe_load((tiny_workflow / "config.yaml").read_text())
    snakemake(tmp_path, "--cores", "1", config=config)
    pd.testing.assert_frame_equal(
        metric_frame(tiny_workflow / "results/default/summary.csv"),
        metric_frame(tmp_path / "results/default/summary.csv"),
    )
    for run in Plan(config).runs:
        own = f"results/default/runs/{run.run_dir}"
        assert (tmp_path / own / "predictions.npy").read_bytes() == (
            tiny_workflow / own / "predictions.npy"
        ).read_bytes()
        info = json.loads((tmp_path / own / "train.json").read_text())
        assert info["threads"] == 2  # the configured count, not --cores


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_results(tiny_workflow, tmp_path):
    (tmp_path / "config.yaml").write_text((tiny_workflow / "config.yaml").read_text())
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(tmp_path), "--cores", "2"]  # fmt: skip
    # A terminal's Snakemake gets SIGINT with its default action. A suite started in the
    # background (`make test &`) would pass SIGINT on ignored, and Python then never raises
    # KeyboardInterrupt; restore the default in the child so the test means the same anywhere.
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True,
                               preexec_fn=default_sigint)  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(
        tmp_path.glob("results/default/runs/**/train.json")
    ):
        time.sleep(0.5)
    # Interrupt while training jobs are in flight, as a user's Ctrl-C would.
    import os

    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=120)
    assert not (tmp_path / "results/default/summary.csv").exists()
    snakemake(tmp_path, "--cores", "2")
    pd.testing.assert_frame_equal(
        metric_frame(tiny_workflow / "results/default/summary.csv"),
        metric_frame(tmp_path / "results/default/summary.csv"),
    )
    # A further invocation finds nothing to do.
    again = snakemake(tmp_path, "-n", "--cores", "2")
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_cell_scoring_gives_the_same_numbers_with_one_read_per_cell(tiny_workflow, tmp_path):
    config = yaml.safe_load((tiny_workflow / "config.yaml").read_text())
    config["training"] = {"scoring": "cell"}
    plan = Plan(config)
    cells = {(r.world, r.design, r.n, r.seed) for r in plan.runs}
    planned = job_stats(snakemake(tmp_path, "-n", "--cores", "2", config=config).stdout)
    assert planned["score"] == len(cells) and planned["train"] == len(plan.runs)
    snakemake(tmp_path, "--cores", "2")
    results = tmp_path / "results" / "default"
    pd.testing.assert_frame_equal(
        metric_frame(tiny_workflow / "results/default/summary.csv"),
        metric_frame(results / "summary.csv"),
    )
    artifacts = list(results.glob("mlartifacts/**/predictions.npy"))
    assert len(artifacts) == len(plan.runs)
    for run in plan.runs:
        cell = f"{run.world}/{run.design}/n{run.n}/seed{run.seed}"
        shared = results / "scores" / cell / run.annotator / f"{run.head}.npy"
        own = tiny_workflow / "results/default/runs" / run.run_dir / "predictions.npy"
        assert shared.read_bytes() == own.read_bytes(), run.run_dir
        linked = results / "runs" / run.run_dir / "predictions.npy"
        assert linked.is_symlink() and linked.resolve() == shared.resolve()
        record = yaml.safe_load((results / "runs" / run.run_dir / "metrics.json").read_text())
        runs_in_cell = sum(
            (r.world, r.design, r.n, r.seed) == (run.world, run.design, run.n, run.seed)
            for r in plan.runs
        )
        assert record["training"]["scoring"]["models"] == runs_in_cell
    with sqlite3.connect(results.parent / "mlflow.db") as db:
        modes = db.execute("select value from params where key = 'scoring'").fetchall()
        jobs = db.execute("select count(*) from metrics where key = 'time/score_s'").fetchone()
        reads = db.execute(
            "select count(*) from metrics where key = 'time/score_read_s'"
        ).fetchone()
    assert modes == [("cell",)] * len(plan.runs)
    assert jobs[0] == reads[0] == len(plan.runs)
