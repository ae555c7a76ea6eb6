"""The study's annotator: Bradley-Terry labels, P(a ≻ b) = σ(β·Δr/scale)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import Annotator, positive, sigmoid


@dataclass
class BradleyTerry(Annotator):
    """The study's annotator: P(a ≻ b) = σ(β·Δr/scale)."""

    beta: float
    model = "bt"
    description = "P(a ≻ b) = σ(β·Δr/scale), the study's annotator"
    parameters: ClassVar[dict] = {
        "beta": positive(
            "Annotation quality β > 0 (a list expands into grid values); the study's grid is "
            "0.5, 0.7, 1, 3, 5, 10.",
            title="β",
        )
    }
    quality = "beta"
    examples = ({"beta": 0.5}, {"beta": 10})

    def prob_correct(self, abs_dr, scale):
        return sigmoid(self.beta * np.asarray(abs_dr, dtype=np.float64) / scale)


MODEL = BradleyTerry
