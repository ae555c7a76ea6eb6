# training.stack: true. One train_cell job per cell fits all of the cell's stacked runs (bt-mlp and
# clf-mlp, every annotator) together in one process and writes each run's outputs under
# stacked/<cell>/<annotator>/<head>/; unstack then gives every run the same files its own train
# job would write (hard links, no second copy), so scoring, evaluation and tracking are unchanged.
if LAYOUT.stack:

    rule train_cell:
        input:
            world=LAYOUT.world_inputs,
            pairs=TREE.pairs(),
            labels=LAYOUT.stacked_labels,
        output:
            directory(TREE.stacked()),
        log:
            TREE.log("train_cell", CELL),
        benchmark:
            TREE.benchmark("train_cell", CELL)
        group:
            "cell"
        conda:
            ENV
        threads: TRAINING_THREADS
        resources:
            mem_mb=mem_mb_train_cell,
            runtime=runtime_train_cell,
            gpu=gpu_train,
        params:
            arguments=LAYOUT.arguments("train-cell"),
        shell:
            "python -m embrm train-cell {params.arguments} > {log} 2>&1"

    rule unstack:
        input:
            TREE.stacked(),
        output:
            **outputs(LAYOUT.train_outputs()),
        log:
            TREE.log("unstack", RUN),
        benchmark:
            TREE.benchmark("unstack", RUN)
        wildcard_constraints:
            head=tree.names_pattern(LAYOUT.stacked_heads),
        group:
            "cell"
        conda:
            ENV
        resources:
            runtime=runtime_light,
        params:
            arguments=LAYOUT.arguments("unstack"),
        shell:
            "python -m embrm unstack {params.arguments} > {log} 2>&1"
