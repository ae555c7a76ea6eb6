"""Embedding sources: each builds a world directory (see :mod:`embrm.world`) from its config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError


def _synthetic(spec: dict, out_dir: Path, **_) -> None:
    from .synthetic import build

    build(spec, out_dir)


BUILDERS: dict[str, Callable[..., None]] = {"synthetic": _synthetic}


def build_world(spec: dict, out_dir: str | Path, *, threads: int = 1, device: str = "auto") -> None:
    try:
        builder = BUILDERS[spec["source"]]
    except KeyError:
        raise ConfigError(
            f"config key 'worlds.*.source': unknown source '{spec['source']}'; "
            f"expected one of {sorted(BUILDERS)}"
        ) from None
    builder(spec, Path(out_dir), threads=threads, device=device)
