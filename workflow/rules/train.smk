# A train job fits and saves a head (or ensemble). With training.scoring: run it also scores the
# test set; with cell, the cell's score job (score.smk) does that for all of the cell's runs. Its
# outputs and arguments are the layout's (embrm/layout.py), its options the stage's declaration.
rule train:
    input:
        world=LAYOUT.world_inputs,
        pairs=LAYOUT.run_pairs,
        labels=LAYOUT.run_labels,
    output:
        **outputs(LAYOUT.train_outputs()),
    log:
        TREE.log("train", RUN),
    benchmark:
        TREE.benchmark("train", RUN)
    # With training.stack the cell's MLP runs come from train_cell.smk instead.
    wildcard_constraints:
        head=tree.names_pattern(LAYOUT.unstacked_heads),
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
        arguments=LAYOUT.arguments("train"),
    shell:
        "python -m embrm train {params.arguments} > {log} 2>&1"
