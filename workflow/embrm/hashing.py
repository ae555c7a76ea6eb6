"""Stable hashes of JSON-able settings: equal settings give equal hashes on every platform."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-able object, stable across processes and platforms."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
