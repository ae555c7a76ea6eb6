"""Grid values of the config's entries: each annotator and head entry expanded into the values
its list-valued parameters sweep, and the names those values take (``bt-mlp-lr0.001``)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"
GRID_AXES = ("worlds", "annotators", "designs", "quantities", "heads", "seeds")


def format_number(value: float) -> str:
    """Short, filename-safe, stable rendering: 1.0 -> '1', 0.5 -> '0.5', 1e-05 -> '1e-05'."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def expand_annotators(config: dict) -> dict[str, dict[str, list[dict]]]:
    """Map each annotator entry to its grid values: ``{entry: {label: spec}}``.

    List-valued parameters are grid axes. A label spells the model and every parameter, so two
    entries that describe the same annotator share a label and run once.
    """
    expanded: dict[str, dict[str, dict]] = {}
    for entry, spec in config["annotators"].items():
        params = {k: v for k, v in spec.items() if k != "model"}
        axes = {k: (v if isinstance(v, list) else [v]) for k, v in sorted(params.items())}
        labels: dict[str, dict] = {}
        for values in itertools.product(*axes.values()):
            point = dict(zip(axes, values, strict=True))
            label = "-".join([spec["model"], *(f"{k}{format_number(v)}" for k, v in point.items())])
            labels[label] = {"model": spec["model"], **point}
        expanded[entry] = labels
    return expanded


def format_value(value: Any) -> str:
    """:func:`format_number`, and a list of numbers as '64x32' ('none' when empty)."""
    if isinstance(value, list):
        return "x".join(map(format_number, value)) or "none"
    return format_number(value)


def expand_heads(config: Mapping) -> dict[str, dict[str, dict]]:
    """Map each head entry to its grid values: ``{entry: {name: spec}}``.

    A ``spec`` has ``type``, ``members`` and ``params``. List-valued hyperparameters (per the
    type's :func:`~embrm.heads.sweep_values`) are grid axes, crossed like annotator parameters:
    each combination is one head named ``<entry>-<param><value>...`` over the swept parameters
    in sorted order (``bt-mlp-lr0.001``). An entry without a sweep is one head named as its key,
    with its spec as written. Every combination passes its type's ``check_params``, the one
    check of a head's hyperparameters (bounds from the type's declaration), which every
    construction of the head runs too; errors name the entry's key.
    """
    from .heads import head_class, sweep_values

    expanded: dict[str, dict[str, dict]] = {}
    owner: dict[str, str] = {}
    for entry, raw in config["heads"].items():
        where = f"heads.{entry}"
        cls = head_class(raw.get("type", entry), where)
        spec = dict(raw)
        spec.setdefault("type", entry)
        spec.setdefault("members", 1)
        spec.setdefault("params", {})
        params = spec["params"]  # a mapping of known names and types (the schema)
        axes = {}
        for key in sorted(params):
            values = sweep_values(cls, key, params[key])
            if values is not None:
                axes[key] = values
        heads: dict[str, dict] = {}
        for point in itertools.product(*axes.values()):
            chosen = dict(zip(axes, point, strict=True))
            name = "-".join([entry, *(f"{k}{format_value(v)}" for k, v in chosen.items())])
            swept = ", ".join(f"{k}={v!r}" for k, v in chosen.items())
            if not re.fullmatch(NAME_PATTERN, name):
                raise ConfigError(
                    f"config key '{where}.params': the sweep value {swept} gives the head name "
                    f"{name!r}, which is not a valid name (letters, digits and _.+-)"
                )
            if (name in owner and owner[name] != entry) or (name in config["heads"] and axes):
                other = owner.get(name, name)
                raise ConfigError(
                    f"config key '{where}.params': the sweep names a head {name!r}, which is "
                    f"also a head of 'heads.{other}'; rename one of them"
                )
            one = {**spec, "params": {**params, **chosen}}
            try:
                cls.check_params(one["params"], f"{where}.params")
            except ConfigError as error:
                if not chosen:
                    raise
                raise ConfigError(f"{error} (sweep value {swept})") from None
            heads[name] = one if chosen else spec
            owner[name] = entry
        expanded[entry] = heads
    return expanded
