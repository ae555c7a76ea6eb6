rule train:
    input:
        world=world_inputs,
        pairs=f"{RESULTS}/pairs/{CELL}.npz",
        labels=f"{RESULTS}/annotations/{CELL}/{{annotator}}.npz",
    output:
        model=directory(f"{RESULTS}/runs/{RUN}/model"),
        predictions=f"{RESULTS}/runs/{RUN}/predictions.npy",
        curves=f"{RESULTS}/runs/{RUN}/curves.csv",
        info=f"{RESULTS}/runs/{RUN}/train.json",
    log:
        f"{RESULTS}/logs/train/{RUN}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{RUN}.tsv"
    group:
        "cell"
    conda:
        ENV
    threads: config["training"]["threads"]
    resources:
        mem_mb=mem_mb_train,
        runtime=runtime_train,
        gpu=gpu_train,
    params:
        world=world_dir,
        head=lambda w: as_json(PLAN.head_spec(w.head)),
        device=config["training"]["device"],
    shell:
        "python -m embrm train --world {params.world} --pairs {input.pairs}"
        " --labels {input.labels} --head {params.head:q} --seed {wildcards.seed}"
        " --threads {threads} --device {params.device} --model-dir {output.model}"
        " --predictions {output.predictions} --curves {output.curves} --info {output.info}"
        " > {log} 2>&1"
