# embrm: embedding-based reward-model experiments, end to end.
# Usage: snakemake --cores all [--configfile F]  (see README.md). An experiment is one config file:
# F when given, else config.yaml; never a merge of the two (Snakemake would merge --configfile
# over a `configfile:` it has loaded, so config.yaml is loaded only when no file is given).
from snakemake.utils import min_version

min_version("9.0")


if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/world.smk"
include: "workflow/rules/text.smk"
include: "workflow/rules/pairs.smk"
include: "workflow/rules/annotate.smk"
include: "workflow/rules/active.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/train_cell.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/summarize.smk"
include: "workflow/rules/track.smk"
include: "workflow/rules/findings.smk"


rule all:
    default_target: True
    input:
        final_targets(),
        active_targets(),
