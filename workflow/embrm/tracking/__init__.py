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
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..hashing import stable_hash
from ..io import read_json, write_json

log = logging.getLogger("embrm")

RUN_KEY_TAG = "embrm.run_key"
CONTENT_TAG = "embrm.content_hash"  # set last: its absence marks an incomplete run
LOGGED_BY_TAG = "embrm.logged_by"
INVOCATION_TAG = "embrm.invocation"  # marks a workflow invocation's parent run
SCOPE_TAG = "embrm.results_id"  # which results directory (and host) a parent run belongs to
FIGURES_TAG = "embrm.figures_hash"
PARENT_TAG = "mlflow.parentRunId"
ARTIFACT_CHOICES = ("predictions", "curves", "metrics")
ARTIFACT_FILES = {
    "predictions": "predictions.npy",
    "curves": "curves.csv",
    "metrics": "metrics.json",
}
CELL_FIELDS = ("world", "design", "n", "seed", "annotator", "head")
# Stages whose Snakemake benchmark (wall seconds of the whole job) is logged as time/<stage>_s.
# `score` exists with training.scoring: cell; its job scored every run of the cell.
STAGE_BENCHMARKS = ("world", "pairs", "annotate", "train", "score")
# The MLflow 3 UI opens GenAI views unless an experiment says it holds model-training runs.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
MAX_METRICS, MAX_PARAMS = 1000, 100  # per log_batch call: at most 1000 entries, 100 params
MAX_PARAM_LENGTH = 6000


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


def default_uri(results_dir: str | Path) -> str:
    return f"sqlite:///{Path(results_dir).resolve() / 'mlflow.db'}"


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


def results_scope(results_dir: str | Path) -> tuple[str, str]:
    """A readable name and a short id for one results directory on one host."""
    scope = f"{platform.node()}:{Path(results_dir).resolve()}"
    return scope, stable_hash(scope, 16)


def git_state(directory: str | Path) -> dict[str, str]:
    """Commit of the repository holding the workflow, and whether tracked files were modified."""

    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, timeout=20, check=False
        )

    try:
        commit = git("rev-parse", "HEAD")
        if commit.returncode != 0:
            return {"embrm.git_commit": "unknown", "embrm.git_dirty": "unknown"}
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"embrm.git_commit": "unknown", "embrm.git_dirty": "unknown"}
    sha = commit.stdout.strip()
    return {
        "embrm.git_commit": sha,
        "embrm.git_dirty": str(dirty).lower(),
        "mlflow.source.git.commit": sha,  # shown by the MLflow UI
    }


def invocation_tags(repo: str | Path, config_hash: str) -> dict[str, str]:
    """Tags shared by every run an invocation logs."""
    return {
        "embrm.version": __version__,
        "embrm.config_hash": config_hash,
        **git_state(repo),
    }


# --------------------------------------------------------------------------------------------
# What is logged for one run


@dataclass
class RunPayload:
    key: str
    name: str
    params: dict[str, str]
    metrics: list[tuple[str, float, int]]
    tags: dict[str, str]
    artifacts: list[Path]
    content: str = field(init=False)

    def __post_init__(self):
        # Everything logged except the artifacts' bytes (they only change when the metrics do)
        # and the invocation's tags (a resync from another commit must not replace equal runs).
        self.content = stable_hash(
            {
                "name": self.name,
                "params": self.params,
                "metrics": [[n, _json_number(v), s] for n, v, s in self.metrics],
                "tags": self.tags,
                "artifacts": sorted(p.name for p in self.artifacts),
            },
            24,
        )


def _json_number(value: float):
    return value if math.isfinite(value) else str(value)


def definition(record: dict) -> dict:
    """The settings that define a run: equal definitions give equal results."""
    run, annotation = record["run"], record["annotation"]
    return {
        "cell": {k: run[k] for k in CELL_FIELDS},
        "world": run.get("world_spec", {}),
        "annotator": annotation["annotator"],
        "annotation": {
            "scale": annotation["train"]["scale"],
            "heldout_pairs": annotation["heldout"]["pairs"],
        },
        "head": record["training"]["head"],
        "evaluation": record.get("evaluation", {}),
    }


def run_key(record: dict) -> str:
    return stable_hash(definition(record), 24)


def run_name(record: dict) -> str:
    """``clf-lgb · cross/random · β=1 · n=10000 · seed 3 · synthetic``."""
    run = record["run"]
    prompt, candidates = run["design"].split("-", 1)
    spec = record["annotation"]["annotator"]
    if "beta" in spec:
        quality = (
            f"β={spec['beta']:g}"
            if spec.get("model") == "bt"
            else f"{spec['model']} β={spec['beta']:g}"
        )
    else:
        quality = run["annotator"]
    return (
        f"{run['head']} · {prompt}/{candidates} · {quality} · n={run['n']} · seed {run['seed']}"
        f" · {run['world']}"
    )


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = value


def run_params(record: dict) -> dict[str, str]:
    run, annotation, training = record["run"], record["annotation"], record["training"]
    prompt, candidates = run["design"].split("-", 1)
    params: dict = {k: run[k] for k in CELL_FIELDS}
    params.update(source=run.get("source", ""), pairing=prompt, candidates=candidates)
    for k, v in run.get("world_spec", {}).items():
        if k != "source":
            _flatten(f"world.{k}", v, params)
    _flatten("annotator", annotation["annotator"], params)
    params["annotation.scale"] = annotation["train"]["scale"]
    params["annotation.heldout_pairs"] = annotation["heldout"]["pairs"]
    _flatten("head", training["head"], params)
    params["head"] = run["head"]  # the name; head.type is the registered type
    # Where the test set was scored: by the run's train job, or by its cell's shared pass.
    scoring = training.get("scoring", {"mode": "run"})
    params["scoring"] = scoring["mode"]
    if "models" in scoring:
        params["scoring.models"] = scoring["models"]
    _flatten("evaluation", record.get("evaluation", {}), params)
    return {k: _param_value(v) for k, v in params.items()}


def _param_value(value) -> str:
    text = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return text[:MAX_PARAM_LENGTH]


def _number(value) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def run_metrics(record: dict, stage_seconds: dict[str, float]) -> list[tuple[str, float, int]]:
    """(name, value, step) triples. Series use the step: N for Best-of-N, the epoch for curves."""
    out: list[tuple[str, float, int]] = []
    for aggregation, metrics in record["metrics"].items():
        prefix = "" if aggregation == "mean" else f"{aggregation}/"
        ns = [int(n) for n in metrics.get("n_values", [])]
        for name, value in metrics.items():
            if isinstance(value, list):
                # Per-N curves (bon_reward, bon_gain_curve, ...) become series with step N.
                if name != "n_values" and len(value) == len(ns):
                    series = f"{prefix}{name.removesuffix('_curve')}_by_n"
                    out += [(series, float(v), n) for n, v in zip(ns, value, strict=True)]
                continue
            number = _number(value)
            if number is not None:
                out.append((f"{prefix}{name}", number, 0))
        if "bon_reward" in metrics and "random_pick_reward" in metrics:
            # Scalars too: the runs table compares latest values, not series.
            random_pick = float(metrics["random_pick_reward"])
            for n, picked in zip(ns, metrics["bon_reward"], strict=True):
                out.append((f"{prefix}bon_gain_n{n}", float(picked) - random_pick, 0))
    for split, prefix in (("train", "annotation_"), ("heldout", "annotation_heldout_")):
        for name, value in record["annotation"][split].items():
            number = _number(value)
            if number is not None:
                out.append((f"{prefix}{name}", number, 0))
    for row in record["curves"]:
        step = int(float(row["epoch"]))
        member = int(float(row.get("member") or 0))
        prefix = "" if member == 0 else f"member{member}/"
        for name in ("train_loss", "val_loss", "val_accuracy"):
            number = _number(row.get(name))
            if number is not None and math.isfinite(number):
                out.append((f"{prefix}{name}", number, step))
    training = record["training"]
    best = [b for b in training.get("best_epoch", []) if b is not None]
    if best:
        out.append(("best_epoch", float(best[0]), 0))
    out += [
        ("time/fit_s", float(training["fit_seconds"]), 0),
        ("time/predict_s", float(training["predict_seconds"]), 0),
        ("time/evaluate_s", float(record.get("evaluate_seconds", 0.0)), 0),
    ]
    if "read_seconds" in training.get("scoring", {}):
        # The shared read of the test embeddings, paid once for every run of the cell.
        out.append(("time/score_read_s", float(training["scoring"]["read_seconds"]), 0))
    out += [(f"time/{stage}_s", seconds, 0) for stage, seconds in sorted(stage_seconds.items())]
    out += active_round_metrics(record)
    return out


def active_round_metrics(record: dict) -> list[tuple[str, float, int]]:
    """An active design's rounds as series whose step is the number of labels: the metrics of the
    model that chose each round's pairs, and the time the selection took."""
    out: list[tuple[str, float, int]] = []
    for entry in record["annotation"].get("active", {}).get("rounds", []):
        step = int(entry["labels_before"])
        for name, value in entry.get("metrics", {}).items():
            number = _number(value)
            if number is not None and math.isfinite(number):
                out.append((f"active/{name}", number, step))
        out.append(("active/select_s", float(entry["select_seconds"]), step))
    return out


def results_dir_of(metrics_path: Path, run: dict) -> Path:
    """``results/runs/<run_dir>/metrics.json`` -> ``results``."""
    directory = metrics_path.resolve().parent
    for _ in Path(run["run_dir"]).parts:
        directory = directory.parent
    return directory.parent


def stage_seconds(results: Path, run: dict) -> dict[str, float]:
    """Wall seconds of the jobs that produced this run, from Snakemake's benchmark files."""
    cell = f"{run['world']}/{run['design']}/n{run['n']}/seed{run['seed']}"
    paths = {
        "world": f"world/{run['world']}.tsv",
        "pairs": f"pairs/{cell}.tsv",
        "annotate": f"annotate/{cell}/{run['annotator']}.tsv",
        "train": f"train/{run['run_dir']}.tsv",
        "score": f"score/{cell}.tsv",
    }
    out = {}
    for stage in STAGE_BENCHMARKS:
        path = results / "benchmarks" / paths[stage]
        try:
            lines = path.read_text().splitlines()
            header, last = lines[0].split("\t"), lines[-1].split("\t")
            out[stage] = float(last[header.index("s")])
        except (OSError, IndexError, ValueError):
            continue  # run outside Snakemake, or benchmarks removed: nothing to report
    return out


def build_payload(
    metrics_path: str | Path, artifacts: Iterable[str] = ARTIFACT_CHOICES
) -> RunPayload:
    path = Path(metrics_path)
    record = read_json(path)
    run = record["run"]
    seconds = stage_seconds(results_dir_of(path, run), run)
    wildcards = ",".join(f"{k}={run[k]}" for k in CELL_FIELDS)
    tags = {
        "embrm.rule": "evaluate",
        "embrm.wildcards": wildcards,
        "embrm.run_dir": run["run_dir"],
        "embrm.device": str(record["training"].get("device", "")),
        "embrm.host": str(record["training"].get("host", "")),
    }
    files = [path.parent / ARTIFACT_FILES[name] for name in artifacts]
    return RunPayload(
        key=run_key(record),
        name=run_name(record),
        params=run_params(record),
        metrics=run_metrics(record, seconds),
        tags=tags,
        artifacts=[f for f in files if f.exists()],
    )


# --------------------------------------------------------------------------------------------
# Talking to MLflow


def open_backend(uri: str, experiment: str, location: str | None):
    """(client, experiment_id): creates the database and the experiment when missing."""
    quiet_environment()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        try:
            return client, client.create_experiment(
                experiment, artifact_location=location, tags=EXPERIMENT_TAGS
            )
        except Exception:
            # Another process created it first (only possible when several workflows share a
            # server): use theirs.
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


def _split(existing: list, content: str) -> tuple[object | None, list]:
    """The run to keep (complete, same content) and the ones to delete."""
    # Of several complete copies (two writers of one run), the oldest stays: a stable choice.
    complete = [
        r
        for r in existing
        if r.data.tags.get(CONTENT_TAG) == content and r.info.status == "FINISHED"
    ]
    keep = min(complete, key=lambda r: (r.info.start_time, r.info.run_id), default=None)
    return keep, [r for r in existing if r is not keep]


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
    from mlflow.entities import Metric, Param

    keep, stale = _split(existing, payload.content)
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
    # All tags but the content hash at creation: even a run cut short right here carries its key
    # and is found (and redone) later.
    run_id = client.create_run(
        experiment_id, run_name=payload.name, tags={k: str(v) for k, v in tags.items()}
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
    client.set_terminated(run_id, "FINISHED")
    client.set_tag(run_id, CONTENT_TAG, payload.content)  # last of all: the run is complete
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


def files_hash(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]


def _has_parent_with_figures(client, experiment_id: str, scope_id: str, figures: str) -> bool:
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


# --------------------------------------------------------------------------------------------
# Entry points: the end-of-workflow sync, and the three steps of per-job logging


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
        keep, stale = _split(runs, payload.content)
        if keep is not None:
            for run in stale:  # only ever left by an interrupted or concurrent writer
                client.delete_run(run.info.run_id)
                counts["duplicates_removed"] += 1
            counts["unchanged"] += 1
        else:
            todo.append((payload, runs))

    parent = parent_run_id
    if parent is None and (
        todo or not _has_parent_with_figures(client, experiment_id, scope[1], figures)
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
    attempts = 1 if is_remote(state["uri"]) else 4  # HTTP has its own retries; sqlite may lock
    for attempt in range(1, attempts + 1):
        try:
            quiet_environment()
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=state["uri"])
            existing = find_runs(client, state["experiment_id"], payload.key).get(payload.key, [])
            outcome = log_run(
                client,
                state["experiment_id"],
                state["parent_run_id"],
                payload,
                state.get("tags", {}),
                logged_by="job",
                existing=existing,
            )
        except Exception:
            if attempt == attempts:
                log.exception("MLflow logging failed; the end-of-workflow sync will log this run")
                return "failed"
            log.warning("MLflow logging failed (attempt %d of %d); retrying", attempt, attempts)
            time.sleep(0.5 * 2**attempt)
        else:
            log.info(
                "MLflow: run '%s' %s in %.1f s (key %s)",
                payload.name,
                outcome,
                time.perf_counter() - started,
                payload.key,
            )
            return outcome
    return "failed"


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


# --------------------------------------------------------------------------------------------
# Snakemake hooks (called from workflow/rules/track.smk, in the process that runs Snakemake)


def _run_step(step: str, state_path: str, log_dir: str | Path, *args: str, timeout: int) -> None:
    log_path = Path(log_dir) / f"{step}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "embrm.tracking", step, "--state", state_path, *args]
    # A process of its own keeps MLflow out of Snakemake's; the timeout bounds a hung backend.
    with open(log_path, "a") as handle:
        try:
            subprocess.run(command, stdout=handle, stderr=handle, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            handle.write(f"{step}: no answer from the tracking backend in {timeout} s\n")


def _logs_runs(workflow) -> bool:
    """Whether this invocation will evaluate or sync any run (else no parent run is made)."""
    try:
        return any(job.rule.name in ("evaluate", "track") for job in workflow.dag.needrun_jobs())
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m embrm.tracking", description="MLflow logging steps of the workflow"
    )
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("start", help="create database, experiment and parent run")
    p.add_argument("--spec", type=json.loads, required=True)
    p.add_argument("--state", required=True)
    p = sub.add_parser("log-job", help="log one run from its metrics.json")
    p.add_argument("--metrics", required=True)
    p.add_argument("--state", required=True)
    p = sub.add_parser("finish", help="close the parent run")
    p.add_argument("--state", required=True)
    p.add_argument("--status", choices=["FINISHED", "FAILED", "KILLED"], default="FINISHED")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s embrm %(levelname)s %(message)s"
    )
    if args.step == "start":
        state = start_invocation(args.spec, args.state)
        if "error" in state:
            print(
                f"warning: MLflow at {state['uri']} is unavailable ({state['error']}); results "
                "stay on disk and are logged when it is back",
                file=sys.stderr,
            )
    elif args.step == "log-job":
        log_job(args.metrics, args.state)
    else:
        finish_invocation(args.state, args.status)
    return 0  # tracking never fails a job or the workflow


if __name__ == "__main__":
    sys.exit(main())
