"""Test every claim of the study on the summary table: findings.csv, findings.md and pages."""

import logging

from embrm.findings import write

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
out = snakemake.output
table = write(
    snakemake.input[0],
    out.csv,
    out.md,
    rst_path=out.rst,
    html_path=out.html,
    metric_files=snakemake.params.metrics,
)
for row in table[table["part"] == "all"].itertuples():
    logging.info("world %s, claim %s: %s (%s)", row.world, row.claim, row.verdict, row.note)
