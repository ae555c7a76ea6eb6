# Worlds: train/test embeddings with golden rewards under results/worlds/{world}/.
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
        f"{RESULTS}/logs/world/{{world}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/world/{{world}}.tsv"
    wildcard_constraints:
        world=WORLDS.built,
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb_world,
        runtime=runtime_world,
    params:
        spec=WORLDS.spec_json,
        out=world_dir,
        device=DEVICE,
    shell:
        "python -m embrm world --spec {params.spec:q} --out {params.out}"
        " --threads {threads} --device {params.device} > {log} 2>&1"


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
        f"{RESULTS}/logs/world/{{world}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/world/{{world}}.tsv"
    wildcard_constraints:
        world=WORLDS.text,
    conda:
        ENV
    resources:
        mem_mb=mem_mb_light,
        runtime=runtime_light,
    params:
        spec=WORLDS.spec_json,
        out=world_dir,
    shell:
        "python -m embrm text world --spec {params.spec:q} --texts {input.texts}"
        " --train-embeddings {input.train} --test-embeddings {input.test}"
        " --out {params.out} > {log} 2>&1"
