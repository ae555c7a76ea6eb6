"""Collect every run's metrics into summary.csv/.parquet and aggregate.csv."""

import logging

from embrm.summary import write_tables

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
out = snakemake.output
summary = write_tables(snakemake.input.metrics, out.csv, out.parquet, out.aggregate)
logging.info("summary: %d rows, %d columns", *summary.shape)
