"""Draw one figure of the findings from the summary and findings tables (PNG and SVG)."""

import logging

from embrm.figures.findings import render

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
logging.info("drawing %s", snakemake.params.title)
render(
    snakemake.wildcards.finding,
    snakemake.input.summary,
    snakemake.output.png,
    snakemake.output.svg,
    findings_path=snakemake.input.findings,
)
