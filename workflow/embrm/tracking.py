"""MLflow tracking, written so parallel jobs, reruns and outages lose and duplicate nothing.

Runs are recorded on disk first (``metrics.json`` per run); :func:`sync` then mirrors them into
MLflow from one process. Each MLflow run carries a deterministic key (``embrm.run_key``) and a
content hash: a run already there with the same content is left alone, one with other content is
updated, a missing one is created. The database and experiment are created once, up front, and
the experiment is always addressed by id (two MLflow races otherwise lose or misplace runs).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from . import __version__
from .config import stable_hash
from .io import read_json, write_json

log = logging.getLogger("embrm")

RUN_KEY_TAG = "embrm.run_key"
CONTENT_TAG = "embrm.content_hash"
INVOCATION_TAG = "embrm.invocation"
BATCH = 900  # MLflow accepts at most 1000 metrics per log_batch call


def quiet_environment() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def default_uri(results_dir: str | Path) -> str:
    return f"sqlite:///{Path(results_dir).resolve() / 'mlflow.db'}"


def git_state(directory: str | Path = ".") -> dict:
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, timeout=10, check=False
        )

    commit = git("rev-parse", "HEAD")
    if commit.returncode != 0:
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip() != ""
    return {"git_commit": commit.stdout.strip(), "git_dirty": str(dirty).lower()}


def run_name(run: dict) -> str:
    prompt, candidates = run["design"].split("-")
    beta = run.get("annotator_params", {}).get("beta")
    quality = f"β={beta:g}" if beta is not None else run["annotator"]
    return f"{run['head']} · {prompt}/{candidates} · {quality} · n={run['n']} · seed {run['seed']}"


def run_key(run: dict) -> str:
    cell = {k: run[k] for k in ("world", "design", "n", "seed", "annotator", "head")}
    return stable_hash(cell, 24)


def record_params(record: dict) -> dict[str, str]:
    run, training, annotation = record["run"], record["training"], record["annotation"]
    params = {k: run[k] for k in ("world", "design", "n", "seed", "annotator", "head")}
    params.update({f"world.{k}": v for k, v in run.get("world_spec", {}).items()})
    params.update({f"annotator.{k}": v for k, v in annotation["annotator"].items()})
    params["annotation.scale"] = annotation["train"]["scale"]
    params.update({f"head.{k}": v for k, v in training["head"].items()})
    return {k: str(v)[:6000] for k, v in params.items()}


def record_metrics(record: dict) -> list[tuple[str, float, int]]:
    """(name, value, step) triples; BoN at each N is a series with N as the step."""
    out = []
    for aggregation, metrics in record["metrics"].items():
        prefix = "" if aggregation == "mean" else f"{aggregation}/"
        for name, value in metrics.items():
            if isinstance(value, int | float):
                out.append((f"{prefix}{name}", float(value), 0))
        for n, value in zip(metrics["n_values"], metrics["bon_reward"], strict=True):
            out.append((f"{prefix}bon_reward_curve", float(value), int(n)))
    for name, value in record["annotation"]["train"].items():
        out.append((f"annotation_{name}", float(value), 0))
    for row in record["curves"]:
        step = int(float(row["epoch"]))
        member = int(float(row.get("member", 0)))
        prefix = "" if member == 0 else f"member{member}/"
        for source, name in (
            ("train_loss", "train_loss"),
            ("val_loss", "eval_loss"),
            ("val_accuracy", "eval_accuracy"),
        ):
            value = float(row[source]) if row.get(source) not in (None, "") else float("nan")
            if value == value:  # NaN-free only
                out.append((f"{prefix}{name}", value, step))
    training = record["training"]
    out += [
        ("fit_seconds", float(training["fit_seconds"]), 0),
        ("predict_seconds", float(training["predict_seconds"]), 0),
        ("evaluate_seconds", float(record.get("evaluate_seconds", 0.0)), 0),
    ]
    return out


def ensure_experiment(client, name: str, artifact_root: str | Path) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = Path(artifact_root).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:
        # Another process won the race to create it: use theirs.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def init_backend(
    uri: str, experiment: str, artifact_root: str | Path, state_out: str | Path
) -> None:
    """Create the database and experiment once, before any job that logs runs."""
    quiet_environment()
    from mlflow.tracking import MlflowClient

    experiment_id = ensure_experiment(MlflowClient(uri), experiment, artifact_root)
    write_json(state_out, {"uri": uri, "experiment": experiment, "experiment_id": experiment_id})


def existing_runs(client, experiment_id: str) -> dict[str, tuple[str, str]]:
    """run_key -> (run_id, content_hash) of every keyed run in the experiment."""
    from mlflow.entities import ViewType

    found, token = {}, None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{RUN_KEY_TAG}` != ''",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=5000,
            page_token=token,
        )
        for item in page:
            found[item.data.tags[RUN_KEY_TAG]] = (
                item.info.run_id,
                item.data.tags.get(CONTENT_TAG, ""),
            )
        token = page.token
        if not token:
            return found


def sync(
    metric_files: Iterable[str | Path],
    *,
    uri: str,
    experiment: str,
    artifact_root,
    tags: dict | None = None,
    state_out: str | Path | None = None,
) -> dict:
    """Mirror run records into MLflow; returns counts of created, updated and unchanged runs."""
    quiet_environment()
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment_id = ensure_experiment(client, experiment, artifact_root)
    known = existing_runs(client, experiment_id)
    common_tags = {"embrm.version": __version__, **git_state(), **(tags or {})}
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    parent_id = None
    for path in map(Path, metric_files):
        record = read_json(path)
        key = run_key(record["run"])
        content = stable_hash(record, 24)
        if key in known and known[key][1] == content:
            counts["unchanged"] += 1
            continue
        if parent_id is None:
            parent_id = _start_parent(client, experiment_id, common_tags)
        if key in known:
            run_id = known[key][0]
            counts["updated"] += 1
        else:
            run_id = client.create_run(
                experiment_id,
                run_name=run_name(record["run"]),
                tags={"mlflow.parentRunId": parent_id},
            ).info.run_id
            counts["created"] += 1
        stamp = int(time.time() * 1000)
        run_tags = {
            **common_tags,
            RUN_KEY_TAG: key,
            CONTENT_TAG: content,
            "embrm.device": record["training"].get("device", ""),
            "embrm.host": record["training"].get("host", ""),
            "embrm.wildcards": record["run"]["run_dir"],
            "embrm.rule": "evaluate",
            "mlflow.parentRunId": parent_id,
        }
        params = [] if key in known else [Param(k, v) for k, v in record_params(record).items()]
        metrics = [Metric(n, v, stamp, s) for n, v, s in record_metrics(record)]
        tag_list = [RunTag(k, str(v)) for k, v in run_tags.items()]
        client.log_batch(run_id, params=params, tags=tag_list)
        for start in range(0, len(metrics), BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + BATCH])
        for artifact in ("predictions.npy", "curves.csv", "metrics.json"):
            if (path.parent / artifact).exists():
                client.log_artifact(run_id, str(path.parent / artifact))
        client.set_terminated(run_id)
    if parent_id is not None:
        client.set_terminated(parent_id)
    summary = {**counts, "experiment_id": experiment_id, "uri": uri, "parent_run_id": parent_id}
    if state_out is not None:
        write_json(state_out, summary)
    log.info(
        "MLflow sync: %(created)d created, %(updated)d updated, %(unchanged)d unchanged", counts
    )
    return summary


def _start_parent(client, experiment_id: str, tags: dict) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    run = client.create_run(
        experiment_id,
        run_name=f"workflow · {stamp}",
        tags={**{k: str(v) for k, v in tags.items()}, INVOCATION_TAG: "true"},
    )
    return run.info.run_id
