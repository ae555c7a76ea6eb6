"""Embedding sources: each builds a world directory (see :mod:`embrm.world`) from its config.

- ``synthetic``: generated offline with a known golden reward;
- ``npy``: released embedding and reward arrays, read in place (:mod:`.npy`);
- ``table``: your prompts, responses and golden rewards, embedded here (:mod:`.table`);
- ``hf``: prompts → generated responses → reward-model scores → LLM embeddings (:mod:`.text`);
- ``preferences``: a preference dataset's chosen/rejected pairs or scored responses, embedded here
  (:mod:`.preferences`); its worlds have no golden reward.

The registry :data:`SOURCES` maps each ``source:`` value to what it declares (:class:`Source`); the
config schema's source enum and its per-source blocks are derived from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


def _verify_npy(spec: dict) -> None:
    from .npy import verify

    verify(spec)


def _preferences(spec: dict, out_dir: Path, *, threads: int = 1, device: str = "auto") -> None:
    from .preferences import build

    build(spec, out_dir, threads=threads, device=device)


def _verify_preferences(spec: dict) -> None:
    from .preference_rows import verify

    verify(spec)


def _verify_table(spec: dict) -> None:
    from .table import verify

    verify(spec)


@dataclass(frozen=True)
class Source:
    """A world source: how its worlds are built and which schema block describes them."""

    description: str  # one line, shown in the schema
    schema: str  # the config schema's `$defs` block of a world with this source
    build: Callable[..., None]  # (spec, out_dir, *, threads, device) -> None; modules load lazily
    # Reads the user's files and runs every check of `build` without writing anything, so bad
    # data stops the experiment before any job (embrm.preflight.check_data); None: no user data.
    verify: Callable[[dict], None] | None = None


# The registry: one line per source (the order is the order of the schema's enum).
SOURCES: dict[str, Source] = {
    "synthetic": Source("generated", "synthetic_world", _synthetic),
    "npy": Source("released arrays", "npy_world", _npy, _verify_npy),
    "table": Source("your texts and rewards, embedded here", "table_world", _text, _verify_table),
    "hf": Source("prompts → generated responses → reward model → embeddings", "hf_world", _text),
    "preferences": Source(
        "a preference dataset, embedded here; no golden reward",
        "preferences_world",
        _preferences,
        _verify_preferences,
    ),
}
BUILDERS: dict[str, Callable[..., None]] = {name: s.build for name, s in SOURCES.items()}


def schema_block(defs: Mapping[str, dict]) -> dict:
    """The config schema of one ``worlds.<name>`` entry: the source enum and one if/then block per
    registered source. ``defs``: the schema's ``$defs``, which must describe every source."""
    missing = [s.schema for s in SOURCES.values() if s.schema not in defs]
    if missing:
        raise ValueError(f"config schema: no $defs block {missing} for a registered source")
    return {
        "type": "object",
        "required": ["source"],
        "properties": {
            "source": {
                "type": "string",
                "enum": list(SOURCES),
                "description": "Where the embeddings come from: "
                + ", ".join(f"{name} ({s.description})" for name, s in SOURCES.items())
                + ".",
            }
        },
        "allOf": [
            {
                "if": {"properties": {"source": {"const": name}}},
                "then": {"$ref": f"#/$defs/{s.schema}"},
            }
            for name, s in SOURCES.items()
        ],
    }


def build_world(spec: dict, out_dir: str | Path, *, threads: int = 1, device: str = "auto") -> None:
    try:
        source = SOURCES[spec["source"]]
    except KeyError:
        raise ConfigError(
            f"config key 'worlds.*.source': unknown source '{spec['source']}'; "
            f"expected one of {sorted(SOURCES)}"
        ) from None
    source.build(spec, Path(out_dir), threads=threads, device=device)


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
        elif spec["source"] == "preferences":
            from .preference_rows import check_spec

            check_spec(spec, key)
            check_template(spec["template"], f"{key}.template")
        if spec["source"] in TEXT_SOURCES:
            check_template(spec["template"], f"{key}.template")


def input_files(spec: dict) -> list[str]:
    """User files a world is built from (so Snakemake rebuilds the world when they change)."""
    if spec["source"] == "npy":
        return [
            spec[split][kind] for split in ("train", "test") for kind in ("embeddings", "rewards")
        ]
    if spec["source"] in ("table", "preferences"):
        return [spec["path"]] if spec.get("path") else [spec["train_path"], spec["test_path"]]
    if spec["source"] == "hf" and spec["prompts"].get("files"):
        return [spec["prompts"]["files"]["train"], spec["prompts"]["files"]["test"]]
    return []
