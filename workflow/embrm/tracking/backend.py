"""The MLflow side: settings of every process that talks to it, where runs and artifacts go,
and keeping exactly one complete run per key when several writers race or one is cut short."""

from __future__ import annotations

import fcntl
import getpass
import logging
import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path

from ..shared_results import MLFLOW_DB_LOCK, mlflow_db
from .record import RunPayload

log = logging.getLogger("embrm")

RUN_KEY_TAG = "embrm.run_key"
CONTENT_TAG = "embrm.content_hash"  # set last: its absence marks an incomplete run
LOGGED_BY_TAG = "embrm.logged_by"
LOGGED_AT_TAG = "embrm.logged_ms"  # "<first>-<last>" ms of the logging (run times are the job's)
INVOCATION_TAG = "embrm.invocation"  # marks a workflow invocation's parent run
SCOPE_TAG = "embrm.results_id"  # which results directory (and host) a parent run belongs to
FIGURES_TAG = "embrm.figures_hash"
PARENT_TAG = "mlflow.parentRunId"
# The MLflow 3 UI opens GenAI views unless an experiment says it holds model-training runs.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
MAX_METRICS, MAX_PARAMS = 1000, 100  # per log_batch call: at most 1000 entries, 100 params


class TrackingError(RuntimeError):
    """The tracking backend cannot be used as configured (the message says what to change)."""


def quiet_environment() -> None:
    """Settings for every process that talks to MLflow; call before importing mlflow."""
    # Telemetry cannot reach its endpoint here, and once raced into a lost param.
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "true"
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    # MLflow retries an unreachable server for about four minutes by default, per request; a
    # job must give up in seconds (the sync retries later). Users can still override these.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


# --------------------------------------------------------------------------------------------
# Where things go


def default_uri(results_root: str | Path) -> str:
    return f"sqlite:///{mlflow_db(results_root)}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for any other backend."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix) :]) if uri.startswith(prefix) else None


@contextmanager
def creation_lock(uri: str):
    """Held while a client first opens the store. MLflow creates a missing SQLite database by
    migrating its schema, and two processes that do so at once both fail (and may leave the file
    broken): two experiments started together in a fresh checkout did exactly that. An exclusive
    ``flock`` on a file beside the database lets one create it while the other waits; the kernel
    drops it if its holder dies. Servers and other backends serialize creation themselves."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent / MLFLOW_DB_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "databricks"))


def artifact_location(uri: str, configured: str | None, results_dir: str | Path) -> str | None:
    """Where a newly created experiment stores artifacts.

    A local database keeps them beside it under ``results/mlartifacts`` (as an absolute URI:
    MLflow stores the location verbatim). A tracking server chooses itself (``None``): with its
    default ``--serve-artifacts`` clients upload through HTTP, so compute nodes need no shared
    filesystem with the server.
    """
    if configured:
        return configured if "://" in configured else Path(configured).resolve().as_uri()
    if is_remote(uri):
        return None
    return (Path(results_dir).resolve() / "mlartifacts").as_uri()


def open_backend(uri: str, experiment: str, location: str | None):
    """(client, experiment_id): creates the database and the experiment when missing."""
    quiet_environment()
    from mlflow.tracking import MlflowClient

    with creation_lock(uri):
        client = MlflowClient(tracking_uri=uri)  # a SQLite store is created (migrated) here
        found = client.get_experiment_by_name(experiment)
        if found is None:
            try:
                return client, client.create_experiment(
                    experiment, artifact_location=location, tags=EXPERIMENT_TAGS
                )
            except Exception:
                # Another process created it first (only possible when several workflows share
                # a server): use theirs.
                found = client.get_experiment_by_name(experiment)
                if found is None:
                    raise
    if found.lifecycle_stage == "deleted":
        raise TrackingError(
            f"MLflow experiment '{experiment}' (id {found.experiment_id}) at {uri} is deleted: "
            f"restore it (`mlflow experiments restore --experiment-id {found.experiment_id}`) or "
            "set tracking.experiment to another name"
        )
    return client, found.experiment_id


def find_runs(client, experiment_id: str, key: str | None = None) -> dict[str, list]:
    """Active keyed runs of the experiment (or those with one key), grouped by key."""
    from mlflow.entities import ViewType

    where = f"tags.`{RUN_KEY_TAG}` = '{key}'" if key else f"tags.`{RUN_KEY_TAG}` LIKE '%'"
    found: dict[str, list] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=where,
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=5000,
            page_token=token,
        )
        for run in page:
            found.setdefault(run.data.tags[RUN_KEY_TAG], []).append(run)
        token = page.token
        if not token:
            return found


def split_runs(existing: list, content: str) -> tuple[object | None, list]:
    """The run to keep (complete, same content) and the ones to delete."""
    # Of several complete copies (two writers of one run), the oldest stays: a stable choice.
    complete = [
        r
        for r in existing
        if r.data.tags.get(CONTENT_TAG) == content and r.info.status == "FINISHED"
    ]
    keep = min(complete, key=lambda r: (logged_since(r), r.info.run_id), default=None)
    return keep, [r for r in existing if r is not keep]


def logged_since(run) -> int:
    """When a run's logging began (ms): two copies of one run share the job's start time, so
    age is told by the logging; runs logged before the tag existed started when logged."""
    logged = run.data.tags.get(LOGGED_AT_TAG)
    return int(logged.split("-")[0]) if logged else run.info.start_time


def log_run(
    client,
    experiment_id: str,
    parent_id: str | None,
    payload: RunPayload,
    common_tags: dict[str, str],
    *,
    logged_by: str,
    existing: list,
) -> str:
    """Make MLflow hold exactly one complete run for ``payload``: 'created', 'replaced' or 'unchanged'."""
    from mlflow.entities import Metric, Param, RunTag

    keep, stale = split_runs(existing, payload.content)
    for run in stale:
        client.delete_run(run.info.run_id)
    if keep is not None:
        return "unchanged"
    tags = {
        **common_tags,
        **payload.tags,
        LOGGED_BY_TAG: logged_by,
        RUN_KEY_TAG: payload.key,
        "mlflow.user": _user(),
    }
    if parent_id:
        tags[PARENT_TAG] = parent_id
    # The run's start and end are the job's (payload.start_ms, end_ms); when it was logged is a
    # tag of its own, "<first ms>-<last ms>".
    logging_started = int(time.time() * 1000)
    # All tags but the content hash at creation: even a run cut short right here carries its key
    # and is found (and redone) later.
    run_id = client.create_run(
        experiment_id,
        start_time=payload.start_ms,
        run_name=payload.name,
        tags={k: str(v) for k, v in tags.items()},
    ).info.run_id
    stamp = int(time.time() * 1000)
    params = [Param(k, v) for k, v in payload.params.items()]
    metrics = [Metric(n, v, stamp, s) for n, v, s in payload.metrics]
    # As few batches as MLflow's limits allow: each is one database transaction.
    while params or metrics:
        batch_params, params = params[:MAX_PARAMS], params[MAX_PARAMS:]
        room = MAX_METRICS - len(batch_params)
        batch_metrics, metrics = metrics[:room], metrics[room:]
        client.log_batch(run_id, metrics=batch_metrics, params=batch_params)
    for artifact in payload.artifacts:
        client.log_artifact(run_id, str(artifact))
    client.set_terminated(run_id, "FINISHED", end_time=payload.end_ms)
    logged = f"{logging_started}-{int(time.time() * 1000)}"
    # Last of all, in one write: the content hash marks the run complete.
    client.log_batch(
        run_id, tags=[RunTag(LOGGED_AT_TAG, logged), RunTag(CONTENT_TAG, payload.content)]
    )
    return "replaced" if stale else "created"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def start_parent(
    client, experiment_id: str, tags: dict[str, str], scope: tuple[str, str], mode: str
) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    run = client.create_run(
        experiment_id,
        run_name=f"workflow · {stamp}",
        tags={
            **tags,
            INVOCATION_TAG: "true",
            "embrm.results": scope[0],
            SCOPE_TAG: scope[1],
            "embrm.tracking_mode": mode,
            "embrm.host": platform.node(),
            "mlflow.user": _user(),
        },
    )
    return run.info.run_id


def close_stale_parents(client, experiment_id: str, scope_id: str, current: str | None) -> int:
    """Parents of earlier invocations on these results that never finished (killed workflow,
    backend down at the end) are marked KILLED, so RUNNING always means a live invocation."""
    from mlflow.entities import ViewType

    stale = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{INVOCATION_TAG}` = 'true' and tags.`{SCOPE_TAG}` = '{scope_id}' "
            "and attributes.status = 'RUNNING'"
        ),
        run_view_type=ViewType.ACTIVE_ONLY,
        max_results=1000,
    )
    closed = 0
    for run in stale:
        if run.info.run_id != current:
            client.set_terminated(run.info.run_id, "KILLED")
            closed += 1
    return closed


def has_parent_with_figures(client, experiment_id: str, scope_id: str, figures: str) -> bool:
    from mlflow.entities import ViewType

    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{SCOPE_TAG}` = '{scope_id}' and tags.`{FIGURES_TAG}` = '{figures}'",
        run_view_type=ViewType.ACTIVE_ONLY,
        max_results=1,
    )
    return len(found) > 0


def log_parent_files(client, parent_id: str, files: dict[str, list[Path]]) -> None:
    for folder, paths in files.items():
        for path in paths:
            client.log_artifact(parent_id, str(path), artifact_path=folder or None)


def log_run_retrying(
    uri: str,
    experiment_id: str,
    parent_id: str | None,
    payload: RunPayload,
    common_tags: dict[str, str],
    *,
    logged_by: str,
) -> str:
    """:func:`log_run` through a fresh client, tried again while a local database is locked by
    a parallel writer; the last attempt's error is raised."""
    attempts = 1 if is_remote(uri) else 4  # HTTP has its own retries; sqlite may lock
    for attempt in range(1, attempts):
        try:
            return _log_fresh(uri, experiment_id, parent_id, payload, common_tags, logged_by)
        except Exception:
            log.warning("MLflow logging failed (attempt %d of %d); retrying", attempt, attempts)
            time.sleep(0.5 * 2**attempt)
    return _log_fresh(uri, experiment_id, parent_id, payload, common_tags, logged_by)


def _log_fresh(uri, experiment_id, parent_id, payload, common_tags, logged_by) -> str:
    quiet_environment()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    existing = find_runs(client, experiment_id, payload.key).get(payload.key, [])
    return log_run(
        client,
        experiment_id,
        parent_id,
        payload,
        common_tags,
        logged_by=logged_by,
        existing=existing,
    )
