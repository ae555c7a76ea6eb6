# Sequential looks (config `findings.looks`; embrm.findings.sequential; docs/findings.md,
# "Sequential looks"). Look k is a checkpoint: it decides every part on the first looks[k] seeds
# of grid.seeds at the alpha the analysis plan's spending allows it, and writes which parts are
# still open and the settings they need (decisions.json). The next look's inputs are read from
# that file, so one invocation runs look after look, each only the runs the open parts need, and
# stops when every part is decided or stopped, or after the last look. Locally or on a cluster
# this is the same DAG re-evaluation. Without `findings.looks` nothing here is used.
from embrm.findings.plan import PLAN_PATH as LOOKS_PLAN_PATH

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
            TREE.log("look", "look-{k}"),
        benchmark:
            TREE.benchmark("look", "look-{k}")
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
