"""``batches``: how an epoch's batches are drawn from the training examples.

``sampled`` (released): each step takes the first ``batch`` of a fresh random permutation, so
within an epoch some examples are drawn several times and some never. ``shuffled`` (embrm): one
permutation per epoch, cut into consecutive batches, so every example is seen once an epoch.
"""

from __future__ import annotations

from . import Choices, Component


class Sampled:
    @staticmethod
    def epoch(torch, generator, n: int, batch: int, steps: int, device):
        for _ in range(steps):
            yield torch.randperm(n, generator=generator)[:batch].to(device)


class Shuffled:
    @staticmethod
    def epoch(torch, generator, n: int, batch: int, steps: int, device):
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, batch):
            yield order[start : start + batch]


COMPONENT = Component(
    key="batches",
    description="batch drawing: 'sampled' random-permutation prefixes (released) or "
    "'shuffled' passes (embrm)",
    families=("torch",),
    choices=Choices({"sampled": Sampled(), "shuffled": Shuffled()}),
    presets={"study": "sampled", "embrm": "shuffled"},
)
