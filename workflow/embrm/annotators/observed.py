"""The dataset's own preferences, as labels.

In a preference world (:mod:`embrm.sources.preferences`) the golden order of the world *is* the
observed preference (chosen above rejected, or the dataset's scores), so the observed label is the
golden order: exact, with a fair coin for a pair the dataset calls a tie.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Annotator


@dataclass
class Observed(Annotator):
    """The preferences the dataset states (ties are coin flips)."""

    model = "observed"
    description = "the dataset's own preference (chosen over rejected; ties are coin flips)"

    def prob_correct(self, abs_dr, scale):
        return np.where(np.asarray(abs_dr) > 0, 1.0, 0.5)


MODEL = Observed
