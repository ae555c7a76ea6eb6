"""The head registry: adding a head is one module and one line in ``HEAD_TYPES``."""

from __future__ import annotations

from .base import PairData, RewardHead
from .lgb import CLFLGBHead
from .mlp import BTMLPHead, CLFMLPHead

HEAD_TYPES: dict[str, type[RewardHead]] = {
    "bt-mlp": BTMLPHead,
    "clf-mlp": CLFMLPHead,
    "clf-lgb": CLFLGBHead,
}

__all__ = ["HEAD_TYPES", "PairData", "RewardHead", "make_head"]


def make_head(head_type: str, **kwargs) -> RewardHead:
    return HEAD_TYPES[head_type](**kwargs)
