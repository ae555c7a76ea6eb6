"""The head registry: adding a head is one module and one line in ``HEAD_TYPES``.

Every entry is a :class:`~embrm.heads.base.RewardHead` subclass; the config's ``heads.<name>.type``
must be one of these keys and ``heads.<name>.params`` is validated by the class's ``check_params``.
Modules are light to import (torch and LightGBM load only when a head fits or loads).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .base import PairData, RewardHead
from .lgb import CLFLGBHead
from .linear import BTLinearHead, CLFLinearHead
from .mlp import BTMLPHead, CLFMLPHead

HEAD_TYPES: dict[str, type[RewardHead]] = {
    "bt-mlp": BTMLPHead,
    "clf-mlp": CLFMLPHead,
    "clf-lgb": CLFLGBHead,
    "bt-linear": BTLinearHead,
    "clf-linear": CLFLinearHead,
}

__all__ = ["HEAD_TYPES", "PairData", "RewardHead", "head_class", "load_head", "make_head"]


def head_class(head_type: str, where: str = "heads.*.type") -> type[RewardHead]:
    try:
        return HEAD_TYPES[head_type]
    except KeyError:
        raise ConfigError(
            f"config key '{where}': unknown head type '{head_type}'; expected one of "
            f"{sorted(HEAD_TYPES)}"
        ) from None


def make_head(head_type: str, **kwargs) -> RewardHead:
    """A new, unfitted head: ``make_head("bt-mlp", seed=0, threads=2, lr=3e-4)``."""
    return head_class(head_type)(**kwargs)


def load_head(directory: str | Path, *, device: str | None = None, threads: int = 1) -> RewardHead:
    """Reload any saved head; its type is read from ``head.json``."""
    head_type = RewardHead.read_meta(directory)["params"]["type"]
    return head_class(head_type).load(directory, device=device, threads=threads)
