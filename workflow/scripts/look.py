"""One sequential look: the findings on the look's seeds and the parts still open."""

import logging

from embrm.findings import looks, read_per_prompt
from embrm.summary import build_summary

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
params = snakemake.params
summary = build_summary(snakemake.input.runs)
previous = snakemake.input.get("previous")
table = looks.write(
    summary,
    read_per_prompt(snakemake.input.runs),
    params.looks,
    params.seeds,
    params.k - 1,
    params.run_dirs,
    dict(snakemake.output.items()),
    previous_csv=previous,
)
parts = table[table["part"] != "all"]
logging.info(
    "look %d of %d: %d runs, %d seeds; parts by state: %s",
    params.k,
    len(params.looks),
    len(summary),
    int(table["seeds_used"].iloc[0]),
    parts["state"].value_counts().to_dict(),
)
