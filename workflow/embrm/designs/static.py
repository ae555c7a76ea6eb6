"""The study's designs: same- or cross-prompt pairs of random, similar or diversified candidates
(:mod:`embrm.pairing`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..pairing import CANDIDATES, PROMPT_PAIRINGS, capacity, deal
from .base import Design


@dataclass(frozen=True, repr=False)
class CandidateDesign(Design):
    """``<prompt_pairing>-<candidates>``: pairs dealt round-robin from each prompt's candidates."""

    prompt_pairing: str
    candidates: str

    @property
    def name(self) -> str:
        return f"{self.prompt_pairing}-{self.candidates}"

    @property
    def settings(self) -> dict[str, str]:
        return {"prompt_pairing": self.prompt_pairing, "candidates": self.candidates}

    def capacity(self, prompts, responses):
        return capacity(prompts, responses, self.prompt_pairing)

    def draw(self, rewards, n, rng, *, key="quantity"):
        return deal(
            rewards, self.prompt_pairing, self.candidates, n, rng, key=key, design=self.name
        )


DESIGNS = tuple(CandidateDesign(p, c) for p in PROMPT_PAIRINGS for c in CANDIDATES)
