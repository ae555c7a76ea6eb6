rule pairs:
    input:
        LAYOUT.world_inputs,
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
        arguments=LAYOUT.arguments("pairs"),
    shell:
        "python -m embrm pairs {params.arguments} > {log} 2>&1"
