"""Embedding sources: each builds a world directory (see :mod:`embrm.world`) from its config.

- ``synthetic``: generated offline with a known golden reward;
- ``npy``: released embedding and reward arrays, read in place (:mod:`.npy`);
- ``table``: your prompts, responses and golden rewards, embedded here (:mod:`.table`);
- ``hf``: prompts → generated responses → reward-model scores → LLM embeddings (:mod:`.text`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import ConfigError

TEXT_SOURCES = ("table", "hf")


def _synthetic(spec: dict, out_dir: Path, **_) -> None:
    from .synthetic import build

    build(spec, out_dir)


def _npy(spec: dict, out_dir: Path, **_) -> None:
    from .npy import build

    build(spec, out_dir)


def _text(spec: dict, out_dir: Path, *, threads: int = 1, device: str = "auto") -> None:
    from .text import build

    build(spec, out_dir, threads=threads, device=device)


BUILDERS: dict[str, Callable[..., None]] = {
    "synthetic": _synthetic,
    "npy": _npy,
    "table": _text,
    "hf": _text,
}


def build_world(spec: dict, out_dir: str | Path, *, threads: int = 1, device: str = "auto") -> None:
    try:
        builder = BUILDERS[spec["source"]]
    except KeyError:
        raise ConfigError(
            f"config key 'worlds.*.source': unknown source '{spec['source']}'; "
            f"expected one of {sorted(BUILDERS)}"
        ) from None
    builder(spec, Path(out_dir), threads=threads, device=device)


def check_worlds(worlds: Mapping[str, dict]) -> None:
    """Cross-key rules of the real-data sources that the schema cannot state clearly.

    Called when the workflow is parsed, so mistakes surface before any job runs.
    """
    from ..embedders import check_template

    for name, spec in worlds.items():
        key = f"worlds.{name}"
        if spec["source"] == "table":
            from .table import check_spec

            check_spec(spec, key)
        elif spec["source"] == "hf":
            from .prompts import check_spec

            check_spec(spec["prompts"], f"{key}.prompts")
            check_template(spec["reward_model"]["template"], f"{key}.reward_model.template")
        if spec["source"] in TEXT_SOURCES:
            check_template(spec["template"], f"{key}.template")


def input_files(spec: dict) -> list[str]:
    """User files a world is built from (so Snakemake rebuilds the world when they change)."""
    if spec["source"] == "npy":
        return [
            spec[split][kind] for split in ("train", "test") for kind in ("embeddings", "rewards")
        ]
    if spec["source"] == "table":
        return [spec["path"]] if spec.get("path") else [spec["train_path"], spec["test_path"]]
    if spec["source"] == "hf" and spec["prompts"].get("files"):
        return [spec["prompts"]["files"]["train"], spec["prompts"]["files"]["test"]]
    return []
