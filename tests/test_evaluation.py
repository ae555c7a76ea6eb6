"""Test-set metrics against hand-computed cases, invariances, and the loop reference."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import TINY_CONFIG
from embrm import stages
from embrm.config import validate
from embrm.evaluation import evaluate, evaluate_per_prompt
from embrm.evaluation_agreement import (
    average_ranks,
    pair_accuracy,
    spearman_per_prompt,
    spearman_summary,
)
from embrm.evaluation_bon import clip_n_values
from embrm.evaluation_exact import best_of_n_exact, pick_quality
from embrm.evaluation_sampled import (
    best_of_n,
    best_of_n_loop,
    bon_orders,
    bon_pick_positions,
    dense_ranks,
)
from embrm.io import write_json, write_npz
from embrm.seeding import rng


def same(a: dict, b: dict) -> bool:
    """Exact equality of two metric dicts, NaN equal to NaN."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# Two prompts, four responses, two orders. Prompt 1 has a tie (responses 0 and 1) that the order
# decides: the first of the tied responses in the order wins.
GOLDEN = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
PRED = np.array([[0.1, 0.9, 0.5, 0.2], [0.3, 0.3, 0.8, 0.1]])
ORDERS = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])


def test_best_of_n_matches_the_hand_computed_case():
    # Picks by hand (golden reward of the pick), orders A and B, prompts 0 and 1:
    # N=1: A: r0, r0 -> 1, 4   B: r3, r3 -> 4, 1    mean 2.5
    # N=2: A: r1, r0 (tie, first in order) -> 2, 4   B: r2, r2 -> 3, 2    mean 2.75
    # N=4: A: r1, r2 -> 2, 2   B: r1, r2 -> 2, 2    mean 2.0
    result = best_of_n(PRED, GOLDEN, ORDERS, [1, 2, 4, 10])
    assert result["n_values"] == [1, 2, 4]  # 10 is clipped to K = 4 and merged
    assert result["bon_reward"] == [2.5, 2.75, 2.0]
    assert result["bon_gain_curve"] == [0.0, 0.25, -0.5]
    assert result["random_pick_reward"] == 2.5
    assert result["bon_n_max"] == 4
    assert result["bon_gain"] == -0.5
    # Oracle (pick by golden): N=1 as above; N=2: A: 2, 4  B: 4, 2; N=4: 4 everywhere.
    assert result["oracle_bon_reward"] == [2.5, 3.0, 4.0]
    assert result["oracle_best_reward"] == 4.0
    assert result["oracle_bon_gain"] == 1.5
    assert result["bon_gain_normalized"] == pytest.approx(-1 / 3)
    assert same(result, best_of_n_loop(PRED, GOLDEN, ORDERS, [1, 2, 4, 10]))


def test_oracle_predictions_reach_the_oracle_and_constant_ones_pick_first():
    result = best_of_n(GOLDEN, GOLDEN, ORDERS, [1, 2, 4])
    assert result["bon_reward"] == result["oracle_bon_reward"]
    assert result["bon_gain_normalized"] == 1.0
    # Constant predictions: every response ties, so the first in the order is picked: a random
    # pick, whose expectation is the mean reward (exactly, over these two mirrored orders).
    flat = best_of_n(np.zeros_like(GOLDEN), GOLDEN, ORDERS, [1, 2, 4])
    assert flat["bon_reward"] == [2.5, 2.5, 2.5]
    assert flat["bon_gain"] == 0.0


CASES = pytest.mark.parametrize(
    ("prompts", "responses", "repeats", "n_values", "kind"),
    [
        (30, 50, 20, [2, 5, 10, 30, 50], "float"),
        (30, 50, 20, [2, 5, 10, 30, 50], "ties"),
        (17, 13, 9, [1, 3, 13, 100], "ties"),
        (5, 3, 4, [2, 500], "constant"),
        (1, 1, 3, [1, 2], "float"),
        (40, 64, 1, [64, 7, 2], "float32"),
    ],
)


def random_case(prompts, responses, repeats, kind):
    generator = np.random.default_rng(prompts * 1000 + responses)
    golden = generator.normal(size=(prompts, responses))
    pred = golden + generator.normal(size=golden.shape)
    if kind == "ties":
        pred = np.round(pred)  # many ties inside each prompt
    elif kind == "constant":
        pred = np.zeros_like(pred)
    elif kind == "float32":
        pred = pred.astype(np.float32)
    return pred, golden, bon_orders(responses, repeats, generator)


@CASES
def test_vectorized_and_loop_implementations_give_identical_numbers(
    prompts, responses, repeats, n_values, kind
):
    pred, golden, orders = random_case(prompts, responses, repeats, kind)
    assert same(
        best_of_n(pred, golden, orders, n_values), best_of_n_loop(pred, golden, orders, n_values)
    )


@CASES
def test_torch_picks_are_the_numpy_picks(prompts, responses, repeats, n_values, kind, monkeypatch):
    """The GPU path (training.device: cuda) run on the CPU: the same responses, so the same
    numbers; small blocks make it cover several blocks of repeats."""
    from embrm import evaluation_torch

    monkeypatch.setattr(evaluation_torch, "BLOCK_BYTES", 3 * prompts * responses * 8)
    pred, golden, orders = random_case(prompts, responses, repeats, kind)
    ns = clip_n_values(n_values, responses)
    assert np.array_equal(
        evaluation_torch.bon_pick_positions(pred, orders, ns, "cpu"),
        bon_pick_positions(pred, orders, ns),
    )
    pairs = np.arange(min(3, pred.size))
    heldout = (pairs, pairs[::-1], np.ones(pairs.size))
    assert same(
        evaluate(pred, golden, orders, n_values, heldout, device="cpu"),
        evaluate(pred, golden, orders, n_values, heldout),
    )


def test_evaluation_device_follows_the_training_device(monkeypatch):
    from embrm.errors import ConfigError
    from embrm.heads import device

    assert stages.evaluation_device("cpu", "cpu") is None
    assert stages.evaluation_device("auto", "cpu") is None
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    with pytest.raises(ConfigError, match=r"'training\.device'"):
        stages.evaluation_device("cuda", "cuda")
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    assert stages.evaluation_device("cuda", "cpu") == "cuda"
    assert stages.evaluation_device("auto", "cuda") == "cuda"
    assert stages.evaluation_device("auto", "cpu") is None


@pytest.mark.parametrize(
    "transform",
    [
        lambda x: 3.0 * x + 7.0,
        lambda x: x**3 + 5.0 * x,
        lambda x: np.exp(x / 4.0),
        lambda x: 1.0 / (1.0 + np.exp(-x)),
    ],
    ids=["affine", "cubic", "exp", "sigmoid"],
)
@pytest.mark.parametrize("ties", [False, True])
def test_best_of_n_and_spearman_are_invariant_to_increasing_transforms(transform, ties):
    generator = np.random.default_rng(7)
    golden = generator.normal(size=(25, 40))
    pred = golden + generator.normal(size=golden.shape)
    if ties:
        pred = np.round(pred, 1)
    transformed = transform(pred)
    # The transform must keep distinct values distinct in floating point for the test to apply.
    assert (dense_ranks(transformed)[0] == dense_ranks(pred)[0]).all()
    orders = bon_orders(40, 15, generator)
    ns = [2, 5, 10, 40]
    assert same(best_of_n(pred, golden, orders, ns), best_of_n(transformed, golden, orders, ns))
    assert same(spearman_summary(pred, golden), spearman_summary(transformed, golden))
    assert np.array_equal(
        spearman_per_prompt(pred, golden), spearman_per_prompt(transformed, golden), equal_nan=True
    )


def test_spearman_hand_computed_with_ties_and_constant_rows():
    golden = np.array([[1.0, 2.0, 3.0, 4.0]] * 4)
    pred = np.array(
        [
            [1.0, 2.0, 3.0, 4.0],  # identical order: 1
            [4.0, 3.0, 2.0, 1.0],  # reversed: -1
            [1.0, 2.0, 2.0, 3.0],  # ranks 1, 2.5, 2.5, 4: 4.5 / sqrt(4.5 * 5)
            [5.0, 5.0, 5.0, 5.0],  # constant: undefined
        ]
    )
    rho = spearman_per_prompt(pred, golden)
    assert rho[:3] == pytest.approx([1.0, -1.0, 4.5 / np.sqrt(22.5)])
    assert np.isnan(rho[3])
    summary = spearman_summary(pred, golden)
    assert summary["spearman"] == pytest.approx((1.0 - 1.0 + 4.5 / np.sqrt(22.5)) / 3)
    assert summary["spearman_defined_fraction"] == 0.75
    assert np.isnan(spearman_summary(pred[3:], golden[3:])["spearman"])


def test_spearman_matches_scipy():
    from scipy.stats import rankdata, spearmanr

    generator = np.random.default_rng(3)
    golden = generator.normal(size=(12, 30))
    pred = np.round(golden + generator.normal(size=golden.shape), 1)
    expected = [spearmanr(p, g).statistic for p, g in zip(pred, golden, strict=True)]
    assert spearman_per_prompt(pred, golden) == pytest.approx(expected, abs=1e-12)
    assert np.array_equal(average_ranks(pred), rankdata(pred, axis=1))


def test_pair_accuracy_hand_computed():
    scores = np.array([0.0, 1.0, 2.0, 2.0])
    golden = np.array([0.0, 1.0, 2.0, 3.0])
    a = np.array([1, 0, 2, 3])
    b = np.array([0, 1, 3, 2])
    label = np.array([1, 1, 0, 1])
    # margins: +1, -1, 0 (tie), 0 (tie); golden margins: +1, -1, -1, +1
    # vs labels: right, wrong (label says a wins), half, half -> 2 / 4
    # vs golden: right, right, half, half -> 3 / 4
    result = pair_accuracy(scores, golden, a, b, label)
    assert result == {"accuracy_vs_labels": 0.5, "accuracy_vs_golden": 0.75}
    empty = pair_accuracy(scores, golden, a[:0], b[:0], label[:0])
    assert np.isnan(empty["accuracy_vs_labels"]) and np.isnan(empty["accuracy_vs_golden"])


def test_evaluate_combines_every_metric_and_rejects_bad_input():
    heldout = (np.array([0, 5]), np.array([1, 4]), np.array([0, 1]))
    metrics = evaluate(PRED, GOLDEN, ORDERS, [1, 2, 4], heldout)
    assert metrics["bon_gain"] == -0.5
    assert metrics["spearman_defined_fraction"] == 1.0
    # pair (0, 1): scores 0.1 < 0.9, label 0 (second wins): right; golden 1 < 2: right.
    # pair (5, 4): scores 0.3 vs 0.3: half; label 1: half; golden 3 < 4: half.
    assert metrics["accuracy_vs_labels"] == 0.75 and metrics["accuracy_vs_golden"] == 0.75
    with pytest.raises(ValueError, match="NaN"):
        evaluate(np.where(PRED > 0.8, np.nan, PRED), GOLDEN, ORDERS, [2], heldout)
    with pytest.raises(ValueError, match="permutation"):
        best_of_n(PRED, GOLDEN, np.array([[0, 0, 1, 2]]), [2])
    with pytest.raises(ValueError, match=r"\(P, K\)"):
        best_of_n(PRED[:, :3], GOLDEN, ORDERS, [2])
    with pytest.raises(ValueError, match=">= 1"):
        clip_n_values([0, 2], 4)


def test_orders_are_reproducible_from_the_seed():
    first = bon_orders(50, 5, rng(0, "bon"))
    assert np.array_equal(first, bon_orders(50, 5, rng(0, "bon")))
    assert not np.array_equal(first, bon_orders(50, 5, rng(1, "bon")))
    assert (np.sort(first, axis=1) == np.arange(50)).all()


@pytest.mark.parametrize("method", ["sampled", "exact"])
def test_evaluate_stage_scores_every_ensemble_aggregation(tmp_path, method):
    """The stage on a real (tiny) world: mean, min and first of a 3-member ensemble, with the
    study's sampled Best-of-N and with the exact one (which draws no orders)."""
    from embrm.sources import build_world
    from embrm.world import World

    spec = validate(TINY_CONFIG)["worlds"]["tiny"]
    build_world(spec, tmp_path / "world")
    golden = World(tmp_path / "world").test.rewards
    generator = np.random.default_rng(0)
    members = golden[None] + generator.normal(size=(3, *golden.shape))
    np.save(tmp_path / "predictions.npy", members.astype(np.float32))
    heldout_a = generator.integers(golden.size, size=30)
    heldout_b = generator.integers(golden.size, size=30)
    write_npz(
        tmp_path / "pairs.npz",
        a=np.arange(2),
        b=np.arange(2),
        heldout_a=heldout_a,
        heldout_b=heldout_b,
    )
    write_npz(
        tmp_path / "labels.npz",
        label=np.ones(2, np.uint8),
        heldout_label=generator.integers(2, size=30).astype(np.uint8),
    )
    write_json(
        tmp_path / "stats.json",
        {"annotator": {"model": "bt", "beta": 1}, "train": {}, "heldout": {"scale": 1.5}},
    )
    write_json(
        tmp_path / "train.json",
        {"head": {"type": "bt-mlp", "members": 3}, "fit_seconds": 1, "predict_seconds": 1},
    )
    with open(tmp_path / "curves.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["member", "epoch", "train_loss"], [0, 1, 0.7]])
    evaluation = {
        "bon": method,
        "repeats": 7,
        "n_values": [2, 10, 1000],
        "seed": 3,
        "uncertainty_lambdas": [0, 2.5],
    }
    stages.evaluate(
        tmp_path / "world",
        tmp_path / "predictions.npy",
        tmp_path / "pairs.npz",
        tmp_path / "labels.npz",
        tmp_path / "stats.json",
        tmp_path / "train.json",
        tmp_path / "curves.csv",
        {"world": "tiny"},
        evaluation,
        tmp_path / "metrics.json",
    )
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert set(record["metrics"]) == {"mean", "min", "first", "mean-var0", "mean-var2.5"}
    assert record["evaluation"]["n_values"] == [2, 10, golden.shape[1]]
    assert record["evaluation"]["bon"] == method
    orders = bon_orders(golden.shape[1], 7, rng(3, "bon")) if method == "sampled" else None
    heldout = (heldout_a, heldout_b, np.load(tmp_path / "labels.npz")["heldout_label"])
    # The annotator's true P(first wins) on the held-out pairs: bt with β = 1 at scale 1.5
    # (the formula is checked in test_true_probability_follows_the_annotator).
    from embrm.annotators import make_annotator
    from embrm.calibration import true_probability

    flat = golden.ravel()
    truth = true_probability(
        make_annotator({"model": "bt", "beta": 1}), flat[heldout_a], flat[heldout_b], 1.5
    )
    stored = members.astype(np.float32)
    from embrm.uncertainty import disagreement_auc

    auc = record["metrics"]["mean"].pop("disagreement_auc")
    assert auc == disagreement_auc(stored, golden, heldout_a, heldout_b)
    variance = stored.astype(np.float64).var(axis=0)
    for how, combined in (
        ("mean", stored.mean(axis=0)),
        ("min", stored.min(axis=0)),
        ("first", stored[0]),
        ("mean-var2.5", stored.mean(axis=0) - 2.5 * variance),
    ):
        expected = evaluate(combined, golden, orders, [2, 10, 1000], heldout, heldout_truth=truth)
        stored_metrics = record["metrics"][how]
        differing = {k for k in expected if not same({k: expected[k]}, {k: stored_metrics.get(k)})}
        assert same(stored_metrics, expected), (how, differing)
    assert record["metrics"]["mean"]["bon_gain"] > 0  # predictions are golden plus noise
    assert same(record["metrics"]["mean-var0"], record["metrics"]["mean"])  # λ = 0 is the mean
    # Per-test-prompt values beside the metrics, per aggregation; tables and MLflow ignore them.
    per_prompt = record["per_prompt"]
    assert per_prompt["bon_n"] == golden.shape[1]
    assert set(per_prompt["aggregations"]) == set(record["metrics"])
    for how, values in per_prompt["aggregations"].items():
        assert len(values["bon_gain"]) == len(values["spearman"]) == golden.shape[0]
        assert np.mean(values["bon_gain"]) == pytest.approx(record["metrics"][how]["bon_gain"])
    assert np.mean(per_prompt["oracle_bon_gain"]) == pytest.approx(
        record["metrics"]["mean"]["oracle_bon_gain"]
    )
    from embrm.summary import run_row
    from embrm.tracking import run_metrics

    record["run"] = {
        "world": "tiny",
        "design": "same-random",
        "n": 2,
        "seed": 0,
        "annotator": "bt-beta1",
        "head": "bt-mlp",
        "run_dir": "x",
    }
    record["training"]["device"] = "cpu"
    without = {k: v for k, v in record.items() if k != "per_prompt"}
    assert json.dumps(run_row(record), default=str) == json.dumps(run_row(without), default=str)
    assert run_metrics(record, {}) == run_metrics(without, {})


def test_per_prompt_values_reproduce_the_run_metrics():
    predictions, golden, orders = random_case(30, 20, 6, "ties")
    heldout = (np.array([0, 5]), np.array([1, 4]), np.array([0, 1]))
    metrics, per_prompt = evaluate_per_prompt(predictions, golden, orders, [2, 5, 20], heldout)
    assert same(metrics, evaluate(predictions, golden, orders, [2, 5, 20], heldout))
    gain, oracle = np.array(per_prompt["bon_gain"]), np.array(per_prompt["oracle_bon_gain"])
    assert gain.mean() == pytest.approx(metrics["bon_gain"], rel=1e-12)
    assert oracle.mean() == pytest.approx(metrics["oracle_bon_gain"], rel=1e-12)
    assert gain.sum() / oracle.sum() == pytest.approx(metrics["bon_gain_normalized"], rel=1e-12)
    rho = np.array(per_prompt["spearman"])
    assert np.array_equal(rho, spearman_per_prompt(predictions, golden), equal_nan=True)
    assert np.nanmean(rho) == pytest.approx(metrics["spearman"], rel=1e-12)
    # Prompt 3 by hand: the pick at N = 20 in each repeat's order, first on ties.
    p = 3
    picks = [golden[p, order[np.argmax(predictions[p, order])]] for order in orders]
    assert gain[p] == pytest.approx(np.mean(picks) - golden[p].mean(), rel=1e-12)
    assert oracle[p] == pytest.approx(golden[p].max() - golden[p].mean(), rel=1e-12)


# Exact Best-of-N (embrm.evaluation_exact) against analytic oracles: every N-subset enumerated.


def enumerate_picks(pred_row: np.ndarray, n: int) -> np.ndarray:
    """(K,) probability that Best-of-n picks each response, by enumerating every n-subset; a tie
    for the top of a subset is shared equally (a uniformly random order among the tied)."""
    from itertools import combinations

    k = pred_row.size
    probability = np.zeros(k)
    subsets = list(combinations(range(k), n))
    for subset in subsets:
        subset = np.array(subset)
        top = subset[pred_row[subset] == pred_row[subset].max()]
        probability[top] += 1.0 / top.size
    return probability / len(subsets)


def enumerated(pred: np.ndarray, golden: np.ndarray, n: int, values=None) -> float:
    """Mean over prompts of the expected ``values`` (golden by default) of the Best-of-n pick."""
    values = golden if values is None else values
    return float(np.mean([enumerate_picks(p, n) @ v for p, v in zip(pred, values, strict=True)]))


def small_case(responses: int, seed: int, kind: str):
    generator = np.random.default_rng(seed)
    golden = generator.normal(size=(6, responses))
    pred = golden + generator.normal(size=golden.shape)
    if kind == "ties":
        pred = np.round(pred)  # several tie groups per prompt
        golden[0, :] = golden[0, -1]  # golden ties as well (a constant golden prompt)
        golden[1, 0] = golden[1, -1]
    elif kind == "constant":
        pred[:] = 1.0
    elif kind == "mixed":
        pred[1] = 0.0  # one constant prompt among distinct ones
    return pred, golden


SMALL = pytest.mark.parametrize(
    ("responses", "kind"),
    [(1, "float"), (2, "ties"), (5, "float"), (7, "ties"), (8, "constant"), (9, "mixed")],
)


@SMALL
def test_exact_best_of_n_equals_enumerating_every_subset(responses, kind):
    pred, golden = small_case(responses, responses, kind)
    ns = list(range(1, responses + 1))
    result = best_of_n_exact(pred, golden, ns)
    expected = [enumerated(pred, golden, n) for n in ns]
    assert result["bon_reward"] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    oracle = [enumerated(golden, golden, n) for n in ns]
    assert result["oracle_bon_reward"] == pytest.approx(oracle, rel=1e-12, abs=1e-12)
    assert result["bon_gain"] == pytest.approx(expected[-1] - golden.mean(), abs=1e-12)


@SMALL
def test_exact_pick_quality_equals_enumeration(responses, kind):
    """KL from uniform, within-prompt quantile, win rate and the standardized proxy and golden
    rewards of the pick, each against its enumeration; the usual bound never below the KL."""
    from embrm.evaluation_exact import kl_upper_bound

    pred, golden = small_case(responses, responses + 100, kind)
    ns = list(range(1, responses + 1))
    quality = pick_quality(pred, golden, ns)
    kl, quantile, win, proxy, gold = [], [], [], [], []
    z = lambda x: (x - x.mean()) / x.std() if x.std() > 0 else np.zeros_like(x)  # noqa: E731
    for n in ns:
        picks = np.array([enumerate_picks(p, n) for p in pred])
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(picks > 0, picks * np.log(picks * responses), 0.0)
        kl.append(terms.sum(axis=1).mean())
        below = (golden[:, None, :] < golden[:, :, None]).sum(axis=2)
        equal = (golden[:, None, :] == golden[:, :, None]).sum(axis=2)
        share = (below + 0.5 * (equal - 1)) / max(responses - 1, 1)
        if responses == 1:
            share[:] = 0.5
        quantile.append((picks * share).sum(axis=1).mean())
        win.append((picks * (below + 0.5 * equal) / responses).sum(axis=1).mean())
        proxy.append(np.mean([p @ z(row) for p, row in zip(picks, pred, strict=True)]))
        gold.append(np.mean([p @ z(row) for p, row in zip(picks, golden, strict=True)]))
    assert quality["bon_kl_curve"] == pytest.approx(kl, rel=1e-10, abs=1e-12)
    assert quality["bon_quantile_curve"] == pytest.approx(quantile, rel=1e-12, abs=1e-12)
    assert quality["bon_win_rate_curve"] == pytest.approx(win, rel=1e-12, abs=1e-12)
    assert quality["bon_proxy_z_curve"] == pytest.approx(proxy, rel=1e-10, abs=1e-12)
    assert quality["bon_gold_z_curve"] == pytest.approx(gold, rel=1e-10, abs=1e-12)
    if kind == "float":
        # Without replacement the pick is more concentrated than over N independent draws: the
        # exact KL is at or above the i.i.d. bound log N − (N − 1)/N, and log K at N = K.
        assert (np.array(quality["bon_kl_curve"]) >= kl_upper_bound(ns) - 1e-12).all()
        assert quality["bon_kl"] == pytest.approx(np.log(responses), abs=1e-12)
    assert quality["bon_kl_curve"][0] == pytest.approx(0.0, abs=1e-12)  # N = 1 is uniform
    if kind == "constant":  # every response ties: Best-of-N is a uniform pick at every N
        assert quality["bon_kl_curve"] == pytest.approx([0.0] * responses, abs=1e-12)
        assert quality["bon_win_rate"] == pytest.approx(0.5)
    assert quality["proxy_gold_gap"] == pytest.approx(proxy[-1] - gold[-1], abs=1e-10)


@pytest.mark.parametrize("kind", ["float", "ties"])
def test_exact_best_of_n_is_the_mean_of_the_sampled_estimator(kind):
    """The study's estimator is unbiased for the exact value: over many random orders its mean
    lies within sampling error of it, at every N (ties broken by the order on both sides)."""
    pred, golden = small_case(9, 3, kind)
    ns = [1, 2, 4, 9]
    orders = bon_orders(9, 4000, np.random.default_rng(11))
    exact = best_of_n_exact(pred, golden, ns)["bon_reward"]
    picked = (
        golden.ravel()
        .take(bon_pick_positions(pred, orders, ns) + (np.arange(6) * 9)[None, :, None])
        .mean(axis=1)
    )  # (repeats, N): per-repeat mean over prompts
    mean, error = picked.mean(axis=0), picked.std(axis=0, ddof=1) / np.sqrt(picked.shape[0])
    assert np.all(np.abs(mean - np.array(exact)) <= 4 * error + 1e-12)
    # At N = K the sampled estimator has no randomness left without ties: equal to rounding.
    if kind == "float":
        assert best_of_n(pred, golden, orders[:3], [9])["bon_reward"] == pytest.approx(exact[-1:])


@pytest.mark.parametrize("responses", [2, 7, 60])
def test_the_kl_formula_bounds_best_of_n_over_independent_draws(responses):
    """Beirami et al.'s log N − (N − 1)/N is an upper bound for N draws *with* replacement
    (pick = the j-th lowest with probability (j/K)^N − ((j − 1)/K)^N), never below its KL;
    the exact KL without replacement (embrm's and the study's protocol) is above both."""
    from embrm.evaluation_exact import kl_upper_bound

    n = np.arange(1, responses + 1)[:, None]
    j = np.arange(1, responses + 1)[None, :]
    independent = (j / responses) ** n - ((j - 1) / responses) ** n
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(independent > 0, independent * np.log(independent * responses), 0.0)
    kl_independent = terms.sum(axis=1)
    bound = kl_upper_bound(n.ravel())
    assert (bound >= kl_independent - 1e-12).all()
    pred = np.arange(float(responses))[None, :]
    exact = pick_quality(pred, pred, list(n.ravel()))["bon_kl_curve"]
    assert (np.array(exact) >= kl_independent - 1e-12).all()
    assert (np.array(exact)[1:] > bound[1:]).all()


def test_pick_probabilities_are_stable_and_sum_to_one():
    from embrm.evaluation_exact import cumulative_pick_probabilities, pick_probabilities

    for k in (1, 2, 10, 500, 3000):
        weights = pick_probabilities(k)
        assert np.isfinite(weights).all() and (weights >= 0).all()
        assert weights.sum(axis=1) == pytest.approx(np.ones(k), abs=1e-10)
        assert weights[-1, -1] == pytest.approx(1.0)  # Best-of-K picks the top score
        assert weights[:, -1] == pytest.approx(np.arange(1, k + 1) / k)  # top is in the subset
        assert weights[0] == pytest.approx(np.full(k, 1.0 / k))  # Best-of-1 is uniform
    cumulative = cumulative_pick_probabilities(12)
    running = np.concatenate([np.zeros((12, 1)), np.cumsum(pick_probabilities(12), axis=1)], 1)
    assert cumulative == pytest.approx(running, abs=1e-14)
    assert pick_probabilities(5)[1] == pytest.approx(np.arange(5) / 10)  # C(j-1, 1) / C(5, 2)


@pytest.mark.parametrize("transform", [lambda x: 3.0 * x + 7.0, lambda x: np.exp(x / 4.0)])
def test_exact_best_of_n_is_invariant_to_increasing_transforms(transform):
    pred, golden = small_case(40, 1, "ties")
    ns = [2, 5, 40]
    first, second = pick_quality(pred, golden, ns), pick_quality(transform(pred), golden, ns)
    assert same(best_of_n_exact(pred, golden, ns), best_of_n_exact(transform(pred), golden, ns))
    for key in ("bon_kl_curve", "bon_quantile_curve", "bon_win_rate_curve", "bon_gold_z_curve"):
        assert first[key] == second[key], key


def test_exact_per_prompt_values_reproduce_the_run_metrics():
    predictions, golden, _ = random_case(30, 20, 1, "ties")
    heldout = (np.array([0, 5]), np.array([1, 4]), np.array([0, 1]))
    metrics, per_prompt = evaluate_per_prompt(predictions, golden, None, [2, 5, 20], heldout)
    assert same(metrics, evaluate(predictions, golden, None, [2, 5, 20], heldout))
    gain, oracle = np.array(per_prompt["bon_gain"]), np.array(per_prompt["oracle_bon_gain"])
    assert gain.mean() == pytest.approx(metrics["bon_gain"], rel=1e-12)
    assert oracle.mean() == pytest.approx(metrics["oracle_bon_gain"], rel=1e-12)
    p = 3
    expected = enumerate_picks(predictions[p], 20) @ golden[p] - golden[p].mean()
    assert gain[p] == pytest.approx(expected, rel=1e-12)


def test_gao_fit_recovers_a_known_curve_and_the_peak_is_located():
    from embrm.overoptimization import fitted_peak_kl, gao_fit, peak

    d = np.sqrt([0.2, 0.8, 1.5, 2.4, 3.3, 4.1])
    alpha, beta = gao_fit(d, d * (0.9 - 0.25 * d))
    assert (alpha, beta) == pytest.approx((0.9, 0.25), rel=1e-12)
    assert fitted_peak_kl(alpha, beta) == pytest.approx((0.9 / 0.5) ** 2)
    assert fitted_peak_kl(1.0, -0.1) == float("inf")
    assert np.isnan(gao_fit([0.0, 1.0], [0.0, 1.0])[0])  # one distance: no fit
    assert peak([0.0, 0.5, 0.7, 0.6]) == 3
    assert peak([0.0, 0.5, 0.7, 0.7 - 1e-15]) == 3  # a flat top within rounding
    assert peak([0.0, 0.5, 0.6, 0.7]) == 4


def test_over_optimizing_model_peaks_before_k():
    """A model that prefers responses by a proxy which agrees with the golden reward up to a
    point and then disagrees (the best-looking responses are bad) peaks before N = K, with
    β > 0; a perfect model does not."""
    generator = np.random.default_rng(5)
    golden = generator.normal(size=(200, 60))
    proxy = golden.copy()
    proxy[golden > 1.2] = 10.0 - golden[golden > 1.2]  # the top by proxy: golden 1.2 .. ~3
    quality = pick_quality(proxy, golden, [2, 5, 10, 30, 60])
    assert quality["bon_peak_n"] < 60 and quality["bon_peak_before_k"] == 1.0
    assert quality["gao_beta"] > 0 and quality["proxy_gold_gap"] > 0
    perfect = pick_quality(golden, golden, [2, 5, 10, 30, 60])
    assert perfect["bon_peak_n"] == 60 and perfect["bon_peak_before_k"] == 0.0
    assert perfect["proxy_gold_gap"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", ["exact", "sampled"])
def test_bon_method_comes_from_the_config(method):
    from embrm.evaluation import bon_draws, bon_method

    evaluation = validate({**TINY_CONFIG, "evaluation": {"bon": method}})["evaluation"]
    assert bon_method(evaluation) == method
    orders = bon_draws(evaluation, 12)
    assert (orders is None) == (method == "exact")
    assert validate(TINY_CONFIG)["evaluation"]["bon"] == "exact"  # the default


def test_unknown_bon_method_names_the_key():
    from embrm.errors import ConfigError
    from embrm.evaluation import bon_method

    with pytest.raises(ConfigError, match=r"evaluation\.bon"):
        validate({**TINY_CONFIG, "evaluation": {"bon": "approximate"}})
    with pytest.raises(ValueError, match=r"'evaluation\.bon'"):
        bon_method({"bon": "approximate"})


# Calibration of pair probabilities (embrm.calibration).


def test_calibration_hand_computed():
    from embrm.calibration import brier, expected_calibration_error, log_loss

    p = np.array([0.9, 0.8, 0.3, 0.05])
    y = np.array([1, 0, 0, 0])
    assert log_loss(p, y) == pytest.approx(
        -(np.log(0.9) + np.log(0.2) + np.log(0.7) + np.log(0.95)) / 4
    )
    assert brier(p, y) == pytest.approx((0.01 + 0.64 + 0.09 + 0.0025) / 4)
    # Bins of width 1/15: 0.9 and 0.8 fall in bins 13 and 12, 0.3 in 4, 0.05 in 0; each alone.
    assert expected_calibration_error(p, y) == pytest.approx((0.1 + 0.8 + 0.3 + 0.05) / 4)
    # Two in one bin: their errors cancel before the absolute value.
    assert expected_calibration_error(np.array([0.5, 0.5]), np.array([1, 0])) == 0.0


def test_a_model_with_the_true_probabilities_is_calibrated():
    """Probabilities equal to the truth: ECE against the truth is 0 exactly, and against labels
    drawn from the truth only binomial noise (within three standard errors of its size)."""
    from embrm.calibration import BINS, calibration

    generator = np.random.default_rng(4)
    truth = generator.uniform(size=20_000)
    label = (generator.random(truth.size) < truth).astype(np.uint8)
    result = calibration(truth, label, truth)
    assert result["calibration_ece_vs_truth"] == 0.0
    assert result["calibration_brier_vs_truth"] == 0.0
    which = np.minimum((truth * BINS).astype(int), BINS - 1)
    noise = sum(np.sqrt(np.sum(truth[which == k] * (1 - truth[which == k]))) for k in range(BINS))
    assert result["calibration_ece_vs_labels"] <= 3 * noise / truth.size
    # A model sharper than the truth is not calibrated: its ECE is far above that noise.
    sharper = 1 / (1 + np.exp(-3 * np.log(truth / (1 - truth))))
    assert calibration(sharper, label, truth)["calibration_ece_vs_labels"] > 10 * noise / truth.size
    # Log loss against the truth is the cross-entropy, lowest (the truth's entropy) at the truth.
    assert (
        result["calibration_log_loss_vs_truth"]
        < calibration(sharper, label, truth)["calibration_log_loss_vs_truth"]
    )


def test_pair_probability_from_pointwise_scores():
    """σ(s_a − s_b); for classifier probabilities p it equals P(a wins | exactly one wins)."""
    from embrm.calibration import pair_probability

    logits = np.array([2.0, -1.0, 0.0, 800.0])
    a, b = np.array([0, 2, 3]), np.array([1, 0, 1])
    expected = 1 / (1 + np.exp(-(logits[a] - logits[b])))
    assert pair_probability(logits, a, b) == pytest.approx(expected)
    p = 1 / (1 + np.exp(-logits[:3]))  # a classifier's probabilities, from its logits
    a, b = np.array([0, 2]), np.array([1, 0])
    one_wins = p[a] * (1 - p[b]) / (p[a] * (1 - p[b]) + p[b] * (1 - p[a]))
    assert pair_probability(logits[:3], a, b) == pytest.approx(one_wins, rel=1e-9)


def test_true_probability_follows_the_annotator():
    from embrm.annotators import make_annotator
    from embrm.calibration import true_probability

    annotator = make_annotator({"model": "bt", "beta": 2.0})
    ga, gb = np.array([1.0, 0.0, 3.0]), np.array([0.0, 1.0, 3.0])
    expected = 1 / (1 + np.exp(-2.0 * (ga - gb) / 0.5))
    assert true_probability(annotator, ga, gb, 0.5) == pytest.approx(expected)


# Ensemble uncertainty (embrm.uncertainty).


def test_uncertainty_aggregations_hand_computed():
    from embrm.uncertainty import aggregations, combine

    assert aggregations([1, 0.5, 1.0]) == ("mean", "min", "first", "mean-var1", "mean-var0.5")
    members = np.array([[[1.0, 4.0]], [[3.0, 4.0]]])  # 2 members, 1 prompt, 2 responses
    # mean (2, 4), variance (1, 0): λ = 3 prefers the agreed-on response more strongly.
    assert combine(members, "mean-var3").tolist() == [[-1.0, 4.0]]
    assert np.array_equal(combine(members, "mean-var0"), combine(members, "mean"))
    assert combine(members, "min").tolist() == [[1.0, 4.0]]


def test_disagreement_auc_hand_computed():
    from embrm.uncertainty import disagreement_auc

    golden = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    # Pairs (first, second) with the first golden-worse: the mean margin should be negative.
    a, b = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4])
    members = np.zeros((2, 6))
    # pair 0: right, members agree (margins -1, -1); pair 1: right, disagree (-2, 0)
    # pair 2: wrong, disagree strongly (+3, -1); pair 3: wrong, agree (+1, +1)
    members[:, 0], members[:, 1] = (0.0, 0.0), (1.0, 1.0)
    members[:, 2] = (3.0, 1.0)
    members[:, 3] = (0.0, 0.0)
    members[:, 4] = (-1.0, -1.0)
    # margins (M, pairs): m0 = [-1, -2, 3, 1], m1 = [-1, 0, 1, 1]; std over members:
    # [0, 1, 1, 0]; errors: pairs 2 and 3. Comparisons wrong vs right: (1 vs 0) 1, (1 vs 1) ½,
    # (0 vs 0) ½, (0 vs 1) 0 -> 2 / 4.
    assert disagreement_auc(members, golden, a, b) == 0.5
    # Wrong pairs flagged perfectly: margins m0 = [-1, -2, 5, 4], m1 = [-1, 0, 1, 0]; std
    # [0, 1, 2, 2]; the two errors disagree more than either correct pair.
    members[:, 2], members[:, 3], members[:, 4] = (3.0, 1.0), (-2.0, 0.0), (-6.0, 0.0)
    assert disagreement_auc(members, golden, a, b) == 1.0
    assert np.isnan(disagreement_auc(members[:, :2], golden[:2], a[:1], b[:1]))


@pytest.mark.parametrize("kind", ["float", "ties", "constant"])
def test_ranked_prompts_average_ranks_match_rankdata(kind):
    from embrm.evaluation_exact import RankedPrompts

    pred, _, _ = random_case(20, 31, 1, kind)
    assert np.array_equal(RankedPrompts(pred).average_ranks(), average_ranks(pred))
