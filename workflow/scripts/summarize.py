"""Collect every run's metrics into summary.csv/.parquet, aggregate.csv and their report pages."""

import logging
import sys

from embrm import tree
from embrm.summary import degenerate, write_tables

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
for name, reason in snakemake.params.skipped.items():
    logging.info("figure %s not drawn: %s", name, reason)
out = snakemake.output
summary = write_tables(
    snakemake.params.metrics,
    out.csv,
    out.parquet,
    out.aggregate,
    summary_page=out.summary_page,
    aggregate_page=out.aggregate_page,
)
logging.info("summary: %d runs, %d columns", *summary.shape)
# Degenerate runs are named on the console too (a log file is easy to miss).
flagged = summary[degenerate(summary)]
if len(flagged):
    lines = [
        f"  {tree.run(row._asdict())}: " + row.status.removeprefix("degenerate: ")
        for row in flagged.itertuples()
    ]
    message = (
        f"warning: {len(flagged)} of {len(summary)} runs are degenerate (status column of "
        f"{out.csv}); aggregate.csv and the figures leave them out:\n" + "\n".join(lines)
    )
    logging.warning(message)
    print(message, file=sys.stderr)
