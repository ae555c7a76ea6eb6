"""Annotator models against analytic oracles: expected accuracy, realized error rates, and the
cross- versus same-prompt ordering.

The generic tests run over the registry (``embrm.annotators.MODELS``), one annotator per parameter
set a model declares in ``examples``: a new model is checked by them as soon as its registry line
exists.

Realized error rates are compared with their expectation within ``Z`` binomial standard errors
(labels are independent given the reward gaps); random streams are seeded, so outcomes are fixed.
"""

from __future__ import annotations

import copy
import itertools
import re

import numpy as np
import pytest
import yaml
from conftest import REPO, TINY_CONFIG, deep_merge, snakemake
from embrm.annotators import (
    MODELS,
    AbilityPool,
    BradleyTerry,
    Perfect,
    Thurstone,
    annotate,
    make_annotator,
    resolve_scale,
)
from embrm.annotators.base import check_value
from embrm.config import Plan, load
from embrm.designs import make_pairs
from embrm.errors import ConfigError
from embrm.schema import build as build_schema
from embrm.settings import annotator_settings, quality, quality_column
from embrm.sources.synthetic import build
from scipy.integrate import quad

Z = 4.0
PAPER_BETAS = (0.5, 0.7, 1, 3, 5, 10)
# Paper-spec §8: expected BT error on random same-prompt pairs, τ = 0.5, σ = 1, scale = √(σ²+τ²).
PAPER_ERRORS = (0.381, 0.341, 0.292, 0.135, 0.085, 0.043)
POOLS = [
    AbilityPool(),  # the default pool: log-normal abilities plus 10% useless and 10% perfect
    AbilityPool(ability=0.3, spread=2.0, useless=0.0, perfect=0.0),
    AbilityPool(ability=3.0, spread=0.0, useless=0.5, perfect=0.0),
    AbilityPool(ability=1.0, spread=1.0, useless=1.0, perfect=0.0),  # all useless
    AbilityPool(ability=1.0, spread=1.0, useless=0.0, perfect=1.0),  # all perfect
]
# Every registered model, once per declared parameter set.
ALL_MODELS = [model(**params) for model in MODELS.values() for params in model.examples]


def half_normal_mean(f, std: float) -> float:
    """E[f(|X|)] for X ~ N(0, std²), by adaptive quadrature."""
    density = lambda x: 2 * np.exp(-0.5 * (x / std) ** 2) / (std * np.sqrt(2 * np.pi))  # noqa: E731
    return quad(lambda x: f(np.array([x]))[0] * density(x), 0, np.inf, epsabs=1e-12)[0]


@pytest.fixture(scope="module")
def gaussian_world(tmp_path_factory):
    """r = μ_x + σ·ε with τ = 0.5, σ = 1: the paper's oracle world (20,000 prompts × 10)."""
    directory = tmp_path_factory.mktemp("gaussian")
    spec = {
        "source": "synthetic", "kind": "gaussian", "train_prompts": 20_000,
        "train_responses": 10, "test_prompts": 4, "test_responses": 10, "dim": 4,
        "latent_dim": 4, "tau": 0.5, "sigma": 1.0, "sigma_spread": 0.0, "noise": 0.1,
        "nonlinearity": 0.0, "dtype": "float32", "seed": 11,
    }  # fmt: skip
    build(spec, directory)
    return np.load(directory / "train_rewards.npy")


def labelled(rewards, design, n, annotator, seed=0, scale=None):
    a, b = make_pairs(rewards, design, n, np.random.default_rng(seed))
    flat = rewards.ravel()
    scale = float(rewards.std()) if scale is None else scale
    labels, stats = annotate(annotator, flat[a], flat[b], scale, np.random.default_rng(seed + 1))
    return flat[a], flat[b], labels, stats


def assert_realized_matches_expected(stats):
    gap = abs(stats["realized_error_rate"] - stats["expected_error_rate"])
    assert gap <= Z * stats["expected_error_rate_se"] + 1e-12, stats


def test_paper_error_rates_are_the_bt_expectation_on_the_oracle_world():
    # Same-prompt Δr ~ N(0, 2σ²) and scale = √(σ² + τ²): E[σ(−β|Δr|/scale)] by quadrature.
    scale = np.sqrt(1.25)
    for beta, paper in zip(PAPER_BETAS, PAPER_ERRORS, strict=True):
        bt = BradleyTerry(beta)
        expected = half_normal_mean(lambda x, bt=bt: 1 - bt.prob_correct(x, scale), np.sqrt(2))
        assert expected == pytest.approx(paper, abs=6e-4)


@pytest.mark.parametrize("design", ["same-random", "cross-random"])
def test_bt_realized_error_matches_expectation_for_every_beta(gaussian_world, design):
    scale = float(gaussian_world.std())
    std = np.sqrt(2.0) if design == "same-random" else np.sqrt(2 * 1.25)
    previous = 0.5
    for beta in PAPER_BETAS:
        *_, stats = labelled(
            gaussian_world, design, 40_000, BradleyTerry(beta), seed=int(10 * beta)
        )
        assert_realized_matches_expected(stats)
        # the sample's expectation matches the analytic one (Monte Carlo error of 40,000 gaps)
        bt = BradleyTerry(beta)
        analytic = half_normal_mean(lambda x, bt=bt: 1 - bt.prob_correct(x, scale), std)
        assert stats["expected_error_rate"] == pytest.approx(analytic, abs=0.006)
        assert stats["realized_error_rate"] < previous
        previous = stats["realized_error_rate"]
    if design == "same-random":  # the paper's 5%–38% range
        low, high = BradleyTerry(10), BradleyTerry(0.5)
        assert 0.03 < half_normal_mean(lambda x: 1 - low.prob_correct(x, scale), std) < 0.06
        assert 0.36 < half_normal_mean(lambda x: 1 - high.prob_correct(x, scale), std) < 0.40


@pytest.mark.parametrize("annotator", ALL_MODELS, ids=lambda a: f"{a.model}-{a.params()}")
def test_every_model_realizes_its_expected_error(gaussian_world, annotator):
    for design in ("same-random", "same-similar", "cross-diversified"):
        *_, stats = labelled(gaussian_world, design, 40_000, annotator)
        assert_realized_matches_expected(stats)


def test_ability_pool_accuracy_is_exact():
    """The pool's accuracy curve (quadrature over the log-normal) equals the adaptive integral of
    its definition, and the Monte Carlo mean of the members who actually label."""
    x = np.array([0.0, 1e-3, 0.1, 0.5, 1.0, 3.0, 20.0])
    for pool in POOLS[:3]:
        for value, got in zip(x, pool.prob_correct(x, 1.0), strict=True):

            def member(z, value=value, pool=pool):
                a = pool.ability * np.exp(pool.spread * z)
                return np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi) * np.exp(-a * value)

            lognormal = (
                quad(member, -12, 12, epsabs=1e-14, limit=200)[0]
                if pool.spread
                else np.exp(-pool.ability * value)
            )
            miss = pool.useless + pool.perfect * (value == 0) + pool.typical * lognormal
            assert got == pytest.approx(1 - miss / 2, abs=1e-10)
        abilities = pool.draw_abilities(400_000, np.random.default_rng(0))
        assert np.mean(abilities == 0) == pytest.approx(pool.useless, abs=Z * 0.5 / 632)
        assert np.mean(np.isinf(abilities)) == pytest.approx(pool.perfect, abs=Z * 0.5 / 632)
        with np.errstate(invalid="ignore"):
            xi = 1 - 0.5 * np.exp(-abilities * 0.5)
        assert xi.mean() == pytest.approx(pool.prob_correct(np.array([0.5]), 1.0)[0], abs=0.003)


@pytest.mark.parametrize("annotator", ALL_MODELS, ids=lambda a: f"{a.model}-{a.params()}")
def test_accuracy_curves_are_increasing_concave_from_one_half(annotator):
    x = np.linspace(0, 8, 801)
    xi = annotator.prob_correct(x, 2.0)
    assert xi[0] == 0.5
    assert np.all(np.diff(xi) >= -1e-12) and np.all((xi >= 0.5) & (xi <= 1))
    if not isinstance(annotator, Perfect):  # perfect jumps to 1 right after 0 (concave too)
        assert np.all(np.diff(xi, 2) <= 1e-12)


def test_pool_ends_are_the_useless_and_the_perfect_annotator():
    x = np.array([0.0, 0.01, 1.0, 100.0])
    useless, perfect = POOLS[3], POOLS[4]
    assert np.all(useless.prob_correct(x, 1.0) == 0.5)
    assert perfect.prob_correct(x, 1.0).tolist() == Perfect().prob_correct(x, 1.0).tolist()
    assert POOLS[1].prob_correct(np.array([1e6]), 1.0)[0] == pytest.approx(1.0)


@pytest.mark.parametrize("annotator", ALL_MODELS, ids=lambda a: f"{a.model}-{a.params()}")
@pytest.mark.parametrize(("tau", "sigma"), [(0.5, 1.0), (2.0, 0.5), (0.1, 3.0)])
def test_cross_prompt_accuracy_is_at_least_same_prompt(annotator, tau, sigma):
    """Gaussian location-scale utilities: same-prompt Δr ~ N(0, 2σ²), cross ~ N(0, 2(σ² + τ²))."""
    scale = np.sqrt(sigma**2 + tau**2)
    same = half_normal_mean(lambda x: annotator.prob_correct(x, scale), np.sqrt(2) * sigma)
    cross = half_normal_mean(
        lambda x: annotator.prob_correct(x, scale), np.sqrt(2 * (sigma**2 + tau**2))
    )
    assert cross >= same - 1e-9


@pytest.mark.parametrize("noise", ["logistic", "laplace", "uniform"])
def test_cross_prompt_accuracy_on_other_location_scale_worlds(noise):
    """Non-Gaussian, symmetric unimodal ε: the gaps of the same 40,000 response draws, paired
    within and across prompts; cross ≥ same for every model (paired comparison, no sampling slack
    needed beyond Monte Carlo error)."""
    generator = np.random.default_rng(5)
    size = 40_000
    draw = getattr(generator, noise)
    eps = draw(size=(size, 2)) if noise != "uniform" else generator.uniform(-1, 1, (size, 2))
    mu = generator.standard_normal((size, 2)) * 0.5
    same = np.abs(eps[:, 0] - eps[:, 1])
    cross = np.abs(mu[:, 0] + eps[:, 0] - mu[:, 1] - eps[:, 1])
    scale = float(np.std(mu + eps))
    for annotator in ALL_MODELS:
        s = annotator.prob_correct(same, scale)
        c = annotator.prob_correct(cross, scale)
        diff = c - s
        assert diff.mean() >= -Z * diff.std() / np.sqrt(size), annotator


def test_labels_follow_the_golden_order_and_ties_are_coin_flips():
    generator = np.random.default_rng(0)
    r_a, r_b = generator.standard_normal((2, 10_000))
    labels, stats = annotate(Perfect(), r_a, r_b, 1.0, generator)
    assert labels.dtype == np.uint8 and np.array_equal(labels, (r_a > r_b).astype(np.uint8))
    assert stats["realized_error_rate"] == stats["expected_error_rate"] == 0.0
    ties = np.zeros(10_000)
    labels, stats = annotate(BradleyTerry(5), ties, ties, 1.0, generator)
    assert stats["tied_pairs"] == 10_000 and stats["expected_error_rate"] == 0.5
    assert abs(labels.mean() - 0.5) < Z * 0.005
    # a strong annotator on large gaps is almost always right, in both presentation orders
    big = generator.standard_normal(10_000) * 100
    labels, _ = annotate(Thurstone(10), big, -big, 1.0, generator)
    assert np.mean(labels == (big > 0)) > 0.999


def test_stats_report_what_the_study_asks(gaussian_world):
    r_a, r_b, labels, stats = labelled(gaussian_world, "cross-random", 5000, BradleyTerry(1))
    assert set(stats) >= {
        "pairs", "mean_abs_dr", "expected_error_rate", "realized_error_rate", "scale",
    }  # fmt: skip
    assert stats["pairs"] == 5000
    assert stats["mean_abs_dr"] == pytest.approx(np.abs(r_a - r_b).mean())
    wrong = labels.astype(bool) != (r_a > r_b)
    assert stats["realized_error_rate"] == pytest.approx(wrong.mean())
    assert stats["scale"] == pytest.approx(gaussian_world.std())
    # a given scale is used as is: doubling it halves the effective β
    *_, half = labelled(gaussian_world, "cross-random", 5000, BradleyTerry(2), scale=2 * 1.118)
    *_, full = labelled(gaussian_world, "cross-random", 5000, BradleyTerry(1), scale=1.118)
    assert half["expected_error_rate"] == pytest.approx(full["expected_error_rate"])


@pytest.mark.parametrize("annotator", ALL_MODELS, ids=repr)
def test_label_frequency_is_the_models_probability(annotator):
    """Each label is Bernoulli with the model's exact P(a ≻ b), in both presentation orders."""
    size = 5000
    generator = np.random.default_rng(12)
    for gap in (0.0, 0.5, 2.0):
        for sign in (1.0, -1.0):
            dr = np.full(size, sign * gap)
            labels, _ = annotate(annotator, dr, np.zeros(size), 1.0, generator)
            p = float(annotator.prob_first_wins(dr[:1], 1.0)[0])
            assert abs(labels.mean() - p) <= Z * np.sqrt(p * (1 - p) / size) + 1e-12, (gap, p)


def test_labels_are_coupled_across_quality_and_models():
    """Common random numbers: one uniform per pair, so on the same stream a label of the golden
    order stays so under every better annotator (larger β, a better pool, the golden order)."""
    generator = np.random.default_rng(4)
    r_a, r_b = generator.standard_normal((2, 20_000))
    ladders = (
        [BradleyTerry(beta) for beta in PAPER_BETAS] + [Perfect()],
        [Thurstone(beta) for beta in (0.5, 1, 10)] + [Perfect()],
        [AbilityPool(ability=a, spread=0.5, useless=0.2, perfect=0.1) for a in (0.3, 1, 3)],
    )
    for ladder in ladders:
        correct = [
            annotate(m, r_a, r_b, 1.0, np.random.default_rng(7))[0] == (r_a > r_b) for m in ladder
        ]
        for worse, better in itertools.pairwise(correct):
            assert np.all(better >= worse)
            assert better.mean() > worse.mean()
    # β = 1 and β = 10 disagree only where β = 1 errs
    low, high = (
        annotate(BradleyTerry(b), r_a, r_b, 1.0, np.random.default_rng(7))[0] for b in (1, 10)
    )
    assert np.all((low != high) <= (low != (r_a > r_b)))
    # the labels of the first pairs do not depend on how many follow
    first, _ = annotate(BradleyTerry(1), r_a[:500], r_b[:500], 1.0, np.random.default_rng(7))
    assert np.array_equal(first, low[:500])


def test_cells_share_their_pairs_and_uniforms(tmp_path):
    """The pairs and annotate stages: a cell's pairs are the first of its design's largest
    quantity, its held-out pairs the same at every quantity, and every annotator of a seed labels
    them with the same uniforms (labels coupled across β, prefixes across quantities)."""
    from embrm import stages

    spec = {
        "source": "synthetic", "kind": "gaussian", "train_prompts": 40, "train_responses": 6,
        "test_prompts": 5, "test_responses": 8, "dim": 4, "latent_dim": 4, "tau": 0.5,
        "sigma": 1.0, "sigma_spread": 0.0, "noise": 0.1, "nonlinearity": 0.0,
        "dtype": "float32", "seed": 1,
    }  # fmt: skip
    build(spec, tmp_path / "world")
    pairs, labels = {}, {}
    for n in (30, 200):
        path = tmp_path / f"pairs{n}.npz"
        stages.make_pairs(tmp_path / "world", "cross-random", n, 3, 50, path, of=200)
        with np.load(path) as stored:
            pairs[n] = dict(stored)
        for beta in (1, 10):
            out = tmp_path / f"labels{n}-{beta}.npz"
            spec = {"model": "bt", "beta": beta}
            stages.annotate(tmp_path / "world", path, spec, "std", 3, out, tmp_path / "s.json")
            with np.load(out) as stored:
                labels[n, beta] = dict(stored)
    for key in ("a", "b"):
        assert np.array_equal(pairs[30][key], pairs[200][key][:30])
    for key in ("heldout_a", "heldout_b"):
        assert np.array_equal(pairs[30][key], pairs[200][key])
    rewards = np.load(tmp_path / "world" / "train_rewards.npy").ravel()
    golden = rewards[pairs[200]["a"]] > rewards[pairs[200]["b"]]
    low, high = labels[200, 1]["label"], labels[200, 10]["label"]
    assert np.all((low != high) <= (low != golden)) and np.any(low != high)
    for beta in (1, 10):
        assert np.array_equal(labels[30, beta]["label"], labels[200, beta]["label"][:30])
        assert np.array_equal(labels[30, beta]["heldout_label"], labels[200, beta]["heldout_label"])


def test_annotation_is_reproducible():
    generator = np.random.default_rng(3)
    r_a, r_b = generator.standard_normal((2, 1000))
    for annotator in ALL_MODELS:
        runs = [annotate(annotator, r_a, r_b, 1.0, np.random.default_rng(9)) for _ in range(2)]
        assert np.array_equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]


def test_scale_resolution():
    assert resolve_scale("std", 1.7) == 1.7
    assert resolve_scale(6, 1.7) == 6.0
    with pytest.raises(ConfigError, match=r"annotation\.scale"):
        resolve_scale("std", 0.0)
    with pytest.raises(ConfigError, match=r"annotation\.scale"):
        resolve_scale(-1, 1.0)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"model": "bt", "beta": 0}, "annotators.x.beta"),
        ({"model": "bt", "beta": -1.0}, "annotators.x.beta"),
        ({"model": "thurstone", "beta": float("inf")}, "annotators.x.beta"),
        ({"model": "crowd"}, "annotators.x.model"),
        ({"model": "bt"}, "annotators.x"),
        ({"model": "perfect", "beta": 1}, "annotators.x.beta"),
        ({"model": "ability", "useless": 0.7, "perfect": 0.5}, "annotators.x.useless"),
        ({"model": "ability", "spread": 9}, "annotators.x.spread"),
        ({"model": "ability", "ability": 0}, "annotators.x.ability"),
    ],
)
def test_bad_annotators_name_the_key(spec, key):
    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}'")):
        make_annotator(spec, where="annotators.x")


@pytest.mark.parametrize(
    ("annotators", "key"),
    [
        ({"bt": {"model": "bt", "beta": [1, 0]}}, "annotators.bt.beta[1]"),
        ({"bt": {"model": "bt", "beta": -0.5}}, "annotators.bt.beta"),
        ({"bt": {"model": "btx", "beta": 1}}, "annotators.bt.model"),
        ({"bt": {"model": "ability", "useless": 0.6, "perfect": 0.6}}, "annotators.bt.useless"),
        ({"bt": {"model": "thurstone"}}, "annotators.bt"),
    ],
)
def test_plan_rejects_bad_annotators_before_any_job(annotators, key):
    config = copy.deepcopy(TINY_CONFIG)
    config["annotators"] = annotators
    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}'")):
        Plan(config)
    config["annotators"] = {"bt": {"model": "bt", "beta": 1}}
    config["grid"]["annotators"] = ["crowd"]
    with pytest.raises(ConfigError, match=r"config key 'grid\.annotators\[0\]'"):
        Plan(config)


def test_every_model_is_selectable_and_labelled_by_its_parameters():
    config = load(REPO / "config.yaml")
    plan = Plan(config)
    models = {plan.annotator_spec(run.annotator)["model"] for run in plan.runs}
    assert models >= {"bt", "thurstone", "ability"}
    assert set(MODELS) >= {"bt", "thurstone", "perfect", "ability"}
    labels = {label for labels in plan.annotator_labels.values() for label in labels}
    assert "ability-ability1-perfect0.1-spread1-useless0.1" in labels
    assert {"bt-beta0.5", "thurstone-beta1", "perfect"} <= labels
    # schema defaults fill the pool's parameters, so the label is the same whether written or not
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["annotators"]["pool"] = {"model": "ability"}
    assert "ability-ability1-perfect0.1-spread1-useless0.1" in Plan(config).annotator_labels["pool"]


def test_the_study_models_keep_their_examples():
    assert [a.params() for a in ALL_MODELS if isinstance(a, BradleyTerry)] == [
        {"beta": 0.5},
        {"beta": 10.0},
    ]
    assert {type(a) for a in ALL_MODELS} >= {BradleyTerry, Thurstone, Perfect, AbilityPool}
    assert [a.params() for a in ALL_MODELS if isinstance(a, AbilityPool)] == [
        p.params() for p in POOLS
    ]


@pytest.mark.parametrize("name", MODELS)
def test_schema_block_of_every_model_is_its_registry_entry(name):
    """The config schema's annotator block is derived from the model's declarations: enum, the
    parameters it accepts, which are required, their defaults and ranges."""
    model = MODELS[name]
    block = build_schema()["properties"]["annotators"]["additionalProperties"]
    assert block["properties"]["model"]["enum"] == list(MODELS)
    (then,) = [
        b["then"] for b in block["allOf"] if b["if"]["properties"]["model"] == {"const": name}
    ]
    assert set(then["properties"]) == {"model", *model.parameters}
    defaults = model.defaults()
    assert set(then.get("required", [])) == set(model.parameters) - set(defaults)
    for param, fragment in model.parameters.items():
        schema = then["properties"][param]
        assert schema.get("default", None) == defaults.get(param)
        assert schema["oneOf"][0]["type"] == fragment["type"] == "number"
    # every example is a valid config entry whose label spells every parameter
    config = load(REPO / "config.yaml")
    for params in model.examples:
        config["annotators"] = {"x": {"model": name, **params}}
        config["grid"]["annotators"] = ["x"]
        config["extra_grids"] = []
        plan = Plan(config)
        (label,) = plan.annotator_labels["x"]
        spec = plan.annotator_spec(label)
        assert label.startswith(name) and set(spec) == {"model", *model.parameters}
        assert make_annotator(spec).params() == {k: v for k, v in spec.items() if k != "model"}
    # a parameter of no model, and values out of range, are refused by the schema and the class
    config["annotators"] = {"x": {"model": name, **model.examples[0], "no_such_parameter": 1}}
    with pytest.raises(ConfigError, match=r"config key 'annotators\.x"):
        Plan(config)
    for param, fragment in model.parameters.items():
        for bad in (-1.0e7, 1.0e7, float("nan")):
            try:
                check_value(fragment, bad, "k")
            except ConfigError:
                spec = {"model": name, **model.examples[0], param: bad}
                with pytest.raises(ConfigError, match=rf"config key 'annotators\.x\.{param}"):
                    make_annotator(spec, where="annotators.x")
                if bad == bad:  # NaN is not valid YAML-schema input to compare
                    config["annotators"] = {"x": spec}
                    with pytest.raises(ConfigError, match=rf"'annotators\.x\.{param}"):
                        Plan(config)


@pytest.mark.parametrize("name", MODELS)
def test_the_quality_knob_of_every_model_reaches_its_summary_column(name):
    """A model's quality knob is one of its parameters, and the settings row holds it in the
    column :func:`quality_column` names, whatever the knob is called."""
    model = MODELS[name]
    if model.quality is None:
        assert quality_column(name) is None
        return
    assert model.quality in model.parameters
    params = {**model.defaults(), **model.examples[-1]}
    row = annotator_settings({"model": name, **params})
    column = quality_column(name)
    assert row[column] == params[model.quality]
    import pandas as pd

    frame = pd.DataFrame([row, annotator_settings({"model": "perfect"})])
    assert quality(frame).iloc[0] == params[model.quality] and np.isnan(quality(frame).iloc[1])


@pytest.mark.slow
def test_annotator_parameters_and_stats_reach_the_summary(tmp_path):
    config = deep_merge(
        TINY_CONFIG,
        {
            "annotators": {
                "th": {"model": "thurstone", "beta": 2},
                "pool": {"model": "ability", "ability": [0.5, 2]},
                "golden": {"model": "perfect"},
            },
            "heads": {"clf-lgb": {"params": {"n_estimators": 10}}},
            "tracking": {"enabled": False},
        },
    )
    config["grid"].update(
        annotators=["th", "pool", "golden"], designs=["cross-random"], heads=["clf-lgb"]
    )
    snakemake(tmp_path, "--cores", "2", "results/default/summary.csv", config=config)
    import pandas as pd

    summary = pd.read_csv(tmp_path / "results" / "default" / "summary.csv").set_index("annotator")
    assert set(summary.index) == {
        "thurstone-beta2", "perfect",
        "ability-ability0.5-perfect0.1-spread1-useless0.1",
        "ability-ability2-perfect0.1-spread1-useless0.1",
    }  # fmt: skip
    assert summary.loc["thurstone-beta2", "beta"] == 2
    assert summary.loc["thurstone-beta2", "annotator_model"] == "thurstone"
    pool = summary.loc["ability-ability2-perfect0.1-spread1-useless0.1"]
    assert (pool["annotator_ability"], pool["annotator_spread"]) == (2, 1)
    assert (pool["annotator_useless"], pool["annotator_perfect"]) == (0.1, 0.1)
    for column in ("pairs", "mean_abs_dr", "expected_error_rate", "realized_error_rate"):
        assert summary[f"annotation_{column}"].notna().all()
    assert summary.loc["perfect", "annotation_realized_error_rate"] == 0
    assert (summary["annotation_pairs"] == 200).all()
    # labels of the weaker pool are noisier than those of the stronger one
    weak = summary.loc["ability-ability0.5-perfect0.1-spread1-useless0.1"]
    assert weak["annotation_expected_error_rate"] > pool["annotation_expected_error_rate"]
