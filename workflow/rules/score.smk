# training.scoring: cell: one job per cell scores every model the cell's train jobs saved, with a
# single chunked read of the world's test embeddings, and writes one predictions file per run
# (<annotator>/<head>.npy) plus scoring.json; evaluate then scores and logs each run on its own.
# Its jobs run only when evaluate reads from scores/ (SCORING in common.smk).
rule score:
    input:
        world=world_inputs,
        models=cell_models,
    output:
        directory(f"{RESULTS}/scores/{CELL}"),
    log:
        f"{RESULTS}/logs/score/{CELL}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score/{CELL}.tsv"
    group:
        "cell"
    conda:
        ENV
    threads: TRAINING_THREADS
    resources:
        mem_mb=mem_mb_score,
        runtime=runtime_score,
        gpu=gpu_train,
    params:
        world=world_dir,
        models=model_arguments,
        device=config["training"]["device"],
        threads=TRAINING_THREADS,
    shell:
        "python -m embrm score --world {params.world} {params.models}"
        " --threads {params.threads} --device {params.device} --out {output} > {log} 2>&1"
