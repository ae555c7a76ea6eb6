"""Which responses get compared: same- or cross-prompt, with random, similar or diversified candidates.

Within a prompt, responses are ranked by golden reward (rank 0 = worst). Each candidate rule is an
ordered list of rank pairs per prompt:

- ``similar``: closest ranks first, nearest the middle first ((4, 5) of 10 comes first);
- ``diversified``: farthest ranks first ((0, K−1) comes first);
- ``random``: a random order of all pairs, drawn per prompt.

Pairs are dealt round-robin: round 0 gives one pair to every prompt (in a random prompt order), round
1 a second, and so on, so ``n ≤ P`` means one pair per prompt (the paper's protocol) and ``n > P``
adds further distinct pairs. Cross-prompt pairs keep the first response of each candidate pair and
take the second from the same-round candidate pair of a random other prompt. Presentation order is
randomized. Pairs are flat response indices ``prompt * K + rank_position``; no embedding is copied.
"""

from __future__ import annotations

from math import comb

import numpy as np

from .errors import ConfigError

PROMPT_PAIRINGS = ("same", "cross")
CANDIDATES = ("random", "similar", "diversified")
DESIGNS = tuple(f"{p}-{c}" for p in PROMPT_PAIRINGS for c in CANDIDATES)


def capacity(prompts: int, responses: int, design: str) -> int:
    """The most distinct pairs a design can produce."""
    if design.startswith("cross") and prompts < 2:
        return 0
    return prompts * comb(responses, 2)


def _rank_pair_order(responses: int, candidates: str) -> np.ndarray:
    """(C, 2) rank pairs in the order a deterministic candidate rule deals them."""
    low, high = np.triu_indices(responses, k=1)
    gap = high - low
    off_centre = np.abs(low + high - (responses - 1))
    primary = gap if candidates == "similar" else -gap
    order = np.lexsort((low, off_centre, primary))
    return np.stack([low[order], high[order]], axis=1)


def _random_rank_pairs(prompts: int, responses: int, rounds: int, rng) -> np.ndarray:
    """(P, rounds, 2) distinct random rank pairs per prompt."""
    total = comb(responses, 2)
    if rounds == 1:
        first = rng.integers(responses, size=prompts)
        second = (first + rng.integers(1, responses, size=prompts)) % responses
        return np.stack([first, second], axis=1)[:, None, :]
    low, high = np.triu_indices(responses, k=1)
    if total <= 4096:
        picks = np.argsort(rng.random((prompts, total)), axis=1)[:, :rounds]
    else:
        picks = np.stack([rng.choice(total, size=rounds, replace=False) for _ in range(prompts)])
    return np.stack([low[picks], high[picks]], axis=-1)


def make_pairs(
    rewards: np.ndarray, design: str, n: int, rng: np.random.Generator, *, key: str = "quantity"
) -> tuple[np.ndarray, np.ndarray]:
    """Return flat indices ``(a, b)`` of ``n`` distinct pairs for ``design``."""
    if design not in DESIGNS:
        raise ConfigError(
            f"config key 'grid.designs': unknown design '{design}'; expected {DESIGNS}"
        )
    prompt_pairing, candidates = design.split("-")
    prompts, responses = rewards.shape
    limit = capacity(prompts, responses, design)
    if n > limit:
        raise ConfigError(
            f"config key '{key}': {n} pairs requested but design '{design}' on {prompts} prompts × "
            f"{responses} responses allows at most {limit} distinct pairs"
        )
    rounds = -(-n // prompts)
    # rank position -> response index, per prompt
    by_rank = np.argsort(rewards, axis=1, kind="stable")
    if candidates == "random":
        rank_pairs = _random_rank_pairs(prompts, responses, rounds, rng)
    else:
        rank_pairs = np.broadcast_to(
            _rank_pair_order(responses, candidates)[None, :rounds], (prompts, rounds, 2)
        )
    prompt_order = rng.permutation(prompts)
    dealt_round = np.repeat(np.arange(rounds), prompts)[:n]
    dealt_prompt = np.tile(prompt_order, rounds)[:n]
    first_rank = rank_pairs[dealt_prompt, dealt_round, 0]
    second_rank = rank_pairs[dealt_prompt, dealt_round, 1]
    a = dealt_prompt * responses + by_rank[dealt_prompt, first_rank]
    if prompt_pairing == "same":
        b = dealt_prompt * responses + by_rank[dealt_prompt, second_rank]
    else:
        b = _cross_partners(dealt_prompt, dealt_round, rank_pairs, by_rank, a, rng)
    swap = rng.random(n) < 0.5
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    return a.astype(np.int64), b.astype(np.int64)


def _cross_partners(prompt, round_, rank_pairs, by_rank, a, rng) -> np.ndarray:
    prompts, responses = by_rank.shape
    b = np.empty_like(a)
    todo = np.arange(a.size)
    for _ in range(100):
        partner = (prompt[todo] + rng.integers(1, prompts, size=todo.size)) % prompts
        b[todo] = partner * responses + by_rank[partner, rank_pairs[partner, round_[todo], 1]]
        # A response paired twice with the same partner is a duplicate pair: redraw those.
        key = np.minimum(a, b) * (prompts * responses) + np.maximum(a, b)
        _, first = np.unique(key, return_index=True)
        duplicate = np.ones(a.size, dtype=bool)
        duplicate[first] = False
        todo = np.flatnonzero(duplicate)
        if todo.size == 0:
            return b
    raise RuntimeError("could not draw distinct cross-prompt pairs; too few prompts for this n")
