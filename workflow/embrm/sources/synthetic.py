"""An offline world with a known golden reward.

Each prompt has a latent u and each response a latent v (both standard normal, ``latent_dim``).
The golden reward is

    r = μ(u) + σ(u) · g(u, v),   μ(u) = τ·⟨a, u⟩,   σ(u) = σ·exp(s·⟨b, u⟩ − s²/2)

with unit vectors a, b. In the ``gaussian`` world g(u, v) = ⟨c, v⟩ exactly, so r = μ_x + σ·ε with
μ_x ~ N(0, τ²) and ε ~ N(0, 1) (σ does not vary). In the ``nonlinear`` world
g = standardize(⟨c, v⟩ + λ·⟨w, tanh(W_v v + W_u u)⟩): smooth, prompt-dependent, learnable but not
linear in the embedding. Embeddings mix the latents the way an LLM's last hidden state mixes
prompt and response: e = L·[u; v] + N·tanh(M·[u; v]) + noise, scaled to unit variance per entry.
Generation runs in blocks of prompts straight into memory-mapped ``.npy`` files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import npy_writer, write_npy
from ..seeding import rng
from ..world import FILES, reward_stats, write_world_info

BLOCK_ROWS = 32_768  # responses generated per block; bounds memory at paper scale
REFERENCE_SAMPLES = 50_000  # draws used once to standardize the nonlinear reward part


def _unit(generator: np.random.Generator, dim: int) -> np.ndarray:
    vector = generator.standard_normal(dim)
    return vector / np.linalg.norm(vector)


@dataclass
class Structure:
    """The fixed, seed-determined functions of the world."""

    spec: dict

    def __post_init__(self):
        spec, latent, dim = self.spec, self.spec["latent_dim"], self.spec["dim"]
        g = rng(spec["seed"], "synthetic", "structure")
        self.a, self.b, self.c = (_unit(g, latent) for _ in range(3))
        hidden = 4 * latent
        self.w_v = g.standard_normal((latent, hidden)) / np.sqrt(latent)
        self.w_u = g.standard_normal((latent, hidden)) / np.sqrt(latent)
        self.w_out = g.standard_normal(hidden) / np.sqrt(hidden)
        self.mix_linear = g.standard_normal((2 * latent, dim)) / np.sqrt(2 * latent)
        self.mix_in = g.standard_normal((2 * latent, hidden)) / np.sqrt(2 * latent)
        self.mix_out = g.standard_normal((hidden, dim)) / np.sqrt(hidden)
        # Embedding entries then have variance ≈ 1 + E[tanh²]; fix it from a reference sample.
        ref = (
            g.standard_normal((REFERENCE_SAMPLES, latent)),
            g.standard_normal((REFERENCE_SAMPLES, latent)),
        )
        self.g_mean, self.g_std = 0.0, 1.0
        raw = self._quality(*ref)
        self.g_mean, self.g_std = float(raw.mean()), float(raw.std())
        self.emb_std = float(self._mix(*ref).std())

    def _quality(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        linear = v @ self.c
        if self.spec["kind"] == "gaussian":
            return linear
        bend = np.tanh(v @ self.w_v + u @ self.w_u) @ self.w_out
        return (linear + self.spec["nonlinearity"] * bend - self.g_mean) / self.g_std

    def reward(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """u: (B, L) prompt latents; v: (B, K, L) response latents -> (B, K) golden rewards."""
        spec = self.spec
        mu = spec["tau"] * (u @ self.a)
        if spec["kind"] == "gaussian":
            sigma = np.full_like(mu, spec["sigma"])
        else:
            s = spec["sigma_spread"]
            sigma = spec["sigma"] * np.exp(s * (u @ self.b) - s * s / 2)
        quality = self._quality(np.broadcast_to(u[:, None, :], v.shape), v)
        return mu[:, None] + sigma[:, None] * quality

    def _mix(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        latents = np.concatenate([u, v], axis=-1)
        return latents @ self.mix_linear + np.tanh(latents @ self.mix_in) @ self.mix_out

    def embed(self, u: np.ndarray, v: np.ndarray, noise: np.ndarray) -> np.ndarray:
        mixed = self._mix(np.broadcast_to(u[:, None, :], v.shape), v) / self.emb_std
        return mixed + self.spec["noise"] * noise


def _generate_split(structure: Structure, split: str, out_dir: Path) -> np.ndarray:
    spec = structure.spec
    prompts, responses = spec[f"{split}_prompts"], spec[f"{split}_responses"]
    latent, dim, dtype = spec["latent_dim"], spec["dim"], np.dtype(spec["dtype"])
    block = max(1, BLOCK_ROWS // responses)
    rewards = np.empty((prompts, responses))
    with npy_writer(out_dir / FILES[split]["embeddings"], (prompts, responses, dim), dtype) as emb:
        for index, start in enumerate(range(0, prompts, block)):
            stop = min(prompts, start + block)
            g = rng(spec["seed"], "synthetic", split, index)
            u = g.standard_normal((stop - start, latent))
            v = g.standard_normal((stop - start, responses, latent))
            noise = g.standard_normal((stop - start, responses, dim), dtype=np.float32)
            rewards[start:stop] = structure.reward(u, v)
            emb[start:stop] = structure.embed(u, v, noise).astype(dtype, copy=False)
    write_npy(out_dir / FILES[split]["rewards"], rewards)
    return rewards


def build(spec: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    structure = Structure(spec)
    stats = {}
    for split in ("train", "test"):
        rewards = _generate_split(structure, split, out_dir)
        stats[split] = reward_stats(rewards, rng(spec["seed"], "synthetic", "stats", split))
    write_world_info(out_dir, dict(spec), stats)
