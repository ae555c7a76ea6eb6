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
    rewards: np.ndarray,
    design: str,
    n: int,
    rng: np.random.Generator,
    *,
    key: str = "quantity",
    of: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices ``(a, b)`` of ``n`` distinct pairs drawn by the registered ``design``.

    ``of``: draw that many pairs (at least ``n``) and keep the first ``n``. Given the same ``rng``,
    the pairs for ``n`` are then the first ``n`` of those for any larger quantity drawn with the
    same ``of`` (common random numbers across quantities). Every design deals its pairs so that
    the first ``n`` of a larger draw are distributed as a draw of ``n`` (a static design's
    round-robin deal, its candidate pairs and its coins are drawn in order; a cross-prompt pair is
    redrawn only when it repeats an earlier one), so each quantity's pairs are distributed as
    before. The one exception is a draw so close to a cross-prompt design's capacity that
    :func:`embrm.pairing.deal` falls back to its exhaustive search.
    """
    drawn = max(n, of or 0)
    a, b = get(design).draw(rewards, drawn, rng, key=key)
    return a[:n], b[:n]


def columns() -> list[str]:
    """Every design's settings columns, in registry order (``prompt_pairing``, ``candidates``)."""
    return list(dict.fromkeys(c for design in DESIGNS.values() for c in design.settings))


def pattern() -> str:
    """A regular expression matching exactly the registered names (the `design` wildcard)."""
    return "|".join(re.escape(name) for name in DESIGNS)
