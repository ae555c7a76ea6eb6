# Text worlds: texts → golden rewards → embeddings (see docs/real-embeddings.md).
# hf:    text_prompts → text_generate (GPU) → text_score (GPU) → texts.parquet
# table: text_table → texts.parquet
# both:  text_embed (GPU, one job per split) → results/worlds/{world}/{split}_embeddings.npy,
#        then text_world (world.smk) writes rewards and world.json.
# Generation, scoring and embedding resume after an interruption (finished batches are kept
# beside their output), which `rerun-incomplete` in the default profile relies on.


rule text_prompts:
    input:
        WORLDS.source_files,
    output:
        f"{TEXT_DIR}/prompts.parquet",
    log:
        TREE.log("text", "{world}/prompts"),
    benchmark:
        TREE.benchmark("text", "{world}/prompts")
    wildcard_constraints:
        world=WORLDS.pattern("hf"),
    conda:
        ENV
    params:
        spec=WORLDS.spec_json,
    shell:
        "python -m embrm text prompts --spec {params.spec:q} --out {output} > {log} 2>&1"


rule text_generate:
    input:
        f"{TEXT_DIR}/prompts.parquet",
    output:
        f"{TEXT_DIR}/responses.parquet",
    log:
        TREE.log("text", "{world}/generate"),
    benchmark:
        TREE.benchmark("text", "{world}/generate")
    wildcard_constraints:
        world=WORLDS.pattern("hf"),
    conda:
        ENV
    threads: WORLDS.threads
    resources:
        gpu=WORLDS.gpus("generation"),
    params:
        spec=WORLDS.spec_json,
        threads=WORLDS.threads,
    shell:
        "python -m embrm text generate --spec {params.spec:q} --prompts {input}"
        " --out {output} --threads {params.threads} > {log} 2>&1"


rule text_score:
    input:
        f"{TEXT_DIR}/responses.parquet",
    output:
        f"{TEXT_DIR}/texts.parquet",
    log:
        TREE.log("text", "{world}/score"),
    benchmark:
        TREE.benchmark("text", "{world}/score")
    wildcard_constraints:
        world=WORLDS.pattern("hf"),
    conda:
        ENV
    threads: WORLDS.threads
    resources:
        gpu=WORLDS.gpus("reward_model"),
    params:
        spec=WORLDS.spec_json,
        threads=WORLDS.threads,
    shell:
        "python -m embrm text score --spec {params.spec:q} --responses {input}"
        " --out {output} --threads {params.threads} > {log} 2>&1"


rule text_table:
    input:
        WORLDS.source_files,
    output:
        f"{TEXT_DIR}/texts.parquet",
    log:
        TREE.log("text", "{world}/table"),
    benchmark:
        TREE.benchmark("text", "{world}/table")
    wildcard_constraints:
        world=WORLDS.pattern("table"),
    conda:
        ENV
    params:
        spec=WORLDS.spec_json,
    shell:
        "python -m embrm text table --spec {params.spec:q} --out {output} > {log} 2>&1"


rule text_embed:
    input:
        f"{TEXT_DIR}/texts.parquet",
    output:
        f"{TREE.world()}/{{split}}_embeddings.npy",
    log:
        TREE.log("text", "{world}/embed-{split}"),
    benchmark:
        TREE.benchmark("text", "{world}/embed-{split}")
    wildcard_constraints:
        world=WORLDS.text,
        split="train|test",
    conda:
        ENV
    threads: WORLDS.threads
    resources:
        gpu=WORLDS.gpus("embedder"),
    params:
        spec=WORLDS.spec_json,
        threads=WORLDS.threads,
    shell:
        "python -m embrm text embed --spec {params.spec:q} --texts {input}"
        " --split {wildcards.split} --out {output} --threads {params.threads} > {log} 2>&1"
