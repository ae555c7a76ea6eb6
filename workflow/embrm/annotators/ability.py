"""A pool of bounded-ability annotators of unequal ability a ≥ 0.

Each member has the accuracy curve ξ_a(x) = 1 − exp(−a·x)/2 (increasing, concave, ξ_a(0) = 1/2,
ξ_a(∞) = 1 for a > 0). Each pair is labelled by a pool member drawn at random: with probability
``useless`` one with a = 0 (ξ ≡ 1/2, coin flips), with probability ``perfect`` one with a = ∞ (the
golden order), else one whose ability is log-normal with median ``ability`` and log-standard-
deviation ``spread``. Its slope at 0 is a/2, the BT slope of β = 2a.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ConfigError
from .base import Annotator, positive, share

# Quadrature for E[exp(−A·x)] with log A ~ N(m, s²): trapezoid rule in z = (log A − m)/s on
# [−Z_MAX, Z_MAX]. The integrand is smooth with Gaussian tails, so the rule converges
# exponentially: at this step it agrees with adaptive quadrature to about 1e-15 for spreads up to
# SPREAD_MAX (the narrowest feature of exp(−x·e^{m+s·z}) in z is about 1/s wide).
Z_MAX = 9.0
Z_STEP = 0.05
SPREAD_MAX = 4.0
QUADRATURE_CHUNK = 8192  # pairs per quadrature block: bounds memory at 8192 × 361 floats


def _lognormal_laplace(x: np.ndarray, median: float, spread: float) -> np.ndarray:
    """E[exp(−A·x)] for A log-normal with the given median and log-std, elementwise in x ≥ 0."""
    x = np.asarray(x, dtype=np.float64)
    if spread == 0:
        return np.exp(-median * x)
    z = np.arange(-Z_MAX, Z_MAX + Z_STEP / 2, Z_STEP)
    weight = np.exp(-0.5 * z * z) * Z_STEP / math.sqrt(2 * math.pi)
    weight /= weight.sum()  # the truncated tails (< 1e-18) would otherwise bias the integral
    abilities = median * np.exp(spread * z)
    out = np.empty_like(x)
    flat, result = x.reshape(-1), out.reshape(-1)
    for start in range(0, flat.size, QUADRATURE_CHUNK):
        block = flat[start : start + QUADRATURE_CHUNK]
        result[start : start + QUADRATURE_CHUNK] = np.exp(-np.outer(block, abilities)) @ weight
    return out


@dataclass
class AbilityPool(Annotator):
    """Bounded-ability annotators with spread abilities: ξ_a(x) = 1 − exp(−a·x)/2."""

    ability: float = 1.0
    spread: float = 1.0
    useless: float = 0.1
    perfect: float = 0.1
    model = "ability"
    description = (
        "a pool of annotators of spread abilities a, each correct with probability "
        "1 − exp(−a·|Δr|/scale)/2"
    )
    parameters: ClassVar[dict] = {
        "ability": positive(
            "Median ability a of the pool's log-normal members (in units of 1/scale; slope a/2 at "
            "Δr = 0, like BT with β = 2a)."
        ),
        "spread": {
            "type": "number",
            "minimum": 0,
            "maximum": SPREAD_MAX,
            "description": "Log-standard-deviation of the log-normal abilities (0 = all alike).",
        },
        "useless": share("Share of the pool with ability 0 (coin-flip labels)."),
        "perfect": share(
            "Share of the pool with infinite ability (golden-order labels); useless + perfect ≤ 1."
        ),
    }
    quality = "ability"
    examples = (
        {},  # the default pool: log-normal abilities plus 10% useless and 10% perfect
        {"ability": 0.3, "spread": 2.0, "useless": 0.0, "perfect": 0.0},
        {"ability": 3.0, "spread": 0.0, "useless": 0.5, "perfect": 0.0},
        {"ability": 1.0, "spread": 1.0, "useless": 1.0, "perfect": 0.0},  # all useless
        {"ability": 1.0, "spread": 1.0, "useless": 0.0, "perfect": 1.0},  # all perfect
    )

    def check(self):
        if self.useless + self.perfect > 1.0 + 1e-12:
            raise ConfigError(
                f"config key '{self.where}.useless': useless ({self.useless:g}) plus perfect "
                f"({self.perfect:g}) shares of the pool exceed 1"
            )

    @property
    def typical(self) -> float:
        """Share of the pool with a finite, positive (log-normal) ability."""
        return max(0.0, 1.0 - self.useless - self.perfect)

    def prob_correct(self, abs_dr, scale):
        x = np.asarray(abs_dr, dtype=np.float64) / scale
        miss = self.useless + self.perfect * (x == 0)  # P(label is a coin flip) ...
        if self.typical > 0:
            miss = miss + self.typical * _lognormal_laplace(x, self.ability, self.spread)
        return 1.0 - 0.5 * miss  # ... and ξ_a(x) = 1 − exp(−a·x)/2 for the rest

    def draw_abilities(self, size: int, rng) -> np.ndarray:
        """Ability of the pool member who labels each pair (0 = useless, inf = perfect): the
        pool's definition. Labels need not draw members: a member drawn independently per pair
        makes each label Bernoulli with :meth:`prob_correct`, the member's curve averaged over
        the pool, and that is how :func:`embrm.annotators.annotate` draws them."""
        member = rng.random(size)
        abilities = self.ability * np.exp(self.spread * rng.standard_normal(size))
        abilities[member < self.useless] = 0.0
        abilities[(member >= self.useless) & (member < self.useless + self.perfect)] = np.inf
        return abilities


MODEL = AbilityPool
