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
        TREE.text_file("prompts.parquet"),
    log:
        TREE.log("text", "{world}/prompts"),
    benchmark:
        TREE.benchmark("text", "{world}/prompts")
    wildcard_constraints:
        world=WORLDS.pattern("hf"),
    conda:
        ENV
    params:
        arguments=LAYOUT.arguments("text prompts"),
    shell:
        "python -m embrm text prompts {params.arguments} > {log} 2>&1"


rule text_generate:
    input:
        TREE.text_file("prompts.parquet"),
    output:
        TREE.text_file("responses.parquet"),
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
        arguments=LAYOUT.arguments("text generate"),
    shell:
        "python -m embrm text generate {params.arguments} > {log} 2>&1"


rule text_score:
    input:
        TREE.text_file("responses.parquet"),
    output:
        TREE.text_file("texts.parquet"),
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
        arguments=LAYOUT.arguments("text score"),
    shell:
        "python -m embrm text score {params.arguments} > {log} 2>&1"


rule text_table:
    input:
        WORLDS.source_files,
    output:
        TREE.text_file("texts.parquet"),
    log:
        TREE.log("text", "{world}/table"),
    benchmark:
        TREE.benchmark("text", "{world}/table")
    wildcard_constraints:
        world=WORLDS.pattern("table"),
    conda:
        ENV
    params:
        arguments=LAYOUT.arguments("text table"),
    shell:
        "python -m embrm text table {params.arguments} > {log} 2>&1"


rule text_embed:
    input:
        TREE.text_file("texts.parquet"),
    output:
        TREE.embeddings(),
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
        arguments=LAYOUT.arguments("text embed"),
    shell:
        "python -m embrm text embed {params.arguments} > {log} 2>&1"
