"""Ensembles: ``members`` independently seeded copies of one head; predictions stacked per member.

Combining (mean, min, first) happens at evaluation, so every aggregation is scored from one training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..seeding import int_seed
from . import HEAD_TYPES
from .base import PairData

AGGREGATIONS = ("mean", "min", "first")


def combine(predictions: np.ndarray, how: str) -> np.ndarray:
    """Combine stacked member predictions (M, ...) into one reward array."""
    if how == "mean":
        return predictions.mean(axis=0)
    if how == "min":
        return predictions.min(axis=0)
    if how == "first":
        return predictions[0]
    raise ValueError(f"unknown aggregation '{how}'; expected one of {AGGREGATIONS}")


class Ensemble:
    def __init__(
        self,
        head_type: str,
        *,
        members: int = 1,
        params: dict | None = None,
        seed: int = 0,
        device: str = "auto",
        threads: int = 1,
    ):
        self.head_type = head_type
        self.members = [
            HEAD_TYPES[head_type](
                seed=int_seed(seed, head_type, "member", i),
                device=device,
                threads=threads,
                **(params or {}),
            )
            for i in range(members)
        ]

    def fit(self, data: PairData) -> Ensemble:
        for member in self.members:
            member.fit(data)
        return self

    def predict_reward(self, embeddings: np.ndarray) -> np.ndarray:
        return np.stack([member.predict_reward(embeddings) for member in self.members])

    def get_params(self) -> dict:
        return {**self.members[0].get_params(), "members": len(self.members)}

    @property
    def curves(self) -> list[dict]:
        return [{"member": i, **row} for i, m in enumerate(self.members) for row in m.curves_]

    def save(self, directory: str | Path) -> None:
        for i, member in enumerate(self.members):
            member.save(Path(directory) / f"member{i}")

    @classmethod
    def load(cls, directory: str | Path, head_type: str) -> Ensemble:
        paths = sorted(Path(directory).glob("member*"), key=lambda p: int(p.name[6:]))
        ensemble = cls.__new__(cls)
        ensemble.head_type = head_type
        ensemble.members = [HEAD_TYPES[head_type].load(path) for path in paths]
        return ensemble
