# execution.jobs (embrm/cell_job.py): with cell jobs, one `cell` job per cell (world × design × n ×
# seed) does in one process what the cell's pairs, annotate, train (train_cell and unstack with
# training.stack), score and evaluate jobs do, writing the same files: Snakemake then plans and a
# cluster submits one job per cell instead of about 2.4 per run. The job resumes at its first
# unfinished step: its declared output is only the cell's record (cells/<cell>/cell.json), so
# Snakemake never deletes the runs it finished before an interruption; the aggregation rules wait
# for the cells' records (finished_runs) and read the runs' metrics.json from their params.
from embrm.cell_job import granularity

try:
    CELL_JOBS = (
        granularity(
            config["execution"]["jobs"],
            len(PLAN.runs),
            [name for name in PLAN.unique("design") if is_active_design(name)],
            sequential=bool(LOOKS),
        )
        == "cell"
    )
except EmbrmError as error:
    sys.exit(f"error: {CONFIG_FILE}: {error}")


def cell_record(cell):
    return f"{RESULTS}/cells/{cell}/cell.json"


def finished_runs():
    """What the aggregation rules wait for: every run's metrics.json, or with cell jobs every
    cell's record (written after all of its runs' metrics.json)."""
    if CELL_JOBS:
        return [cell_record(cell) for cell in CELL_RUNS]
    return metrics_files()


def cell_spec(wildcards):
    """Everything embrm.cell_job.run_cell needs, from the same plan and helpers as the fine
    rules' params (run_record, head and annotator specs, the design's largest quantity).
    """
    runs = cell_runs(wildcards)
    return {
        "results": RESULTS,
        "cell": cell_of(wildcards),
        "world": world_dir(wildcards),
        "design": wildcards.design,
        "n": int(wildcards.n),
        "seed": int(wildcards.seed),
        "heldout": config["annotation"]["heldout_pairs"],
        "of": PLAN.largest_quantity(wildcards.world, wildcards.design),
        "scale": config["annotation"]["scale"],
        "annotators": {
            run.annotator: PLAN.annotator_spec(run.annotator) for run in runs
        },
        "runs": [
            {
                "annotator": run.annotator,
                "head": run.head,
                "head_spec": PLAN.head_spec(run.head),
                "record": json.loads(run_record(SimpleNamespace(**run.as_dict()))),
                "stacked": run.head in STACKED_HEADS,
            }
            for run in runs
        ],
        "threads": TRAINING_THREADS,
        "device": config["training"]["device"],
        "evaluation": config["evaluation"],
        "scores_per_cell": SCORING.per_cell,
        "tracking_state": TRACKING_STATE if PLAN.logs_runs_from_jobs else None,
    }


if CELL_JOBS:

    rule cell:
        input:
            world_inputs,
        output:
            cell_record(CELL),
        log:
            f"{RESULTS}/logs/cell/{CELL}.log",
        benchmark:
            f"{RESULTS}/benchmarks/cell/{CELL}.tsv"
        # group-components bundles cells into one cluster submission (profiles/slurm).
        group:
            "cell"
        conda:
            ENV
        threads: TRAINING_THREADS
        resources:
            mem_mb=mem_mb_cell,
            runtime=runtime_cell,
            gpu=gpu_train,
        params:
            spec=cell_spec,
        script:
            "../scripts/cell.py"
