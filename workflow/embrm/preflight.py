"""Checks of an experiment's inputs that must pass before any job runs.

The schema and :class:`embrm.config.Plan` check the config itself; this module checks it against
the machine: the user's files exist (``.npy`` arrays by their headers alone, never loading data),
rewards fit their embeddings, every design can deal the requested pairs on the world's real
sizes, and a GPU asked for by name is there. Each failure names the file or config key.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError, EmbrmError
from .hashing import stable_hash


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


# Worlds whose files were read and found good, by content stamp (the world's entry and each
# file's size and modification time): a resumed or repeated run does not scan paper-scale arrays
# again. In Snakemake's own state folder, so it is never mistaken for an output.
VERIFIED_CACHE = Path(".snakemake") / "embrm-verified-inputs.json"


def _stamp(spec: dict, files: list[str]) -> str:
    stats = [(Path(f).resolve(), Path(f).stat()) for f in files]
    return stable_hash(
        {"spec": spec, "files": [(str(p), st.st_size, st.st_mtime_ns) for p, st in stats]}
    )


def check_data(plan, cache: Path | None = VERIFIED_CACHE) -> None:
    """Read the user's data files of every world and run the checks its build would, before any
    job runs and with nothing written but the cache: NaN or inf in embeddings or rewards, a
    table's missing column, empty file, non-numeric reward or ragged prompts. Each failure names
    the file (and row or position). Files already verified unchanged are not read again."""
    from .io import read_json, write_json
    from .sources import SOURCES, input_files

    verified = set(read_json(cache)) if cache is not None and cache.is_file() else set()
    found = set()
    for world, spec in plan.config["worlds"].items():
        verify = SOURCES[spec["source"]].verify
        files = input_files(spec)
        if verify is None or not files:
            continue
        stamp = _stamp(spec, files)
        if stamp not in verified:
            try:
                verify(spec)
            except EmbrmError as error:
                raise type(error)(f"world '{world}': {error}") from None
        found.add(stamp)
    if cache is not None and found - verified:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_json(cache, sorted(verified | found))


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


def check_before_jobs(plan, local: bool) -> None:
    """What the workflow checks before any job and before anything is written (its onstart
    hook): the input files' contents (too slow to read at every parse; a cluster job parses the
    workflow too), then, when jobs run on this host (``local``), the device: jobs on a cluster may
    have a GPU the submitting host lacks."""
    check_data(plan)
    if local:
        check_device(plan.config)


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
