# A train job fits and saves a head (or ensemble). With training.scoring: run it also scores the
# test set; with cell, the cell's score job (score.smk) does that for all of the cell's runs.
TRAIN_OUTPUTS = {
    "model": directory(f"{RESULTS}/runs/{RUN}/model"),
    "curves": f"{RESULTS}/runs/{RUN}/curves.csv",
    "info": f"{RESULTS}/runs/{RUN}/train.json",
    **SCORING.train_outputs,
}


rule train:
    input:
        world=world_inputs,
        pairs=run_pairs,
        labels=run_labels,
    output:
        **TRAIN_OUTPUTS,
    log:
        f"{RESULTS}/logs/train/{RUN}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{RUN}.tsv"
    # With training.stack the cell's MLP runs come from train_cell.smk instead.
    wildcard_constraints:
        head=TRAIN_HEADS,
    group:
        "cell"
    conda:
        ENV
    threads: TRAINING_THREADS
    resources:
        mem_mb=mem_mb_train,
        runtime=runtime_train,
        gpu=gpu_train,
    params:
        world=world_dir,
        head=lambda w: as_json(PLAN.head_spec(w.head)),
        device=config["training"]["device"],
        threads=TRAINING_THREADS,
        predictions=output_argument("predictions"),
    shell:
        "python -m embrm train --world {params.world} --pairs {input.pairs}"
        " --labels {input.labels} --head {params.head:q} --seed {wildcards.seed}"
        " --threads {params.threads} --device {params.device} --model-dir {output.model}"
        " {params.predictions} --curves {output.curves} --info {output.info}"
        " > {log} 2>&1"
