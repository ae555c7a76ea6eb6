rule pairs:
    input:
        world_inputs,
    output:
        TREE.pairs(),
    log:
        TREE.log("pairs", CELL),
    benchmark:
        TREE.benchmark("pairs", CELL)
    # One cell's pairs, annotations, training and evaluation form one cluster submission.
    group:
        "cell"
    conda:
        ENV
    resources:
        mem_mb=mem_mb_light,
        runtime=runtime_light,
    params:
        world=world_dir,
        heldout=PLAN.config["annotation"]["heldout_pairs"],
        # Every cell of a design draws its largest quantity and keeps the first n.
        of=lambda wildcards: PLAN.largest_quantity(wildcards.world, wildcards.design),
    shell:
        "python -m embrm pairs --world {params.world} --design {wildcards.design}"
        " --n {wildcards.n} --seed {wildcards.seed} --heldout {params.heldout}"
        " --of {params.of} --out {output} > {log} 2>&1"
