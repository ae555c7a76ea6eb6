"""The head registry: adding a head is one module and one line in :data:`MODULES`.

Each registered module lists its :class:`~embrm.heads.base.RewardHead` subclasses in ``HEADS``;
:data:`HEAD_TYPES` maps each class's ``type_name`` to it. The config's ``heads.<name>.type``
must be one of these keys and ``heads.<name>.params`` is validated by the class's ``check_params``
against the class's declaration (``defaults`` and ``PARAMS``; :mod:`embrm.heads.params`).
Everything else about head types is derived from here: the config schema's ``heads`` block
(:func:`heads_schema`), what a list-valued hyperparameter means (:func:`sweep_values`) and the
generic tests. Modules are light to import (torch and LightGBM load only when a head fits or loads).
"""

from __future__ import annotations

import copy
from importlib import import_module
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import PairData, RewardHead

# The registry: one line per module of this package that defines heads (the module's HEADS).
# The order is the order of the schema's enum and of the figures' legends.
MODULES = (
    "mlp",
    "lgb",
    "linear",
)
HEAD_TYPES: dict[str, type[RewardHead]] = {
    head.type_name: head
    for module in MODULES
    for head in import_module(f"{__name__}.{module}").HEADS
}

__all__ = [
    "HEAD_TYPES",
    "MODULES",
    "PairData",
    "RewardHead",
    "head_class",
    "heads_schema",
    "load_head",
    "make_head",
    "sweep_values",
]


def head_class(head_type: str, where: str = "heads.*.type") -> type[RewardHead]:
    try:
        return HEAD_TYPES[head_type]
    except KeyError:
        raise ConfigError(
            f"config key '{where}': unknown head type '{head_type}'; expected one of "
            f"{sorted(HEAD_TYPES)} (a head's key is its type unless it sets 'type')"
        ) from None


def make_head(head_type: str, **kwargs) -> RewardHead:
    """A new, unfitted head: ``make_head("bt-mlp", seed=0, threads=2, lr=3e-4)``."""
    return head_class(head_type)(**kwargs)


def load_head(directory: str | Path, *, device: str | None = None, threads: int = 1) -> RewardHead:
    """Reload any saved head; its type is read from ``head.json``."""
    head_type = RewardHead.read_meta(directory)["params"]["type"]
    return head_class(head_type).load(directory, device=device, threads=threads)


def sweep_values(cls: type[RewardHead], key: str, value: Any) -> list | None:
    """The values of a sweep when ``value`` is one (a list of the parameter's values), else None.

    A parameter whose values are themselves lists (``hidden``) is swept by a list of lists.
    Unknown keys are never sweeps (``check_params`` names them).
    """
    if key not in cls.defaults or not isinstance(value, list) or not value:
        return None
    if isinstance(cls.defaults[key], list):
        return list(value) if all(isinstance(v, list) for v in value) else None
    return list(value)


def _params_block(cls: type[RewardHead]) -> dict:
    """Per-type ``params``: every hyperparameter as a value or a non-empty list of values."""
    properties = {}
    for key, fragment in cls.param_schema().items():
        one = {k: v for k, v in fragment.items() if k != "description"}
        sweep = {"type": "array", "minItems": 1, "uniqueItems": True, "items": one}
        properties[key] = {
            "anyOf": [one, sweep],
            "description": f"{fragment['description']} (a list of values is a sweep)",
        }
    return {
        "type": "object",
        "propertyNames": {"enum": sorted(cls.defaults)},
        "properties": properties,
    }


def heads_schema() -> dict:
    """The JSON schema of the config's ``heads`` block, derived from ``HEAD_TYPES``.

    ``type`` is an enum of the registered names; ``params`` is checked per type (names, and each
    value's type from the class's :meth:`~embrm.heads.base.RewardHead.param_schema`), for an
    explicit ``type`` and for a head named after its type alike. Any parameter may be a
    non-empty list of values: a sweep, expanded by :func:`embrm.grid.expand_heads`. Bounds
    (ranges, the values of an enum) and cross-parameter rules are not repeated here: the
    class's ``check_params`` enforces them from the same declaration, for the config and for
    direct construction alike. A pure function: a new dict on every call.
    """
    entry = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "type": {
                "type": "string",
                "enum": list(HEAD_TYPES),
                "description": "Registered head type (defaults to the key; the registry is "
                "embrm.heads.HEAD_TYPES).",
            },
            "members": {
                "type": "integer",
                "minimum": 1,
                "default": 1,
                "description": "Ensemble size (independently seeded copies); predictions are "
                "combined by mean, min and first.",
            },
            "params": {
                "type": "object",
                "default": {},
                "description": "Hyperparameters overriding the head type's defaults (see "
                "docs/heads.md); names, types and ranges are checked per head type. A list of "
                "values sweeps the parameter: one head per combination, named "
                "<name>-<param><value>.",
            },
        },
        "allOf": [
            {
                "if": {"required": ["type"], "properties": {"type": {"const": name}}},
                "then": {"properties": {"params": _params_block(cls)}},
            }
            for name, cls in HEAD_TYPES.items()
        ],
    }
    named_after_type = {
        name: {
            **copy.deepcopy(entry),
            "allOf": [
                *copy.deepcopy(entry["allOf"]),
                {
                    "if": {"not": {"required": ["type"]}},
                    "then": {"properties": {"params": _params_block(cls)}},
                },
            ],
        }
        for name, cls in HEAD_TYPES.items()
    }
    return {
        "type": "object",
        "minProperties": 1,
        "description": "Named reward-model heads. The key is the head type unless `type` says "
        "otherwise. Built from the head registry (embrm.heads.heads_schema).",
        "propertyNames": {"$ref": "#/$defs/name"},
        "properties": named_after_type,
        "additionalProperties": entry,
    }
