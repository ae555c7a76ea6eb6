"""Collect every run's metrics into summary.csv/.parquet, aggregate.csv and their report pages."""

import logging

from embrm.summary import write_tables

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
for name, reason in snakemake.params.skipped.items():
    logging.info("figure %s not drawn: %s", name, reason)
out = snakemake.output
summary = write_tables(
    snakemake.input.metrics,
    out.csv,
    out.parquet,
    out.aggregate,
    summary_page=out.summary_page,
    aggregate_page=out.aggregate_page,
)
logging.info("summary: %d runs, %d columns", *summary.shape)
