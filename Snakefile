# embrm: embedding-based reward-model experiments, end to end.
# Usage: snakemake --cores all [--configfile F]  (see README.md). An experiment is one config file:
# F when given, else config.yaml; never a merge of the two (Snakemake would merge --configfile
# over a `configfile:` it has loaded, so config.yaml is loaded only when no file is given).
import importlib.util
import sys

from snakemake.utils import min_version

min_version("9.0")


if not workflow.overwrite_configfiles:
    # Snakemake's reader names neither the file nor the line of a YAML syntax error, nor the
    # file it found empty; embrm's does. (A --configfile is read before this file runs: `make
    # run` and `embrm plan` check it, and so does the console logger, --logger embrm.)
    if importlib.util.find_spec("embrm"):
        from embrm.config import read_config
        from embrm.errors import ConfigError

        try:
            read_config("config.yaml")
        except ConfigError as error:
            sys.exit(f"error: {error}")

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/looks.smk"
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
include: "workflow/rules/cell.smk"
include: "workflow/rules/summarize.smk"
include: "workflow/rules/track.smk"
include: "workflow/rules/findings.smk"


rule all:
    default_target: True
    input:
        TARGETS.final(),
        TARGETS.active(),
