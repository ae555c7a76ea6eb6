# training.stack: true. One train_cell job per cell fits all of the cell's stacked runs (bt-mlp and
# clf-mlp, every annotator) together in one process and writes each run's outputs under
# stacked/<cell>/<annotator>/<head>/; unstack then gives every run the same files its own train
# job would write (hard links, no second copy), so scoring, evaluation and tracking are unchanged.
if STACK:

    rule train_cell:
        input:
            world=world_inputs,
            pairs=f"{RESULTS}/pairs/{CELL}.npz",
            labels=stacked_labels,
        output:
            directory(f"{RESULTS}/stacked/{CELL}"),
        log:
            f"{RESULTS}/logs/train_cell/{CELL}.log",
        benchmark:
            f"{RESULTS}/benchmarks/train_cell/{CELL}.tsv"
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
            world=world_dir,
            runs=stacked_runs_json,
            device=config["training"]["device"],
            threads=TRAINING_THREADS,
            score=SCORING.stacked_arguments,
        shell:
            "python -m embrm train-cell --world {params.world} --pairs {input.pairs}"
            " --runs {params.runs:q} --seed {wildcards.seed} --threads {params.threads}"
            " --device {params.device} {params.score} --out {output} > {log} 2>&1"

    rule unstack:
        input:
            f"{RESULTS}/stacked/{CELL}",
        output:
            **TRAIN_OUTPUTS,
        log:
            f"{RESULTS}/logs/unstack/{RUN}.log",
        benchmark:
            f"{RESULTS}/benchmarks/unstack/{RUN}.tsv"
        wildcard_constraints:
            head=names_pattern(STACKED_HEADS),
        group:
            "cell"
        conda:
            ENV
        resources:
            runtime=runtime_light,
        params:
            predictions=output_argument("predictions"),
        shell:
            "python -m embrm unstack --cell {input} --name {wildcards.annotator}/{wildcards.head}"
            " --model-dir {output.model} --curves {output.curves} --info {output.info}"
            " {params.predictions} > {log} 2>&1"
