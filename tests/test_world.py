"""The synthetic world: its exact Gaussian oracle form, its statistics, its calibration against
the study's label-error range, and how learnable its golden reward is.

Statistical checks state their tolerance (``Z`` standard errors, or a KS test at level 1e-4);
random streams are seeded, so outcomes are fixed.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import REPO, TINY_CONFIG, deep_merge
from embrm.annotators import BradleyTerry, annotate
from embrm.config import load, validate
from embrm.designs import make_pairs
from embrm.errors import ConfigError
from embrm.evaluation_agreement import spearman_per_prompt
from embrm.sources.synthetic import Structure, block_prompts, build, latents, shared_levels
from embrm.world import PAPER_BETAS, World
from scipy import stats

Z = 4.0
PAPER_ERRORS = dict(zip(PAPER_BETAS, (0.381, 0.341, 0.292, 0.135, 0.085, 0.043), strict=True))


def spec(**overrides) -> dict:
    config = deep_merge(TINY_CONFIG, {"worlds": {"w": {"source": "synthetic"}}})
    base = validate(config)["worlds"]["w"]
    return {**base, **overrides}


GAUSSIAN = spec(
    kind="gaussian", train_prompts=8000, train_responses=10, test_prompts=20,
    test_responses=200, dim=8, latent_dim=4, tau=0.5, sigma=1.0, seed=1,
)  # fmt: skip


@pytest.fixture(scope="module")
def gaussian(tmp_path_factory) -> World:
    directory = tmp_path_factory.mktemp("gaussian")
    build(GAUSSIAN, directory)
    return World(directory)


@pytest.fixture(scope="module")
def default_world(tmp_path_factory) -> World:
    """The world of the default experiment (config.yaml)."""
    directory = tmp_path_factory.mktemp("default")
    build(load(REPO / "config.yaml")["worlds"]["synthetic"], directory)
    return World(directory)


def test_gaussian_world_is_exactly_location_plus_scaled_standard_normal(gaussian):
    """r = μ_x + σ·ε with μ_x = τ·⟨a, u⟩ ~ N(0, τ²) and ε = ⟨c, v⟩ ~ N(0, 1): rebuilt from the
    world's own latent draws, the stored rewards match to float precision."""
    structure = Structure(GAUSSIAN)
    assert np.linalg.norm(structure.a) == pytest.approx(1) == np.linalg.norm(structure.c)
    for split in ("train", "test"):
        rewards = getattr(gaussian, split).rewards
        block = block_prompts(GAUSSIAN[f"{split}_responses"])
        u, v, _ = latents(GAUSSIAN, split, 0, min(block, rewards.shape[0]), block)
        mu, eps = GAUSSIAN["tau"] * (u @ structure.a), v @ structure.c
        expected = mu[:, None] + GAUSSIAN["sigma"] * eps
        np.testing.assert_allclose(rewards[: u.shape[0]], expected, rtol=0, atol=1e-12)


def test_gaussian_world_distribution(gaussian):
    """Per-prompt means ~ N(0, τ² + σ²/K) and (K−1)·s²/σ² ~ χ²(K−1) for every prompt: a common σ,
    normal responses. KS tests at level 1e-4."""
    rewards = gaussian.train.rewards
    k = rewards.shape[1]
    tau, sigma = GAUSSIAN["tau"], GAUSSIAN["sigma"]
    means = rewards.mean(axis=1)
    assert stats.kstest(means, "norm", args=(0, np.sqrt(tau**2 + sigma**2 / k))).pvalue > 1e-4
    scaled = (k - 1) * rewards.var(axis=1, ddof=1) / sigma**2
    assert stats.kstest(scaled, "chi2", args=(k - 1,)).pvalue > 1e-4
    # a σ that varies between prompts is visible to the same test
    varied = spec(**{**GAUSSIAN, "kind": "nonlinear", "sigma_spread": 0.5, "nonlinearity": 0.0})
    structure = Structure(varied)
    u, v, _ = latents(varied, "train", 0, 4000, 4000)
    scaled = (k - 1) * structure.reward(u, v).var(axis=1, ddof=1) / sigma**2
    assert stats.kstest(scaled, "chi2", args=(k - 1,)).pvalue < 1e-4


def test_gaussian_world_stats_match_their_oracles(gaussian):
    info = gaussian.info["stats"]["train"]
    prompts, k = gaussian.train.rewards.shape
    tau, sigma = GAUSSIAN["tau"], GAUSSIAN["sigma"]
    # τ̂² = var(means) − σ̂²/K; its standard error is about √(2/P)·(τ² + σ²/K) / (2τ) in τ.
    tau_se = np.sqrt(2 / prompts) * (tau**2 + sigma**2 / k) / (2 * tau)
    assert info["tau_hat"] == pytest.approx(tau, abs=Z * tau_se)
    assert info["sigma_hat"] == pytest.approx(sigma, abs=Z * sigma / np.sqrt(2 * prompts * (k - 1)))
    assert info["sigma_spread_hat"] < 0.05
    assert info["reward_std"] == pytest.approx(np.sqrt(tau**2 + sigma**2), abs=0.02)
    same, cross = 2 * sigma / np.sqrt(np.pi), 2 * np.sqrt(sigma**2 + tau**2) / np.sqrt(np.pi)
    # gaps of the world's own responses: 0.85σ-wide half-normals; 8000 prompts, 200,000 draws
    assert info["mean_abs_dr_same_random"] == pytest.approx(same, abs=Z * 0.86 / np.sqrt(prompts))
    assert info["mean_abs_dr_cross_random"] == pytest.approx(cross, abs=Z * 0.96 / np.sqrt(prompts))
    assert info["mean_abs_dr_same_similar"] < info["mean_abs_dr_same_random"]
    assert info["mean_abs_dr_same_random"] < info["mean_abs_dr_same_diversified"]
    for beta, paper in PAPER_ERRORS.items():
        assert info["bt_expected_error"]["same_random"][f"{beta:g}"] == pytest.approx(
            paper, abs=0.01
        )
        assert (
            info["bt_expected_error"]["cross_random"][f"{beta:g}"]
            < info["bt_expected_error"]["same_random"][f"{beta:g}"]
        )


def test_nonlinear_world_is_location_scale_with_varying_sigma(tmp_path):
    """Within every prompt the quality g is N(0, 1): the direction d(u) has unit norm, and the
    estimators recover τ and the spread of log σ_x (50 responses per prompt)."""
    world_spec = spec(
        train_prompts=3000, train_responses=50, test_prompts=5, test_responses=20, dim=8,
        latent_dim=6, tau=0.7, sigma=1.5, sigma_spread=0.4, nonlinearity=2.0, seed=4,
    )  # fmt: skip
    structure = Structure(world_spec)
    u = np.random.default_rng(0).standard_normal((1000, 6))
    np.testing.assert_allclose(np.linalg.norm(structure.direction(u), axis=1), 1.0)
    build(world_spec, tmp_path)
    info = World(tmp_path).info["stats"]["train"]
    # standard errors as for normal data (σ_x² averages σ²·exp(s²) = 2.63; var(log s_x) ≈ 0.17)
    tau_se = np.sqrt(2 / 3000) * (0.49 + 2.63 / 50) / (2 * 0.7)
    assert info["tau_hat"] == pytest.approx(0.7, abs=Z * tau_se)
    spread_se = np.sqrt(2 / 3000) * 0.17 / (2 * 0.4)
    assert info["sigma_spread_hat"] == pytest.approx(0.4, abs=Z * spread_se)
    # σ_x is log-normal with mean σ: its root mean square is σ·exp(s²/2)
    assert info["sigma_hat"] == pytest.approx(1.5 * np.exp(0.08), rel=0.05)


def test_default_world_matches_what_the_study_reports_about_its_real_data(default_world):
    """Calibration (docs/findings.md): prompts differ much more than one prompt's responses, so
    random same-prompt pairs have a mean |Δr| nearer the similar pairs' than the cross-prompt
    pairs', which have at least twice it; with scale = std of the training rewards, BT labels
    err about 44% → 9% (same-prompt) and 37% → 4% (cross-prompt) over β = 0.5 … 10, bracketing
    the study's 38% → 5%."""
    stats_ = default_world.info["stats"]["train"]
    same, cross = stats_["mean_abs_dr_same_random"], stats_["mean_abs_dr_cross_random"]
    similar = stats_["mean_abs_dr_same_similar"]
    assert cross > 2 * same and same - similar < cross - same
    same_err = stats_["bt_expected_error"]["same_random"]
    cross_err = stats_["bt_expected_error"]["cross_random"]
    assert 0.42 < same_err["0.5"] < 0.46 and 0.07 < same_err["10"] < 0.11
    assert 0.35 < cross_err["0.5"] < 0.39 and 0.03 < cross_err["10"] < 0.05
    assert cross_err["0.5"] < 0.38 < same_err["0.5"] and cross_err["10"] < 0.05 < same_err["10"]
    # the default grid's two annotators fall on both sides of the study's 10% boundary
    assert same_err["1"] > 0.1 and cross_err["1"] > 0.1
    assert same_err["10"] < 0.1 and cross_err["10"] < 0.1
    rewards = default_world.train.rewards
    flat, scale = rewards.ravel(), default_world.reward_std
    a, b = make_pairs(rewards, "same-random", 9 * rewards.shape[0], np.random.default_rng(0))
    realized = []
    for beta in PAPER_BETAS:
        _, s = annotate(BradleyTerry(beta), flat[a], flat[b], scale, np.random.default_rng(1))
        assert (
            abs(s["realized_error_rate"] - s["expected_error_rate"])
            < Z * s["expected_error_rate_se"]
        )
        assert s["expected_error_rate"] == pytest.approx(same_err[f"{beta:g}"], abs=0.01)
        realized.append(s["realized_error_rate"])
    assert realized == sorted(realized, reverse=True)


def test_default_golden_reward_is_learnable_but_not_trivial(default_world):
    """A linear probe of the embedding recovers part of the within-prompt order; a small MLP
    regressor trained directly on the golden rewards recovers much more, but not all of it."""
    import torch

    probe = default_world.info["stats"]["probe"]["linear_probe_spearman"]
    assert 0.4 < probe < 0.85

    torch.manual_seed(0)
    torch.set_num_threads(1)  # small matrices: one thread is as fast and immune to contention
    x = torch.from_numpy(np.array(default_world.train.flat_embeddings))
    y = torch.from_numpy(default_world.train.rewards.ravel().astype(np.float32))
    width = 128
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], width), torch.nn.ReLU(), torch.nn.Linear(width, width),
        torch.nn.ReLU(), torch.nn.Linear(width, 1),
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    shuffle = torch.Generator().manual_seed(0)
    for _ in range(10):
        for batch in torch.randperm(x.shape[0], generator=shuffle).split(512):
            loss = ((net(x[batch]).squeeze(1) - y[batch]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    test = default_world.test
    with torch.no_grad():
        predicted = net(torch.from_numpy(np.array(test.flat_embeddings))).numpy()
    mlp = np.nanmean(spearman_per_prompt(predicted.reshape(test.rewards.shape), test.rewards))
    assert probe + 0.1 < mlp < 0.99


def test_nonlinearity_controls_linear_learnability(tmp_path):
    small = {"train_prompts": 1000, "test_prompts": 40, "test_responses": 100, "dim": 32}
    probes = {}
    for lam in (0.0, 1.0, 3.0):
        build(spec(**small, latent_dim=8, nonlinearity=lam), tmp_path / str(lam))
        probes[lam] = World(tmp_path / str(lam)).info["stats"]["probe"]["linear_probe_spearman"]
    assert probes[0.0] > 0.9 and probes[0.0] > probes[1.0] > probes[3.0]


def test_knobs_shape_the_world_and_the_seed_fixes_it(tmp_path):
    world_spec = spec(
        train_prompts=30, train_responses=4, test_prompts=3, test_responses=7, dim=5,
        dtype="float16", seed=2,
    )  # fmt: skip
    for name in ("a", "b"):
        build(world_spec, tmp_path / name)
    build({**world_spec, "seed": 3}, tmp_path / "c")
    a, b, c = (World(tmp_path / name) for name in "abc")
    assert a.train.embeddings.shape == (30, 4, 5) and a.test.embeddings.shape == (3, 7, 5)
    assert a.train.embeddings.dtype == np.float16
    for split in ("train", "test"):
        for kind in ("embeddings", "rewards"):
            assert np.array_equal(
                getattr(getattr(a, split), kind), getattr(getattr(b, split), kind)
            )
    assert not np.array_equal(a.train.rewards, c.train.rewards)
    assert json.loads((tmp_path / "a" / "world.json").read_text())["source"] == world_spec
    # noise only moves the embeddings; gaussian worlds ignore nonlinearity and sigma_spread
    build({**world_spec, "noise": 2.0}, tmp_path / "noisy")
    noisy = World(tmp_path / "noisy")
    assert np.array_equal(noisy.train.rewards, a.train.rewards)
    assert not np.array_equal(noisy.train.embeddings, a.train.embeddings)
    gauss = {**world_spec, "kind": "gaussian"}
    build(gauss, tmp_path / "g1")
    build({**gauss, "nonlinearity": 5.0, "sigma_spread": 1.0}, tmp_path / "g2")
    assert np.array_equal(
        World(tmp_path / "g1").train.rewards, World(tmp_path / "g2").train.rewards
    )


def test_shared_quality_zero_reproduces_the_world_without_it(tmp_path):
    """ρ = 0 draws nothing extra: the same embeddings and rewards as a spec without the key."""
    world_spec = spec(train_prompts=40, train_responses=5, test_prompts=4, test_responses=9, dim=6)
    assert "shared_quality" not in world_spec  # no schema default: existing worlds unchanged
    build(world_spec, tmp_path / "absent")
    build({**world_spec, "shared_quality": 0.0}, tmp_path / "zero")
    build({**world_spec, "shared_quality": 0.5}, tmp_path / "half")
    absent, zero, half = (World(tmp_path / n) for n in ("absent", "zero", "half"))
    for split in ("train", "test"):
        for kind in ("embeddings", "rewards"):
            assert np.array_equal(
                getattr(getattr(absent, split), kind), getattr(getattr(zero, split), kind)
            )
    assert not np.array_equal(absent.train.rewards, half.train.rewards)


@pytest.mark.parametrize("kind", ["nonlinear", "gaussian"])
def test_shared_quality_one_makes_prompt_means_a_function_of_response_quality(kind):
    """ρ = 1: every reward is σ_x·⟨d(u), v⟩ of the embedded (shifted) response latent, so a
    prompt's mean reward is the mean quality of its responses; ρ = 0: the prompt mean owes
    almost nothing to its responses' quality features. μ_x stays N(0, τ²) at both ends."""
    prompts, k = 3000, 10
    base = spec(kind=kind, train_prompts=prompts, train_responses=k, tau=2.0, sigma=1.0, seed=5)
    correlations = {}
    for rho in (0.0, 1.0):
        world_spec = {**base, "shared_quality": rho}
        structure = Structure(world_spec)
        u, v, _ = latents(world_spec, "train", 0, prompts, prompts)
        z = shared_levels(world_spec, "train", 0, prompts, prompts)
        rewards = structure.reward(u, v, z)
        embedded = v if z is None else v + structure.shift(u, z)[:, None, :]
        quality = structure.spread(u)[:, None] * structure.quality(u, embedded)
        if rho == 1.0:
            np.testing.assert_allclose(rewards, quality, rtol=0, atol=1e-9)
        # within a prompt the order is untouched: g of the unshifted latents, N(0, 1)
        within = structure.quality(u, v)
        assert within.std() == pytest.approx(1.0, abs=0.02)
        means = rewards.mean(axis=1)
        assert means.std() == pytest.approx(np.sqrt(4.0 + 1.0 / k), rel=0.05)
        correlations[rho] = np.corrcoef(means, quality.mean(axis=1))[0, 1]
    assert correlations[1.0] == pytest.approx(1.0)
    # ρ = 0: only the K-response sampling noise links them, r ≈ √((σ²/K) / (τ² + σ²/K)) ≈ 0.16
    assert correlations[0.0] < 0.25


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"tau": -0.1}, "worlds.w.tau"),
        ({"sigma": 0}, "worlds.w.sigma"),
        ({"sigma_spread": 5}, "worlds.w.sigma_spread"),
        ({"train_responses": 1}, "worlds.w.train_responses"),
        ({"dim": 0}, "worlds.w.dim"),
        ({"noise": float("inf")}, "worlds.w.noise"),
        ({"kind": "linear"}, "worlds.w.kind"),
        ({"nonlinearity": -1}, "worlds.w.nonlinearity"),
        ({"gamma": 1}, "worlds.w"),
        ({"shared_quality": 1.5}, "worlds.w.shared_quality"),
    ],
)
def test_bad_world_knobs_name_the_key(override, key):
    config = deep_merge(TINY_CONFIG, {"worlds": {"w": {"source": "synthetic", **override}}})
    config["grid"]["worlds"] = ["w"]
    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}'")):
        validate(config)
