"""A head's training procedure as named, independent components.

Each component is one setting of how a head trains (how pairs are split for validation, which
examples BT sees, how batches are drawn, when training stops, which weights are kept, ...). It is
a head hyperparameter of the same name whose values are implementations; the study's released
procedure and embrm's own are two of those values each. ``protocol: study | embrm`` is a preset:
it gives every component its protocol's value, and a component set explicitly overrides the
preset, so ``{protocol: study, split: pair}`` is the released procedure with embrm's split.

A component is one module of this package holding ``COMPONENT`` and one line in :data:`MODULES`.
It declares the head families it applies to (``torch`` for the MLP heads, ``bt`` for the
Bradley-Terry one only, ``lgb`` for LightGBM); a head declares its families in ``RECIPE`` and gets
every applicable component as a parameter (validated, in the config schema, sweepable). The
training loops read the components by role; besides, after every epoch (or boosting round
logged) any component whose implementation has ``should_stop(curves, params)`` may end training,
so a new stopping condition needs no change to a loop.

Only components set explicitly are logged as ``head.<key>`` (a preset's values follow from
``head.protocol``), so runs under a preset keep exactly the parameters and results they had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from ...errors import ConfigError

# The training protocols: named presets of every component.
PROTOCOLS = ("embrm", "study")
# Each protocol's counterpart: a component switched in one preset takes the other's value.
OTHER_PROTOCOL = dict(zip(PROTOCOLS, reversed(PROTOCOLS), strict=True))

# The registry: one line per component module of this package (its COMPONENT).
MODULES = (
    "split",
    "bt_examples",
    "seeding",
    "steps",
    "batches",
    "loss",
    "stopping",
    "weights",
    "booster",
)


@dataclass(frozen=True)
class Component:
    """One named setting of the training procedure.

    ``choices`` maps each value to its implementation; ``presets`` gives the value each protocol
    uses, either one value or one per head family; ``ignores`` lists, per value, hyperparameters
    that value has no use for (setting them is an error rather than silently ignored);
    ``needs_validation`` lists values that need a validation split (``val_fraction`` > 0).
    """

    key: str
    description: str
    families: tuple[str, ...]
    choices: Mapping[str, Any]
    presets: Mapping[str, Any]
    ignores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    needs_validation: tuple[str, ...] = ()

    def values_for(self, families: tuple[str, ...]) -> list[str]:
        """The values a head of these families may take (all but those named for other families)."""
        restricted = getattr(self.choices, "families", {})
        return [v for v in self.choices if set(restricted.get(v, families)) & set(families)]

    def preset(self, protocol: str, families: tuple[str, ...]) -> str:
        value = self.presets[protocol]
        if isinstance(value, Mapping):
            return next(value[f] for f in families if f in value)
        return value

    def applies(self, families: tuple[str, ...]) -> bool:
        return bool(set(self.families) & set(families))


class Choices(dict):
    """A component's values → implementations; ``families`` restricts a value to some families."""

    def __init__(self, values: Mapping[str, Any], families: Mapping[str, tuple[str, ...]] = ()):
        super().__init__(values)
        self.families = dict(families)


COMPONENTS: dict[str, Component] = {
    component.key: component
    for component in (import_module(f"{__name__}.{m}").COMPONENT for m in MODULES)
}


def components_for(families: tuple[str, ...]) -> dict[str, Component]:
    """The components a head of these families has, in registry order."""
    return {k: c for k, c in COMPONENTS.items() if c.applies(families)}


def param_fragments(families: tuple[str, ...]) -> dict[str, dict]:
    """Schema fragments (RewardHead.PARAMS) of the components a head has."""
    return {
        key: {
            # null (the default) leaves the component to the protocol.
            "type": ["string", "null"],
            "enum": [*c.values_for(families), None],
            "description": f"training component: {c.description}; unset, the protocol's value "
            f"({', '.join(f'{p}: {c.preset(p, families)}' for p in PROTOCOLS)})",
        }
        for key, c in components_for(families).items()
    }


@dataclass(frozen=True)
class Recipe:
    """A resolved training procedure: every component's value, and where each came from."""

    protocol: str
    values: Mapping[str, str]
    explicit: frozenset[str]

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def impl(self, key: str) -> Any:
        return COMPONENTS[key].choices[self.values[key]]

    def stoppers(self) -> list:
        """Implementations that may end training (those with ``should_stop``)."""
        return [impl for key in self.values if hasattr(impl := self.impl(key), "should_stop")]

    def should_stop(self, curves: list[dict], params: Mapping) -> bool:
        return any(impl.should_stop(curves, params) for impl in self.stoppers())

    def source(self, key: str) -> str:
        """How a message names the origin of a component's value."""
        if key in self.explicit:
            return f"{key} '{self.values[key]}'"
        return f"protocol '{self.protocol}' (its {key} '{self.values[key]}')"


def preset(protocol: str, families: tuple[str, ...]) -> dict[str, str]:
    """Every component's value under a protocol, for a head of these families."""
    return {k: c.preset(protocol, families) for k, c in components_for(families).items()}


def resolve(
    families: tuple[str, ...], params: Mapping, where: str, defaults: Mapping | None = None
) -> Recipe:
    """The recipe of complete hyperparameters ``params``: the protocol's preset, overridden by the
    components set (non-None). Checks what each value needs of the other parameters; errors name
    the key. Each value itself was checked against the head's declaration
    (``RewardHead.check_params``: ``protocol`` and every component are enums of
    :func:`param_fragments`)."""
    protocol = params.get("protocol", PROTOCOLS[0])
    values, explicit = {}, set()
    for key, component in components_for(families).items():
        value = params.get(key)
        if value is None:
            value = component.preset(protocol, families)
        else:
            explicit.add(key)
        values[key] = value
    recipe = Recipe(protocol, values, frozenset(explicit))
    defaults = defaults or {}
    for key, value in values.items():
        component = COMPONENTS[key]
        for ignored in component.ignores.get(value, ()):
            if ignored in params and ignored in defaults and params[ignored] != defaults[ignored]:
                raise ConfigError(
                    f"config key '{where}.{ignored}': is not used by {recipe.source(key)}; "
                    f"remove it or choose another {key}"
                )
        if value in component.needs_validation and not params.get("val_fraction", 0) > 0:
            raise ConfigError(
                f"config key '{where}.val_fraction': must be positive under "
                f"{recipe.source(key)}, which needs validation"
            )
    return recipe
