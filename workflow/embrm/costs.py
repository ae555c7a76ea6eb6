"""The vocabulary of the cost model: shapes of a world, the compute a job gets, one model's cost.

Whatever does work declares what the work costs from the shapes: each head type
(:meth:`embrm.heads.base.RewardHead.estimate`), each world source that a ``world`` job builds
(``estimate`` in :mod:`embrm.sources.synthetic` and :mod:`embrm.sources.npy`), and each stage
(:mod:`embrm.resources`, which turns costs into the memory and wall-time requests of the rules).
This module only holds the shared units and the speeds assumed for them, so it imports nothing
from the package.

The speeds are measured in CPU seconds on one core of the 2-core machine of docs/paper-scale.md
(fp32 MLP training and prediction at about 30 GFLOP/s) and rounded down for slower CPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

CPU_FLOPS_PER_THREAD = 20e9
GPU_FLOPS = 2e12
# A network's training step costs about three forward passes (forward, and a backward pass of
# about twice that).
STEP_FORWARD_PASSES = 3
MB = 2**20


@dataclass(frozen=True)
class Shapes:
    """(prompts, responses, dimension) of a world's train and test embeddings; bytes per value."""

    train: tuple[int, int, int]
    test: tuple[int, int, int]
    itemsize: int = 4

    def rows(self, split: str) -> int:
        """Responses (embedding rows) of a split: prompts × responses."""
        prompts, responses, _ = getattr(self, split)
        return prompts * responses

    @property
    def dim(self) -> int:
        return self.train[2]

    def values(self, split: str) -> int:
        """Embedding values of a split."""
        return self.rows(split) * getattr(self, split)[2]

    def annotated(self, pairs: int) -> int:
        """Responses that ``pairs`` annotated pairs can touch (each pair feeds two)."""
        return min(2 * pairs, self.rows("train"))


@dataclass(frozen=True)
class Compute:
    """What a job computes on: its CPU threads, and whether it has a GPU."""

    threads: int = 1
    gpu: bool = False

    @property
    def flops(self) -> float:
        """Floating-point operations per second assumed for dense network arithmetic."""
        return GPU_FLOPS if self.gpu else CPU_FLOPS_PER_THREAD * self.threads


@dataclass(frozen=True)
class HeadCost:
    """What one model of a head type costs (an ensemble's members fit one after another).

    ``fit_mb``: working memory of one fit beyond the job's interpreter and libraries;
    ``fit_seconds``: one fit; ``score_seconds``: one pass over the whole test set;
    ``score_width``: floats per test row that scoring holds beside the row itself (a network's
    activations), which sizes the prediction chunk's memory; ``widest_layer``: the widest layer
    between input and output (a network's hidden units; 0 when there is none), which sizes the
    per-candidate features an active design keeps.
    """

    fit_mb: float
    fit_seconds: float
    score_seconds: float
    score_width: int = 0
    widest_layer: int = 0


def network_flops(widths: Sequence[int]) -> float:
    """FLOPs of one response through dense layers of these widths (input first, output last)."""
    return 2 * sum(a * b for a, b in pairwise(widths))


def rows_mb(responses: int, dim: int, copies: float, itemsize: int = 4) -> float:
    """MB of ``copies`` copies of ``responses`` embedding rows."""
    return responses * dim * itemsize * copies / MB


def network_cost(
    shapes: Shapes, pairs: int, compute: Compute, *, hidden: Sequence[int], epochs: int
) -> HeadCost:
    """A dense network on the embeddings, trained by full passes over the pairs.

    Training holds the annotated responses' rows in float32 three times (the read, the compact
    copy, the tensors); every epoch feeds each pair's two responses through a step; scoring is a
    forward pass per test response, keeping two activations per hidden unit.
    """
    flops = network_flops([shapes.dim, *hidden, 1])
    return HeadCost(
        fit_mb=rows_mb(shapes.annotated(pairs), shapes.dim, 3),
        fit_seconds=epochs * STEP_FORWARD_PASSES * flops * 2 * pairs / compute.flops,
        score_seconds=shapes.rows("test") * flops / compute.flops,
        score_width=2 * sum(hidden),
        widest_layer=max(hidden, default=0),
    )
