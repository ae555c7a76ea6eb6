"""One cell's whole work (execution.jobs: cell) in this process: embrm.cell_job.run_cell."""

import json
import logging
import os
import sys

from embrm.cell_job import run_cell
from embrm.errors import EmbrmError

# Everything the process prints goes to the job's log, as `> {log} 2>&1` does for the fine jobs.
log_file = open(snakemake.log[0], "a", buffering=1)  # open as long as the process runs
os.dup2(log_file.fileno(), 1)
os.dup2(log_file.fileno(), 2)
logging.basicConfig(
    level=logging.INFO, stream=sys.stderr, format="%(asctime)s embrm %(levelname)s %(message)s"
)
# The same values the fine jobs get through their JSON command-line arguments.
spec = json.loads(json.dumps(snakemake.params.spec))
try:
    run_cell(spec)
except EmbrmError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
