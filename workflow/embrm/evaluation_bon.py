"""Best-of-N's shared parts: the N values, the input checks and the curve summary that both
estimators (``embrm.evaluation_exact``, ``embrm.evaluation_sampled``) end in. Only numpy."""

from __future__ import annotations

import numpy as np


def clip_n_values(n_values, responses: int) -> list[int]:
    """The distinct N values, those above K replaced by K (Best-of-K = pick among all)."""
    if responses < 1:
        raise ValueError("Best-of-N needs at least one response per prompt")
    if any(int(n) < 1 for n in n_values):
        raise ValueError(f"Best-of-N sizes must be >= 1, got {list(n_values)}")
    return sorted({min(int(n), responses) for n in n_values})


def check_shapes(scores: np.ndarray, golden: np.ndarray) -> None:
    if scores.shape != golden.shape or golden.ndim != 2:
        raise ValueError(
            f"predictions {scores.shape} and golden rewards {golden.shape} must both be (P, K)"
        )
    if not (np.isfinite(scores).all() and np.isfinite(golden).all()):
        raise ValueError("predictions and golden rewards must be finite (no NaN or inf)")


def bon_summary(ns: list[int], bon: np.ndarray, oracle_bon: np.ndarray, golden) -> dict:
    """Curves and gains from the mean golden reward of the picks at each N, and the oracle's.

    Both sampled implementations end here with identical pick arrays, so their numbers are
    identical; the exact estimator passes its expectations.
    """
    bon = np.asarray(bon, dtype=np.float64)
    oracle_bon = np.asarray(oracle_bon, dtype=np.float64)
    random_pick = float(golden.mean())  # every prompt has K responses: mean of prompt means
    best = float(golden.max(axis=1).mean())
    gain = float(bon[-1] - random_pick)
    oracle_gain = float(oracle_bon[-1] - random_pick)
    return {
        "n_values": list(ns),
        "bon_reward": bon.tolist(),
        "bon_gain_curve": (bon - random_pick).tolist(),
        "oracle_bon_reward": oracle_bon.tolist(),
        "random_pick_reward": random_pick,
        "oracle_best_reward": best,
        "bon_n_max": ns[-1],
        "bon_gain": gain,
        "oracle_bon_gain": oracle_gain,
        # Share of what a perfect reward model would gain at the same N (1 = oracle, 0 = random).
        "bon_gain_normalized": gain / oracle_gain if oracle_gain > 0 else float("nan"),
    }
