# Active designs (docs/active.md): one job per run chooses, in rounds, which pairs its annotator
# labels, training the run's head between rounds; train and evaluate then read its pairs, labels
# and statistics (run_pairs, run_labels, run_annotation_stats in common.smk). Each round is saved
# under rounds/ as it finishes (not a declared output, so a killed job resumes there).
from embrm.active import DESIGNS as ACTIVE_DESIGNS
from embrm.active.rounds import Settings as ActiveSettings
from embrm.active.rounds import schedule as active_schedule

try:
    ACTIVE = ActiveSettings.from_config(
        {k: v for k, v in config["active"].items() if k != "budget_targets"}
    )
except ConfigError as error:
    sys.exit(f"error: {error}")


def active_rounds(wildcards):
    return len(active_schedule(int(wildcards.n), ACTIVE))


def mem_mb_active(wildcards, attempt):
    # A round holds what training at n holds, the test scoring, and the pool's features (two
    # embeddings and two penultimate vectors per candidate, float32, plus their differences).
    shapes = world_shapes(wildcards.world)
    params, members = _head(wildcards.head)
    width = max([shapes["train"][2], *params.get("hidden", [])])
    pool = ACTIVE.pool_size * (2 * shapes["train"][2] + 3 * width) * 4 / 2**20
    train = mem_mb_train(wildcards, 1) / MEMORY_SAFETY
    scoring = 0 if not SCORE_PER_CELL else _scoring_mb(shapes, [(params, members)])
    return _round_mb(train + scoring + pool, attempt)


def runtime_active(wildcards, attempt):
    # Every round but the last trains at most at n and scores the test set once.
    return max(
        MIN_RUNTIME_MINUTES,
        active_rounds(wildcards) * runtime_train(wildcards, attempt),
    )


rule active:
    input:
        world_inputs,
    output:
        pairs=f"{RESULTS}/active/{RUN}/pairs.npz",
        labels=f"{RESULTS}/active/{RUN}/labels.npz",
        stats=f"{RESULTS}/active/{RUN}/annotation.json",
    log:
        f"{RESULTS}/logs/active/{RUN}.log",
    benchmark:
        f"{RESULTS}/benchmarks/active/{RUN}.tsv"
    wildcard_constraints:
        design="|".join(ACTIVE_DESIGNS),
    group:
        "cell"
    conda:
        ENV
    threads: config["training"]["threads"]
    resources:
        mem_mb=mem_mb_active,
        runtime=runtime_active,
        gpu=gpu_train,
    params:
        world=world_dir,
        annotator=lambda w: as_json(PLAN.annotator_spec(w.annotator)),
        scale=as_json(config["annotation"]["scale"]),
        heldout=config["annotation"]["heldout_pairs"],
        head=lambda w: as_json(PLAN.head_spec(w.head)),
        active=as_json(
            {k: v for k, v in config["active"].items() if k != "budget_targets"}
        ),
        evaluation=as_json(config["evaluation"]),
        state=lambda w: f"{active_dir(w)}/rounds",
        device=config["training"]["device"],
    shell:
        "python -m embrm active --world {params.world} --design {wildcards.design}"
        " --n {wildcards.n} --seed {wildcards.seed} --annotator {params.annotator:q}"
        " --scale {params.scale:q} --head {params.head:q} --active {params.active:q}"
        " --evaluation {params.evaluation:q} --heldout {params.heldout}"
        " --state {params.state} --threads {threads} --device {params.device}"
        " --pairs-out {output.pairs} --labels-out {output.labels}"
        " --stats-out {output.stats} > {log} 2>&1"


# The annotation budget table (labels needed per head and design to reach each target share of
# the oracle's Best-of-N gain), drawn from the learning curves whenever the grid has some.
localrules:
    budget,


rule budget:
    input:
        f"{RESULTS}/summary.parquet",
    output:
        csv=report(
            f"{RESULTS}/budget.csv",
            caption="../report/budget.rst",
            category="Tables",
            labels={"table": "budget.csv (labels needed per target, download)"},
        ),
        html=report(
            f"{RESULTS}/report/budget.html",
            caption="../report/budget.rst",
            category="Tables",
            labels={"table": "annotation budget: labels needed per target"},
        ),
    log:
        f"{RESULTS}/logs/budget.log",
    benchmark:
        f"{RESULTS}/benchmarks/budget.tsv"
    conda:
        ENV
    params:
        targets=" ".join(f"--target {t}" for t in config["active"]["budget_targets"]),
    shell:
        "python -m embrm budget {input} {params.targets} --csv {output.csv}"
        " --html {output.html} > {log} 2>&1"


def active_targets():
    """The budget table, when the grid has a learning curve to fit (the learning-curve figure
    is drawable)."""
    if "learning_curves" not in FIGURES:
        return []
    return [f"{RESULTS}/budget.csv", f"{RESULTS}/report/budget.html"]
