# Sequential looks (config `findings.looks`; embrm.findings.sequential; docs/findings.md,
# "Sequential looks"). Look k is a checkpoint: it decides every part on the first looks[k] seeds
# of grid.seeds at the alpha the analysis plan's spending allows it, and writes which parts are
# still open and the settings they need (decisions.json). The next look's inputs are read from
# that file, so one invocation runs look after look, each only the runs the open parts need, and
# stops when every part is decided or stopped, or after the last look. Locally or on a cluster
# this is the same DAG re-evaluation. Without `findings.looks` nothing here is used.
from embrm.config import looks as configured_looks
from embrm.findings import sequential as embrm_sequential
from embrm.findings.plan import PLAN_PATH as LOOKS_PLAN_PATH

LOOKS = configured_looks(PLAN.config)
LOOK_DIR = f"{RESULTS}/looks/look-{{k}}"
LOOK_FILES = {
    "csv": f"{LOOK_DIR}/findings.csv",
    "md": f"{LOOK_DIR}/findings.md",
    "rst": f"{LOOK_DIR}/findings.rst",
    "html": f"{LOOK_DIR}/findings.html",
    "decisions": f"{LOOK_DIR}/decisions.json",
}


def look_decisions(k):
    """Look k's decisions (1-based); raises Snakemake's incomplete-checkpoint signal until the
    look has run, which makes Snakemake run it and evaluate the asking function again.
    """
    path = checkpoints.look.get(k=str(k)).output.decisions
    return json.loads(Path(path).read_text())


def runs_of_look(k):
    previous = look_decisions(k - 1) if k > 1 else None
    return embrm_sequential.look_runs(
        PLAN.runs, PLAN.config["grid"]["seeds"], LOOKS, k - 1, previous
    )


def look_inputs(wildcards):
    k = int(wildcards.k)
    files = {
        "runs": [
            f"{RESULTS}/runs/{run.run_dir}/metrics.json" for run in runs_of_look(k)
        ]
    }
    if k > 1:
        files["previous"] = LOOK_FILES["csv"].format(k=k - 1)
    return files


def last_look():
    """The look that ends the sequence: the first whose decisions say done (the last at most)."""
    for k in range(1, len(LOOKS) + 1):
        if look_decisions(k)["done"]:
            return k
    return len(LOOKS)


def looked_metrics(wildcards):
    """The metrics of every run the looks ran (summary, tracking and figures stand on them)."""
    return [
        f"{RESULTS}/runs/{run.run_dir}/metrics.json"
        for run in runs_of_look(last_look())
    ]


def findings_of_last_look(wildcards):
    """The experiment's findings are the last look's (csv, md, rst, html); none without looks."""
    if not LOOKS:
        return []
    k = last_look()
    return [LOOK_FILES[name].format(k=k) for name in ("csv", "md", "rst", "html")]


if LOOKS:

    localrules:
        look,

    checkpoint look:
        input:
            unpack(look_inputs),
            plan=str(LOOKS_PLAN_PATH),
        output:
            **LOOK_FILES,
        log:
            f"{RESULTS}/logs/look/look-{{k}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/look/look-{{k}}.tsv"
        wildcard_constraints:
            k=r"\d+",
        conda:
            ENV
        params:
            k=lambda wildcards: int(wildcards.k),
            looks=LOOKS,
            seeds=PLAN.config["grid"]["seeds"],
            run_dirs=lambda wildcards: [
                run.run_dir for run in runs_of_look(int(wildcards.k))
            ],
        script:
            "../scripts/look.py"
