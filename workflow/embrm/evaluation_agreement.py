"""Agreement of a run's predictions with the golden rewards and the labels, per test prompt
and per held-out pair: Spearman within each prompt, order consistency, pair calibration."""

from __future__ import annotations

import numpy as np


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
    """Mean per-prompt Spearman over the prompts where it is defined, and their share."""
    return summarize_spearman(spearman_per_prompt(predictions, golden))


def summarize_spearman(rho: np.ndarray) -> dict:
    defined = np.isfinite(rho)
    return {
        "spearman": float(rho[defined].mean()) if defined.any() else float("nan"),
        "spearman_defined_fraction": float(defined.mean()),
    }


def pair_accuracy(scores: np.ndarray, golden: np.ndarray, a, b, label) -> dict:
    """Order consistency on pairs (flat indices): against the labels and against the golden order.

    ``label`` is 1 where the first response of the pair was preferred. A tie in predicted reward
    (or, against the golden order, a golden tie) counts as half right.
    """
    a, b, label = np.asarray(a), np.asarray(b), np.asarray(label)
    if a.size == 0:
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


def pair_calibration(predictions, heldout, truth=None) -> dict:
    """Calibration of the pair probabilities σ(s_a − s_b) on the held-out pairs, against their
    labels and, when ``truth`` is given, the annotator's true probabilities."""
    from .calibration import calibration, pair_probability

    a, b, label = (np.asarray(x) for x in heldout)
    p = pair_probability(np.asarray(predictions).ravel(), a, b)
    return calibration(p, label, truth)
