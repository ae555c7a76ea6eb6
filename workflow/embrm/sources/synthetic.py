"""An offline world with a known golden reward.

Each prompt x has a latent u and each response a latent v (both standard normal, ``latent_dim``).
The golden reward is location-scale within every prompt:

    r = μ(u) + σ(u) · g(u, v),    μ(u) = τ·⟨a, u⟩,    σ(u) = σ·exp(s·⟨b, u⟩ − s²/2)

with unit vectors a, b and s = ``sigma_spread``, so μ_x ~ N(0, τ²) and σ_x is log-normal with
mean σ. Response quality is a projection of v on a direction that depends on the prompt:

    g(u, v) = ⟨d(u), v⟩,    d(u) = (c + λ·B·u) / ‖c + λ·B·u‖

with a unit vector c, a random matrix B scaled so that ‖B·u‖ ≈ 1, and λ = ``nonlinearity``. For
every prompt, g is exactly N(0, 1) over its responses, whatever λ. λ = 0 gives one quality
direction for all prompts (a reward nearly linear in the embedding); λ = 1 turns the direction by
about 45° from prompt to prompt, so a linear probe of the embedding recovers only part of the
within-prompt order while a nonlinear regressor recovers most of it (measured figures in
``docs/annotation-and-pairing.md``): what is good in a response depends on the prompt.

How much prompts and responses share the structure of the reward is ``shared_quality`` ρ ∈ [0, 1],
the share of the variance of the prompt means μ_x that response quality explains. Each prompt gets
a second standard-normal level z_x, and

    μ_x = τ·(√(1 − ρ)·⟨a, u⟩ + √ρ·z_x),    every response latent of x shifted by (τ·√ρ·z_x / σ_x)·d(u)

so μ_x stays N(0, τ²) and the within-prompt quality g stays exactly N(0, 1), while the shared part
of μ_x is carried by the responses themselves, along the very direction d(u) that orders them:
r = τ·√(1 − ρ)·⟨a, u⟩ + σ_x·⟨d(u), v_shifted⟩. ρ = 0 (absent from the spec: today's world) keeps
prompt means a function of prompt features separate from response quality: a prompt is better
or worse off for reasons no response feature shows (topic, difficulty as the golden model scores
it), and cross-prompt labels teach mostly that prompt effect, which choosing among one prompt's
responses cannot use. ρ = 1 makes the golden reward one function of response quality across
prompts: a prompt's responses are better on average because they have more of the qualities that
separate good from bad answers within a prompt, the premise of one global reward function over
prompt-response embeddings. ρ = 0 draws nothing extra, so existing worlds are byte-identical.

The ``gaussian`` kind is the oracle world: g = ⟨c, v⟩ and σ(u) = σ, hence r = μ_x + σ·ε exactly with
μ_x ~ N(0, τ²) and ε ~ N(0, 1) independent (``nonlinearity`` and ``sigma_spread`` are not used).

Embeddings mix the latents the way an LLM's last hidden state mixes prompt and response:
e = L·[u; v] + N·tanh(M·[u; v]), scaled to unit variance per entry, plus isotropic noise of std
``noise``. Generation runs in blocks of prompts straight into memory-mapped ``.npy`` files (each
block draws from its own named random stream), so memory stays bounded at the paper's scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..costs import MB, Shapes
from ..io import npy_writer, release_pages, write_npy
from ..seeding import rng
from ..world import FILES, linear_probe, reward_stats, write_world_info

BLOCK_ROWS = 32_768  # responses generated per block; bounds memory at paper scale
REFERENCE_SAMPLES = 50_000  # draws used once to fix the embedding scale


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
        # Entries of variance 1/latent² make ‖B·u‖² ≈ 1 for u ~ N(0, I): λ is then the typical
        # ratio of the prompt-specific part of the quality direction to the shared part.
        self.rotation = g.standard_normal((latent, latent)) / latent
        hidden = 4 * latent
        self.mix_linear = g.standard_normal((2 * latent, dim)) / np.sqrt(2 * latent)
        self.mix_in = g.standard_normal((2 * latent, hidden)) / np.sqrt(2 * latent)
        self.mix_out = g.standard_normal((hidden, dim)) / np.sqrt(hidden)
        # Embedding entries have variance ≈ 1 + E[tanh²]; fix the scale from a reference sample.
        ref = (
            g.standard_normal((REFERENCE_SAMPLES, latent)),
            g.standard_normal((REFERENCE_SAMPLES, latent)),
        )
        self.emb_std = float(self._mix(*ref).std())

    @property
    def gaussian(self) -> bool:
        return self.spec["kind"] == "gaussian"

    @property
    def shared(self) -> float:
        """ρ: the share of the variance of prompt means carried by response quality (0: none)."""
        return float(self.spec.get("shared_quality", 0.0))

    def location(self, u: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """μ(u, z): (B,) prompt-level mean rewards; z are the prompts' shared levels (ρ > 0)."""
        if z is None or self.shared == 0:
            return self.spec["tau"] * (u @ self.a)
        rho = self.shared
        return self.spec["tau"] * (np.sqrt(1 - rho) * (u @ self.a) + np.sqrt(rho) * z)

    def shift(self, u: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(B, L): the offset of every response latent of a prompt along its quality direction,
        which carries the shared part τ·√ρ·z of the prompt's mean reward."""
        size = self.spec["tau"] * np.sqrt(self.shared) * z / self.spread(u)
        return size[:, None] * self.direction(u)

    def spread(self, u: np.ndarray) -> np.ndarray:
        """σ(u): (B,) within-prompt reward standard deviations."""
        if self.gaussian:
            return np.full(u.shape[0], float(self.spec["sigma"]))
        s = self.spec["sigma_spread"]
        return self.spec["sigma"] * np.exp(s * (u @ self.b) - s * s / 2)

    def direction(self, u: np.ndarray) -> np.ndarray:
        """d(u): (B, L) unit quality direction of each prompt."""
        if self.gaussian:
            return np.broadcast_to(self.c, u.shape)
        d = self.c + self.spec["nonlinearity"] * (u @ self.rotation.T)
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    def quality(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """g(u, v): u (B, L), v (B, K, L) -> (B, K), N(0, 1) within every prompt."""
        return np.einsum("bkl,bl->bk", v, self.direction(u))

    def reward(self, u: np.ndarray, v: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """u: (B, L) prompt latents; v: (B, K, L) response latents (before any shift) ->
        (B, K) golden rewards."""
        return self.location(u, z)[:, None] + self.spread(u)[:, None] * self.quality(u, v)

    def _mix(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        latents = np.concatenate([u, v], axis=-1)
        return latents @ self.mix_linear + np.tanh(latents @ self.mix_in) @ self.mix_out

    def embed(self, u: np.ndarray, v: np.ndarray, noise: np.ndarray) -> np.ndarray:
        mixed = self._mix(np.broadcast_to(u[:, None, :], v.shape), v) / self.emb_std
        return mixed + self.spec["noise"] * noise


def latents(spec: dict, split: str, start: int, stop: int, block: int):
    """The (u, v, noise) draws of prompts ``start:stop`` of a split (one generation block)."""
    g = rng(spec["seed"], "synthetic", split, start // block)
    prompts = stop - start
    u = g.standard_normal((prompts, spec["latent_dim"]))
    v = g.standard_normal((prompts, spec[f"{split}_responses"], spec["latent_dim"]))
    noise = g.standard_normal((prompts, spec[f"{split}_responses"], spec["dim"]), dtype=np.float32)
    return u, v, noise


def shared_levels(spec: dict, split: str, start: int, stop: int, block: int) -> np.ndarray | None:
    """The prompts' shared levels z (ρ > 0 only), from their own stream: the other draws of a
    block do not change with ρ."""
    if not spec.get("shared_quality", 0):
        return None
    return rng(spec["seed"], "synthetic", split, "shared", start // block).standard_normal(
        stop - start
    )


def block_prompts(responses: int) -> int:
    return max(1, BLOCK_ROWS // responses)


def _generate_split(structure: Structure, split: str, out_dir: Path) -> np.ndarray:
    spec = structure.spec
    prompts, responses = spec[f"{split}_prompts"], spec[f"{split}_responses"]
    dtype = np.dtype(spec["dtype"])
    block = block_prompts(responses)
    rewards = np.empty((prompts, responses))
    shape = (prompts, responses, spec["dim"])
    with npy_writer(out_dir / FILES[split]["embeddings"], shape, dtype) as emb:
        for start in range(0, prompts, block):
            stop = min(prompts, start + block)
            u, v, noise = latents(spec, split, start, stop, block)
            z = shared_levels(spec, split, start, stop, block)
            rewards[start:stop] = structure.reward(u, v, z)
            if z is not None:  # the responses carry the shared part of the prompt's mean
                v = v + structure.shift(u, z)[:, None, :]
            emb[start:stop] = structure.embed(u, v, noise).astype(dtype, copy=False)
            release_pages(emb[start:stop])  # written blocks stay in the page cache, not in RSS
    write_npy(out_dir / FILES[split]["rewards"], rewards)
    return rewards


def build(spec: dict, out_dir: Path) -> None:
    from ..io import open_npy

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    structure = Structure(spec)
    rewards, stats = {}, {}
    for split in ("train", "test"):
        rewards[split] = _generate_split(structure, split, out_dir)
        stats[split] = reward_stats(rewards[split], rng(spec["seed"], "synthetic", "stats", split))
    stats["probe"] = linear_probe(
        open_npy(out_dir / FILES["train"]["embeddings"]),
        rewards["train"],
        open_npy(out_dir / FILES["test"]["embeddings"]),
        rewards["test"],
        rng(spec["seed"], "synthetic", "probe"),
    )
    write_world_info(out_dir, dict(spec), stats)


# Cost model (embrm.costs, embrm.resources): about 0.2 µs of one core per embedding value.
SECONDS_PER_VALUE = 2e-7


def estimate(shapes: Shapes) -> tuple[float, float]:
    """(working MB, seconds) of building a world of these shapes: blocks of float64
    intermediates, about three alive at once, and generation per embedding value."""
    block = min(BLOCK_ROWS, max(shapes.rows("train"), shapes.rows("test")))
    seconds = sum(shapes.values(split) for split in ("train", "test")) * SECONDS_PER_VALUE
    return block * shapes.dim * 8 * 3 / MB, seconds
