"""Checks of an experiment's inputs that must pass before any job runs.

The schema and :class:`embrm.config.Plan` check the config itself; this module checks it against
the machine: the user's files exist (``.npy`` arrays by their headers alone, never loading data),
rewards fit their embeddings, every design can deal the requested pairs on the world's real
sizes, and a GPU asked for by name is there. Each failure names the file or config key.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError


def world_sizes(plan) -> dict[str, tuple[int, int, str]]:
    """Train sizes (prompts, responses, origin) of the worlds whose sizes are known before any job:
    npy worlds from their headers, hf worlds from their configured upper bounds."""
    from .sources import check_worlds, input_files
    from .sources.npy import check_spec

    check_worlds(plan.config["worlds"])  # the sources' cross-key rules come before their files
    sizes = {}
    for world, spec in plan.config["worlds"].items():
        key = f"worlds.{world}"
        if spec["source"] == "npy":
            prompts, responses, _ = check_spec(spec, key)["train"]
            sizes[world] = (prompts, responses, f"{key}.train.embeddings")
            continue
        for path in input_files(spec):
            if not Path(path).is_file():
                raise ConfigError(f"config key '{key}': input file {path} does not exist")
        if spec["source"] == "hf" and spec["prompts"].get("train_prompts"):
            sizes[world] = (
                spec["prompts"]["train_prompts"],
                spec["generation"]["train_responses"],
                f"{key}.prompts.train_prompts/generation.train_responses",
            )
    return sizes


def check_inputs(plan) -> None:
    """Files, headers and pair feasibility (cheap: reads headers only)."""
    plan.check_capacity(world_sizes(plan))


def requested_cuda(config: dict) -> list[str]:
    """Config keys that ask for CUDA by name (auto falls back to the CPU)."""
    keys = ["training.device"] if config["training"]["device"] == "cuda" else []
    for world, spec in config["worlds"].items():
        for section, value in spec.items():
            if isinstance(value, dict) and value.get("device") == "cuda":
                keys.append(f"worlds.{world}.{section}.device")
        if spec.get("device") == "cuda":
            keys.append(f"worlds.{world}.device")
    return keys


def check_device(config: dict) -> None:
    """A section set to ``cuda`` on a machine without a visible CUDA GPU stops the run (only
    where jobs run on this machine: a cluster's submit host may have no GPU)."""
    keys = requested_cuda(config)
    if not keys:
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            f"config key '{keys[0]}': cuda requested but no CUDA GPU is visible on this machine "
            "(torch.cuda.is_available() is False); set it to auto or cpu"
        )
