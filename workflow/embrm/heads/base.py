"""The reward-head contract, modelled on scikit-learn estimators.

A head stores its hyperparameters in ``__init__``; ``fit`` learns from annotated pairs and returns
``self``; ``predict_reward`` maps embeddings of any leading shape ``(..., D)`` to rewards, reading
memory-mapped input in chunks; ``get_params`` is what gets logged; ``save``/``load`` use safe
formats only (no pickle). Heavy libraries are imported inside methods so that choosing a head
never costs another head's import time.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import ConfigError, DataError

PREDICT_CHUNK_ROWS = 65_536


@dataclass
class PairData:
    """Annotated pairs over a flat (N, D) embedding array; ``label`` is 1 when ``a`` won."""

    embeddings: np.ndarray
    a: np.ndarray
    b: np.ndarray
    label: np.ndarray
    source: str = "embeddings"  # file name used in error messages

    def __post_init__(self):
        if self.a.size == 0:
            raise DataError(f"{self.source}: no annotated pairs to train on (empty training set)")
        if not (self.a.shape == self.b.shape == self.label.shape):
            raise DataError(f"{self.source}: pair arrays a, b and label differ in length")

    @property
    def dim(self) -> int:
        return self.embeddings.shape[-1]

    def compact(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Load only the rows the pairs touch, as float32: (rows, a_local, b_local)."""
        used, inverse = np.unique(np.concatenate([self.a, self.b]), return_inverse=True)
        rows = np.asarray(self.embeddings[used], dtype=np.float32)
        if not np.isfinite(rows).all():
            raise DataError(f"{self.source}: embeddings of annotated responses contain NaN or inf")
        return rows, inverse[: self.a.size], inverse[self.a.size :]

    def split(self, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Pair indices for training and validation (the validation share is ``fraction``)."""
        order = rng.permutation(self.a.size)
        n_val = round(fraction * self.a.size) if self.a.size > 1 else 0
        return np.sort(order[n_val:]), np.sort(order[:n_val])


class RewardHead(ABC):
    """Base class; subclasses set ``type_name`` and ``defaults`` and implement the hooks."""

    type_name: ClassVar[str] = ""
    defaults: ClassVar[dict] = {}

    def __init__(self, *, seed: int = 0, device: str = "auto", threads: int = 1, **params):
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ConfigError(
                f"{self.type_name}: unknown hyperparameters {sorted(unknown)}; "
                f"expected some of {sorted(self.defaults)}"
            )
        self.params = {**self.defaults, **params}
        self.seed = int(seed)
        self.device = device
        self.threads = int(threads)
        self.curves_: list[dict] = []
        self.dim_: int | None = None

    @classmethod
    def check_params(cls, params: dict, where: str) -> None:
        unknown = set(params) - set(cls.defaults)
        if unknown:
            raise ConfigError(
                f"config key '{where}': unknown hyperparameters {sorted(unknown)} for head type "
                f"'{cls.type_name}'; expected some of {sorted(cls.defaults)}"
            )

    def get_params(self) -> dict:
        return {"type": self.type_name, "seed": self.seed, "device": self.device, **self.params}

    @abstractmethod
    def fit(self, data: PairData) -> RewardHead:
        """Learn from annotated pairs; return ``self``."""

    def predict_reward(self, embeddings: np.ndarray) -> np.ndarray:
        if self.dim_ is None:
            raise RuntimeError(f"{self.type_name}: predict_reward called before fit or load")
        if embeddings.shape[-1] != self.dim_:
            raise DataError(
                f"embedding dimension {embeddings.shape[-1]} does not match the {self.dim_} "
                f"this {self.type_name} head was trained on"
            )
        flat = embeddings.reshape(-1, self.dim_)
        out = np.empty(flat.shape[0], dtype=np.float32)
        for start in range(0, flat.shape[0], PREDICT_CHUNK_ROWS):
            block = np.array(flat[start : start + PREDICT_CHUNK_ROWS], dtype=np.float32)  # writable
            out[start : start + block.shape[0]] = self._predict_block(block)
        return out.reshape(embeddings.shape[:-1])

    @abstractmethod
    def _predict_block(self, block: np.ndarray) -> np.ndarray:
        """Rewards for a float32 (rows, D) block."""

    # Persistence: hyperparameters in JSON, weights in the subclass's safe format.
    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"params": self.get_params(), "dim": self.dim_, "threads": self.threads}
        (directory / "head.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        self._save_weights(directory)

    @classmethod
    def load(cls, directory: str | Path) -> RewardHead:
        directory = Path(directory)
        meta = json.loads((directory / "head.json").read_text())
        params = dict(meta["params"])
        params.pop("type")
        head = cls(threads=meta.get("threads", 1), **params)
        head.dim_ = meta["dim"]
        head._load_weights(directory)
        return head

    @abstractmethod
    def _save_weights(self, directory: Path) -> None:
        """Write the learned state in a safe format."""

    @abstractmethod
    def _load_weights(self, directory: Path) -> None:
        """Read what :meth:`_save_weights` wrote."""


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible to torch, else ``cpu``."""
    if device == "cpu":
        return "cpu"
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "config key 'training.device': 'cuda' requested but no CUDA device is visible"
        )
    return "cuda" if torch.cuda.is_available() else "cpu"
