"""Active designs: a selection rule picks, in rounds, the next pairs to label from a same- or
cross-prompt candidate pool (:mod:`embrm.active`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..active import POOLS, RULES
from ..errors import ConfigError
from ..pairing import capacity
from .base import Design


@dataclass(frozen=True, repr=False)
class ActiveDesign(Design):
    """``<pool>-<rule>``: pairs chosen per run by :func:`embrm.active.rounds.run_active`."""

    pool: str
    rule: str
    active = True

    @property
    def name(self) -> str:
        return f"{self.pool}-{self.rule}"

    @property
    def settings(self) -> dict[str, str]:
        return {"prompt_pairing": self.pool, "candidates": self.rule}

    def capacity(self, prompts, responses):
        return capacity(prompts, responses, self.pool)

    def draw(self, rewards, n, rng, *, key="quantity"):
        raise ConfigError(
            f"config key 'grid.designs': design '{self.name}' chooses its pairs in rounds from a "
            "trained model (the `active` stage); it has no fixed draw"
        )

    @property
    def heldout(self) -> str:
        # The pool's random design, as a static design of that pool would draw them.
        return f"{self.pool}-random"


DESIGNS = tuple(ActiveDesign(pool, rule) for pool in POOLS for rule in RULES)
