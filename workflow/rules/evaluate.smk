rule evaluate:
    input:
        world=world_inputs,
        predictions=f"{RESULTS}/runs/{RUN}/predictions.npy",
        pairs=f"{RESULTS}/pairs/{CELL}.npz",
        labels=f"{RESULTS}/annotations/{CELL}/{{annotator}}.npz",
        stats=f"{RESULTS}/annotations/{CELL}/{{annotator}}.json",
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
    params:
        world=world_dir,
        run=run_record,
        evaluation=as_json(config["evaluation"]),
        tracking_state=TRACKING_STATE,
    # With tracking.mode: jobs the run is logged to MLflow as soon as it is scored; that step
    # never fails the job (the end-of-workflow sync logs what it could not). See track.smk.
    shell:
        "python -m embrm evaluate --world {params.world} --predictions {input.predictions}"
        " --pairs {input.pairs} --labels {input.labels} --annotation-stats {input.stats}"
        " --train-info {input.info} --curves {input.curves} --run {params.run:q}"
        " --evaluation {params.evaluation:q} --out {output} > {log} 2>&1"
        "; if [ -s {params.tracking_state} ]; then python -m embrm.tracking log-job"
        " --state {params.tracking_state} --metrics {output} >> {log} 2>&1; fi"
