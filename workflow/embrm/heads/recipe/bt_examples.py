"""``bt_examples``: which training examples a Bradley-Terry head sees per pair.

``both`` (released): every pair in both presentation orders, (winner, loser) → 1 and
(loser, winner) → 0, so the set is doubled. ``once`` (embrm): every pair once, in its
presentation order, with its label. A classifier always sees (winner, 1) and (loser, 0)
(:func:`pointwise`).

Examples are dicts of arrays: BT ``a``, ``b``, ``target``; CLF ``row``, ``target``; and ``pair``,
the pair each example came from.
"""

from __future__ import annotations

import numpy as np

from ..base import winners_losers
from . import Choices, Component


def both_orders(a, b, label, pairs) -> dict:
    winners, losers = winners_losers(a[pairs], b[pairs], label[pairs])
    return {
        "a": np.concatenate([winners, losers]),
        "b": np.concatenate([losers, winners]),
        "target": np.repeat(np.array([1.0, 0.0], dtype=np.float32), pairs.size),
        "pair": np.tile(pairs, 2),
    }


def once(a, b, label, pairs) -> dict:
    return {
        "a": a[pairs],
        "b": b[pairs],
        "target": label[pairs].astype(np.float32),
        "pair": pairs,
    }


def pointwise(a, b, label, pairs) -> dict:
    """The classifier's examples: winners (target 1) then losers (target 0), in pair order."""
    winners, losers = winners_losers(a[pairs], b[pairs], label[pairs])
    return {
        "row": np.concatenate([winners, losers]),
        "target": np.repeat(np.array([1.0, 0.0], dtype=np.float32), pairs.size),
        "pair": np.tile(pairs, 2),
    }


COMPONENT = Component(
    key="bt_examples",
    description="BT training examples: 'both' presentation orders (released) or each pair "
    "'once' (embrm)",
    families=("bt",),
    choices=Choices({"both": both_orders, "once": once}),
    presets={"study": "both", "embrm": "once"},
)
