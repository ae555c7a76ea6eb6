"""``steps``: how many optimizer steps an epoch has.

``plain`` (released): batches of ``batch_size`` examples (all of them when fewer), ceil(n / batch)
steps; a small training set gets one full-batch step per epoch. ``min-steps`` (embrm): the batch
shrinks so that an epoch has at least ``min_steps_per_epoch`` steps (``MLPHead.epoch_schedule``).
"""

from __future__ import annotations

from . import Choices, Component


class Plain:
    @staticmethod
    def schedule(params, n_examples: int) -> tuple[int, int]:
        from ..mlp import MLPHead

        return MLPHead.epoch_schedule({**params, "min_steps_per_epoch": 1}, n_examples)


class MinSteps:
    @staticmethod
    def schedule(params, n_examples: int) -> tuple[int, int]:
        from ..mlp import MLPHead

        return MLPHead.epoch_schedule(params, n_examples)


COMPONENT = Component(
    key="steps",
    description="steps per epoch: 'plain' ceil(n / batch_size) (released) or at least "
    "min_steps_per_epoch ('min-steps', embrm)",
    families=("torch",),
    choices=Choices({"plain": Plain(), "min-steps": MinSteps()}),
    presets={"study": "plain", "embrm": "min-steps"},
    ignores={"plain": ("min_steps_per_epoch",)},
)
