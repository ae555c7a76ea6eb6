"""The pairing-design registry: adding a design is one module and one line in :data:`MODULES`.

Each registered module defines ``DESIGNS``, a tuple of :class:`~embrm.designs.base.Design`
objects. The config schema's design enum, the workflow's ``design`` wildcard, the capacity checks
and the summary's design columns all derive from this registry.
"""

from __future__ import annotations

import re
from importlib import import_module

import numpy as np

from ..errors import ConfigError
from .base import Design

# The registry: one line per module of this package (each defines DESIGNS); the order is the
# order of the schema's enum.
MODULES = (
    "static",
    "active",
    "given",
)
DESIGNS: dict[str, Design] = {
    design.name: design
    for module in MODULES
    for design in import_module(f"{__name__}.{module}").DESIGNS
}

__all__ = ["DESIGNS", "Design", "columns", "get", "make_pairs", "pattern"]


def get(name: str, key: str = "grid.designs") -> Design:
    try:
        return DESIGNS[name]
    except KeyError:
        raise ConfigError(
            f"config key '{key}': unknown design '{name}'; expected one of {tuple(DESIGNS)}"
        ) from None


def make_pairs(
    rewards: np.ndarray, design: str, n: int, rng: np.random.Generator, *, key: str = "quantity"
) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices ``(a, b)`` of ``n`` distinct pairs drawn by the registered ``design``."""
    return get(design).draw(rewards, n, rng, key=key)


def columns() -> list[str]:
    """Every design's settings columns, in registry order (``prompt_pairing``, ``candidates``)."""
    return list(dict.fromkeys(c for design in DESIGNS.values() for c in design.settings))


def pattern() -> str:
    """A regular expression matching exactly the registered names (the `design` wildcard)."""
    return "|".join(re.escape(name) for name in DESIGNS)
