"""Independent, reproducible random streams named by what they are for.

``rng(seed, "pairs", "cross-random", 4000)`` always gives the same stream, and a different one
for any other name, so adding a grid axis or a stage never shifts another stage's randomness.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _word(part) -> int:
    return int.from_bytes(hashlib.sha256(str(part).encode()).digest()[:4], "little")


def seed_sequence(seed: int, *names) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), *map(_word, names)])


def rng(seed: int, *names) -> np.random.Generator:
    return np.random.default_rng(seed_sequence(seed, *names))


def int_seed(seed: int, *names) -> int:
    """A 31-bit integer seed (for torch and LightGBM) derived like :func:`rng`."""
    return int(seed_sequence(seed, *names).generate_state(1)[0] & 0x7FFFFFFF)
