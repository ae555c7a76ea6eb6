"""``given``: the dataset's own pairs, as nested subsamples.

Every pair of responses of one prompt (unit) is a given pair: in a pairwise preference world
(:mod:`embrm.sources.preferences`, K = 2) that is exactly the dataset's chosen/rejected pair of
each row; in a multi-response world, every two scored responses of a prompt. One seeded
permutation of all given pairs (and of which side is shown first) is drawn per seed, independent
of the quantity, and a quantity n takes its first n pairs: a smaller n is a prefix of a larger one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..pairing import check_quantity
from .base import Design


@dataclass(frozen=True, repr=False)
class GivenDesign(Design):
    @property
    def name(self) -> str:
        return "given"

    @property
    def settings(self) -> dict[str, str]:
        return {"prompt_pairing": "same", "candidates": "given"}

    def capacity(self, prompts, responses):
        return prompts * responses * (responses - 1) // 2

    def draw(self, rewards, n, rng, *, key="quantity"):
        prompts, responses = rewards.shape
        check_quantity(n, self.capacity(prompts, responses), self.name, rewards.shape, key)
        low, high = np.triu_indices(responses, k=1)
        order = rng.permutation(prompts * low.size)  # all pairs, then the first n of them
        swap = rng.random(order.size) < 0.5
        order, swap = order[:n], swap[:n]
        prompt, pair = np.divmod(order, low.size)
        a = prompt * responses + low[pair]
        b = prompt * responses + high[pair]
        a, b = np.where(swap, b, a), np.where(swap, a, b)
        return a.astype(np.int64), b.astype(np.int64)


DESIGNS = (GivenDesign(),)
