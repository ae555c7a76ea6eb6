"""``split``: how the training pairs are divided into training and validation.

``example`` (released): every pair becomes its examples first (both orders for BT, winner and
loser for CLF), the examples are shuffled once (seeded from the run seed; unseeded in the released
script) and ``train_test_split(random_state = 42 + study_member)`` divides them, so about 80% of
the validation examples have their mirror or partner in training. Validation is per example.
``pair`` (embrm): the pairs are divided with ``PairData.split`` (``default_rng(seed)``) before any
example is made, so no validation pair has an example in training. Validation is per pair.
"""

from __future__ import annotations

import numpy as np

from .. import study
from . import Choices, Component


def take(examples: dict, positions: np.ndarray) -> dict:
    return {key: value[positions] for key, value in examples.items()}


class ByExample:
    validation = "example"

    @staticmethod
    def divide(data, a, b, build, seed: int, val_fraction: float, member: int):
        """(training examples, validation examples), each with ``pair``: the pair it came from."""
        examples = study.preshuffle(build(a, b, data.label, np.arange(a.size)), seed)
        train, val = study.split(examples["target"].size, val_fraction, member)
        return take(examples, train), take(examples, val)


class ByPair:
    validation = "pair"

    @staticmethod
    def divide(data, a, b, build, seed: int, val_fraction: float, member: int):
        """(training examples, validation pairs ``a``, ``b``, ``label``, ``pair``)."""
        train, val = data.split(val_fraction, np.random.default_rng(seed))
        pairs = {"a": a[val], "b": b[val], "label": data.label[val], "pair": val}
        return build(a, b, data.label, train), pairs


COMPONENT = Component(
    key="split",
    description="validation split: 'example' of the mirrored set (released) or 'pair' before "
    "any mirroring (embrm)",
    families=("torch", "lgb"),
    choices=Choices({"example": ByExample(), "pair": ByPair()}),
    presets={"study": "example", "embrm": "pair"},
    needs_validation=("example",),
)
