# Worlds: train/test embeddings with golden rewards in each world's folder (TREE.world).
# synthetic and npy worlds are built by one job (`world`); text worlds (table, hf) are embedded
# per split (`text_embed`, in text.smk) and assembled by `text_world`. Each rule only matches the
# world names of its sources, so no two rules can make the same file.
WORLDS = LAYOUT.worlds


rule world:
    input:
        WORLDS.source_files,
    output:
        TREE.world_files(),
    log:
        TREE.log("world", "{world}"),
    benchmark:
        TREE.benchmark("world", "{world}")
    wildcard_constraints:
        world=WORLDS.built,
    conda:
        ENV
    threads: LAYOUT.world_threads
    resources:
        mem_mb=mem_mb_world,
        runtime=runtime_world,
    params:
        arguments=LAYOUT.arguments("world"),
    shell:
        "python -m embrm world {params.arguments} > {log} 2>&1"


rule text_world:
    input:
        texts=TREE.text_file("texts.parquet"),
        train=TREE.embeddings("train"),
        test=TREE.embeddings("test"),
    output:
        TREE.world_file("train_rewards.npy"),
        TREE.world_file("test_rewards.npy"),
        TREE.world_file("world.json"),
    log:
        TREE.log("world", "{world}"),
    benchmark:
        TREE.benchmark("world", "{world}")
    wildcard_constraints:
        world=WORLDS.text,
    conda:
        ENV
    resources:
        mem_mb=mem_mb_light,
        runtime=runtime_light,
    params:
        arguments=LAYOUT.arguments("text world"),
    shell:
        "python -m embrm text world {params.arguments} > {log} 2>&1"
