rule world:
    output:
        [f"{RESULTS}/worlds/{{world}}/{name}" for name in WORLD_FILES],
    log:
        f"{RESULTS}/logs/world/{{world}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/world/{{world}}.tsv"
    conda:
        ENV
    threads: 1
    params:
        spec=lambda w: as_json(PLAN.world_spec(w.world)),
        out=world_dir,
        device=config["training"]["device"],
    shell:
        "python -m embrm world --spec {params.spec:q} --out {params.out}"
        " --threads {threads} --device {params.device} > {log} 2>&1"
