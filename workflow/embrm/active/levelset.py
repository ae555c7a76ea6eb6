"""``levelset``: the candidates whose predicted rewards are closest, smallest |Δr̂| = |r̂(a) − r̂(b)|.

These are the pairs on the current model's decision boundary p = σ(Δr̂) = 1/2, where it is least
sure of the order. Ties in |Δr̂| go to the earlier pool position (the pool is in random order).
"""

from __future__ import annotations

import numpy as np

NEEDS_MODEL = True
NEEDS_FEATURES = False


def select(candidates, batch: int, **_) -> np.ndarray:
    gap = np.abs(np.asarray(candidates.dr_hat, dtype=np.float64))
    order = np.argsort(gap, kind="stable")
    return order[: min(batch, gap.size)].astype(np.int64)
