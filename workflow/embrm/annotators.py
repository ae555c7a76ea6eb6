"""Simulated annotators: golden rewards in, noisy pairwise labels out.

Every model is symmetric: the chance that an annotator orders a pair like the golden reward
depends only on the gap x = |Δr| / scale, through an accuracy curve ξ(x) with ξ(0) = 1/2:

- ``bt`` (the study's): ξ(x) = σ(β·x), the logistic Bradley-Terry label P(a ≻ b) = σ(β·Δr/scale);
- ``thurstone``: ξ(x) = Φ(β·x), the Gaussian (probit) version of the same idea;
- ``perfect``: ξ(x) = 1 for x > 0, the golden order itself;
- ``ability``: a pool of annotators of unequal ability a ≥ 0, each with the bounded-ability curve
  ξ_a(x) = 1 − exp(−a·x)/2 (increasing, concave, ξ_a(0) = 1/2, ξ_a(∞) = 1 for a > 0). Each pair
  is labelled by a pool member drawn at random: with probability ``useless`` one with a = 0
  (ξ ≡ 1/2, coin flips), with probability ``perfect`` one with a = ∞ (the golden order), else one
  whose ability is log-normal with median ``ability`` and log-standard-deviation ``spread``.
  Its slope at 0 is a/2, the BT slope of β = 2a.

Labels are ``1`` when the first-shown response wins. Pairs with equal golden rewards (x = 0) are
coin flips and count as half an error. Per annotation set, :func:`annotate` reports the number of
pairs, mean |Δr|, the expected error rate E[1 − ξ(x)] (exact: the pool's accuracy curve is
integrated by quadrature over the log-normal, not sampled), its binomial standard error, and the
realized error rate against the golden order.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from .errors import ConfigError

# Quadrature for E[exp(−A·x)] with log A ~ N(m, s²): trapezoid rule in z = (log A − m)/s on
# [−Z_MAX, Z_MAX]. The integrand is smooth with Gaussian tails, so the rule converges
# exponentially: at this step it agrees with adaptive quadrature to about 1e-15 for spreads up to
# SPREAD_MAX (the narrowest feature of exp(−x·e^{m+s·z}) in z is about 1/s wide).
Z_MAX = 9.0
Z_STEP = 0.05
SPREAD_MAX = 4.0
QUADRATURE_CHUNK = 8192  # pairs per quadrature block: bounds memory at 8192 × 361 floats


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def _check_positive(name: str, value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"config key '{where}.{name}': expected a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"config key '{where}.{name}': must be a finite number > 0, got {value}")
    return float(value)


def _check_share(name: str, value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"config key '{where}.{name}': expected a number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"config key '{where}.{name}': must lie in [0, 1], got {value}")
    return float(value)


class Annotator(ABC):
    """An accuracy curve ξ(|Δr|/scale) and a way to draw whether each label is right."""

    model: ClassVar[str]
    where: str

    @abstractmethod
    def prob_correct(self, abs_dr: np.ndarray, scale: float) -> np.ndarray:
        """P(label agrees with the golden order) for gaps ``abs_dr`` (exact, marginal over any
        randomness of the annotator); 1/2 where the gap is 0."""

    def draw_correct(self, abs_dr: np.ndarray, scale: float, rng) -> np.ndarray:
        """Whether each label agrees with the golden order (boolean array)."""
        return rng.random(abs_dr.shape) < self.prob_correct(abs_dr, scale)

    def prob_first_wins(self, dr: np.ndarray, scale: float, rng=None) -> np.ndarray:
        """P(a ≻ b) for signed gaps Δr = r_a − r_b (symmetric models: ξ or 1 − ξ)."""
        p = self.prob_correct(np.abs(dr), scale)
        return np.where(dr >= 0, p, 1.0 - p)

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "where"}


@dataclass
class BradleyTerry(Annotator):
    """The study's annotator: P(a ≻ b) = σ(β·Δr/scale)."""

    beta: float
    where: str = "annotators.*"
    model: ClassVar[str] = "bt"

    def __post_init__(self):
        self.beta = _check_positive("beta", self.beta, self.where)

    def prob_correct(self, abs_dr, scale):
        return _sigmoid(self.beta * np.asarray(abs_dr, dtype=np.float64) / scale)


@dataclass
class Thurstone(Annotator):
    """The Gaussian-noise (probit) annotator: P(a ≻ b) = Φ(β·Δr/scale)."""

    beta: float
    where: str = "annotators.*"
    model: ClassVar[str] = "thurstone"

    def __post_init__(self):
        self.beta = _check_positive("beta", self.beta, self.where)

    def prob_correct(self, abs_dr, scale):
        from scipy.special import ndtr

        return ndtr(self.beta * np.asarray(abs_dr, dtype=np.float64) / scale)


@dataclass
class Perfect(Annotator):
    """Deterministic labels from the golden order (ties are coin flips)."""

    where: str = "annotators.*"
    model: ClassVar[str] = "perfect"

    def prob_correct(self, abs_dr, scale):
        return np.where(np.asarray(abs_dr) > 0, 1.0, 0.5)


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
    where: str = "annotators.*"
    model: ClassVar[str] = "ability"

    def __post_init__(self):
        self.ability = _check_positive("ability", self.ability, self.where)
        self.useless = _check_share("useless", self.useless, self.where)
        self.perfect = _check_share("perfect", self.perfect, self.where)
        if isinstance(self.spread, bool) or not isinstance(self.spread, int | float):
            raise ConfigError(f"config key '{self.where}.spread': expected a number")
        if not 0.0 <= self.spread <= SPREAD_MAX:
            raise ConfigError(
                f"config key '{self.where}.spread': must lie in [0, {SPREAD_MAX:g}], "
                f"got {self.spread}"
            )
        self.spread = float(self.spread)
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
        """Ability of the pool member who labels each pair (0 = useless, inf = perfect)."""
        member = rng.random(size)
        abilities = self.ability * np.exp(self.spread * rng.standard_normal(size))
        abilities[member < self.useless] = 0.0
        abilities[(member >= self.useless) & (member < self.useless + self.perfect)] = np.inf
        return abilities

    def draw_correct(self, abs_dr, scale, rng):
        x = np.asarray(abs_dr, dtype=np.float64) / scale
        abilities = self.draw_abilities(x.size, rng).reshape(x.shape)
        with np.errstate(invalid="ignore"):  # inf·0 at ties with a perfect member
            xi = 1.0 - 0.5 * np.exp(-abilities * x)
        xi = np.where(x == 0, 0.5, xi)
        return rng.random(x.shape) < xi


MODELS: dict[str, type[Annotator]] = {
    cls.model: cls for cls in (BradleyTerry, Thurstone, Perfect, AbilityPool)
}


def make_annotator(spec: dict, where: str = "annotators.*") -> Annotator:
    """Build an annotator from its config entry (``model`` plus the model's parameters).

    ``where`` is the config key of the entry, named in errors.
    """
    name = spec.get("model")
    try:
        model = MODELS[name]
    except KeyError:
        raise ConfigError(
            f"config key '{where}.model': unknown annotator '{name}'; "
            f"expected one of {sorted(MODELS)}"
        ) from None
    params = {k: v for k, v in spec.items() if k != "model"}
    known = {f.name for f in fields(model)} - {"where"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(
            f"config key '{where}.{unknown[0]}': not a parameter of annotator '{name}' "
            f"(parameters: {sorted(known) or 'none'})"
        )
    try:
        return model(**params, where=where)
    except TypeError as exc:  # a required parameter is missing
        raise ConfigError(f"config key '{where}': {exc}") from None


def resolve_scale(scale, reward_std: float) -> float:
    """The reward scale dividing Δr: the training rewards' std (``'std'``) or a given number."""
    if scale == "std":
        if not (math.isfinite(reward_std) and reward_std > 0):
            raise ConfigError(
                "config key 'annotation.scale': 'std' needs training rewards that vary"
            )
        return float(reward_std)
    if isinstance(scale, bool) or not isinstance(scale, int | float):
        raise ConfigError(
            f"config key 'annotation.scale': expected 'std' or a number, got {scale!r}"
        )
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigError(f"config key 'annotation.scale': must be > 0, got {scale}")
    return float(scale)


def annotate(
    annotator: Annotator, r_a: np.ndarray, r_b: np.ndarray, scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """Draw labels (1 = first wins) and report how far they are from the golden order."""
    r_a = np.asarray(r_a, dtype=np.float64)
    r_b = np.asarray(r_b, dtype=np.float64)
    dr = r_a - r_b
    gap = np.abs(dr)
    correct = annotator.draw_correct(gap, scale, rng)
    coin = rng.random(dr.shape) < 0.5
    first_wins = np.where(dr > 0, correct, np.where(dr < 0, ~correct, coin))
    labels = first_wins.astype(np.uint8)
    p_correct = annotator.prob_correct(gap, scale)
    wrong = np.where(dr == 0, 0.5, first_wins != (dr > 0))
    if dr.size:
        expected = float(np.mean(1.0 - p_correct))
        # Labels are independent given the gaps: the realized rate's binomial standard error.
        error_se = float(np.sqrt(np.sum(p_correct * (1.0 - p_correct))) / dr.size)
        realized = float(np.mean(wrong))
        mean_gap = float(gap.mean())
    else:
        expected = error_se = realized = mean_gap = float("nan")
    stats = {
        "pairs": int(dr.size),
        "mean_abs_dr": mean_gap,
        "expected_error_rate": expected,
        "expected_error_rate_se": error_se,
        "realized_error_rate": realized,
        "tied_pairs": int(np.count_nonzero(dr == 0)),
        "scale": float(scale),
    }
    return labels, stats
