"""The study's sampled Best-of-N estimator (``evaluation.bon: sampled``), kept so that its
numbers stay reproducible.

For each repeat, one random order of the K responses shared by all prompts; for each N, the first
N responses in that order, pick the argmax of the predicted reward (the first one in that order
on ties), record its golden reward, average over prompts and repeats.

The vectorized version works on all prompts and a block of repeats at once. Predictions are first
replaced by their dense rank within the prompt (equal values share a rank, order kept), which picks
exactly the same responses as the raw values while moving 2-4 bytes per element instead of 8.
For each N, only the segment of the order between the previous N and this one is scanned, so every
response is read once per repeat whatever the number of N values. Only numpy is imported:
evaluation jobs start fast. Runs trained on a GPU pick on it instead (``embrm.evaluation_torch``).
:func:`best_of_n_loop` writes the same protocol as plain loops: the reference of the tests.
"""

from __future__ import annotations

import numpy as np

from .evaluation_bon import bon_summary, check_shapes, clip_n_values


def bon_orders(responses: int, repeats: int, rng: np.random.Generator) -> np.ndarray:
    """(repeats, K) response orders; shared by every prompt and every run with the same seed."""
    return np.stack([rng.permutation(responses) for _ in range(repeats)])


def dense_ranks(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Row-wise dense ranks (0 = lowest, equal values share a rank) in the smallest integer type.

    ``a > b`` holds for two ranks exactly when it holds for the scores they replace, so any
    argmax (with first-occurrence tie breaking) is unchanged. Also returns the argsort of each
    row (rank -> response when the row has no ties) and whether any row has ties.
    """
    rows, cols = scores.shape
    # Any sort puts equal values side by side, so the dense ranks do not need a stable one.
    order = np.argsort(scores, axis=1)
    ordered = np.take_along_axis(scores, order, axis=1)
    step = np.zeros((rows, cols), dtype=np.int64)
    step[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    dtype = np.int16 if cols <= np.iinfo(np.int16).max else np.int32
    dense = np.cumsum(step, axis=1)
    ranks = np.empty((rows, cols), dtype=dtype)
    np.put_along_axis(ranks, order, dense.astype(dtype), axis=1)
    has_ties = bool(cols and (dense[:, -1] < cols - 1).any())
    return ranks, order, has_ties


def check_orders(scores: np.ndarray, golden: np.ndarray, orders: np.ndarray) -> None:
    check_shapes(scores, golden)
    responses = golden.shape[1]
    if orders.ndim != 2 or orders.shape[1] != responses:
        raise ValueError(f"orders must be (repeats, {responses}), got {orders.shape}")
    if not (np.sort(orders, axis=1) == np.arange(responses)).all():
        raise ValueError("every row of orders must be a permutation of the responses")


def bon_pick_positions(scores: np.ndarray, orders: np.ndarray, n_values) -> np.ndarray:
    """(repeats, P, len(N)) index of the response Best-of-N picks, per repeat, prompt and N.

    ``n_values`` must be sorted, distinct and at most K (see :func:`clip_n_values`).

    Per repeat, the (K, P) table of ranks in that repeat's order is gathered by whole rows
    (contiguous copies), then reduced over the response axis one N-segment at a time, all
    prompts at once. Without ties the best rank names the response. With ties, the first
    response in the order must win, so the key is ``rank * K + (K - 1 - position)``: the
    maximum key is the highest rank at the earliest position, and the position is read back.
    """
    scores = np.asarray(scores)
    ranks, by_rank, has_ties = dense_ranks(scores)
    prompts, responses = ranks.shape
    repeats, sizes = orders.shape[0], len(n_values)
    if has_ties:
        key_type = np.int32 if responses * responses < np.iinfo(np.int32).max else np.int64
        table = np.ascontiguousarray((ranks.astype(key_type) * responses).T)  # (K, P)
        offset = (responses - 1 - np.arange(responses, dtype=key_type))[:, None]
    else:
        table = np.ascontiguousarray(ranks.T)
    bounds = [0, *n_values]
    best = np.empty((repeats, sizes, prompts), dtype=table.dtype)
    for r, order in enumerate(orders):
        gathered = table[order]  # (K, P): row j is the response at position j of this order
        if has_ties:
            gathered += offset
        running = best[r]
        gathered[: bounds[1]].max(axis=0, out=running[0])
        for i in range(1, sizes):
            np.maximum(
                running[i - 1], gathered[bounds[i] : bounds[i + 1]].max(axis=0), out=running[i]
            )
    if has_ties:
        position = (responses - 1) - best % responses  # (R, N, P) position in the order
        picks = np.take_along_axis(orders, position.reshape(repeats, -1), axis=1)
        picks = picks.reshape(repeats, sizes, prompts)
    else:
        first = (np.arange(prompts) * responses)[None, None, :]
        picks = by_rank.ravel().take(best + first)
    return np.ascontiguousarray(picks.transpose(0, 2, 1), dtype=np.int64)


def pick_positions(scores: np.ndarray, orders: np.ndarray, n_values, device: str | None = None):
    """Best-of-N picks with NumPy (``device`` None) or with torch on ``device`` (``cuda``)."""
    if device is None:
        return bon_pick_positions(scores, orders, n_values)
    from .evaluation_torch import bon_pick_positions as on_device

    return on_device(scores, orders, n_values, device)


def _picked_golden(golden: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Golden reward of each picked response: (repeats, P, len(N))."""
    prompts, responses = golden.shape
    flat = picks + (np.arange(prompts) * responses)[None, :, None]
    return np.ascontiguousarray(golden).ravel().take(flat)


def oracle_picks(
    golden: np.ndarray, orders: np.ndarray, ns: list[int], *, device: str | None = None
) -> np.ndarray:
    """Golden rewards of the oracle's Best-of-N picks (picking by golden reward)."""
    return _picked_golden(golden, pick_positions(golden, orders, ns, device))


def best_of_n_picks(predictions, golden, orders, n_values, oracle, device):
    """(N values, golden rewards of the picks, of the oracle's picks, golden) as float arrays."""
    predictions = np.asarray(predictions)
    golden = np.asarray(golden, dtype=np.float64)
    orders = np.asarray(orders)
    check_orders(predictions, golden, orders)
    ns = clip_n_values(n_values, golden.shape[1])
    picked = _picked_golden(golden, pick_positions(predictions, orders, ns, device))
    if oracle is None:
        oracle = oracle_picks(golden, orders, ns, device=device)
    return ns, picked, oracle, golden


def best_of_n(
    predictions: np.ndarray,
    golden: np.ndarray,
    orders: np.ndarray,
    n_values,
    *,
    oracle: np.ndarray | None = None,
    device: str | None = None,
) -> dict:
    """Best-of-N curve of ``predictions`` and of the golden oracle, both (P, K) arrays.

    ``oracle`` (from :func:`oracle_picks`) can be passed to score several prediction arrays
    against the same test set without recomputing it. ``device`` picks with torch there.
    """
    ns, picked, oracle, golden = best_of_n_picks(
        predictions, golden, orders, n_values, oracle, device
    )
    return bon_summary(ns, picked.mean(axis=(0, 1)), oracle.mean(axis=(0, 1)), golden)


def bon_gain_per_prompt(picked: np.ndarray, golden: np.ndarray) -> np.ndarray:
    """(P,) Best-of-N gain at the largest N of each test prompt: the golden reward of the pick,
    averaged over repeats, minus the prompt's mean golden reward. Their mean over prompts is the
    run's ``bon_gain`` (every prompt has K responses)."""
    return picked[:, :, -1].mean(axis=0) - golden.mean(axis=1)


def best_of_n_loop(
    predictions: np.ndarray, golden: np.ndarray, orders: np.ndarray, n_values
) -> dict:
    """The same protocol written as plain per-prompt loops: the reference for the vectorized one."""
    predictions = np.asarray(predictions)
    golden = np.asarray(golden, dtype=np.float64)
    orders = np.asarray(orders)
    check_orders(predictions, golden, orders)
    prompts, responses = golden.shape
    ns = clip_n_values(n_values, responses)
    picked = np.empty((orders.shape[0], prompts, len(ns)))
    oracle = np.empty_like(picked)
    for p in range(prompts):
        for r, order in enumerate(orders):
            pred, gold = predictions[p, order], golden[p, order]
            for i, n in enumerate(ns):
                picked[r, p, i] = gold[int(np.argmax(pred[:n]))]
                oracle[r, p, i] = gold[:n].max()
    return bon_summary(ns, picked.mean(axis=(0, 1)), oracle.mean(axis=(0, 1)), golden)
