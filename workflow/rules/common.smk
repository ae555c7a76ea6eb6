# Helpers shared by every rule: the validated plan, output paths, and per-run parameters.
import importlib.util
import json
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

from embrm.config import Plan, Run
from embrm.errors import ConfigError
from embrm.figures import available as available_figures

try:
    PLAN = Plan(config)
except ConfigError as error:
    sys.exit(f"error: {error}")

RESULTS = "results"
ENV = "../../envs/embrm.yaml"
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
    design=r"(same|cross)-(random|similar|diversified)",
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


def metrics_files():
    return [f"{RESULTS}/runs/{run.run_dir}/metrics.json" for run in PLAN.runs]


def axis_values():
    return {
        "beta": sorted(
            {
                PLAN.annotator_spec(r.annotator).get("beta")
                for r in PLAN.runs
                if "beta" in PLAN.annotator_spec(r.annotator)
            }
        ),
    }


FIGURES, SKIPPED_FIGURES = available_figures(axis_values())


def final_targets():
    targets = [
        f"{RESULTS}/summary.csv",
        f"{RESULTS}/aggregate.csv",
        *expand(
            f"{RESULTS}/figures/{{figure}}.{{ext}}", figure=FIGURES, ext=["png", "svg"]
        ),
    ]
    if PLAN.config["tracking"]["enabled"]:
        targets.append(f"{RESULTS}/tracking/synced.json")
    return targets


from embrm.figures import FIGURES as FIGURE_SPECS

FIGURE_CAPTIONS = {name: spec.caption for name, spec in FIGURE_SPECS.items()}

TRACKING_URI = config["tracking"]["uri"] or (
    "sqlite:///" + str(Path(RESULTS).resolve() / "mlflow.db")
)


def pending_tracking():
    """Nonempty while the last sync could not reach the tracking backend."""
    state = Path(f"{RESULTS}/tracking/synced.json")
    if not state.exists():
        return ""
    return json.loads(state.read_text()).get("pending_since", "")
