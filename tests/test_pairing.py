"""Pairing designs against analytic oracles, and the rules every registered design keeps.

The generic tests run over the registry (``embrm.designs.DESIGNS``): a new design is checked by
them as soon as its registry line exists. Statistical checks compare a sample mean with its oracle within ``Z`` standard errors, the
standard error being estimated from the same sample: a correct implementation fails one such
check with probability below 1e-4, and the random streams are seeded, so outcomes are fixed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from math import comb
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, snakemake
from embrm.config import Plan, load
from embrm.designs import DESIGNS, make_pairs, pattern
from embrm.designs.static import DESIGNS as STUDY_DESIGNS
from embrm.errors import ConfigError
from embrm.pairing import CANDIDATES, capacity, first_rank_pair
from embrm.schema import build as build_schema
from embrm.sources.synthetic import build

# Designs that deal a cell's pairs themselves (active designs choose theirs in rounds: test_active).
DRAWN = [design for design in DESIGNS.values() if not design.active]

Z = 4.0
TAU, SIGMA = 0.5, 1.0


def gaussian_spec(**overrides) -> dict:
    spec = {
        "source": "synthetic",
        "kind": "gaussian",
        "train_prompts": 20_000,
        "train_responses": 10,
        "test_prompts": 4,
        "test_responses": 10,
        "dim": 4,
        "latent_dim": 4,
        "tau": TAU,
        "sigma": SIGMA,
        "sigma_spread": 0.0,
        "noise": 0.1,
        "nonlinearity": 0.0,
        "dtype": "float32",
        "seed": 3,
    }
    return {**spec, **overrides}


@pytest.fixture(scope="module")
def gaussian_rewards(tmp_path_factory) -> np.ndarray:
    directory = tmp_path_factory.mktemp("gaussian-world")
    build(gaussian_spec(), directory)
    return np.load(directory / "train_rewards.npy")


@pytest.fixture(scope="module")
def default_rewards(tmp_path_factory) -> np.ndarray:
    """Training rewards of the default experiment's world (config.yaml)."""
    directory = tmp_path_factory.mktemp("default-world")
    build(load(REPO / "config.yaml")["worlds"]["synthetic"], directory)
    return np.load(directory / "train_rewards.npy")


def gaps(rewards, design, n, seed=0, of=None):
    a, b = make_pairs(rewards, design, n, np.random.default_rng(seed), of=of)
    flat = rewards.ravel()
    return np.abs(flat[a] - flat[b])


def assert_mean(sample: np.ndarray, oracle: float) -> None:
    se = sample.std(ddof=1) / np.sqrt(sample.size)
    assert abs(sample.mean() - oracle) < Z * se, (sample.mean(), oracle, se)


@pytest.mark.parametrize("n", [20_000, 60_000])
def test_random_pairs_match_the_gaussian_mean_gap_oracles(gaussian_rewards, n):
    # Same prompt: Δr = σ(ε − ε') ~ N(0, 2σ²), E|Δr| = 2σ/√π. Cross prompt: two independent
    # responses of two prompts, Δr ~ N(0, 2(σ² + τ²)). n > P deals further rounds: still exact.
    assert_mean(gaps(gaussian_rewards, "same-random", n), 2 * SIGMA / np.sqrt(np.pi))
    assert_mean(
        gaps(gaussian_rewards, "cross-random", n), 2 * np.sqrt(SIGMA**2 + TAU**2) / np.sqrt(np.pi)
    )


def test_the_first_pairs_of_a_larger_draw_keep_the_oracles(gaussian_rewards):
    """Common random numbers: a cell's n pairs are the first n of its design's largest quantity,
    and are distributed as a draw of n (one pair per prompt while n ≤ P, the oracle gaps)."""
    prompts, responses = gaussian_rewards.shape
    a, _ = make_pairs(
        gaussian_rewards, "same-random", prompts, np.random.default_rng(2), of=3 * prompts
    )
    assert np.unique(a // responses).size == prompts
    assert_mean(
        gaps(gaussian_rewards, "same-random", prompts, of=3 * prompts), 2 * SIGMA / np.sqrt(np.pi)
    )
    assert_mean(
        gaps(gaussian_rewards, "cross-random", prompts, of=3 * prompts),
        2 * np.sqrt(SIGMA**2 + TAU**2) / np.sqrt(np.pi),
    )


@pytest.mark.parametrize("design", DRAWN, ids=lambda d: d.name)
def test_smaller_quantities_are_the_first_pairs_of_larger_ones(gaussian_rewards, design):
    """Common random numbers across quantities (the pairs stage's ``of``), for every design."""
    rewards = gaussian_rewards[:300]
    largest = 5 * rewards.shape[0] + 7
    a, b = make_pairs(rewards, design.name, largest, np.random.default_rng(4))
    for n in (1, 150, 300, 1000, largest):
        first = make_pairs(rewards, design.name, n, np.random.default_rng(4), of=largest)
        assert np.array_equal(first[0], a[:n]) and np.array_equal(first[1], b[:n])
    # `of` below n draws n
    again = make_pairs(rewards, design.name, largest, np.random.default_rng(4), of=10)
    assert np.array_equal(again[0], a)
    # The contract behind it: the first n of a larger draw are distributed as a draw of n (here:
    # their mean gap over 20 seeds against that of 20 draws of n).
    n, flat = 150, rewards.ravel()
    prefix, direct = (
        np.concatenate([
            np.abs(np.subtract(*flat[np.stack(make_pairs(
                rewards, design.name, n, np.random.default_rng(seed), of=of
            ))]))
            for seed in seeds
        ])
        for of, seeds in ((largest, range(20)), (None, range(100, 120)))
    )  # fmt: skip
    se = np.sqrt(prefix.var(ddof=1) / prefix.size + direct.var(ddof=1) / direct.size)
    assert abs(prefix.mean() - direct.mean()) < Z * se + 1e-12


def test_designs_share_their_prompt_order_and_candidate_draws(gaussian_rewards):
    """From the same generator seed, every design deals to the same prompt order; the random same-
    and cross-prompt designs deal the same candidate pairs (a cross pair i has one response of
    same-prompt pair i); presentation coins are shared."""
    rewards = gaussian_rewards[:400]
    prompts, responses = rewards.shape
    n = 2 * prompts
    pairs = {d.name: make_pairs(rewards, d.name, n, np.random.default_rng(5)) for d in DRAWN}
    same_prompt = pairs["same-random"][0] // responses
    for candidates in CANDIDATES:
        assert np.array_equal(pairs[f"same-{candidates}"][0] // responses, same_prompt)
        a, b = pairs[f"cross-{candidates}"]
        assert np.array_equal(
            np.where(a // responses == same_prompt, a, b) // responses, same_prompt
        )
    (sa, sb), (ca, cb) = pairs["same-random"], pairs["cross-random"]
    mine = np.where(ca // responses == same_prompt, ca, cb)
    assert np.all((mine == sa) | (mine == sb))
    # one coin per pair: unswapped, same-prompt pairs show the lower rank first and cross-prompt
    # pairs the dealt prompt's response
    ranks = np.argsort(np.argsort(rewards, axis=1), axis=1).ravel()
    assert np.array_equal(ca == mine, ranks[sa] < ranks[sb])


def test_cross_random_sides_are_uniform_over_ranks(gaussian_rewards):
    """Both sides of a cross-random pair are uniformly random responses of their prompts (also
    when several rounds are dealt), which the cross-prompt oracle above relies on."""
    prompts, responses = gaussian_rewards.shape
    a, b = make_pairs(gaussian_rewards, "cross-random", 3 * prompts, np.random.default_rng(1))
    ranks = np.argsort(np.argsort(gaussian_rewards, axis=1), axis=1).ravel()
    from scipy.stats import chisquare

    for side in (a, b):
        counts = np.bincount(ranks[side], minlength=responses)
        assert chisquare(counts).pvalue > 1e-4


@pytest.mark.parametrize("pairing", ["same", "cross"])
@pytest.mark.parametrize("world", ["gaussian_rewards", "default_rewards"])
def test_similar_gaps_below_random_below_diversified(request, world, pairing):
    rewards = request.getfixturevalue(world)
    n = rewards.shape[0]
    means = {c: gaps(rewards, f"{pairing}-{c}", n) for c in CANDIDATES}
    for lower, higher in (("similar", "random"), ("random", "diversified")):
        x, y = means[lower], means[higher]
        se = np.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
        assert y.mean() - x.mean() > Z * se, (lower, x.mean(), higher, y.mean())


def test_candidate_rules_use_the_studys_ranks(gaussian_rewards):
    rewards = gaussian_rewards[:500]
    ranks = np.argsort(np.argsort(rewards, axis=1), axis=1).ravel()
    assert first_rank_pair(10, "similar").tolist() == [4, 5]
    assert first_rank_pair(10, "diversified").tolist() == [0, 9]
    assert first_rank_pair(5, "similar").tolist() == [1, 2]
    for candidates, expected in (("similar", {4, 5}), ("diversified", {0, 9})):
        a, b = make_pairs(rewards, f"same-{candidates}", 500, np.random.default_rng(0))
        assert all({ranks[x], ranks[y]} == expected for x, y in zip(a, b, strict=True))
        # cross: each side is one of its own prompt's two candidates, chosen at random
        a, b = make_pairs(rewards, f"cross-{candidates}", 500, np.random.default_rng(0))
        sides = np.concatenate([ranks[a], ranks[b]])
        assert set(sides.tolist()) == expected
        assert abs(np.mean(sides == min(expected)) - 0.5) < Z * 0.5 / np.sqrt(sides.size)


@pytest.mark.parametrize("design", DRAWN, ids=lambda d: d.name)
def test_pairs_are_distinct_indices_in_random_order(gaussian_rewards, design):
    rewards = gaussian_rewards[:300]
    prompts, responses = rewards.shape
    flat = rewards.ravel()
    limit = design.capacity(prompts, responses)
    for n in (prompts // 2, prompts, 7 * prompts + 13, limit):
        n = min(n, limit)
        a, b = design.draw(rewards, n, np.random.default_rng(n))
        assert a.dtype == b.dtype == np.int64 and a.shape == b.shape == (n,)
        assert a.min() >= 0 and max(a.max(), b.max()) < flat.size
        keys = np.minimum(a, b) * flat.size + np.maximum(a, b)
        assert np.unique(keys).size == n, "duplicate pairs"
        same_prompt = a // responses == b // responses
        same = design.settings["prompt_pairing"] == "same"
        assert same_prompt.all() if same else not same_prompt.any()
        if n <= prompts and same and design in STUDY_DESIGNS:  # one pair per prompt (the study)
            assert np.unique(a // responses).size == n
        # presentation order: the better response is shown first about half the time
        first_better = np.mean(flat[a] > flat[b])
        assert abs(first_better - 0.5) < Z * 0.5 / np.sqrt(n)


@pytest.mark.parametrize("design", DRAWN, ids=lambda d: d.name)
def test_tiny_worlds_reach_capacity_without_duplicates(design):
    for seed in range(10):
        generator = np.random.default_rng(seed)
        for shape in ((2, 10), (3, 2), (2, 3)):
            rewards = generator.standard_normal(shape)
            n = design.capacity(*shape)
            a, b = design.draw(rewards, n, np.random.default_rng(seed))
            size = rewards.size
            assert np.unique(np.minimum(a, b) * size + np.maximum(a, b)).size == n


@pytest.mark.parametrize("design", DRAWN, ids=lambda d: d.name)
def test_pairs_are_reproducible_and_seed_dependent(gaussian_rewards, design):
    first = design.draw(gaussian_rewards, 5000, np.random.default_rng(7))
    again = design.draw(gaussian_rewards, 5000, np.random.default_rng(7))
    other = design.draw(gaussian_rewards, 5000, np.random.default_rng(8))
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("design", DRAWN, ids=lambda d: d.name)
def test_more_pairs_than_the_capacity_name_the_key(design):
    rewards = np.random.default_rng(0).standard_normal((4, 3))
    n = design.capacity(4, 3) + 1
    with pytest.raises(ConfigError, match=rf"config key 'grid\.quantities': {n} pairs .* at most"):
        make_pairs(rewards, design.name, n, np.random.default_rng(0), key="grid.quantities")


@pytest.mark.parametrize("design", DESIGNS.values(), ids=lambda d: d.name)
def test_every_design_is_registered_alike(design):
    """Its name fits run paths and the workflow's wildcard; it declares the design columns."""
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", design.name)
    assert re.fullmatch(pattern(), design.name)
    assert set(design.settings) == {"prompt_pairing", "candidates"}
    assert design.settings["prompt_pairing"] in ("same", "cross")
    assert DESIGNS[design.heldout].active is False


def test_schema_designs_are_the_registry():
    schema = build_schema()
    assert schema["$defs"]["design"]["enum"] == list(DESIGNS)
    config = load(REPO / "config.yaml")
    for name in DESIGNS:
        Plan({**config, "grid": {**config["grid"], "designs": [name]}, "extra_grids": []})
    config["grid"]["designs"] = ["same-unregistered"]
    with pytest.raises(ConfigError, match=r"grid\.designs\[0\]"):
        Plan(config)


def test_too_many_pairs_names_the_key():
    rewards = np.zeros((4, 3))
    assert capacity(4, 3, "same") == 4 * comb(3, 2)
    assert capacity(1, 3, "cross") == 0
    with pytest.raises(ConfigError, match=r"config key 'grid\.quantities': 13 pairs .* at most 12"):
        make_pairs(rewards, "same-random", 13, np.random.default_rng(0), key="grid.quantities")
    with pytest.raises(ConfigError, match="at most 0"):
        make_pairs(np.zeros((1, 5)), "cross-similar", 1, np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"grid\.designs"):
        make_pairs(rewards, "cross-best", 1, np.random.default_rng(0))


def test_plan_refuses_more_pairs_than_a_synthetic_world_allows(tiny_config):
    # tiny world: 300 prompts × 6 responses → at most 4500 pairs per design
    tiny_config["grid"]["quantities"] = [200, 4501]
    with pytest.raises(ConfigError, match=r"'grid\.quantities\[1\]': 4501 pairs .* at most 4500"):
        Plan(tiny_config)
    tiny_config["grid"]["quantities"] = [4500]
    assert Plan(tiny_config).runs
    tiny_config["extra_grids"] = [{"quantities": [5000], "designs": ["cross-similar"]}]
    with pytest.raises(ConfigError, match=r"'extra_grids\[0\]\.quantities\[0\]'"):
        Plan(tiny_config)
    # an extra block that inherits grid.quantities names grid.quantities
    tiny_config["worlds"]["small"] = {**tiny_config["worlds"]["tiny"], "train_prompts": 100}
    tiny_config["extra_grids"] = [{"worlds": ["small"]}]
    with pytest.raises(ConfigError, match=r"'grid\.quantities\[0\]'.*in extra_grids\[0\]"):
        Plan(tiny_config)


def test_snakemake_stops_at_parse_time_on_too_many_pairs(tmp_path, tiny_config):
    tiny_config["grid"]["quantities"] = [10_000]
    result = snakemake(tmp_path, "-n", "--cores", "1", config=tiny_config, check=False)
    assert result.returncode != 0
    assert "config key 'grid.quantities[0]': 10000 pairs requested" in result.stderr
    assert not (tmp_path / "results").exists()


def test_default_config_exercises_every_candidate_rule_and_both_pairings():
    plan = Plan(yaml.safe_load((REPO / "config.yaml").read_text()))
    assert set(plan.unique("design")) == {design.name for design in STUDY_DESIGNS}


def test_every_cell_of_a_design_draws_its_largest_quantity():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["extra_grids"].append({"designs": ["cross-similar"], "quantities": [3000]})
    plan = Plan(config)
    assert plan.largest_quantity("synthetic", "same-random") == 2000
    assert plan.largest_quantity("synthetic", "cross-similar") == 3000
    assert plan.largest_quantity("synthetic", "cross-random") == 2000


def test_pairs_stage_writes_indices_only(tmp_path):
    """The pairs job writes flat int64 indices, never embeddings."""
    spec = gaussian_spec(train_prompts=50, test_prompts=5, test_responses=8, dim=16)
    build(spec, tmp_path / "world")
    out = tmp_path / "pairs.npz"
    command = [
        sys.executable, "-m", "embrm", "pairs", "--world", str(tmp_path / "world"),
        "--design", "cross-similar", "--n", "120", "--seed", "0", "--heldout", "30",
        "--out", str(out),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=Path(tmp_path))
    with np.load(out) as pairs:
        assert sorted(pairs.files) == ["a", "b", "heldout_a", "heldout_b"]
        assert all(pairs[k].dtype == np.int64 and pairs[k].ndim == 1 for k in pairs.files)
        assert pairs["a"].size == 120 and pairs["heldout_a"].size == 30
