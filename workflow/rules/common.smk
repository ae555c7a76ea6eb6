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

from embrm import tree
from embrm.config import Plan
from embrm.declare import render
from embrm.designs import pattern as designs_pattern
from embrm.errors import EmbrmError
from embrm.invocation import claim
from embrm.layout import Layout
from embrm import preflight
from embrm.figures import rst_escape

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
    preflight.check_inputs(PLAN)
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
    """The onstart hook's checks (embrm.preflight): the executor is not known before."""
    try:
        preflight.check_before_jobs(PLAN, local=workflow.local_exec)
    except EmbrmError as error:
        sys.exit(f"error: {CONFIG_FILE}: {error}")


# Rules schedule with `threads:` and pass the configured count to the job (LAYOUT.threads).
TRAINING_THREADS = LAYOUT.threads
ENV = "../../envs/embrm.yaml"
CELL = tree.CELL
RUN = tree.RUN
# What the invocation asks for beyond the runs' jobs (embrm/targets.py).
TARGETS = LAYOUT.targets
# execution.jobs (cell.smk): with cell jobs the aggregation rules wait for the cells' records.
CELL_JOBS = LAYOUT.cell_jobs
# Figures whose axis has a single value in this grid are not requested; the reasons are logged
# by the summarize and figure jobs and listed in the report's configuration page.
FIGURES, SKIPPED_FIGURES = TARGETS.drawable
FIGURE_CAPTIONS, FIGURE_LABELS = TARGETS.figure_captions, TARGETS.figure_labels
# sequential looks (looks.smk): numbers of seeds per look, or None
LOOKS = TARGETS.looks
LOOK_FILES = TREE.look_files()
TRACKING_URI = TARGETS.tracking_uri
TRACKING_SYNCED = TREE.tracking("synced.json")
# Hand-off from the onstart hook to the evaluate jobs (tracking.mode: jobs): ids of the
# experiment and of this invocation's parent run. Present only while an invocation runs.
TRACKING_STATE = TREE.tracking("invocation.json")

# Every process of the workflow runs with MLflow telemetry off: local jobs inherit this
# environment, and `envvars` makes cluster executors pass it on to remote jobs.
os.environ.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")


envvars:
    "MLFLOW_DISABLE_TELEMETRY",
    "DO_NOT_TRACK",


wildcard_constraints:
    world=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    design=designs_pattern(),
    n=r"\d+",
    seed=r"\d+",
    annotator=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    head=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",


# Input functions: the rules ask the layout directly (LAYOUT.world_inputs, LAYOUT.run_pairs, …);
# those below need Snakemake's own objects.
def outputs(paths):
    """Output paths of the layout, each folder wrapped in directory()."""
    return {
        name: directory(path) if tree.is_folder(path) else path
        for name, path in paths.items()
    }


def metrics_files():
    if LOOKS:  # sequential looks: the runs are known look by look
        return looked_metrics
    return LAYOUT.metrics_files()


def finished_runs():
    return TARGETS.finished_runs(metrics_files())


# Sequential looks (looks.smk): look k's inputs are read from the previous look's decisions.
def look_decisions(k):
    """Look k's decisions (1-based); raises Snakemake's incomplete-checkpoint signal until the
    look has run, which makes Snakemake run it and evaluate the asking function again.
    """
    path = checkpoints.look.get(k=str(k)).output.decisions
    return json.loads(Path(path).read_text())


def runs_of_look(k):
    return TARGETS.look_runs(k, look_decisions(k - 1) if k > 1 else None)


def look_inputs(wildcards):
    k = int(wildcards.k)
    files = {"runs": TREE.metrics_files(runs_of_look(k))}
    if k > 1:
        files["previous"] = TREE.look_files(k - 1)["csv"]
    return files


def looked_metrics(wildcards):
    """The metrics of every run the looks ran (summary, tracking and figures stand on them)."""
    return TREE.metrics_files(runs_of_look(TARGETS.last_look(look_decisions)))


def findings_of_last_look(wildcards):
    """The experiment's findings are the last look's (csv, md, rst, html); none without looks."""
    if not LOOKS:
        return []
    files = TREE.look_files(TARGETS.last_look(look_decisions))
    return [files[name] for name in ("csv", "md", "rst", "html")]
