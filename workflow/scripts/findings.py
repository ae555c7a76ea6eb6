"""Test every claim of the study on the summary table: findings.csv, findings.md and pages."""

import logging

from embrm.findings import write

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
out = snakemake.output
latest = list(snakemake.input.latest)
if latest:  # sequential looks: the experiment's findings are the last look's
    import shutil

    import pandas as pd
    from embrm.io import atomic_path

    for source, target in zip(latest, (out.csv, out.md, out.rst, out.html), strict=True):
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    table = pd.read_csv(out.csv, dtype={"claim": str, "world": str})
    logging.info("findings of %s", latest[0])
else:
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
