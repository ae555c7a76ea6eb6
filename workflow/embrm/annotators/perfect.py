"""Deterministic labels from the golden order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Annotator


@dataclass
class Perfect(Annotator):
    """Deterministic labels from the golden order (ties are coin flips)."""

    model = "perfect"
    description = "the golden order"

    def prob_correct(self, abs_dr, scale):
        return np.where(np.asarray(abs_dr) > 0, 1.0, 0.5)


MODEL = Perfect
