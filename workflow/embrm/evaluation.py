"""Test-set metrics: Best-of-N, per-prompt Spearman, order-consistency accuracy.

Best-of-N follows the study: for each repeat, one random order of the K responses shared by all
prompts; for each N, the first N responses in that order, pick the argmax of the predicted reward
(the first one on ties), record its golden reward, average over prompts and repeats. Everything is
vectorized over repeats, prompts and N. Only numpy is imported: evaluation jobs start fast.
"""

from __future__ import annotations

import numpy as np

REPEAT_CHUNK_ELEMENTS = 32_000_000  # bounds the (repeats, P, K) working set to ~0.5 GB


def bon_orders(responses: int, repeats: int, rng: np.random.Generator) -> np.ndarray:
    """(repeats, K) response orders; shared by every prompt and every run with the same seed."""
    return np.stack([rng.permutation(responses) for _ in range(repeats)])


def clip_n_values(n_values, responses: int) -> list[int]:
    return sorted({min(int(n), responses) for n in n_values})


def _prefix_pick(scores: np.ndarray, golden: np.ndarray, n_values: list[int]) -> np.ndarray:
    """Golden reward of the first argmax of ``scores[..., :N]`` for each N: shape (..., len(N))."""
    running = np.maximum.accumulate(scores, axis=-1)
    new_max = np.ones(scores.shape, dtype=bool)
    new_max[..., 1:] = scores[..., 1:] > running[..., :-1]
    position = np.arange(scores.shape[-1])
    where = np.maximum.accumulate(np.where(new_max, position, 0), axis=-1)
    cols = np.asarray(n_values) - 1
    return np.take_along_axis(golden, where[..., cols], axis=-1)


def best_of_n(predictions: np.ndarray, golden: np.ndarray, orders: np.ndarray, n_values) -> dict:
    """Best-of-N curve of ``predictions`` and of the golden oracle, both (P, K) arrays."""
    prompts, responses = golden.shape
    ns = clip_n_values(n_values, responses)
    picked = np.zeros(len(ns))
    oracle = np.zeros(len(ns))
    chunk = max(1, REPEAT_CHUNK_ELEMENTS // (prompts * responses))
    for start in range(0, orders.shape[0], chunk):
        block = orders[start : start + chunk]  # (R, K)
        pred_perm = predictions[:, block].transpose(1, 0, 2)  # (R, P, K)
        gold_perm = golden[:, block].transpose(1, 0, 2)
        picked += _prefix_pick(pred_perm, gold_perm, ns).sum(axis=(0, 1))
        oracle += _prefix_pick(gold_perm, gold_perm, ns).sum(axis=(0, 1))
    total = orders.shape[0] * prompts
    return _bon_summary(ns, picked / total, oracle / total, golden)


def best_of_n_loop(
    predictions: np.ndarray, golden: np.ndarray, orders: np.ndarray, n_values
) -> dict:
    """The same protocol written as plain loops; the reference the vectorized version must match."""
    prompts, responses = golden.shape
    ns = clip_n_values(n_values, responses)
    picked = np.zeros(len(ns))
    oracle = np.zeros(len(ns))
    for order in orders:
        for p in range(prompts):
            pred, gold = predictions[p, order], golden[p, order]
            for i, n in enumerate(ns):
                picked[i] += gold[int(np.argmax(pred[:n]))]
                oracle[i] += gold[int(np.argmax(gold[:n]))]
    total = orders.shape[0] * prompts
    return _bon_summary(ns, picked / total, oracle / total, golden)


def _bon_summary(ns, picked, oracle, golden) -> dict:
    random_pick = float(golden.mean())
    best = float(golden.max(axis=1).mean())
    gain = float(picked[-1] - random_pick)
    return {
        "n_values": ns,
        "bon_reward": picked.tolist(),
        "oracle_bon_reward": oracle.tolist(),
        "random_pick_reward": random_pick,
        "oracle_best_reward": best,
        "bon_n_max": ns[-1],
        "bon_gain": gain,
        "oracle_bon_gain": best - random_pick,
        "bon_gain_normalized": gain / (best - random_pick) if best > random_pick else float("nan"),
    }


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Row-wise ranks (1-based) with ties given their average rank, like scipy's rankdata."""
    rows, cols = x.shape
    order = np.argsort(x, axis=1, kind="stable")
    ordered = np.take_along_axis(x, order, axis=1)
    start = np.ones((rows, cols), dtype=bool)
    start[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    end = np.ones((rows, cols), dtype=bool)
    end[:, :-1] = start[:, 1:]
    position = np.arange(cols)
    first = np.maximum.accumulate(np.where(start, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(end, position, cols)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((rows, cols))
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return ranks


def spearman_per_prompt(predictions: np.ndarray, golden: np.ndarray) -> np.ndarray:
    """Spearman correlation per prompt (row); NaN where either row is constant."""
    rp = average_ranks(np.asarray(predictions, dtype=np.float64))
    rg = average_ranks(np.asarray(golden, dtype=np.float64))
    rp -= rp.mean(axis=1, keepdims=True)
    rg -= rg.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rp * rp).sum(axis=1) * (rg * rg).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rp * rg).sum(axis=1) / denominator, np.nan)


def spearman_summary(predictions: np.ndarray, golden: np.ndarray) -> dict:
    rho = spearman_per_prompt(predictions, golden)
    defined = np.isfinite(rho)
    return {
        "spearman": float(rho[defined].mean()) if defined.any() else float("nan"),
        "spearman_defined_fraction": float(defined.mean()),
    }


def pair_accuracy(scores: np.ndarray, golden: np.ndarray, a, b, label) -> dict:
    """Order consistency on pairs (flat indices): against the labels and against the golden order.

    A tie in predicted reward counts as half right.
    """
    if len(a) == 0:
        return {"accuracy_vs_labels": float("nan"), "accuracy_vs_golden": float("nan")}
    margin = scores[a] - scores[b]
    golden_margin = golden[a] - golden[b]
    vs_labels = np.where(margin == 0, 0.5, (margin > 0) == (label > 0))
    vs_golden = np.where(
        (margin == 0) | (golden_margin == 0), 0.5, (margin > 0) == (golden_margin > 0)
    )
    return {
        "accuracy_vs_labels": float(vs_labels.mean()),
        "accuracy_vs_golden": float(vs_golden.mean()),
    }


def evaluate(
    predictions: np.ndarray,
    golden: np.ndarray,
    orders: np.ndarray,
    n_values,
    heldout: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> dict:
    """All test metrics of one (P, K) prediction array."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if not np.isfinite(predictions).all():
        raise ValueError("predictions contain NaN or inf")
    metrics = best_of_n(predictions, golden, orders, n_values)
    metrics.update(spearman_summary(predictions, golden))
    metrics.update(pair_accuracy(predictions.ravel(), golden.ravel(), *heldout))
    return metrics
