"""The training recipe's attribution (embrm.findings.attribution): attribution.md and its page."""

import logging

from embrm.findings.attribution import write

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
text = write(
    snakemake.params.metrics,
    snakemake.params.heads,
    snakemake.output.md,
    snakemake.output.html,
)
logging.info(
    "attribution of %d metrics files: %d lines",
    len(snakemake.params.metrics),
    len(text.splitlines()),
)
