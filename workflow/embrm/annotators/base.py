"""What every annotator model declares: its name, its parameters and its quality knob.

A model is a dataclass subclass of :class:`Annotator`. Its fields are its parameters (a field with
a default is optional in the config, one without is required); ``parameters`` gives each one's
JSON-schema fragment (type, range, description). The config schema's per-model block, the checks
when a model is built and the summary's columns are all derived from these declarations, so a
range or a default is stated once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import MISSING, dataclass, field, fields
from typing import ClassVar

import numpy as np

from ..errors import ConfigError

WHERE = "annotators.*"


def positive(description: str, **extra) -> dict:
    """A number > 0 (bounded so that products with rewards stay finite). ``extra``: further
    schema keywords, e.g. ``title``, the symbol run names use for a quality knob."""
    return {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 1.0e6,
        "description": description,
        **extra,
    }


def share(description: str) -> dict:
    """A number in [0, 1]."""
    return {"type": "number", "minimum": 0, "maximum": 1, "description": description}


def _bounds(fragment: dict) -> str:
    low = (
        f"> {fragment['exclusiveMinimum']:g}"
        if "exclusiveMinimum" in fragment
        else f">= {fragment['minimum']:g}"
        if "minimum" in fragment
        else ""
    )
    high = (
        f"< {fragment['exclusiveMaximum']:g}"
        if "exclusiveMaximum" in fragment
        else f"<= {fragment['maximum']:g}"
        if "maximum" in fragment
        else ""
    )
    return " and ".join(part for part in (low, high) if part)


def check_value(fragment: dict, value, key: str) -> float:
    """``value`` checked against a parameter's numeric fragment; errors name ``key``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
    inside = math.isfinite(value)
    inside &= value > fragment.get("exclusiveMinimum", -math.inf)
    inside &= value >= fragment.get("minimum", -math.inf)
    inside &= value < fragment.get("exclusiveMaximum", math.inf)
    inside &= value <= fragment.get("maximum", math.inf)
    if not inside:
        bounds = _bounds(fragment)
        raise ConfigError(
            f"config key '{key}': must be a finite number{' ' + bounds if bounds else ''}, "
            f"got {value}"
        )
    return float(value)


@dataclass
class Annotator(ABC):
    """An accuracy curve ξ(|Δr|/scale) and a way to draw whether each label is right."""

    model: ClassVar[str]  # the config's `model:` value
    description: ClassVar[str]  # one line: the model's P(a ≻ b), shown in the schema
    parameters: ClassVar[dict[str, dict]] = {}  # field name -> JSON-schema fragment of one value
    # The parameter that sets how good the labels are (larger: fewer errors), or None. Figures and
    # run names read a run's annotation quality from it, whatever its name.
    quality: ClassVar[str | None] = None
    # Parameter sets that exercise the model (the generic tests build one annotator from each);
    # every required parameter must be given.
    examples: ClassVar[tuple[dict, ...]] = ({},)
    where: str = field(default=WHERE, kw_only=True)  # the config key of the entry, for errors

    def __post_init__(self):
        for name, fragment in self.parameters.items():
            setattr(self, name, check_value(fragment, getattr(self, name), f"{self.where}.{name}"))
        self.check()

    def check(self) -> None:  # noqa: B027 (an optional hook, not an abstract method)
        """Rules across parameters (each value alone is checked from ``parameters``)."""

    @classmethod
    def defaults(cls) -> dict:
        """Parameters with their default (the optional ones)."""
        return {
            f.name: f.default
            for f in fields(cls)
            if f.name in cls.parameters and f.default is not MISSING
        }

    @abstractmethod
    def prob_correct(self, abs_dr: np.ndarray, scale: float) -> np.ndarray:
        """P(label agrees with the golden order) for gaps ``abs_dr`` (exact, marginal over any
        randomness of the annotator); 1/2 where the gap is 0."""

    def prob_first_wins(self, dr: np.ndarray, scale: float) -> np.ndarray:
        """P(a ≻ b) for signed gaps Δr = r_a − r_b (symmetric models: ξ or 1 − ξ)."""
        p = self.prob_correct(np.abs(dr), scale)
        return np.where(dr >= 0, p, 1.0 - p)

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "where"}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic
