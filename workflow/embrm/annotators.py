"""Simulated annotators: golden rewards in, noisy pairwise labels out.

Every model maps a reward difference Δr = r_a − r_b (divided by ``scale``) to P(a ≻ b). Labels are
``1`` when the first-shown response wins. Statistics compare the labels with the golden order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


@dataclass
class BradleyTerry:
    """The paper's annotator: P(a ≻ b) = σ(β·Δr/scale)."""

    beta: float

    def prob_first_wins(self, dr: np.ndarray, scale: float, rng) -> np.ndarray:
        return _sigmoid(self.beta * dr / scale)


MODELS = {"bt": BradleyTerry}


def make_annotator(spec: dict):
    params = {k: v for k, v in spec.items() if k != "model"}
    try:
        model = MODELS[spec["model"]]
    except KeyError:
        raise ConfigError(
            f"config key 'annotators.*.model': unknown annotator '{spec['model']}'; "
            f"expected one of {sorted(MODELS)}"
        ) from None
    return model(**params)


def resolve_scale(scale, reward_std: float) -> float:
    if scale == "std":
        if not reward_std > 0:
            raise ConfigError(
                "config key 'annotation.scale': 'std' needs training rewards that vary"
            )
        return float(reward_std)
    return float(scale)


def annotate(
    annotator, r_a: np.ndarray, r_b: np.ndarray, scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """Draw labels (1 = first wins) and report how far they are from the golden order."""
    dr = r_a - r_b
    p_first = annotator.prob_first_wins(dr, scale, rng)
    labels = (rng.random(dr.shape) < p_first).astype(np.uint8)
    golden_first = dr > 0
    p_correct = np.where(golden_first, p_first, 1.0 - p_first)
    wrong = np.where(dr == 0, 0.5, labels != golden_first)
    stats = {
        "pairs": int(dr.size),
        "mean_abs_dr": float(np.abs(dr).mean()) if dr.size else float("nan"),
        "expected_error_rate": float(np.mean(1.0 - p_correct)) if dr.size else float("nan"),
        "realized_error_rate": float(np.mean(wrong)) if dr.size else float("nan"),
        "scale": float(scale),
    }
    return labels, stats
