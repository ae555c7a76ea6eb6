"""Draw one figure of the summary table (PNG and SVG)."""

import logging

from embrm.figures import render

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
for name, reason in snakemake.params.skipped.items():
    logging.info("figure %s not drawn: %s", name, reason)
render(snakemake.wildcards.figure, snakemake.input[0], snakemake.output.png, snakemake.output.svg)
