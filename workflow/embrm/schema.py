"""The config schema: ``workflow/schemas/config.schema.yaml`` for structure, completed from the
registries of every extension axis.

The YAML describes every key that is the same whatever is registered. What depends on the
registries is injected here, one line per axis: the heads (type enum and per-type parameters),
the annotator models (enum and one block per model with its parameters), the pairing designs
(enum), the world sources (enum and one block per source) and the embedder types (enum and the
types that need a model). A new head, model, design, source or embedder thus reaches the schema
without editing it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

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
