"""Content hashes: short, stable names for settings (cache keys, run keys, config versions)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-able object, stable across processes and platforms."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def config_hash(config: Mapping) -> str:
    return stable_hash(config)
