"""execution.jobs: cell: one job per cell gives the fine-grained jobs' results, and resumes."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, TINY_CONFIG, deep_merge, snakemake
from embrm.cell_job import AUTO_CELL_ABOVE, granularity
from embrm.config import Plan
from embrm.errors import ConfigError
from embrm.resources import Requests

spec = importlib.util.spec_from_file_location(
    "compare_results", REPO / "benchmarks" / "compare_results.py"
)
compare_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_results)

CELL_CONFIG = deep_merge(TINY_CONFIG, {"execution": {"jobs": "cell"}})


def test_auto_chooses_cell_jobs_above_the_stated_number_of_runs():
    assert granularity("auto", AUTO_CELL_ABOVE, []) == "run"
    assert granularity("auto", AUTO_CELL_ABOVE + 1, []) == "cell"
    assert granularity("run", 10 * AUTO_CELL_ABOVE, []) == "run"
    assert granularity("cell", 1, []) == "cell"
    # Active designs choose pairs per run: auto keeps fine jobs, cell is refused by name.
    assert granularity("auto", AUTO_CELL_ABOVE + 1, ["same-levelset"]) == "run"
    with pytest.raises(ConfigError, match=r"execution\.jobs.*same-levelset.*grid\.designs"):
        granularity("cell", 1, ["same-levelset"])


def test_sequential_looks_keep_fine_jobs_and_refuse_cell_jobs():
    # Looks run only the runs their open parts need; a cell job would run every run of its cell.
    assert granularity("auto", AUTO_CELL_ABOVE + 1, [], sequential=True) == "run"
    looks = {"grid": {"seeds": [0, 1, 2]}, "findings": {"looks": [2, 3]}}
    Plan(deep_merge(TINY_CONFIG, looks))
    with pytest.raises(ConfigError, match=r"execution\.jobs.*findings\.looks"):
        Plan(deep_merge(TINY_CONFIG, {**looks, "execution": {"jobs": "cell"}}))


def test_config_refuses_an_unknown_job_granularity():
    with pytest.raises(ConfigError, match=r"execution\.jobs"):
        Plan(deep_merge(TINY_CONFIG, {"execution": {"jobs": "runs"}}))


def test_a_cell_job_asks_for_its_largest_step_and_the_sum_of_their_times(tmp_path):
    plan = Plan(TINY_CONFIG)
    requests = Requests(plan, tmp_path)
    heads = [run.head for run in plan.runs if run.design == "same-random"]
    cell = requests.cell("tiny", heads, [], 200, 1)
    trains = [requests.train("tiny", head, 200, 1) for head in heads]
    assert cell.mem_mb == max(train.mem_mb for train in trains)
    assert cell.runtime >= max(train.runtime for train in trains)
    # Each retry asks for more, as every other job does.
    assert requests.cell("tiny", heads, [], 200, 2).runtime > cell.runtime


def job_stats(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def step_name(results: Path, record: Path) -> tuple[str, str]:
    """(cell, step) of a step record cells/<cell>/steps/<step>.json."""
    steps = next(p for p in record.parents if p.name == "steps")
    return str(steps.parent.relative_to(results / "cells")), str(
        record.relative_to(steps).with_suffix("")
    )


def mtimes(paths) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in paths}


def step_outputs(results: Path, record: Path) -> list[Path]:
    """The files a finished step (its record under cells/<cell>/steps/) wrote."""
    steps = next(p for p in record.parents if p.name == "steps")
    cell = steps.parent.relative_to(results / "cells")
    step = record.relative_to(steps).with_suffix("")
    kind, name = step.parts[0], "/".join(step.parts[1:])
    runs = results / "runs" / cell / name
    return {
        "pairs": [results / "pairs" / f"{cell}.npz"],
        "annotate": [results / "annotations" / cell / f"{name}.npz"],
        "train": [runs / "train.json", runs / "curves.csv", runs / "predictions.npy"],
        "evaluate": [runs / "metrics.json"],
    }[kind]


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_cell_jobs_resume_after_a_kill_to_the_fine_jobs_results(tiny_workflow, tmp_path):
    """Killed (SIGKILL, as a lost node) after its first run's evaluation, the cell job starts
    again at its first unfinished step: nothing finished is written again. The results then
    equal the fine-grained jobs' (benchmarks/compare_results.py), and so do the MLflow runs,
    here logged by the cell job itself (tracking.mode: jobs)."""
    config = deep_merge(CELL_CONFIG, {"tracking": {"mode": "jobs"}})
    plan = Plan(config)
    cells = {(r.world, r.design, r.n, r.seed) for r in plan.runs}
    planned = job_stats(snakemake(tmp_path, "-n", "--cores", "2", config=config).stdout)
    assert planned["cell"] == len(cells)
    assert not {"pairs", "annotate", "train", "score", "evaluate"} & set(planned)

    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(tmp_path), "--cores", "2"]  # fmt: skip
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True,
                               preexec_fn=default_sigint)  # fmt: skip
    results = tmp_path / "results" / "default"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not list(results.glob("cells/*/*/*/*/steps/evaluate")):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    records = list(results.glob("cells/**/steps/**/*.json"))
    assert any("evaluate" in record.parts for record in records)
    done = {step_name(results, record) for record in records}
    assert not (results / "summary.csv").exists()
    finished = mtimes(
        path for record in records for path in step_outputs(results, record) if path.exists()
    )

    snakemake(tmp_path, "--cores", "2")
    assert mtimes(finished) == finished  # nothing finished was written again
    skipped = {
        (str(path.parent.relative_to(results / "cells")), step)
        for path in results.glob("cells/**/cell.json")
        for step in json.loads(path.read_text())["skipped"]
    }
    assert skipped == done
    # The config differs in execution.jobs and tracking.mode only.
    ignored = ["--ignore", "execution", "--ignore", "mode"]
    code = compare_results.main([str(tiny_workflow / "results/default"), str(results), *ignored])
    assert code == 0
    fine, coarse = (mlflow_runs(root / "results/mlflow.db") for root in (tiny_workflow, tmp_path))
    assert coarse == fine and len(coarse) == len(plan.runs)

    # A run's lost evaluation: Snakemake sees only the cells' records, so it is asked to start
    # the cell jobs again; that run's cell evaluates it again, and nothing else runs.
    run = plan.runs[-1]
    (results / "runs" / run.run_dir / "metrics.json").unlink()
    kept = mtimes(results.glob("runs/**/train.json"))
    snakemake(tmp_path, "--cores", "2", "--forcerun", "cell")
    for record in results.glob("cells/**/cell.json"):
        ran = json.loads(record.read_text())["ran"]
        own = record.parent == results / "cells" / run.pairs_dir
        assert ran == ([f"evaluate/{run.annotator}/{run.head}"] if own else []), record
    assert mtimes(kept) == kept
    again = snakemake(tmp_path, "-n", "--cores", "2")
    assert "Nothing to be done" in again.stdout + again.stderr


def mlflow_runs(database: Path) -> dict[str, dict[str, str]]:
    """Each MLflow run's params and metrics by run name: timing and host aside, though every
    `time/<stage>_s` metric must be there (cell jobs write each step's benchmark file)."""
    children = "select run_uuid from tags where key = 'mlflow.parentRunId'"
    with sqlite3.connect(database) as db:
        params = db.execute(
            "select r.name, p.key, p.value from runs r join params p on p.run_uuid = r.run_uuid"
            f" where r.run_uuid in ({children})"
        ).fetchall()
        metrics = db.execute(
            "select r.name, m.key, m.value, m.step from runs r join metrics m"
            f" on m.run_uuid = r.run_uuid where r.run_uuid in ({children})"
        ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for name, key, value in params:
        if not compare_results.left_out(key, frozenset({"host"})):
            out.setdefault(name, {})[key] = value
    for name, key, value, step in metrics:
        timing = key.startswith("time/") or compare_results.left_out(key, frozenset())
        out.setdefault(name, {})[f"metric {key} {step}"] = None if timing else value
    return out
