"""Over-optimization of a reward model under Best-of-N: Gao et al.'s golden-reward curve.

Gao, Schulman & Hilton (2023) found that the golden ("gold") reward of Best-of-N against
d = sqrt(KL(pick || uniform)) follows ``gold(d) = d (α − β d)``: it rises with slope α and bends
down with β, so a β > 0 model over-optimizes beyond d = α / (2β). The fit here is least squares
through the origin (d = 0 is N = 1, zero gain) on the evaluated N values, with the exact KL
(``embrm.evaluation_exact``). Only numpy.
"""

from __future__ import annotations

import numpy as np

# Relative tolerance under which two expected rewards count as equal when locating the peak, so
# that a flat top (rounding in the last digits) does not move the peak below K.
PEAK_TOLERANCE = 1e-12


def gao_fit(distance, gain) -> tuple[float, float]:
    """(α, β) of ``gain ≈ d (α − β d)`` by least squares; NaN with fewer than two distinct d > 0."""
    d = np.asarray(distance, dtype=np.float64)
    y = np.asarray(gain, dtype=np.float64)
    if np.unique(d[d > 0]).size < 2:
        return float("nan"), float("nan")
    design = np.column_stack([d, -(d**2)])
    (alpha, beta), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(alpha), float(beta)


def peak(curve) -> int:
    """1-based N at which the expected golden reward (``curve`` over N = 1..K) is highest; the
    smallest such N when the top is flat within rounding."""
    curve = np.asarray(curve, dtype=np.float64)
    top = curve.max()
    return int(np.argmax(curve >= top - PEAK_TOLERANCE * (1.0 + abs(top)))) + 1


def fitted_peak_kl(alpha: float, beta: float) -> float:
    """KL at which the fitted curve peaks, (α / 2β)²; inf when it never bends down (β ≤ 0)."""
    if not np.isfinite(alpha) or not np.isfinite(beta):
        return float("nan")
    return float((alpha / (2 * beta)) ** 2) if beta > 0 else float("inf")
