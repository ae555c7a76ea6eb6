"""The config schema: ``workflow/schemas/config.schema.yaml`` for structure, completed from the
registries of every extension axis.

The YAML describes every key that is the same whatever is registered. What depends on the
registries is injected here, one line per axis: the heads (type enum and per-type parameters),
the annotator models (enum and one block per model with its parameters), the pairing designs
(enum), the world sources (enum and one block per source) and the embedder types (enum and the
types that need a model). A new head, model, design, source or embedder thus reaches the schema
without editing it.

:func:`validated` checks a config against the built schema, filling in defaults; its errors name
the key path (``grid.quantities[1]``) and what was expected. The checks across keys that the
schema cannot state are :func:`embrm.config.validate`'s.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .shared_results import reserved_message

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


def structure() -> dict:
    """The YAML schema alone, before the registries complete it."""
    with open(SCHEMA_PATH) as handle:
        return yaml.safe_load(handle)


def build() -> dict:
    """The complete JSON schema of a config (a new dict on every call)."""
    from . import annotators, designs, embedders, sources
    from .heads import heads_schema
    from .shared_results import SHARED_NAMES

    schema = structure()
    defs, keys = schema["$defs"], schema["properties"]
    keys["experiment"]["not"] = {"enum": list(SHARED_NAMES)}
    keys["heads"] = heads_schema()
    keys["annotators"]["additionalProperties"] = annotators.schema_block()
    defs["design"]["enum"] = list(designs.DESIGNS)
    keys["worlds"]["additionalProperties"] = sources.schema_block(defs)
    defs["embedder"]["properties"]["type"], defs["embedder"]["allOf"] = embedders.schema_type()
    return schema


# -- Validating a config against the schema ---------------------------------------------------
@cache
def load_schema() -> dict:
    """The complete schema, built once per process (:func:`build`)."""
    return build()


def key_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _validator():
    import jsonschema

    base = jsonschema.Draft202012Validator

    def fill_defaults(validator, properties, instance, schema):
        # Fill defaults before validating, so defaults are validated too.
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    extended = jsonschema.validators.extend(base, {"properties": fill_defaults})
    return extended(load_schema())


def _describe(error) -> str:
    # oneOf/anyOf errors are vague; the most specific sub-error usually says what was wrong.
    import jsonschema

    best = jsonschema.exceptions.best_match([error]) if error.context else error
    where = key_path(best.absolute_path)
    if best.validator == "not" and where == "experiment":
        return reserved_message(best.instance, f"config key '{where}'")
    alternatives = error.schema.get(error.validator) if error.validator in ALTERNATIVES else None
    if alternatives and list(best.absolute_path) == list(error.absolute_path):
        # The value matched none of the forms: name them all, not only the closest one.
        forms = " or ".join(_form(alt) for alt in alternatives)
        return f"config key '{where}': {error.instance!r} is not valid; expected {forms}"
    return f"config key '{where}': {best.message}"


ALTERNATIVES = ("oneOf", "anyOf")
TYPE_NAMES = {"number": "a number", "integer": "an integer", "string": "a string",
              "array": "a list", "object": "a mapping", "boolean": "true or false",
              "null": "null"}  # fmt: skip


def _form(schema: dict) -> str:
    """A short reading of one alternative of a oneOf/anyOf."""
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(map(repr, schema["enum"]))
    kinds = schema.get("type", "value")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    text = " or ".join(TYPE_NAMES.get(kind, kind) for kind in kinds)
    if kinds == ["array"] and schema.get("minItems") and schema.get("uniqueItems"):
        text = "a non-empty list of distinct values"  # a sweep's form
    for key, sign in (("exclusiveMinimum", ">"), ("minimum", ">=")):
        if key in schema:
            text += f" {sign} {schema[key]}"
    return text


def validated(config: Mapping) -> dict:
    """A deep copy of ``config`` checked against the schema, defaults filled in; a ConfigError
    lists every violation, each naming its key path and what was expected."""
    if not isinstance(config, Mapping):
        raise ConfigError("config: expected a mapping at the top level")
    config = copy.deepcopy(dict(config))
    errors = sorted(_validator().iter_errors(config), key=lambda e: list(map(str, e.path)))
    if errors:
        raise ConfigError("\n".join(dict.fromkeys(_describe(e) for e in errors)))
    return config
