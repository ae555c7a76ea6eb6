# Active designs (docs/active.md): one job per run chooses, in rounds, which pairs its annotator
# labels, training the run's head between rounds; train and evaluate then read its pairs, labels
# and statistics (the layout's run_pairs, run_labels, run_annotation_stats). Each round is saved
# under rounds/ as it finishes (not a declared output, so a killed job resumes there).
rule active:
    input:
        LAYOUT.world_inputs,
    output:
        pairs=TREE.active("pairs.npz"),
        labels=TREE.active("labels.npz"),
        stats=TREE.active("annotation.json"),
    log:
        TREE.log("active", RUN),
    benchmark:
        TREE.benchmark("active", RUN)
    wildcard_constraints:
        design=tree.names_pattern(LAYOUT.active_designs),
    group:
        "cell"
    conda:
        ENV
    threads: TRAINING_THREADS
    resources:
        mem_mb=mem_mb_active,
        runtime=runtime_active,
        gpu=gpu_train,
    params:
        arguments=LAYOUT.arguments("active"),
    shell:
        "python -m embrm active {params.arguments} > {log} 2>&1"


# The annotation budget table (labels needed per head and design to reach each target share of
# the oracle's Best-of-N gain), drawn from the learning curves whenever the grid has some.
localrules:
    budget,


rule budget:
    input:
        TREE.file("summary.parquet"),
    output:
        csv=report(
            TREE.file("budget.csv"),
            caption="../report/budget.rst",
            category="Tables",
            labels={"table": "budget.csv (labels needed per target, download)"},
        ),
        html=report(
            TREE.page("budget.html"),
            caption="../report/budget.rst",
            category="Tables",
            labels={"table": "annotation budget: labels needed per target"},
        ),
    log:
        TREE.log("budget"),
    benchmark:
        TREE.benchmark("budget")
    conda:
        ENV
    params:
        targets=" ".join(
            f"--target {t}" for t in PLAN.config["active"]["budget_targets"]
        ),
    shell:
        "python -m embrm budget {input} {params.targets} --csv {output.csv}"
        " --html {output.html} > {log} 2>&1"
