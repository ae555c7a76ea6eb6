rule annotate:
    input:
        world=world_inputs,
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
        world=world_dir,
        annotator=lambda w: as_json(PLAN.annotator_spec(w.annotator)),
        scale=as_json(PLAN.config["annotation"]["scale"]),
    shell:
        "python -m embrm annotate --world {params.world} --pairs {input.pairs}"
        " --annotator {params.annotator:q} --scale {params.scale:q} --seed {wildcards.seed}"
        " --out {output.labels} --stats {output.stats} > {log} 2>&1"
