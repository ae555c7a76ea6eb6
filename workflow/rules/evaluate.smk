rule evaluate:
    input:
        world=world_inputs,
        predictions=predictions_input,
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
        predictions=predictions_file,
        scoring=scoring_arguments,
        device=config["training"]["device"],
    # With tracking.mode: jobs the run is logged to MLflow as soon as it is scored; that step
    # never fails the job (the end-of-workflow sync logs what it could not). See track.smk.
    shell:
        "python -m embrm evaluate --world {params.world} --predictions {params.predictions}"
        " --pairs {input.pairs} --labels {input.labels} --annotation-stats {input.stats}"
        " --train-info {input.info} --curves {input.curves} --run {params.run:q}"
        " --evaluation {params.evaluation:q} {params.scoring} --device {params.device}"
        " --out {output} > {log} 2>&1"
        "; if [ -s {params.tracking_state} ]; then python -m embrm tracking log-job"
        " --state {params.tracking_state} --metrics {output} >> {log} 2>&1; fi"
