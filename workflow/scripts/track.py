"""Mirror run records into MLflow. An unreachable backend leaves results on disk and marks the
sync pending; the next workflow invocation retries it (see the rule's ``pending`` param)."""

import logging
import time

from embrm.io import write_json
from embrm.tracking import sync

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
params = snakemake.params
try:
    sync(
        snakemake.input,
        uri=params.uri,
        experiment=params.experiment,
        artifact_root=params.artifact_root,
        state_out=snakemake.output[0],
    )
except Exception as exc:  # any backend failure: keep the workflow's results, retry next time
    logging.exception("MLflow sync failed; results stay on disk and the next run retries")
    write_json(
        snakemake.output[0],
        {
            "pending_since": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "error": f"{type(exc).__name__}: {exc}",
            "uri": params.uri,
        },
    )
