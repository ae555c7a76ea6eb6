EVALUATE = (
    "python -m embrm evaluate --world {params.world} --predictions {params.predictions}"
    " --pairs {input.pairs} --labels {input.labels} --annotation-stats {input.stats}"
    " --train-info {input.info} --curves {input.curves} --run {params.run:q}"
    " --evaluation {params.evaluation:q} {params.scoring} --device {params.device}"
    " --out {output} > {log} 2>&1"
)
# With tracking.mode: jobs the job then logs its run to MLflow (track.smk): the onstart hook
# hands over the backend in TRACKING_STATE, and the step logs nothing without it; it never fails
# the job (the end-of-workflow sync logs what it could not).
LOG_RUN = (
    "python -m embrm tracking log-job --state {params.tracking_state} --metrics {output}"
    " >> {log} 2>&1"
)


rule evaluate:
    input:
        world=world_inputs,
        predictions=SCORING.evaluate_input,
        pairs=run_pairs,
        labels=run_labels,
        stats=run_annotation_stats,
        info=f"{RESULTS}/runs/{RUN}/train.json",
        curves=f"{RESULTS}/runs/{RUN}/curves.csv",
    output:
        f"{RESULTS}/runs/{RUN}/metrics.json",
    log:
        f"{RESULTS}/logs/evaluate/{RUN}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{RUN}.tsv"
    group:
        "cell"
    conda:
        ENV
    resources:
        mem_mb=mem_mb_evaluate,
        runtime=runtime_light,
        gpu=gpu_train,
    params:
        world=world_dir,
        run=run_record,
        evaluation=as_json(config["evaluation"]),
        tracking_state=TRACKING_STATE,
        predictions=SCORING.evaluate_file,
        scoring=SCORING.evaluate_arguments,
        device=config["training"]["device"],
    shell:
        f"{EVALUATE}; {LOG_RUN}" if PLAN.logs_runs_from_jobs else EVALUATE
