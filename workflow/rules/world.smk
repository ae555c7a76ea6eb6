# Worlds: train/test embeddings with golden rewards in each world's folder (TREE.world).
# synthetic and npy worlds are built by one job (`world`); text worlds (table, hf) are embedded
# per split (`text_embed`, in text.smk) and assembled by `text_world`. Each rule only matches the
# world names of its sources, so no two rules can make the same file.
WORLDS = LAYOUT.worlds
TEXT_DIR = TREE.text()


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
        texts=f"{TEXT_DIR}/texts.parquet",
        train=f"{TREE.world()}/train_embeddings.npy",
        test=f"{TREE.world()}/test_embeddings.npy",
    output:
        f"{TREE.world()}/train_rewards.npy",
        f"{TREE.world()}/test_rewards.npy",
        f"{TREE.world()}/world.json",
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
        spec=WORLDS.spec_json,
        out=lambda wildcards: TREE.world(wildcards.world),
    shell:
        "python -m embrm text world --spec {params.spec:q} --texts {input.texts}"
        " --train-embeddings {input.train} --test-embeddings {input.test}"
        " --out {params.out} > {log} 2>&1"
