"""Annotated pairs as every head reads them: checked on the way in, errors naming the files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..io import release_pages


@dataclass
class PairData:
    """Annotated pairs over a flat (N, D) embedding array; ``label`` is 1 when ``a`` won.

    ``source`` names the embedding file and ``pairs_source`` the file(s) the pairs and labels came
    from; both appear in every error message about bad input.
    """

    embeddings: np.ndarray
    a: np.ndarray
    b: np.ndarray
    label: np.ndarray
    source: str = "embeddings"
    pairs_source: str = "pairs"

    def __post_init__(self):
        self.source, self.pairs_source = str(self.source), str(self.pairs_source)
        if self.embeddings.ndim != 2:
            raise DataError(
                f"{self.source}: expected a flat (N, D) embedding array, got shape "
                f"{self.embeddings.shape}"
            )
        if self.embeddings.shape[1] == 0:
            raise DataError(f"{self.source}: embeddings have dimension 0")
        self.a, self.b = np.asarray(self.a), np.asarray(self.b)
        self.label = np.asarray(self.label)
        if not (self.a.ndim == self.b.ndim == self.label.ndim == 1):
            raise DataError(f"{self.pairs_source}: pair indices and labels must be 1-D arrays")
        if self.a.size == 0:
            raise DataError(
                f"{self.pairs_source}: no annotated pairs to train on (empty training set)"
            )
        if not (self.a.size == self.b.size == self.label.size):
            raise DataError(
                f"{self.pairs_source}: {self.a.size} first responses, {self.b.size} second "
                f"responses and {self.label.size} labels; they must match"
            )
        for name, index in (("a", self.a), ("b", self.b)):
            if not np.issubdtype(index.dtype, np.integer):
                raise DataError(f"{self.pairs_source}: pair indices '{name}' are not integers")
            low, high = int(index.min()), int(index.max())
            if low < 0 or high >= self.embeddings.shape[0]:
                raise DataError(
                    f"{self.pairs_source}: pair index '{name}' out of range [{low}, {high}] for "
                    f"{self.source} with {self.embeddings.shape[0]} responses"
                )
        if not np.isin(self.label, (0, 1)).all():
            raise DataError(f"{self.pairs_source}: labels must be 0 or 1 (1 = first response won)")

    @property
    def dim(self) -> int:
        return self.embeddings.shape[-1]

    @property
    def size(self) -> int:
        return self.a.size

    def compact(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Load only the rows the pairs touch, as float32: (rows, a_local, b_local)."""
        used, inverse = np.unique(np.concatenate([self.a, self.b]), return_inverse=True)
        rows = np.asarray(self.embeddings[used], dtype=np.float32)
        release_pages(self.embeddings)
        bad = ~np.isfinite(rows).all(axis=1)
        if bad.any():
            raise DataError(
                f"{self.source}: embeddings of annotated responses contain NaN or inf "
                f"(first at flat row {int(used[np.argmax(bad)])}, {int(bad.sum())} rows in all)"
            )
        return rows, inverse[: self.a.size], inverse[self.a.size :]

    def split(self, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Sorted pair indices for training and validation (the validation share is ``fraction``).

        At least one pair always stays in training.
        """
        order = rng.permutation(self.a.size)
        n_val = min(round(fraction * self.a.size), self.a.size - 1)
        return np.sort(order[n_val:]), np.sort(order[:n_val])


def winners_losers(
    a: np.ndarray, b: np.ndarray, label: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The pointwise view of pairs: (winner indices, loser indices) by the annotators' labels."""
    won = label > 0
    return np.where(won, a, b), np.where(won, b, a)


def pair_accuracy(margin: np.ndarray) -> float:
    """Share of pairs ordered like their labels, given margins r̂(winner) − r̂(loser); ties count ½."""
    if margin.size == 0:
        return float("nan")
    return float(np.mean(np.where(margin == 0, 0.5, margin > 0)))
