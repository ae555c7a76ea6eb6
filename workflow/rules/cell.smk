# execution.jobs (embrm/cell_job.py): with cell jobs, one `cell` job per cell (world × design × n ×
# seed) does in one process what the cell's pairs, annotate, train (train_cell and unstack with
# training.stack), score and evaluate jobs do, writing the same files: Snakemake then plans and a
# cluster submits one job per cell instead of about 2.4 per run. The job resumes at its first
# unfinished step: its declared output is only the cell's record (cells/<cell>/cell.json), so
# Snakemake never deletes the runs it finished before an interruption; the aggregation rules wait
# for the cells' records (finished_runs) and read the runs' metrics.json from their params.
if CELL_JOBS:

    rule cell:
        input:
            LAYOUT.world_inputs,
        output:
            TREE.cell_record(CELL),
        log:
            TREE.log("cell", CELL),
        benchmark:
            TREE.benchmark("cell", CELL)
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
            spec=LAYOUT.cell_spec,
        script:
            "../scripts/cell.py"
