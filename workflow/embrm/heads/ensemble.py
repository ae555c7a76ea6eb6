"""Ensembles: ``members`` independently seeded copies of one head; predictions stacked per member.

Which seeds the members get is the training recipe's ``seeding`` component (heads.recipe.seeding).
Under ``embrm`` (and for heads without a recipe) member ``i`` gets the seed
``int_seed(seed, head_type, "member", i)``, so member 0 of a 5-member ensemble is the same model as
a 1-member run with the same seed.

Under ``released`` (``protocol: study``) the members are the released script's members counted from the last:
member ``i`` is the study's member ``study_member − i`` (torch seed ``seed·42 + study_member − i``,
split ``random_state = 42 + study_member − i``). Member 0 is then always the one model the
released evaluation loads (the last of 10), so ``members: 1`` (the default) reproduces the study's
evaluated reward model exactly without training the 9 members the study trained but never
scored, and ``members: 10`` trains the study's whole ensemble. Each released member reseeds torch
and resplits the data, so skipping members changes no other member.

Combining (mean, min, first) happens at evaluation, so every aggregation is scored from one
training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..seeding import int_seed
from .pairs import PairData
from .predict import predict_together

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
        from . import head_class

        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise ConfigError(
                f"config key 'heads.*.members': expected an integer ≥ 1, got {members!r}"
            )
        self.head_type = head_type
        self.seed = int(seed)
        cls = head_class(head_type)
        params = dict(params or {})
        cls.check_params(params, f"heads.{head_type}.params")
        merged = {**cls.defaults, **params}
        recipe = cls.resolve_recipe(merged, f"heads.{head_type}.params")
        if recipe is None:
            members_spec = [(int_seed(seed, head_type, "member", i), {}) for i in range(members)]
        else:  # the recipe's seeding component numbers the members
            members_spec = recipe.impl("seeding").members(head_type, self.seed, merged, members)
        self.members = [
            cls(seed=member_seed, device=device, threads=threads, **{**params, **overrides})
            for member_seed, overrides in members_spec
        ]

    def fit(self, data: PairData) -> Ensemble:
        for member in self.members:
            member.fit(data)
        return self

    def predict_reward(self, embeddings: np.ndarray, *, source=None) -> np.ndarray:
        """(members, ...) rewards; each chunk of the input is read once for all members."""
        return predict_together(self.members, embeddings, source=source)

    def predict(self, embeddings: np.ndarray, how: str = "mean", *, source=None) -> np.ndarray:
        return combine(self.predict_reward(embeddings, source=source), how)

    def get_params(self) -> dict:
        params = self.members[0].get_params()
        params["seed"] = self.seed  # the run's seed; members derive theirs from it
        params["members"] = len(self.members)
        return params

    @property
    def curves(self) -> list[dict]:
        return [{"member": i, **row} for i, m in enumerate(self.members) for row in m.curves_]

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for i, member in enumerate(self.members):
            member.save(directory / f"member{i}")
        meta = {"type": self.head_type, "seed": self.seed, "members": len(self.members)}
        (directory / "ensemble.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_spec(
        cls,
        spec: dict,
        *,
        seed: int,
        device: str = "auto",
        threads: int = 1,
        members: int | None = None,
    ) -> Ensemble:
        """The ensemble a head's config entry describes (``type``, ``members``, ``params``);
        ``members`` overrides the entry's count (a stacked run fits its own ensemble of one)."""
        return cls(
            spec["type"],
            members=spec.get("members", 1) if members is None else members,
            params=spec.get("params", {}),
            seed=seed,
            device=device,
            threads=threads,
        )

    @classmethod
    def load(
        cls, directory: str | Path, *, device: str | None = None, threads: int = 1
    ) -> Ensemble:
        from . import head_class

        directory = Path(directory)
        try:
            meta = json.loads((directory / "ensemble.json").read_text())
        except FileNotFoundError:
            raise DataError(
                f"{directory / 'ensemble.json'}: file not found (not a saved ensemble)"
            ) from None
        member_cls = head_class(meta["type"])
        ensemble = cls.__new__(cls)
        ensemble.head_type = meta["type"]
        ensemble.seed = int(meta["seed"])
        ensemble.members = [
            member_cls.load(directory / f"member{i}", device=device, threads=threads)
            for i in range(int(meta["members"]))
        ]
        return ensemble
