"""MLflow tracking that loses nothing and duplicates nothing, whatever runs in parallel or fails.

Every run is recorded on disk first (``metrics.json``, written by its evaluate job); MLflow is a
mirror of those records. Each MLflow run carries

* a deterministic key (``embrm.run_key``): a hash of everything that defines the run (grid cell,
  world, annotator, head hyperparameters, evaluation settings). Rerunning the workflow finds the
  run again instead of adding one; changing a hyperparameter makes a new run beside the old one.
* a content hash (``embrm.content_hash``) of everything logged, set *last*: a run without it was
  cut short (backend outage, killed job) and is redone. A run whose content changed (the run was
  recomputed) is replaced: MLflow params are immutable and metric histories append-only, so
  updating in place would mix old and new values. The replaced run is soft-deleted (restorable).

Two ways to fill MLflow (``tracking.mode``):

* ``sync`` (default): the ``track`` rule mirrors every record from one process at the end of the
  workflow. Jobs never import MLflow, and a sqlite file has a single writer.
* ``jobs``: each evaluate job logs its own run as soon as it finishes (``log-job``), so runs show
  up live and survive failures of other jobs. The database, the experiment and the invocation's
  parent run are created once, before any job starts (``start``, from Snakemake's ``onstart``
  hook), and handed to the jobs by id in ``results/tracking/invocation.json``: parallel processes
  never create a database or an experiment (MLflow races that break the file or misplace runs
  into "Default"). The end-of-workflow ``track`` sync stays as the safety net that logs whatever
  a job could not.

If the backend is unreachable, jobs still succeed (results stay on disk) and the sync records a
pending state; the next invocation retries it.

Parts: :mod:`.record` says what a run records, :mod:`.backend` talks to MLflow, :mod:`.hooks` is
what the workflow calls (the sync, per-job logging and Snakemake's hooks).
"""

from .backend import (
    CONTENT_TAG,
    EXPERIMENT_TAGS,
    FIGURES_TAG,
    INVOCATION_TAG,
    LOGGED_AT_TAG,
    LOGGED_BY_TAG,
    MAX_METRICS,
    MAX_PARAMS,
    PARENT_TAG,
    RUN_KEY_TAG,
    SCOPE_TAG,
    TrackingError,
    artifact_location,
    close_stale_parents,
    default_uri,
    find_runs,
    is_remote,
    log_parent_files,
    log_run,
    log_run_retrying,
    open_backend,
    quiet_environment,
    start_parent,
)
from .hooks import (
    finish_invocation,
    finish_needed,
    log_job,
    on_workflow_end,
    on_workflow_start,
    start_invocation,
    sync,
)
from .record import (
    ARTIFACT_CHOICES,
    ARTIFACT_FILES,
    CELL_FIELDS,
    MAX_PARAM_LENGTH,
    STAGE_BENCHMARKS,
    RunPayload,
    active_round_metrics,
    build_payload,
    definition,
    files_hash,
    git_state,
    invocation_tags,
    results_dir_of,
    results_scope,
    run_key,
    run_metrics,
    run_name,
    run_params,
    stage_seconds,
)

__all__ = [
    "ARTIFACT_CHOICES",
    "ARTIFACT_FILES",
    "CELL_FIELDS",
    "CONTENT_TAG",
    "EXPERIMENT_TAGS",
    "FIGURES_TAG",
    "INVOCATION_TAG",
    "LOGGED_AT_TAG",
    "LOGGED_BY_TAG",
    "MAX_METRICS",
    "MAX_PARAMS",
    "MAX_PARAM_LENGTH",
    "PARENT_TAG",
    "RUN_KEY_TAG",
    "SCOPE_TAG",
    "STAGE_BENCHMARKS",
    "RunPayload",
    "TrackingError",
    "active_round_metrics",
    "artifact_location",
    "build_payload",
    "close_stale_parents",
    "default_uri",
    "definition",
    "files_hash",
    "find_runs",
    "finish_invocation",
    "finish_needed",
    "git_state",
    "invocation_tags",
    "is_remote",
    "log_job",
    "log_parent_files",
    "log_run",
    "log_run_retrying",
    "on_workflow_end",
    "on_workflow_start",
    "open_backend",
    "quiet_environment",
    "results_dir_of",
    "results_scope",
    "run_key",
    "run_metrics",
    "run_name",
    "run_params",
    "stage_seconds",
    "start_invocation",
    "start_parent",
    "sync",
]
