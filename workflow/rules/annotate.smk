rule annotate:
    input:
        world=world_inputs,
        pairs=f"{RESULTS}/pairs/{CELL}.npz",
    output:
        labels=f"{RESULTS}/annotations/{CELL}/{{annotator}}.npz",
        stats=f"{RESULTS}/annotations/{CELL}/{{annotator}}.json",
    log:
        f"{RESULTS}/logs/annotate/{CELL}/{{annotator}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/annotate/{CELL}/{{annotator}}.tsv"
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
        scale=as_json(config["annotation"]["scale"]),
    shell:
        "python -m embrm annotate --world {params.world} --pairs {input.pairs}"
        " --annotator {params.annotator:q} --scale {params.scale:q} --seed {wildcards.seed}"
        " --out {output.labels} --stats {output.stats} > {log} 2>&1"
