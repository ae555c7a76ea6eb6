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
- ``observed``: the dataset's own preference (a preference world's golden order is what the
  dataset observed; :mod:`embrm.sources.preferences`);
- ``flip``: the observed preference, each label reversed with probability ``rate``.

Each model is one module of this package and one line in :data:`MODULES`; the config schema's
``annotators`` block, the checks of its parameters and the summary's columns derive from what the
model declares (:class:`~embrm.annotators.base.Annotator`).

Labels are ``1`` when the first-shown response wins, drawn as 1{U < P(a ≻ b)} with one uniform U
per pair, shared by every model on the same stream (common random numbers, :func:`annotate`).
Pairs with equal golden rewards (x = 0) are coin flips and count as half an error. Per annotation set, :func:`annotate` reports the number of
pairs, mean |Δr|, the expected error rate E[1 − ξ(x)] (exact: the pool's accuracy curve is
integrated by quadrature over the log-normal, not sampled), its binomial standard error, and the
realized error rate against the golden order.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, fields
from importlib import import_module

import numpy as np

from ..errors import ConfigError
from .ability import AbilityPool
from .base import Annotator
from .bt import BradleyTerry
from .perfect import Perfect
from .thurstone import Thurstone

# The registry: one line per model, naming the module of this package that defines it (the
# module's MODEL). The order is the order of the schema's enum.
MODULES = (
    "bt",
    "thurstone",
    "perfect",
    "ability",
    "observed",
    "flip",
)
MODELS: dict[str, type[Annotator]] = {
    model.model: model for model in (import_module(f"{__name__}.{m}").MODEL for m in MODULES)
}

__all__ = [
    "MODELS",
    "AbilityPool",
    "Annotator",
    "BradleyTerry",
    "Perfect",
    "Thurstone",
    "annotate",
    "make_annotator",
    "resolve_scale",
    "schema_block",
]


def parameter_schema(model: type[Annotator], name: str) -> dict:
    """One parameter's schema: its value, or a list of values (a grid axis); its default."""
    value = {k: v for k, v in model.parameters[name].items() if k != "description"}
    out = {"description": model.parameters[name].get("description", name)}
    default = {f.name: f.default for f in fields(model)}[name]
    if default is not MISSING:
        out["default"] = default
    out["oneOf"] = [value, {"type": "array", "minItems": 1, "uniqueItems": True, "items": value}]
    return out


def schema_block() -> dict:
    """The config schema of one ``annotators.<name>`` entry, derived from the registry: the model
    enum and one if/then block per model with exactly its parameters."""
    blocks = []
    for name, model in MODELS.items():
        required = [
            f.name for f in fields(model) if f.name in model.parameters and f.default is MISSING
        ]
        then = {
            "additionalProperties": False,
            **({"required": required} if required else {}),
            "properties": {
                "model": True,
                **{p: parameter_schema(model, p) for p in model.parameters},
            },
        }
        blocks.append({"if": {"properties": {"model": {"const": name}}}, "then": then})
    return {
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": {
                "type": "string",
                "enum": list(MODELS),
                "description": "; ".join(f"{n}: {m.description}" for n, m in MODELS.items()) + ".",
            }
        },
        "allOf": blocks,
    }


def quality(model: str) -> str | None:
    """The name of a model's quality knob (None for a model without one)."""
    return MODELS[model].quality


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
    known = set(model.parameters)
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
    """Draw labels (1 = first wins) and report how far they are from the golden order.

    Pair i's label is 1{U_i < P(a ≻ b)} with U_i the i-th uniform of ``rng``: whatever the model
    and its parameters. Given the same stream, a pair's labels are thus coupled across annotators
    (monotonically: a label of the golden order under β stays so under every larger β), and the
    labels of the first m pairs do not depend on how many follow. Each label is still Bernoulli
    with the model's exact P(a ≻ b), independently across pairs, as it was.
    """
    r_a = np.asarray(r_a, dtype=np.float64)
    r_b = np.asarray(r_b, dtype=np.float64)
    dr = r_a - r_b
    gap = np.abs(dr)
    first_wins = rng.random(dr.shape) < annotator.prob_first_wins(dr, scale)
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
