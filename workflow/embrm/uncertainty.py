"""Ensemble uncertainty at evaluation: uncertainty-penalized aggregations of the members'
predictions, and how well the members' disagreement flags the ensemble's ordering errors.

An ensemble (``heads.<name>.members > 1``) is scored for each aggregation of its members'
(M, P, K) predictions as if it were a head of its own: ``mean``, ``min`` (worst case), ``first``
(one member; :mod:`embrm.heads.ensemble`) and, for each λ of ``evaluation.uncertainty_lambdas``,
``mean-var<λ>``: the members' mean minus λ times their variance (population variance over
members), which prefers responses the members agree on (Coste et al., 2024). λ = 0 is the mean.

Disagreement AUC: on the held-out pairs that have a golden order and where the ensemble's mean
is not tied, is a pair the ensemble orders against the golden order one its members disagree on
more? The disagreement of a pair is the standard deviation over members of the margin
s_a − s_b; the AUC is the probability that an erroneous pair has a larger disagreement than a
correctly ordered one (ties half): 0.5 is no signal, 1 perfect flagging.
"""

from __future__ import annotations

import numpy as np

PREFIX = "mean-var"


def aggregations(lambdas) -> tuple[str, ...]:
    """Names of every aggregation scored for an ensemble, given ``evaluation.uncertainty_lambdas``."""
    from .heads.ensemble import AGGREGATIONS

    return (*AGGREGATIONS, *(f"{PREFIX}{float(lam):g}" for lam in dict.fromkeys(lambdas)))


def combine(predictions: np.ndarray, how: str) -> np.ndarray:
    """Combine stacked member predictions (M, ...) by ``how`` (see :func:`aggregations`)."""
    from .heads.ensemble import combine as plain

    if how.startswith(PREFIX):
        lam = float(how.removeprefix(PREFIX))
        # The mean exactly as the plain aggregation computes it, so λ = 0 is the mean itself.
        variance = np.asarray(predictions, dtype=np.float64).var(axis=0)
        return plain(predictions, "mean") - lam * variance
    return plain(predictions, how)


def disagreement_auc(predictions: np.ndarray, golden: np.ndarray, a, b) -> float:
    """AUC of the members' disagreement on held-out pairs (flat indices ``a``, ``b``) for the
    pairs the ensemble mean orders against the golden order; NaN without both kinds of pairs."""
    from .evaluation_agreement import average_ranks

    members = np.asarray(predictions, dtype=np.float64).reshape(predictions.shape[0], -1)
    a, b = np.asarray(a), np.asarray(b)
    margins = members[:, a] - members[:, b]  # (M, pairs)
    mean = margins.mean(axis=0)
    flat = np.asarray(golden, dtype=np.float64).ravel()
    golden_margin = flat[a] - flat[b]
    usable = (golden_margin != 0) & (mean != 0)
    error = (mean > 0) != (golden_margin > 0)
    disagreement = margins.std(axis=0)[usable]
    error = error[usable]
    wrong, right = int(error.sum()), int((~error).sum())
    if wrong == 0 or right == 0:
        return float("nan")
    ranks = average_ranks(disagreement[None, :])[0]
    # Mann-Whitney: the rank sum of the erroneous pairs, less its minimum, over all comparisons.
    return float((ranks[error].sum() - wrong * (wrong + 1) / 2) / (wrong * right))
