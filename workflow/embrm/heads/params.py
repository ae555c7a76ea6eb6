"""Hyperparameters: their types (read from each default), schema fragments and checks."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError

# The parameters of a head whose training procedure is a recipe (RewardHead.RECIPE; schema
# fragments, RewardHead.PARAMS). The components themselves are added per head family from
# heads.recipe.
PROTOCOL_PARAMS = {  # "protocol" lists heads.recipe.PROTOCOLS (tested; imported lazily here)
    "protocol": {
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


def require(condition: bool, where: str, key: str, message: str) -> None:
    """Raise a ConfigError naming ``where.key`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"config key '{where}.{key}': {message}")
