"""The GPU check's shared parts: budgets, the study's sizes, child processes, the section record
(benchmarks/gpu_check.py runs the sections)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

ORDER = "abcde"
# Seconds each section may run (full shapes, quick shapes). The world build runs beside a and b.
BUDGET = {"a": 45, "b": 250, "world": 330, "c": 150, "d": 100, "e": 75}
QUICK_BUDGET = {"a": 120, "b": 900, "world": 400, "c": 480, "d": 300, "e": 240}
DEADLINE = 560
# The study: 12 worlds (6 LLMs × 2 data sets) × 3 designs × 6 β × 3 heads × 4 quantities × 5 seeds.
STUDY_RUNS, STUDY_MLP_RUNS, STUDY_CELLS, STUDY_WORLDS = 12_960, 8_640, 720, 12
STUDY_BETAS = [0.5, 0.7, 1, 3, 5, 10]
LGB_ROUNDS = 200  # capped for the check; the real run at 40,000 pairs stopped at 1,673
LGB_MEASURED_ROUNDS = 1_673
FULL = {"pairs": 40_000, "world": {}, "mlp": {}}
QUICK = {
    "pairs": 4_000,
    "world": {"train_prompts": 4_000, "test_prompts": 200, "dim": 256},
    # Small networks so that the CPU gets through c and d in a minute or two.
    "mlp": {"hidden": [64, 32], "max_epochs": 8},
}
KEYS = ["world", "design", "n", "annotator", "head", "seed"]
METRICS = [
    "bon_gain",
    "bon_gain_normalized",
    "spearman",
    "accuracy_vs_golden",
    "accuracy_vs_labels",
    "train_loss",
    "eval_loss",
    "epochs",
]
VOLATILE = {"fit_seconds", "predict_seconds", "evaluate_seconds"}

# The environment of every child process; set_environment fills it in place (the sections
# import this one dict).
ENV: dict = dict(os.environ)


# -- plumbing ----------------------------------------------------------------------------------
def environment(work: Path) -> dict:
    """The environment of every child: this interpreter as ``python`` (Snakemake jobs call
    ``python -m embrm``), the repository's package on the path, MLflow and the hub offline."""
    shim = work / "bin"
    shim.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        # A script, not a symbolic link: a link would lose a virtual environment's packages.
        wrapper = shim / name
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        wrapper.chmod(0o755)
    env = dict(os.environ)
    env.update(
        PATH=f"{shim}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=f"{REPO / 'workflow'}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep),
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        CUBLAS_WORKSPACE_CONFIG=":4096:8",
    )
    return env


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def run(command: list[str], log: Path, timeout: float, cwd: Path | None = None) -> float:
    """Run a child process, output appended to ``log``; its wall seconds, or raise on failure."""
    started = time.perf_counter()
    with open(log, "a") as handle:
        handle.write(f"$ {' '.join(map(str, command))}\n")
        handle.flush()
        result = subprocess.run(
            [str(c) for c in command],
            stdout=handle,
            stderr=subprocess.STDOUT,
            timeout=max(timeout, 1),
            cwd=cwd,
            env=ENV,
        )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"exit {result.returncode} after {seconds:.1f} s: {command[:4]} (see {log})"
        )
    return seconds


def tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    return str(value)


class Section:
    """What a section reports: printed lines and a data dict, saved as ``<name>.json``."""

    def __init__(self, name: str, out: Path, work: Path, quick: bool, deadline: float):
        self.name, self.out, self.work, self.quick, self.deadline = name, out, work, quick, deadline
        self.lines: list[str] = []
        self.data: dict = {}
        self.dir = work / name  # bulky files (worlds, models, experiments) stay out of OUT_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = out / f"{name}.log"

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(f"[{self.name}] {line}", flush=True)

    def left(self) -> float:
        return self.deadline - time.time()

    def save(self, ok: bool, error: str | None = None) -> None:
        record = {"section": self.name, "ok": ok, "error": error, "lines": self.lines}
        record["data"] = self.data
        (self.out / f"{self.name}.json").write_text(json.dumps(record, indent=1, default=str))


def set_environment(work: Path) -> None:
    ENV.clear()
    ENV.update(environment(work))
