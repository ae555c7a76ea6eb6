"""What the workflow calls: the end-of-workflow sync, the steps of per-job logging (``python -m
embrm tracking start|log-job|finish``), and the Snakemake hooks that run those steps."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from ..io import read_json, write_json
from .backend import (
    FIGURES_TAG,
    artifact_location,
    close_stale_parents,
    find_runs,
    has_parent_with_figures,
    log_parent_files,
    log_run,
    log_run_retrying,
    open_backend,
    quiet_environment,
    split_runs,
    start_parent,
)
from .record import ARTIFACT_CHOICES, build_payload, files_hash, invocation_tags, results_scope

log = logging.getLogger("embrm")


def sync(
    metric_files: Iterable[str | Path],
    *,
    uri: str,
    experiment: str,
    artifact_location: str | None,
    results_dir: str | Path,
    tags: dict[str, str],
    artifacts: Iterable[str] = ARTIFACT_CHOICES,
    parent_files: dict[str, list[Path]] | None = None,
    parent_run_id: str | None = None,
    mode: str = "sync",
    parent_metrics: dict[str, float] | None = None,
) -> dict:
    """Mirror run records into MLflow. Returns what happened (counts, ids).

    ``parent_run_id``: the invocation's parent when one was created before the jobs started
    (``tracking.mode: jobs``); otherwise one is created here if anything needs logging.
    ``parent_metrics``: numbers logged on the parent run (the verdict per claim of the findings).
    """
    started = time.perf_counter()
    artifacts = list(artifacts)
    payloads = [build_payload(path, artifacts) for path in metric_files]
    client, experiment_id = open_backend(uri, experiment, artifact_location)
    existing = find_runs(client, experiment_id)
    scope = results_scope(results_dir)
    parent_files = {k: [Path(p) for p in v] for k, v in (parent_files or {}).items()}
    figures = files_hash([p for paths in parent_files.values() for p in paths])

    counts = {"created": 0, "replaced": 0, "unchanged": 0, "duplicates_removed": 0}
    todo = []
    for payload in payloads:
        runs = existing.pop(payload.key, [])
        keep, stale = split_runs(runs, payload.content)
        if keep is not None:
            for run in stale:  # only ever left by an interrupted or concurrent writer
                client.delete_run(run.info.run_id)
                counts["duplicates_removed"] += 1
            counts["unchanged"] += 1
        else:
            todo.append((payload, runs))

    parent = parent_run_id
    if parent is None and (
        todo or not has_parent_with_figures(client, experiment_id, scope[1], figures)
    ):
        parent = start_parent(client, experiment_id, tags, scope, mode)
    for payload, runs in todo:
        outcome = log_run(
            client, experiment_id, parent, payload, tags, logged_by="sync", existing=runs
        )
        counts[outcome] += 1
    if parent is not None:
        log_parent_files(client, parent, parent_files)
        for name, value in (parent_metrics or {}).items():
            client.log_metric(parent, name, float(value))
        client.set_tag(parent, FIGURES_TAG, figures)
        client.set_terminated(parent, "FINISHED")
    closed = close_stale_parents(client, experiment_id, scope[1], parent)
    summary = {
        **counts,
        "runs": len(payloads),
        "stale_parents_closed": closed,
        "experiment": experiment,
        "experiment_id": experiment_id,
        "uri": uri,
        "parent_run_id": parent,
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info(
        "MLflow sync to %s: %d created, %d replaced, %d unchanged (%d runs) in %.1f s",
        uri,
        counts["created"],
        counts["replaced"],
        counts["unchanged"],
        len(payloads),
        summary["seconds"],
    )
    return summary


def start_invocation(spec: dict, state_path: str | Path) -> dict:
    """Before any job starts: create database, experiment and parent run; hand their ids to the
    jobs through ``state_path``. A backend failure is recorded there instead of raised, so jobs
    skip logging and the end-of-workflow sync does it."""
    state = {
        "uri": spec["uri"],
        "experiment": spec["experiment"],
        "artifacts": spec.get("artifacts", list(ARTIFACT_CHOICES)),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    try:
        tags = invocation_tags(spec["repo"], spec["config_hash"])
        location = artifact_location(spec["uri"], spec.get("artifact_location"), spec["results"])
        client, experiment_id = open_backend(spec["uri"], spec["experiment"], location)
        parent = start_parent(client, experiment_id, tags, results_scope(spec["results"]), "jobs")
        state.update(experiment_id=experiment_id, parent_run_id=parent, tags=tags)
    except Exception as exc:
        log.exception("MLflow unavailable at workflow start; runs will be logged by the sync")
        state["error"] = f"{type(exc).__name__}: {exc}"
    write_json(state_path, state)
    return state


def log_job(metrics_path: str | Path, state_path: str | Path) -> str:
    """Log one finished run from its evaluate job. Never raises: a failure leaves the run to the
    end-of-workflow sync. Returns what happened."""
    try:
        state = read_json(state_path)
    except Exception:
        return "no-invocation"
    if not state.get("parent_run_id"):
        log.info("MLflow was unavailable at workflow start; the sync logs this run later")
        return "skipped"
    started = time.perf_counter()
    try:
        payload = build_payload(metrics_path, state.get("artifacts", ARTIFACT_CHOICES))
    except Exception:
        log.exception("could not read the run record; the end-of-workflow sync retries it")
        return "failed"
    try:
        outcome = log_run_retrying(
            state["uri"],
            state["experiment_id"],
            state["parent_run_id"],
            payload,
            state.get("tags", {}),
            logged_by="job",
        )
    except Exception:
        log.exception("MLflow logging failed; the end-of-workflow sync will log this run")
        return "failed"
    log.info(
        "MLflow: run '%s' %s in %.1f s (key %s)",
        payload.name,
        outcome,
        time.perf_counter() - started,
        payload.key,
    )
    return outcome


def finish_needed(state_path: str | Path, synced_path: str | Path) -> bool:
    """Whether the invocation's parent run still needs closing (the sync did not close it)."""
    try:
        state = json.loads(Path(state_path).read_text())
    except (OSError, ValueError):
        return False
    if not state.get("parent_run_id"):
        return False
    try:
        synced = json.loads(Path(synced_path).read_text())
    except (OSError, ValueError):
        return True
    return synced.get("parent_run_id") != state["parent_run_id"] or "pending_since" in synced


def finish_invocation(state_path: str | Path, status: str) -> None:
    """Close the invocation's parent run (when the sync did not) and remove the hand-off file."""
    state_path = Path(state_path)
    try:
        state = read_json(state_path)
        if state.get("parent_run_id"):
            quiet_environment()
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=state["uri"])
            if client.get_run(state["parent_run_id"]).info.status == "RUNNING":
                client.set_terminated(state["parent_run_id"], status)
    except Exception:
        log.exception("could not close the parent run; the next sync marks it KILLED")
    finally:
        state_path.unlink(missing_ok=True)


# Snakemake hooks (called from workflow/rules/track.smk, in the process that runs Snakemake)


def _run_step(step: str, state_path: str, log_dir: str | Path, *args: str, timeout: int) -> None:
    log_path = Path(log_dir) / f"{step}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "embrm", "tracking", step, "--state", state_path, *args]
    # A process of its own keeps MLflow out of Snakemake's; the timeout bounds a hung backend.
    with open(log_path, "a") as handle:
        try:
            subprocess.run(command, stdout=handle, stderr=handle, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            handle.write(f"{step}: no answer from the tracking backend in {timeout} s\n")


def _logs_runs(workflow) -> bool:
    """Whether this invocation will evaluate or sync any run (else no parent run is made)."""
    try:
        return any(
            job.rule.name in ("evaluate", "cell", "track") for job in workflow.dag.needrun_jobs()
        )
    except Exception:  # Snakemake's DAG API is internal: when in doubt, prepare for logging
        return True


def on_workflow_start(
    workflow, tracking: dict, spec: dict, *, state_path: str, log_dir: str | Path
) -> None:
    """``onstart``: in jobs mode, create database, experiment and parent run before any job."""
    # A hand-off file left by a killed invocation must never reach this one's jobs.
    Path(state_path).unlink(missing_ok=True)
    if not (tracking["enabled"] and tracking["mode"] == "jobs" and _logs_runs(workflow)):
        return
    _run_step("start", state_path, log_dir, "--spec", json.dumps(spec), timeout=300)
    try:
        state = json.loads(Path(state_path).read_text())
    except (OSError, ValueError):
        state = {"error": f"no answer; see {Path(log_dir) / 'start.log'}"}
    if state.get("parent_run_id"):
        print(
            f"MLflow: jobs log to {spec['uri']}, experiment '{spec['experiment']}' "
            f"(id {state['experiment_id']}), parent run {state['parent_run_id']}",
            file=sys.stderr,
        )
    else:
        print(
            f"MLflow unavailable ({state.get('error')}): results stay on disk; the track rule "
            "logs them when the backend is back",
            file=sys.stderr,
        )


def on_workflow_end(status: str, *, state_path: str, synced_path: str, log_dir: str | Path) -> None:
    """``onsuccess``/``onerror``: close the parent run if the sync did not; drop the hand-off."""
    if finish_needed(state_path, synced_path):
        _run_step("finish", state_path, log_dir, "--status", status, timeout=120)
    Path(state_path).unlink(missing_ok=True)
