EVALUATE = "python -m embrm evaluate {params.arguments} > {log} 2>&1"
# With tracking.mode: jobs the job then logs its run to MLflow (track.smk): the onstart hook
# hands over the backend in TRACKING_STATE, and the step logs nothing without it; it never fails
# the job (the end-of-workflow sync logs what it could not).
LOG_RUN = (
    "python -m embrm tracking log-job --state {params.tracking_state} --metrics {output}"
    " >> {log} 2>&1"
)


rule evaluate:
    input:
        world=LAYOUT.world_inputs,
        predictions=LAYOUT.predictions_input(),
        pairs=LAYOUT.run_pairs,
        labels=LAYOUT.run_labels,
        stats=LAYOUT.run_annotation_stats,
        info=TREE.run_file("train.json"),
        curves=TREE.run_file("curves.csv"),
    output:
        TREE.run_file("metrics.json"),
    log:
        TREE.log("evaluate", RUN),
    benchmark:
        TREE.benchmark("evaluate", RUN)
    group:
        "cell"
    conda:
        ENV
    resources:
        mem_mb=mem_mb_evaluate,
        runtime=runtime_light,
        gpu=gpu_train,
    params:
        arguments=LAYOUT.arguments("evaluate"),
        tracking_state=TRACKING_STATE,
    shell:
        f"{EVALUATE}; {LOG_RUN}" if PLAN.logs_runs_from_jobs else EVALUATE
