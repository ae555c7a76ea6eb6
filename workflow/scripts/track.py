"""Mirror every run record into MLflow (the end-of-workflow sync, and the safety net of per-job
logging). An unreachable backend never fails the workflow: the results stay on disk, the state
file says the sync is pending, and the rule's ``pending`` param makes the next invocation retry."""

import json
import logging
import sys
import time
from pathlib import Path

from embrm.findings import findings_metrics
from embrm.io import write_json
from embrm.tracking import artifact_location, invocation_tags, quiet_environment, sync

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
quiet_environment()
spec = snakemake.params.spec
out = Path(snakemake.output[0])

# In jobs mode the invocation's parent run already exists (created before the jobs started).
parent = None
if snakemake.params.mode == "jobs":
    try:
        parent = json.loads(Path(snakemake.params.state).read_text()).get("parent_run_id")
    except (OSError, ValueError):
        parent = None

try:
    summary = sync(
        snakemake.params.metrics,
        uri=spec["uri"],
        experiment=spec["experiment"],
        artifact_location=artifact_location(
            spec["uri"], spec["artifact_location"], spec["results"]
        ),
        results_dir=spec["results"],
        tags=invocation_tags(spec["repo"], spec["config_hash"]),
        artifacts=spec["artifacts"],
        parent_files={
            "figures": list(snakemake.input.figures),
            "tables": list(snakemake.input.tables),
            "": [snakemake.input.config],
            "findings": list(snakemake.input.findings),
        },
        parent_metrics=findings_metrics(snakemake.input.findings[0]),
        parent_run_id=parent,
        mode=snakemake.params.mode,
    )
    pending = snakemake.params.pending
    if pending:
        # Keeps the rule's `pending` param equal to what it was now, so no needless rerun.
        summary["retried_pending_since"] = pending
    write_json(out, summary)
except Exception as exc:  # any backend failure: keep the workflow's results, retry next time
    logging.exception("MLflow sync failed; results stay on disk and the next run retries")
    message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    print(
        f"warning: MLflow sync to {spec['uri']} failed ({message}); results are on disk and the "
        "next workflow invocation (or `make sync`) logs them",
        file=sys.stderr,
    )
    write_json(
        out,
        {
            "pending_since": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "error": message,
            "uri": spec["uri"],
            "experiment": spec["experiment"],
            "parent_run_id": parent,
            "runs": len(snakemake.params.metrics),
        },
    )
