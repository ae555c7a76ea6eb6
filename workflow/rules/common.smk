# Helpers shared by every rule: the validated plan, output paths, and per-run parameters.
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

# Jobs run `python -m embrm` in the workflow's environment, so the package must be installed there
# (`make` does it; otherwise `pip install -e .`). Parsing only needs it on the path.
if importlib.util.find_spec("embrm") is None:
    print(
        "warning: the embrm package is not installed in this environment; jobs will fail. "
        "Run `pip install -e .` in the repository (or use `make run`).",
        file=sys.stderr,
    )
    sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from embrm.designs import DESIGNS
from embrm.designs import pattern as designs_pattern
from embrm.active.rounds import Settings as ActiveSettings
from embrm.active.rounds import schedule as active_schedule
from embrm.config import Plan, Run
from embrm.errors import ConfigError, EmbrmError
from embrm.invocation import claim
from embrm.preflight import check_data, check_device, check_inputs
from embrm import shared_results
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
try:
    PLAN = Plan(config, source=CONFIG_FILE)
    check_inputs(PLAN)
except EmbrmError as error:
    sys.exit(f"error: {CONFIG_FILE}: {error}")
# Rules read `config` directly: give them the validated values, defaults filled in.
config.update(PLAN.config)

# Every output of an experiment lies in its own folder; the MLflow database (one store for all
# experiments, each its own MLflow experiment) lies beside the folders.
RESULTS_ROOT = shared_results.RESULTS_ROOT
EXPERIMENT = PLAN.config["experiment"]
RESULTS = f"{RESULTS_ROOT}/{EXPERIMENT}"
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


# A job's thread count is the config's, never what Snakemake makes of it: Snakemake lowers a
# rule's `threads` to --cores, and torch's CPU kernels reduce in another order with more threads,
# so numbers would depend on --cores. Rules schedule with `threads:` and pass the configured
# count to the job (params), so the same config gives the same bits at any --cores.
TRAINING_THREADS = config["training"]["threads"]

ENV = "../../envs/embrm.yaml"
# Registered pairing designs (embrm.designs): active ones choose their pairs per run (active.smk).
ACTIVE_DESIGNS = [name for name, design in DESIGNS.items() if design.active]


def is_active_design(name):
    return DESIGNS[name].active


WORLD_FILES = [
    "train_embeddings.npy",
    "train_rewards.npy",
    "test_embeddings.npy",
    "test_rewards.npy",
    "world.json",
]
CELL = "{world}/{design}/n{n}/seed{seed}"
RUN = f"{CELL}/{{annotator}}/{{head}}"


wildcard_constraints:
    world=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    design=designs_pattern(),
    n=r"\d+",
    seed=r"\d+",
    annotator=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",
    head=r"[A-Za-z0-9][A-Za-z0-9_.+-]*",


def world_dir(wildcards):
    return f"{RESULTS}/worlds/{wildcards.world}"


def world_inputs(wildcards):
    return [f"{RESULTS}/worlds/{wildcards.world}/{name}" for name in WORLD_FILES]


def run_of(wildcards):
    return Run(
        wildcards.world,
        wildcards.design,
        int(wildcards.n),
        int(wildcards.seed),
        wildcards.annotator,
        wildcards.head,
    )


def as_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def run_record(wildcards):
    """The settings that define a run, carried into metrics.json and MLflow params."""
    run = run_of(wildcards)
    spec = PLAN.annotator_spec(run.annotator)
    return as_json(
        {
            **run.as_dict(),
            "run_dir": run.run_dir,
            "source": PLAN.world_spec(run.world)["source"],
            "world_spec": PLAN.world_spec(run.world),
            "annotator_params": {k: v for k, v in spec.items() if k != "model"},
        }
    )


CELL_RUNS = {}
for planned in PLAN.runs:
    CELL_RUNS.setdefault(CELL.format(**planned.as_dict()), []).append(planned)


# training.stack: the cell's MLP runs train together in one train_cell job (train_cell.smk); heads
# the stacked fit cannot reproduce keep one train job per run, and the train rule only matches them.
STACK = config["training"]["stack"]
if STACK and any(is_active_design(design) for design in PLAN.unique("design")):
    sys.exit(
        "error: config key 'training.stack': stacked training shares one cell's pairs between "
        "its runs, but active designs choose pairs per run; set training.stack: false or drop "
        "the active designs from the grid"
    )
STACKED_HEADS, UNSTACKED_HEADS = [], []
for _head_name in PLAN.unique("head"):
    _spec = PLAN.head_spec(_head_name)
    _refusal = None
    if STACK:
        from embrm.heads.stacked import stack_refusal

        _refusal = stack_refusal(
            _spec["type"], _spec["params"], _spec["members"], PLAN.head_key(_head_name)
        )
        if _refusal:
            print(
                f"training.stack: one job per run for {_head_name}: {_refusal}",
                file=sys.stderr,
            )
    (UNSTACKED_HEADS if not STACK or _refusal else STACKED_HEADS).append(_head_name)


def names_pattern(names):
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


TRAIN_HEADS = names_pattern(UNSTACKED_HEADS)


def cell_of(wildcards):
    """The cell path (world/design/n…/seed…) of a job's wildcards."""
    return CELL.format(**dict(wildcards.items()))


def cell_runs(wildcards):
    return CELL_RUNS[cell_of(wildcards)]


def cell_models(wildcards):
    """The model directories of every run in the cell (the score job's inputs)."""
    return [f"{RESULTS}/runs/{run.run_dir}/model" for run in cell_runs(wildcards)]


def model_arguments(wildcards):
    """`--model annotator/head=DIR` for each run of the cell: the score job's name for its file."""
    return " ".join(
        f"--model {run.annotator}/{run.head}={RESULTS}/runs/{run.run_dir}/model"
        for run in cell_runs(wildcards)
    )


def scoring_wiring(per_cell):
    """Where the test set is scored (training.scoring, Plan.scores_per_cell), as the rules need
    it; the only place the rules consult the mode. `run`: each train job (or a stacked cell's
    job) writes its run's predictions.npy. `cell`: train jobs only fit; the cell's score job
    (score.smk) writes every run's predictions under scores/<cell>/, and evaluate reads them
    from there with that job's scoring.json. A cell job (cell.smk) does either itself.
    """
    if not per_cell:
        own = f"{RESULTS}/runs/{RUN}/predictions.npy"
        return SimpleNamespace(
            per_cell=False,
            train_outputs={"predictions": own},
            stacked_arguments="--score",
            evaluate_input=own,
            evaluate_file=lambda wildcards, input: input.predictions,
            evaluate_arguments="",
        )
    return SimpleNamespace(
        per_cell=True,
        train_outputs={},
        stacked_arguments="",
        evaluate_input=f"{RESULTS}/scores/{CELL}",
        evaluate_file=lambda wildcards, input: (
            f"{input.predictions}/{wildcards.annotator}/{wildcards.head}.npy"
        ),
        evaluate_arguments=lambda wildcards, input: (
            f"--scoring {input.predictions}/scoring.json"
            f" --scored-as {wildcards.annotator}/{wildcards.head}"
        ),
    )


SCORING = scoring_wiring(PLAN.scores_per_cell)


def output_argument(name):
    """Params: `--<name> FILE` when the job declares an output of that name, else nothing."""
    return lambda wildcards, output: (
        f"--{name} {output.get(name)}" if name in output.keys() else ""
    )


def metrics_files():
    if LOOKS:  # sequential looks (looks.smk): the runs are known look by look
        return looked_metrics
    return [f"{RESULTS}/runs/{run.run_dir}/metrics.json" for run in PLAN.runs]


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
TRACKING_URI = config["tracking"]["uri"] or f"sqlite:///{MLFLOW_DB}"
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


# Active designs (docs/active.md) label their pairs per run (active.smk, rule `active`), so
# train and evaluate read that run's pairs, labels and statistics instead of the cell's.


def active_dir(wildcards):
    return f"{RESULTS}/active/{RUN.format(**dict(wildcards.items()))}"


def run_pairs(wildcards):
    if is_active_design(wildcards.design):
        return f"{active_dir(wildcards)}/pairs.npz"
    return f"{RESULTS}/pairs/{cell_of(wildcards)}.npz"


def run_labels(wildcards):
    if is_active_design(wildcards.design):
        return f"{active_dir(wildcards)}/labels.npz"
    return f"{RESULTS}/annotations/{cell_of(wildcards)}/{wildcards.annotator}.npz"


def run_annotation_stats(wildcards):
    if is_active_design(wildcards.design):
        return f"{active_dir(wildcards)}/annotation.json"
    return f"{RESULTS}/annotations/{cell_of(wildcards)}/{wildcards.annotator}.json"


try:
    ACTIVE = ActiveSettings.from_config(
        {k: v for k, v in config["active"].items() if k != "budget_targets"}
    )
except ConfigError as error:
    sys.exit(f"error: {error}")


def active_rounds(wildcards):
    return len(active_schedule(int(wildcards.n), ACTIVE))


def active_targets():
    """The budget table, when the grid has a learning curve to fit (the learning-curve figure
    is drawable)."""
    if "learning_curves" not in FIGURES:
        return []
    return [f"{RESULTS}/budget.csv", f"{RESULTS}/report/budget.html"]


# training.stack (train_cell.smk): the cell's stacked runs and their labels.
def stacked_runs(wildcards):
    return [run for run in cell_runs(wildcards) if run.head in STACKED_HEADS]


def stacked_labels(wildcards):
    cell = cell_of(wildcards)
    return sorted(
        {
            f"{RESULTS}/annotations/{cell}/{run.annotator}.npz"
            for run in stacked_runs(wildcards)
        }
    )


def stacked_runs_json(wildcards):
    cell = cell_of(wildcards)
    return as_json(
        [
            {
                "name": f"{run.annotator}/{run.head}",
                "head": PLAN.head_spec(run.head),
                "labels": f"{RESULTS}/annotations/{cell}/{run.annotator}.npz",
            }
            for run in stacked_runs(wildcards)
        ]
    )
