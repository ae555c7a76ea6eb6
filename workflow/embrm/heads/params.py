"""Hyperparameters: one declaration per parameter, and the one check that reads it.

A head type declares its hyperparameters in ``defaults`` (every name and its default; the default
gives the type) and ``PARAMS`` (per name: a description and the allowed values, written as the
JSON-schema keywords :data:`BOUNDS`). Parameters that mean the same in every head that has them
are declared once in :data:`SHARED_PARAMS`. :func:`check_declared` is the only code that enforces
a declaration; :meth:`~embrm.heads.base.RewardHead.check_params` calls it for direct construction
and for the config (:func:`embrm.grid.expand_heads`) alike, so a bad value gives the same
message both ways. The config schema (:func:`embrm.heads.heads_schema`) is generated from the
same declaration and keeps only names and types: bounds are not repeated there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError

# The JSON-schema keywords a declaration may use for the allowed values. The check reads them;
# the config schema leaves them out (they are written into the parameter's description instead).
BOUNDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "enum")

# Parameters with one meaning in every head type that has them: a type gets the declaration of
# each of its ``defaults`` found here, refined by its own ``PARAMS``.
SHARED_PARAMS: dict[str, dict] = {
    "val_fraction": {
        "minimum": 0,
        "exclusiveMaximum": 1,
        "description": "share of the pairs held out for validation (0: none)",
    },
    "lr": {"exclusiveMinimum": 0, "description": "learning rate"},
    "batch_size": {"exclusiveMinimum": 0, "description": "most examples per optimizer step"},
    "max_epochs": {"exclusiveMinimum": 0, "description": "most passes over the training pairs"},
    "max_iter": {"exclusiveMinimum": 0, "description": "most optimizer iterations"},
    "weight_decay": {"minimum": 0, "description": "Adam's weight decay"},
    "l2": {"minimum": 0, "description": "L2 penalty on the weights"},
    "patience": {"minimum": 0, "description": "epochs without improvement before stopping"},
    "tolerance": {"minimum": 0, "description": "convergence tolerance"},
    "protocol": {  # the enum is heads.recipe.PROTOCOLS (tested; not imported here: no cycle)
        "enum": ["embrm", "study"],
        "description": "preset of every training component: embrm's own procedure or the "
        "authors' released one, quirks included; a component set explicitly overrides it "
        "(docs/heads.md)",
    },
    "study_member": {
        "minimum": 0,
        "description": "seeding released: the released member whose seed and split are used",
    },
}


def declaration(defaults: Mapping, own: Mapping[str, dict]) -> dict[str, dict]:
    """A head type's complete ``PARAMS``: the shared declarations of its parameters refined by
    its own (``own`` is kept whole, so a key missing from ``defaults`` stays visible to tests)."""
    keys = [k for k in defaults if k in SHARED_PARAMS] + [k for k in own if k not in SHARED_PARAMS]
    return {key: {**SHARED_PARAMS.get(key, {}), **own.get(key, {})} for key in keys}


def _type_error(where: str, key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"config key '{where}.{key}': expected {expected}, got {value!r}")


def _check_type(value: Any, default: Any, where: str, key: str) -> None:
    """Hyperparameters take the type of their default (an int is accepted where a float is)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _type_error(where, key, "true or false", value)
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(where, key, "an integer", value)
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise _type_error(where, key, "a number", value)
    elif isinstance(default, list):
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
        ):
            raise _type_error(where, key, "a list of positive integers", value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise _type_error(where, key, "a string", value)


def _default_schema(default: Any) -> dict:
    """The JSON-schema type a hyperparameter's default implies (what :func:`_check_type` accepts)."""
    if isinstance(default, bool):
        return {"type": "boolean"}
    if isinstance(default, int):
        return {"type": "integer"}
    if isinstance(default, float):
        return {"type": "number"}
    if isinstance(default, list):
        return {"type": "array", "items": {"type": "integer", "minimum": 1}}
    if isinstance(default, str):
        return {"type": "string"}
    return {}


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def expected(fragment: Mapping) -> str:
    """What a declaration allows, in words ("" when it declares no bounds): "at least 2",
    "positive", "in (0, 1]", "one of ['embrm', 'study']"."""
    if "enum" in fragment:
        named = [v for v in fragment["enum"] if v is not None]
        return f"one of {named}" + (" (or null)" if None in fragment["enum"] else "")
    low = ("[", fragment["minimum"]) if "minimum" in fragment else None
    if "exclusiveMinimum" in fragment:
        low = ("(", fragment["exclusiveMinimum"])
    high = ("]", fragment["maximum"]) if "maximum" in fragment else None
    if "exclusiveMaximum" in fragment:
        high = (")", fragment["exclusiveMaximum"])
    if low and high:
        return f"in {low[0]}{_number(low[1])}, {_number(high[1])}{high[0]}"
    if low:
        if low[1] == 0:
            return "non-negative" if low[0] == "[" else "positive"
        return f"at least {_number(low[1])}" if low[0] == "[" else f"above {_number(low[1])}"
    if high:
        return f"at most {_number(high[1])}" if high[0] == "]" else f"below {_number(high[1])}"
    return ""


def _within(value: Any, fragment: Mapping) -> bool:
    if "enum" in fragment:
        return value in fragment["enum"]
    numbers = [value] if not isinstance(value, list) else []
    return all(
        ("minimum" not in fragment or v >= fragment["minimum"])
        and ("exclusiveMinimum" not in fragment or v > fragment["exclusiveMinimum"])
        and ("maximum" not in fragment or v <= fragment["maximum"])
        and ("exclusiveMaximum" not in fragment or v < fragment["exclusiveMaximum"])
        for v in numbers
    )


def check_declared(
    params: Mapping, defaults: Mapping, declared: Mapping[str, dict], where: str, type_name: str
) -> None:
    """Check hyperparameter overrides against a head type's declaration: known names, the type of
    each default, the declared bounds. Errors name ``where.<key>`` and what was expected."""
    if not isinstance(params, Mapping):
        raise ConfigError(f"config key '{where}': expected a mapping of hyperparameters")
    unknown = set(params) - set(defaults)
    if unknown:
        raise ConfigError(
            f"config key '{where}': unknown hyperparameters {sorted(unknown)} for head type "
            f"'{type_name}'; expected some of {sorted(defaults)}"
        )
    for key, value in params.items():
        _check_type(value, defaults[key], where, key)
        fragment = declared.get(key, {})
        if not _within(value, fragment):
            words = expected(fragment)
            if "enum" in fragment:
                raise _type_error(where, key, words, value)
            raise ConfigError(f"config key '{where}.{key}': must be {words}")


def schema_fragment(default: Any, fragment: Mapping) -> dict:
    """The config schema's fragment of one declared parameter: the type its default gives (and
    the declaration's own ``type``), the description with the bounds and the default in words,
    and no bounds (:func:`check_declared` enforces them, with the key in the message)."""
    out = {**_default_schema(default)}
    out.update({k: v for k, v in fragment.items() if k not in BOUNDS and k != "description"})
    text = fragment.get("description", "").rstrip(". ")
    if words := expected(fragment):
        text = f"{text}; {words}".lstrip("; ")
    if default is not None:  # None: a training component, whose default is a preset's
        text = f"{text}. Default: {json.dumps(default)}".lstrip(". ")
    out["description"] = text
    return out


def require(condition: bool, where: str, key: str, message: str) -> None:
    """Raise a ConfigError naming ``where.key`` unless ``condition`` holds: for rules across
    several parameters (a single parameter's bounds are declared in ``PARAMS``)."""
    if not condition:
        raise ConfigError(f"config key '{where}.{key}': {message}")
