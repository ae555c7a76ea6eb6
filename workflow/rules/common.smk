# Input functions shared by every rule: they ask the validated plan (PLAN) and its layout (LAYOUT,
# embrm/layout.py), which own the results tree, the jobs, their arguments and every decision.
import importlib.util
import json
import os
import sys
from pathlib import Path

# Jobs run `python -m embrm` in the workflow's environment, so the package must be installed there
# (`make` does it; otherwise `pip install -e .`). Parsing only needs it on the path.
if importlib.util.find_spec("embrm") is None:
    print(
        "warning: the embrm package is not installed in this environment; jobs will fail. "
        "Run `pip install -e .` in the repository (or use `make run`).",
        file=sys.stderr,
    )
    sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from embrm import shared_results, tree
from embrm.config import Plan
from embrm.declare import as_json, render
from embrm.designs import DESIGNS
from embrm.designs import pattern as designs_pattern
from embrm.errors import EmbrmError
from embrm.invocation import claim
from embrm.layout import Layout
from embrm.preflight import check_data, check_device, check_inputs
from embrm.figures import FIGURES as FIGURE_SPECS
from embrm.figures import available as available_figures
from embrm.figures import plan_settings, rst_escape

# The experiment's config file (the Snakefile loads config.yaml only when none is given); its
# stem names the experiment unless the config's `experiment` key does.
CONFIG_FILE = (
    str(workflow.overwrite_configfiles[-1])
    if workflow.overwrite_configfiles
    else "config.yaml"
)
# Every decision about the jobs (which run, where their files lie, what they are given) is the
# layout's (embrm/layout.py), which `embrm plan` builds the same way: a config refused here is
# refused there, with this message.
try:
    PLAN = Plan(config, source=CONFIG_FILE)
    check_inputs(PLAN)
    LAYOUT = Layout(PLAN)
except EmbrmError as error:
    sys.exit(f"error: {CONFIG_FILE}: {error}")
for note in LAYOUT.notes:
    print(note, file=sys.stderr)
# Rules read the validated values (defaults filled in) from PLAN.config, never from `config`;
# the report's templates read `config`, so it holds the same values.
config.update(PLAN.config)
# Every output of an experiment lies in its own folder; the MLflow database (one store for all
# experiments, each its own MLflow experiment) lies beside the folders.
TREE = LAYOUT.tree
RESULTS_ROOT = TREE.root
RESULTS = TREE.results
# A hard-killed invocation leaves Snakemake's locks and temporary files behind: the next one
# removes them when no other invocation runs here (embrm/invocation.py). Jobs that Snakemake
# starts on a cluster parse this file too; only the invocation itself claims.
if workflow.is_main_process:
    for removed in claim(results=RESULTS):
        print(f"removed leftover of an interrupted run: {removed}", file=sys.stderr)


def check_before_jobs():
    """Called by the onstart hook, before any job and before anything is written: the input
    files' contents (too slow to read at every parse; a cluster job parses this file too), then
    the device, whose check needs the executor, unknown while parsing (jobs on a cluster may have
    a GPU the submitting host lacks)."""
    try:
        check_data(PLAN)
        if workflow.local_exec:
            check_device(PLAN.config)
    except EmbrmError as error:
        sys.exit(f"error: {CONFIG_FILE}: {error}")


# Rules schedule with `threads:` and pass the configured count to the job (LAYOUT.threads).
TRAINING_THREADS = LAYOUT.threads
DEVICE = LAYOUT.device
ENV = "../../envs/embrm.yaml"
# Registered pairing designs (embrm.designs): active ones choose their pairs per run (active.smk).
ACTIVE_DESIGNS = [name for name, design in DESIGNS.items() if design.active]
CELL = tree.CELL
RUN = tree.RUN


wildcard_constraints:
    world=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    design=designs_pattern(),
    n=r"\d+",
    seed=r"\d+",
    annotator=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    head=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",


# Input functions and params: each asks the layout for one job's files or arguments.
def world_dir(wildcards):
    return TREE.world(wildcards.world)


def world_inputs(wildcards):
    return TREE.world_files(wildcards.world)


def run_pairs(wildcards):
    return LAYOUT.run_pairs(wildcards)


def run_labels(wildcards):
    return LAYOUT.run_labels(wildcards)


def run_annotation_stats(wildcards):
    return LAYOUT.run_annotation_stats(wildcards)


def cell_runs(wildcards):
    return LAYOUT.cell_runs(wildcards)


def stacked_runs(wildcards):
    return LAYOUT.stacked_runs(wildcards)


def active_rounds(wildcards):
    return LAYOUT.active_rounds(wildcards)


def outputs(paths):
    """Output paths of the layout, each folder wrapped in directory()."""
    return {
        name: directory(path) if tree.is_folder(path) else path
        for name, path in paths.items()
    }


def metrics_files():
    if LOOKS:  # sequential looks (looks.smk): the runs are known look by look
        return looked_metrics
    return LAYOUT.metrics_files()


def grid_settings():
    """One row per planned run with the settings the figures vary over (world, design, pairs,
    annotator and β, head, seed, Best-of-N sizes): decides which figures the grid can draw.
    """
    return plan_settings(PLAN)


# Figures whose axis has a single value in this grid are not requested; the reasons are logged
# by the summarize and figure jobs and listed in the report's configuration page.
FIGURES, SKIPPED_FIGURES = available_figures(grid_settings())


def final_targets():
    targets = [
        f"{RESULTS}/summary.csv",
        f"{RESULTS}/aggregate.csv",
        *expand(
            f"{RESULTS}/figures/{{figure}}.{{ext}}", figure=FIGURES, ext=["png", "svg"]
        ),
    ]
    # the findings stage (findings.smk, included after this file)
    targets += [*FINDINGS, *FINDINGS_FIGURE_FILES]
    if PLAN.config["tracking"]["enabled"]:
        targets.append(f"{RESULTS}/tracking/synced.json")
    return targets


# Report captions go through reStructuredText: escape its markup characters (|Δr| etc.).
FIGURE_CAPTIONS = {
    name: rst_escape(spec.caption) for name, spec in FIGURE_SPECS.items()
}
FIGURE_LABELS = {name: spec.label for name, spec in FIGURE_SPECS.items()}

# Every process of the workflow runs with MLflow telemetry off: local jobs inherit this
# environment, and `envvars` makes cluster executors pass it on to remote jobs.
os.environ.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")


envvars:
    "MLFLOW_DISABLE_TELEMETRY",
    "DO_NOT_TRACK",


MLFLOW_DB = shared_results.mlflow_db(RESULTS_ROOT)
TRACKING_URI = PLAN.config["tracking"]["uri"] or f"sqlite:///{MLFLOW_DB}"
TRACKING_SYNCED = f"{RESULTS}/tracking/synced.json"
# Hand-off from the onstart hook to the evaluate jobs (tracking.mode: jobs): ids of the
# experiment and of this invocation's parent run. Present only while an invocation runs.
TRACKING_STATE = f"{RESULTS}/tracking/invocation.json"


def pending_tracking():
    """Changes whenever a sync could not reach the tracking backend, so the next invocation reruns
    the sync; stays at the last failure's time after a successful retry (no further reruns).
    """
    state = Path(TRACKING_SYNCED)
    if not state.exists():
        return ""
    try:
        content = json.loads(state.read_text())
    except ValueError:
        return "unreadable"
    return content.get("pending_since") or content.get("retried_pending_since", "")


def active_targets():
    """The budget table, when the grid has a learning curve to fit (the learning-curve figure
    is drawable)."""
    if "learning_curves" not in FIGURES:
        return []
    return [f"{RESULTS}/budget.csv", f"{RESULTS}/report/budget.html"]


# execution.jobs (cell.smk): with cell jobs the aggregation rules wait for the cells' records.
CELL_JOBS = LAYOUT.cell_jobs


def cell_record(cell):
    return TREE.cell_record(cell)


def finished_runs():
    """What the aggregation rules wait for: every run's metrics.json, or with cell jobs every
    cell's record (written after all of its runs' metrics.json)."""
    if CELL_JOBS:
        return [cell_record(cell) for cell in LAYOUT.cells]
    return metrics_files()


def cell_spec(wildcards):
    return LAYOUT.cell_spec(wildcards, TRACKING_STATE)
