rule annotate:
    input:
        world=LAYOUT.world_inputs,
        pairs=TREE.pairs(),
    output:
        labels=TREE.annotations(),
        stats=TREE.annotation_stats(),
    log:
        TREE.log("annotate", f"{CELL}/{{annotator}}"),
    benchmark:
        TREE.benchmark("annotate", f"{CELL}/{{annotator}}")
    group:
        "cell"
    conda:
        ENV
    resources:
        mem_mb=mem_mb_light,
        runtime=runtime_light,
    params:
        arguments=LAYOUT.arguments("annotate"),
    shell:
        "python -m embrm annotate {params.arguments} > {log} 2>&1"
