"""Losses and means in float64 that the heads share (numpy; the torch heads have their own)."""

from __future__ import annotations

import numpy as np


def bce_with_logits_np(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-example binary cross-entropy from logits, in float64 (numerically stable)."""
    z = logits.astype(np.float64)
    return np.maximum(z, 0.0) - z * target + np.log1p(np.exp(-np.abs(z)))


def bce_np(prob: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-example binary cross-entropy of probabilities, logs clamped at −100 as torch's BCELoss
    does (a saturated sigmoid costs 100, not infinity)."""
    p = prob.astype(np.float64)
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), -100.0)
        log_q = np.maximum(np.log1p(-p), -100.0)
    return -(target * log_p + (1 - target) * log_q)


def mean64(values: np.ndarray) -> float:
    """A float64 mean whose summation order depends on nothing but the array."""
    return float(np.sum(values, dtype=np.float64) / max(values.size, 1))
