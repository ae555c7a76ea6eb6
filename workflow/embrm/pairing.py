"""Which responses get compared: same- or cross-prompt, with random, similar or diversified candidates.

Within a prompt, responses are ranked by golden reward (rank 0 = worst). A candidate rule gives
each prompt an ordered list of candidate pairs of ranks:

- ``random``: a random order of all pairs, drawn per prompt (2 of K at random);
- ``similar``: closest ranks first, nearest the middle first ((4, 5) of 10 comes first);
- ``diversified``: farthest ranks first ((0, K−1) comes first).

Pairs are dealt round-robin: round 0 gives one candidate pair to every prompt (in a random prompt
order), round 1 the next one, and so on, so ``n ≤ P`` means one pair per prompt (the study's
protocol) and ``n > P`` adds further distinct pairs.

- ``same``: the pair is the prompt's candidate pair itself.
- ``cross``: as in the study's scripts, one response drawn at random from prompt i's candidate
  pair is compared with one drawn at random from the same-round candidate pair of a random other
  prompt j. With ``random`` candidates both sides are thus uniformly random responses of their
  prompts; with ``diversified`` candidates half the pairs set a worst response against a best one
  and half set two worst or two best responses against each other. A pair drawn twice is redrawn.

Presentation order is randomized. Pairs are flat response indices ``prompt * K + response``; no
embedding is copied. The designs built from these pieces are registered in :mod:`embrm.designs`.

Common random numbers: :func:`deal` splits its generator into four streams (:data:`STREAMS`), each
for one kind of draw, in the same order for every design. Given the same generator, designs thus
share what their definitions have in common: every design deals to the same prompt order, the
``random`` same- and cross-prompt designs use the same random candidate pairs of every prompt
(the cross pair of round r is one side of the same pair's candidates against a partner's), and the
presentation-order coin of pair i is the same in all. The partner and side draws of cross-prompt
pairs have a stream of their own, so same-prompt pairs do not depend on them. Paired comparisons of
designs then differ by the design, not by unrelated draws; each design's distribution of pairs is
what it was.
"""

from __future__ import annotations

from math import comb

import numpy as np

from .errors import ConfigError

PROMPT_PAIRINGS = ("same", "cross")
CANDIDATES = ("random", "similar", "diversified")
REDRAW_ROUNDS = 100  # vectorized redraws of duplicate cross pairs before an exhaustive search
# The streams :func:`deal` spawns from its generator, in this order (a new one goes last, so the
# others stay as they are): random candidate pairs, the prompt order, the cross-prompt partner and
# side draws, the presentation-order coins.
STREAMS = ("candidates", "prompts", "cross", "order")


def capacity(prompts: int, responses: int, prompt_pairing: str) -> int:
    """The most pairs a design deals: one per candidate pair of every prompt.

    Same-prompt designs cannot produce more distinct pairs; cross-prompt designs deal one pair per
    candidate pair too (their possible pairs are far more numerous).
    """
    if prompt_pairing == "cross" and prompts < 2:
        return 0
    return prompts * comb(responses, 2)


def rank_pair_order(responses: int, candidates: str) -> np.ndarray:
    """(C, 2) rank pairs (low, high) in the order a deterministic candidate rule deals them."""
    if candidates not in ("similar", "diversified"):
        raise ValueError(f"no fixed rank order for candidates '{candidates}'")
    low, high = np.triu_indices(responses, k=1)
    gap = high - low
    off_centre = np.abs(low + high - (responses - 1))
    primary = gap if candidates == "similar" else -gap
    order = np.lexsort((low, off_centre, primary))
    return np.stack([low[order], high[order]], axis=1)


def first_rank_pair(responses: int, candidates: str) -> np.ndarray:
    """The ranks a deterministic rule compares first: the two middle ranks, or worst and best."""
    return rank_pair_order(responses, candidates)[0]


def _random_rank_pairs(prompts: int, responses: int, rounds: int, rng) -> np.ndarray:
    """(P, rounds, 2) distinct random rank pairs per prompt.

    Up to 4096 candidate pairs per prompt (K ≤ 91) every prompt's pairs are put in a random order
    whatever ``rounds`` is, so the first rounds are the same for any number of rounds (and for
    every design dealing from the same stream); above that only ``rounds`` pairs are sampled.
    """
    total = comb(responses, 2)
    low, high = np.triu_indices(responses, k=1)
    if total <= 4096:
        picks = np.argsort(rng.random((prompts, total)), axis=1)[:, :rounds]
    else:
        picks = np.stack([rng.choice(total, size=rounds, replace=False) for _ in range(prompts)])
    return np.stack([low[picks], high[picks]], axis=-1)


def check_quantity(n: int, limit: int, design: str, shape: tuple, key: str) -> None:
    """Refuse more pairs than a design can deal; the error names ``key``."""
    if n > limit:
        prompts, responses = shape
        raise ConfigError(
            f"config key '{key}': {n} pairs requested but design '{design}' on {prompts} prompts × "
            f"{responses} responses allows at most {limit} distinct pairs"
        )


def deal(
    rewards: np.ndarray,
    prompt_pairing: str,
    candidates: str,
    n: int,
    rng: np.random.Generator,
    *,
    key: str = "quantity",
    design: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """Return flat indices ``(a, b)`` of ``n`` distinct pairs (``a`` shown first) dealt by a
    candidate rule to same- or cross-prompt pairs.

    ``key`` names the config key that asked for ``n``, for the error when it is too many;
    ``design`` names the design in that error. ``rng`` is split into the :data:`STREAMS` (by
    ``rng.spawn``), so designs dealt from generators of the same seed share those draws.
    """
    design = design or f"{prompt_pairing}-{candidates}"
    prompts, responses = rewards.shape
    check_quantity(n, capacity(prompts, responses, prompt_pairing), design, rewards.shape, key)
    if n <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    rounds = -(-n // prompts)
    streams = dict(zip(STREAMS, rng.spawn(len(STREAMS)), strict=True))
    by_rank = np.argsort(rewards, axis=1, kind="stable")  # rank position -> response, per prompt
    if candidates == "random":
        rank_pairs = _random_rank_pairs(prompts, responses, rounds, streams["candidates"])
    else:
        rank_pairs = np.broadcast_to(
            rank_pair_order(responses, candidates)[None, :rounds], (prompts, rounds, 2)
        )
    prompt_order = streams["prompts"].permutation(prompts)
    dealt_round = np.repeat(np.arange(rounds), prompts)[:n]
    dealt_prompt = np.tile(prompt_order, rounds)[:n]
    if prompt_pairing == "same":
        pair = rank_pairs[dealt_prompt, dealt_round]
        a = dealt_prompt * responses + by_rank[dealt_prompt, pair[:, 0]]
        b = dealt_prompt * responses + by_rank[dealt_prompt, pair[:, 1]]
    else:
        a, b = _cross_pairs(dealt_prompt, dealt_round, rank_pairs, by_rank, streams["cross"], key)
    swap = streams["order"].random(n) < 0.5
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    return a.astype(np.int64), b.astype(np.int64)


def _pair_keys(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    return np.minimum(a, b) * size + np.maximum(a, b)


def _cross_pairs(prompt, round_, rank_pairs, by_rank, rng, key) -> tuple[np.ndarray, np.ndarray]:
    """One random side of each dealt prompt's candidate pair against one random side of the
    same-round candidate pair of a random other prompt; duplicate pairs are redrawn."""
    prompts, responses = by_rank.shape
    size = prompts * responses
    n = prompt.size
    a = np.empty(n, dtype=np.int64)
    b = np.empty(n, dtype=np.int64)
    todo = np.arange(n)
    for _ in range(REDRAW_ROUNDS):
        side_a = rng.integers(2, size=todo.size)
        side_b = rng.integers(2, size=todo.size)
        partner = (prompt[todo] + rng.integers(1, prompts, size=todo.size)) % prompts
        mine = prompt[todo]
        a[todo] = mine * responses + by_rank[mine, rank_pairs[mine, round_[todo], side_a]]
        b[todo] = partner * responses + by_rank[partner, rank_pairs[partner, round_[todo], side_b]]
        # Keep the first occurrence of each pair; redraw the later ones.
        _, first = np.unique(_pair_keys(a, b, size), return_index=True)
        duplicate = np.ones(n, dtype=bool)
        duplicate[first] = False
        todo = np.flatnonzero(duplicate)
        if todo.size == 0:
            return a, b
    # Only near a tiny world's capacity: search the remaining options of each pair in turn, first
    # the same-round candidates, then those of every round dealt so far.
    keep = np.ones(n, dtype=bool)
    keep[todo] = False
    used = set(_pair_keys(a[keep], b[keep], size).tolist())
    for index in todo:
        mine, r = prompt[index], round_[index]
        for rounds in (slice(r, r + 1), slice(0, r + 1)):
            options = [
                (mine * responses + by_rank[mine, x], j * responses + by_rank[j, y])
                for j in range(prompts)
                if j != mine
                for x in np.unique(rank_pairs[mine, rounds])
                for y in np.unique(rank_pairs[j, rounds])
            ]
            free = [o for o in options if min(o) * size + max(o) not in used]
            if free:
                break
        else:
            raise ConfigError(
                f"config key '{key}': cannot draw {n} distinct cross-prompt pairs from "
                f"{prompts} prompts × {responses} responses; ask for fewer pairs"
            )
        a[index], b[index] = free[rng.integers(len(free))]
        used.add(min(a[index], b[index]) * size + max(a[index], b[index]))
    return a, b
