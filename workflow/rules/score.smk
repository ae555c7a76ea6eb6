# training.scoring: cell: one job per cell scores every model the cell's train jobs saved, with a
# single chunked read of the world's test embeddings, and writes one predictions file per run
# (<annotator>/<head>.npy) plus scoring.json; evaluate then scores and logs each run on its own.
# Its jobs run only when evaluate reads from scores/ (LAYOUT.predictions_input).
rule score:
    input:
        world=LAYOUT.world_inputs,
        models=LAYOUT.score_models,
    output:
        directory(TREE.scores()),
    log:
        TREE.log("score", CELL),
    benchmark:
        TREE.benchmark("score", CELL)
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
        arguments=LAYOUT.arguments("score"),
    shell:
        "python -m embrm score {params.arguments} > {log} 2>&1"
