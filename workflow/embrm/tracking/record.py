"""What a tracked run records: its defining settings and key, its name, params, metrics,
artifacts and tags, read from the run's ``metrics.json`` and its jobs' benchmark files; and the
tags every run of one invocation shares. Nothing here talks to MLflow."""

from __future__ import annotations

import hashlib
import json
import math
import platform
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..designs import get as get_design
from ..hashing import stable_hash
from ..io import read_json
from ..settings import quality_text
from ..tree import Tree, benchmark_paths

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
MAX_PARAM_LENGTH = 6000


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


def files_hash(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]


@dataclass
class RunPayload:
    key: str
    name: str
    params: dict[str, str]
    metrics: list[tuple[str, float, int]]
    tags: dict[str, str]
    artifacts: list[Path]
    # When the run's training started and its evaluation ended (ms since the epoch), so MLflow's
    # start, end and duration are the job's own, not the sync's. Not part of the content: a rerun
    # that gives the same results is the same run.
    start_ms: int | None = None
    end_ms: int | None = None
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
    design = get_design(run["design"]).settings
    # An annotator whose only parameter is its quality knob is named by it (β=1, thurstone β=1);
    # any other by its label, which spells every parameter.
    quality = quality_text(record["annotation"]["annotator"]) or run["annotator"]
    return (
        f"{run['head']} · {design['prompt_pairing']}/{design['candidates']} · {quality} · "
        f"n={run['n']} · seed {run['seed']} · {run['world']}"
    )


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = value


def run_params(record: dict) -> dict[str, str]:
    run, annotation, training = record["run"], record["annotation"], record["training"]
    design = get_design(run["design"]).settings
    params: dict = {k: run[k] for k in CELL_FIELDS}
    params.update(
        source=run.get("source", ""),
        pairing=design["prompt_pairing"],
        candidates=design["candidates"],
    )
    for k, v in run.get("world_spec", {}).items():
        if k != "source":
            _flatten(f"world.{k}", v, params)
    _flatten("annotator", annotation["annotator"], params)
    params["annotation.scale"] = annotation["train"]["scale"]
    params["annotation.heldout_pairs"] = annotation["heldout"]["pairs"]
    _flatten("head", training["head"], params)
    params["head"] = run["head"]  # the name; head.type is the registered type
    # A difference between two runs' last bits can be traced to either (docs/heads.md).
    params["training.threads"] = training.get("threads", "")
    params["training.cpu_capability"] = training.get("cpu_capability") or "not used"
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
    """A run's metrics.json -> its experiment's folder (as many levels up as the tree puts it)."""
    depth = len(Path(Tree.at(".").run_file("metrics.json", run)).parts)
    return metrics_path.resolve().parents[depth - 1]


def stage_seconds(results: Path, run: dict) -> dict[str, float]:
    """Wall seconds of the jobs that produced this run, from Snakemake's benchmark files."""
    paths = benchmark_paths(run)
    out = {}
    for stage in STAGE_BENCHMARKS:
        path = results / paths[stage]
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
        start_ms=_milliseconds(record["training"].get("started_at")),
        end_ms=_milliseconds(record.get("finished_at")),
    )


def _milliseconds(seconds: float | None) -> int | None:
    """A wall-clock time in seconds as MLflow's milliseconds (None: not recorded, as in runs
    made before these times were)."""
    return None if seconds is None else round(seconds * 1000)
