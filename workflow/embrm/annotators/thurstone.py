"""The Gaussian-noise (probit) annotator: P(a ≻ b) = Φ(β·Δr/scale)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import Annotator, positive


@dataclass
class Thurstone(Annotator):
    """The Gaussian-noise (probit) annotator: P(a ≻ b) = Φ(β·Δr/scale)."""

    beta: float
    model = "thurstone"
    description = "P(a ≻ b) = Φ(β·Δr/scale)"
    parameters: ClassVar[dict] = {
        "beta": positive("Annotation quality β > 0 (a list expands into grid values).", title="β")
    }
    quality = "beta"
    examples = ({"beta": 1},)

    def prob_correct(self, abs_dr, scale):
        from scipy.special import ndtr

        return ndtr(self.beta * np.asarray(abs_dr, dtype=np.float64) / scale)


MODEL = Thurstone
