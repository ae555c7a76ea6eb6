"""Candidate pools: pairs not yet labelled, drawn afresh each round.

``same``: a prompt drawn uniformly, then two distinct responses of it; ``cross``: two distinct
prompts drawn uniformly, then one response of each. Pairs are flat response indices
``prompt * K + response`` with a random presentation order. A pool never holds a pair twice
(either order) nor a pair already labelled, so no rule can pick one. When few unlabelled pairs are
left (tiny worlds), the pool is every remaining pair in random order.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np

from ..errors import ConfigError

OVERSAMPLE = 1.25  # draws per wanted pair in one vectorized batch (duplicates are few)
MAX_DRAWS = 50  # vectorized batches of draws at most
ENUMERATE_MAX = 4096  # responses up to which a nearly exhausted cross pool is enumerated


@dataclass
class Candidates:
    """A pool and what the rules read about it (filled by the selection model when needed)."""

    a: np.ndarray
    b: np.ndarray
    dr_hat: np.ndarray | None = None  # r̂(a) − r̂(b)
    diff: np.ndarray | None = None  # h(a) − h(b), penultimate features (N, d)
    past_diff: np.ndarray | None = None  # the same for the labelled pairs (pastdopt)
    past_dr_hat: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.a.size)


def pair_keys(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    """One integer per unordered pair."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    return np.minimum(a, b) * size + np.maximum(a, b)


def capacity(prompts: int, responses: int, pool: str) -> int:
    if pool == "same":
        return prompts * comb(responses, 2)
    return comb(prompts * responses, 2) - prompts * comb(responses, 2)


def _draw(prompts: int, responses: int, pool: str, count: int, rng) -> tuple[np.ndarray, ...]:
    first = rng.integers(prompts, size=count)
    if pool == "same":
        second = first
        ra = rng.integers(responses, size=count)
        rb = (ra + rng.integers(1, responses, size=count)) % responses
    else:
        second = (first + rng.integers(1, prompts, size=count)) % prompts
        ra = rng.integers(responses, size=count)
        rb = rng.integers(responses, size=count)
    return first * responses + ra, second * responses + rb


def _all_remaining(prompts, responses, pool, labelled, rng):
    size = prompts * responses
    if pool == "same":
        ra, rb = np.triu_indices(responses, k=1)
        base = (np.arange(prompts) * responses)[:, None]
        low, high = (base + ra).ravel(), (base + rb).ravel()
    else:
        low, high = np.triu_indices(size, k=1)
        keep = (low // responses) != (high // responses)
        low, high = low[keep], high[keep]
    free = ~np.isin(pair_keys(low, high, size), labelled)
    low, high = low[free], high[free]
    order = rng.permutation(low.size)
    return low[order], high[order]


def draw_pool(
    prompts: int,
    responses: int,
    pool: str,
    wanted: int,
    labelled: np.ndarray,
    rng: np.random.Generator,
) -> Candidates:
    """Up to ``wanted`` distinct unlabelled pairs (``labelled``: their :func:`pair_keys`)."""
    if pool == "cross" and prompts < 2:
        raise ConfigError("config key 'grid.designs': cross-prompt pools need at least 2 prompts")
    size = prompts * responses
    remaining = capacity(prompts, responses, pool) - labelled.size
    if remaining <= 0:
        return Candidates(np.empty(0, np.int64), np.empty(0, np.int64))
    if remaining <= 4 * wanted and (pool == "same" or size <= ENUMERATE_MAX):
        a, b = _all_remaining(prompts, responses, pool, labelled, rng)
    else:
        a = np.empty(0, np.int64)
        b = np.empty(0, np.int64)
        for _ in range(MAX_DRAWS):
            extra = max(16, int((wanted - a.size) * OVERSAMPLE))
            da, db = _draw(prompts, responses, pool, extra, rng)
            a, b = np.concatenate([a, da]), np.concatenate([b, db])
            keys = pair_keys(a, b, size)
            _, first = np.unique(keys, return_index=True)
            keep = np.zeros(a.size, dtype=bool)
            keep[first] = True
            keep &= ~np.isin(keys, labelled)
            a, b = a[keep], b[keep]  # first occurrences, in draw order
            if a.size >= wanted:
                break
    a, b = a[:wanted], b[:wanted]
    swap = rng.random(a.size) < 0.5
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    return Candidates(a.astype(np.int64), b.astype(np.int64))
