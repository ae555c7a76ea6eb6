"""Calibration of a reward model's pair probabilities on the held-out pairs, against the labels
and against the annotator's true probability.

A pair probability P(a ≻ b) is formed from the two responses' pointwise scores as
σ(s_a − s_b). Every head scores responses by a logit:

- Bradley-Terry heads (``bt-*``) are trained on exactly this likelihood, so σ(s_a − s_b) is
  the model's own probability;
- classification heads (``clf-*``) score a response by the logit ℓ of P(it is the preferred one
  of its pair). Given that exactly one of a and b wins and the two classifications are
  independent, P(a ≻ b) = p_a(1 − p_b) / (p_a(1 − p_b) + p_b(1 − p_a)) = σ(ℓ_a − ℓ_b): the same
  formula. (``clf-lgb`` scores by its raw margin, the log-odds, under both protocols.)

The truth is the annotator's own probability that its label says "a wins" given the golden gap
(``Annotator.prob_correct``), known exactly in a simulated world. Against it, log loss is the
expected log loss over labels drawn from the truth (cross-entropy), and the Brier score the mean
squared difference of probabilities. ECE bins the predicted probabilities into ``BINS`` equal
bins and weighs each bin's |mean prediction − mean outcome| by its share of pairs; the outcome is
the label, or the true probability. A model whose probabilities equal the truth has ECE 0
against the truth and, against labels, only the binomial noise of the finite sample.
"""

from __future__ import annotations

import numpy as np

BINS = 15  # the usual choice for ECE; fixed, never tuned on results
EPSILON = 1e-12  # probabilities are clipped to [ε, 1 − ε] so that log loss stays finite


def pair_probability(scores, a, b) -> np.ndarray:
    """σ(s_a − s_b) for pairs (a, b) of flat response indices."""
    scores = np.asarray(scores, dtype=np.float64)
    margin = scores[np.asarray(a)] - scores[np.asarray(b)]
    return 0.5 * (1.0 + np.tanh(0.5 * margin))  # σ without overflow for large |margin|


def true_probability(annotator, golden_a, golden_b, scale: float) -> np.ndarray:
    """P(the annotator labels a as the winner) for each pair, from the golden gap: its
    ``prob_correct`` where a is better, one minus it where b is, 1/2 on a golden tie."""
    dr = np.asarray(golden_a, dtype=np.float64) - np.asarray(golden_b, dtype=np.float64)
    correct = annotator.prob_correct(np.abs(dr), scale)
    return np.where(dr > 0, correct, np.where(dr < 0, 1.0 - correct, 0.5))


def log_loss(p, outcome) -> float:
    """Mean −[y log p + (1 − y) log(1 − p)]; ``outcome`` may be a probability (cross-entropy)."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPSILON, 1 - EPSILON)
    y = np.asarray(outcome, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def brier(p, outcome) -> float:
    return float(np.mean((np.asarray(p, np.float64) - np.asarray(outcome, np.float64)) ** 2))


def expected_calibration_error(p, outcome, bins: int = BINS) -> float:
    """Σ_bins (pairs in bin / pairs) · |mean p − mean outcome| over equal-width bins of p."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    gap = np.bincount(which, weights=p - y, minlength=bins)
    return float(np.abs(gap).sum() / p.size)


def calibration(p, label, truth=None) -> dict:
    """Log loss, Brier and ECE of pair probabilities ``p`` against the labels (1 = first wins)
    and, when given, against the true probabilities; NaN without pairs."""
    names = ("log_loss", "brier", "ece")
    against = {"labels": label} if truth is None else {"labels": label, "truth": truth}
    p = np.asarray(p, dtype=np.float64)
    out = {}
    for what, outcome in against.items():
        for name, function in zip(
            names, (log_loss, brier, expected_calibration_error), strict=True
        ):
            value = function(p, outcome) if p.size else float("nan")
            out[f"calibration_{name}_vs_{what}"] = value
    return out
