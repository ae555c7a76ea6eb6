"""A world: train and test embeddings with golden rewards, memory-mapped from one directory.

Layout (the companion paper's released-array layout, prompt-major):
``train_embeddings.npy`` (P, K, D), ``train_rewards.npy`` (P, K), the same for ``test_*``, and
``world.json`` with the source parameters and statistics. Pairs refer to responses by flat index
``prompt * K + response``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .io import open_npy, read_json, write_json

SPLITS = ("train", "test")
FILES = {
    split: {"embeddings": f"{split}_embeddings.npy", "rewards": f"{split}_rewards.npy"}
    for split in SPLITS
}
CHECK_ROWS = 65536  # rows per chunk when scanning embeddings for NaN/inf


@dataclass
class Split:
    embeddings: np.ndarray  # (P, K, D) memory map
    rewards: np.ndarray  # (P, K) float64 in memory
    embeddings_path: Path

    @property
    def prompts(self) -> int:
        return self.rewards.shape[0]

    @property
    def responses(self) -> int:
        return self.rewards.shape[1]

    @property
    def dim(self) -> int:
        return self.embeddings.shape[-1]

    @property
    def flat_embeddings(self) -> np.ndarray:
        """(P*K, D) view; no copy for memory maps."""
        return self.embeddings.reshape(-1, self.dim)


class World:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.info = read_json(self.directory / "world.json")
        self.train = self._open("train")
        self.test = self._open("test")
        if self.train.dim != self.test.dim:
            raise DataError(
                f"{self.test.embeddings_path}: embedding dimension {self.test.dim} differs from "
                f"{self.train.embeddings_path} ({self.train.dim})"
            )

    def _open(self, split: str) -> Split:
        emb_path = self.directory / FILES[split]["embeddings"]
        rew_path = self.directory / FILES[split]["rewards"]
        embeddings = open_npy(emb_path)
        rewards = np.asarray(open_npy(rew_path), dtype=np.float64)
        if embeddings.ndim != 3 or rewards.shape != embeddings.shape[:2]:
            raise DataError(
                f"{emb_path}: shape {embeddings.shape} does not match rewards {rew_path} "
                f"shape {rewards.shape}; expected embeddings (P, K, D) and rewards (P, K)"
            )
        if not np.isfinite(rewards).all():
            raise DataError(f"{rew_path}: rewards contain NaN or inf")
        return Split(embeddings, rewards, emb_path)

    @property
    def reward_std(self) -> float:
        return float(self.info["stats"]["train"]["reward_std"])


def check_finite(embeddings: np.ndarray, path: str | Path) -> None:
    """Scan a (possibly memory-mapped) array in chunks; name the file and first bad row."""
    flat = embeddings.reshape(-1, embeddings.shape[-1])
    for start in range(0, flat.shape[0], CHECK_ROWS):
        block = np.asarray(flat[start : start + CHECK_ROWS])
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            row = start + int(np.argmax(bad))
            raise DataError(f"{path}: embeddings contain NaN or inf (first at flat row {row})")


def reward_stats(rewards: np.ndarray, rng: np.random.Generator, samples: int = 200_000) -> dict:
    """Reward spread and the mean |Δr| of random same- and cross-prompt pairs."""
    prompts, responses = rewards.shape
    upper = np.triu_indices(responses, k=1)
    same = np.abs(rewards[:, upper[0]] - rewards[:, upper[1]]).mean()
    i = rng.integers(prompts, size=samples)
    j = (i + rng.integers(1, max(prompts, 2), size=samples)) % max(prompts, 1)
    cross = np.abs(
        rewards[i, rng.integers(responses, size=samples)]
        - rewards[j, rng.integers(responses, size=samples)]
    ).mean()
    return {
        "prompts": prompts,
        "responses": responses,
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std()),
        "tau_hat": float(rewards.mean(axis=1).std()),
        "sigma_hat": float(np.sqrt(rewards.var(axis=1, ddof=1).mean())),
        "mean_abs_dr_same_random": float(same),
        "mean_abs_dr_cross_random": float(cross) if prompts > 1 else float("nan"),
    }


def write_world_info(directory: Path, source: dict, stats: dict) -> None:
    write_json(directory / "world.json", {"source": source, "stats": stats})
