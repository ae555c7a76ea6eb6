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


# Common random numbers: the streams of pairs and labels are named by the seed alone, not by the
# design, the quantity or the annotator, so that runs compared by seed share their draws. Each
# design takes from a stream what its definition needs (embrm.pairing.deal, embrm.designs.make_pairs)
# and every annotator labels pair i with the stream's i-th uniform (embrm.annotators.annotate).
def pair_stream(seed: int) -> np.random.Generator:
    """The training pairs of every static design and quantity of ``seed``."""
    return rng(seed, "pairs")


def heldout_pair_stream(seed: int) -> np.random.Generator:
    """The held-out test pairs of every design of ``seed`` (active ones as their pool's random)."""
    return rng(seed, "heldout-pairs")


def label_stream(seed: int, part: str) -> np.random.Generator:
    """One uniform per pair of ``part`` (``train``, ``heldout``) for every annotator of ``seed``."""
    return rng(seed, "labels", part)
