"""``loss``: the training loss and the optimizer it feeds.

``released``: BCE of σ(output) (CLF) or σ(r̂(first) − r̂(second)) (BT, the two sides in separate
forward calls), torch's ``binary_cross_entropy`` on probabilities (logs clamped at −100, so a
saturated wrong prediction gives no gradient), Adam without weight decay; the epoch's training
loss is the mean of its steps' losses. ``embrm``: BCE with logits per example (both BT sides in
one forward call), Adam with ``weight_decay``; the epoch's loss is the mean over its examples.
"""

from __future__ import annotations

import numpy as np

from ..base import mean64
from . import Choices, Component


class Released:
    @staticmethod
    def step(head, torch, x, examples: dict, idx):
        """(loss to minimise, what the epoch's training loss is made of)."""
        loss = torch.nn.functional.binary_cross_entropy(
            head.probability(x, examples, idx), examples["target"][idx]
        )
        return loss, loss.detach()

    @staticmethod
    def epoch_loss(torch, records: list) -> float:
        return float(np.mean([r.item() for r in records]))


class Embrm:
    @staticmethod
    def step(head, torch, x, examples: dict, idx):
        per_example = head.batch_losses(x, examples, idx)
        return per_example.mean(), per_example.detach()

    @staticmethod
    def epoch_loss(torch, records: list) -> float:
        return mean64(torch.cat(records).cpu().numpy())


COMPONENT = Component(
    key="loss",
    description="training loss: 'released' BCE of sigmoid probabilities, no weight decay; "
    "'embrm' BCE with logits, weight_decay",
    families=("torch",),
    choices=Choices({"released": Released(), "embrm": Embrm()}),
    presets={"study": "released", "embrm": "embrm"},
    ignores={"released": ("weight_decay",)},
)
