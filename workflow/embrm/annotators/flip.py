"""The dataset's preferences with a share of them flipped: label noise of a known rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import Annotator, share


@dataclass
class Flip(Annotator):
    """Each observed label is reversed with probability ``rate`` (seeded by the annotation seed),
    whatever the gap; ties stay coin flips."""

    model = "flip"
    description = "the dataset's own preference, each label reversed with probability rate"
    parameters: ClassVar[dict] = {
        "rate": share("share of labels reversed (0: the observed labels)")
    }
    examples = ({"rate": 0.0}, {"rate": 0.2})
    rate: float = 0.1

    def prob_correct(self, abs_dr, scale):
        return np.where(np.asarray(abs_dr) > 0, 1.0 - self.rate, 0.5)


MODEL = Flip
