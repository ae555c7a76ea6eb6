"""``activerandom``: a uniformly random batch of the candidate pool.

The baseline of the active designs: it runs the same rounds (seed batch, retraining, per-round
evaluation) as the other rules, so a difference between rules is the selection alone.
"""

from __future__ import annotations

import numpy as np

NEEDS_MODEL = False  # no features or predictions are read


def select(candidates, batch: int, *, rng: np.random.Generator, **_) -> np.ndarray:
    """Positions of ``batch`` distinct pool entries, drawn uniformly without replacement."""
    size = candidates.size
    return np.sort(rng.permutation(size)[: min(batch, size)]).astype(np.int64)
