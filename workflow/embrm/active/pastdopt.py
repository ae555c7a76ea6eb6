"""``pastdopt``: D-optimal selection that counts the pairs already labelled.

The same greedy log-det rule as :mod:`.dopt`, started from M₀ = λI + Σ_{labelled} w_j x_j x_jᵀ:
the information the labelled pairs already carry, with their features and weights recomputed
under the current model. A candidate then gains little when it repeats a direction the labels
already pin down. With nothing labelled it is exactly ``dopt``.
"""

from __future__ import annotations

from .dopt import select_information

NEEDS_MODEL = True
NEEDS_FEATURES = True
NEEDS_PAST = True


def select(candidates, batch: int, *, ridge: float, **_):
    picks, _ = select_information(
        candidates, batch, ridge, past_diff=candidates.past_diff, past_dr_hat=candidates.past_dr_hat
    )
    return picks
