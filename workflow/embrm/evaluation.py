"""Test-set metrics of one run: Best-of-N, per-prompt Spearman, order-consistency accuracy,
pair calibration, assembled into the run's record (:func:`evaluate_per_prompt`).

Best-of-N is computed one of two ways (``evaluation.bon``). ``exact`` (the default) is the
expectation over every N-subset of a prompt's responses, in closed form over the ranks of the
predictions (``embrm.evaluation_exact``): no sampling noise, and faster. ``sampled`` is the
study's estimator (``embrm.evaluation_sampled``), kept so that its numbers stay reproducible.
Whatever the estimator, the pick's KL from uniform sampling, its within-prompt quantile and win
rate, and the over-optimization curves are exact expectations
(:func:`embrm.evaluation_exact.pick_quality`). The agreement metrics are
``embrm.evaluation_agreement``'s; the parts both estimators share, ``embrm.evaluation_bon``'s.
Only numpy is imported: evaluation jobs start fast.
"""

from __future__ import annotations

import numpy as np

from .evaluation_agreement import (
    pair_accuracy,
    pair_calibration,
    spearman_per_prompt,
    summarize_spearman,
)
from .evaluation_bon import bon_summary, clip_n_values
from .evaluation_exact import exact_best_of_n, exact_oracle, pick_quality
from .evaluation_sampled import best_of_n_picks, bon_gain_per_prompt, bon_orders, oracle_picks

# Scalar metrics that depend on the predictions (the others describe the test set and the draws).
PREDICTION_METRICS = (
    "bon_gain",
    "bon_gain_normalized",
    "spearman",
    "spearman_defined_fraction",
    "accuracy_vs_labels",
    "accuracy_vs_golden",
)
BON_METHODS = ("exact", "sampled")


def bon_method(evaluation: dict) -> str:
    """The Best-of-N estimator the ``evaluation`` config asks for (``bon``, default exact)."""
    method = evaluation.get("bon", "exact")
    if method not in BON_METHODS:
        raise ValueError(
            f"config key 'evaluation.bon': expected one of {list(BON_METHODS)}, got {method!r}"
        )
    return method


def bon_draws(evaluation: dict, responses: int) -> np.ndarray | None:
    """The sampled estimator's response orders (seeded by ``evaluation.seed`` only, shared by
    every run), or None for the exact estimator, which draws nothing."""
    if bon_method(evaluation) == "exact":
        return None
    from .seeding import rng

    return bon_orders(responses, evaluation["repeats"], rng(evaluation["seed"], "bon"))


def oracle_for(golden: np.ndarray, orders: np.ndarray | None, ns: list[int], *, device=None):
    """The oracle's Best-of-N, computed once per test set and passed to every :func:`evaluate`
    of it: its picks under the sampled estimator (``orders``), its expectations under the exact
    one (``orders`` None)."""
    if orders is None:
        return exact_oracle(golden, ns)
    return oracle_picks(golden, orders, ns, device=device)


def evaluate(
    predictions: np.ndarray,
    golden: np.ndarray,
    orders: np.ndarray | None,
    n_values,
    heldout: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    oracle=None,
    device: str | None = None,
    heldout_truth: np.ndarray | None = None,
) -> dict:
    """All test metrics of one (P, K) prediction array. Best-of-N is exact when ``orders`` is
    None, else the sampled estimator on those orders (picking with torch on ``device``).

    ``heldout_truth``: the annotator's true P(first wins) of each held-out pair, for calibration
    against the truth (``embrm.calibration``)."""
    return evaluate_per_prompt(
        predictions,
        golden,
        orders,
        n_values,
        heldout,
        oracle=oracle,
        device=device,
        heldout_truth=heldout_truth,
    )[0]


def evaluate_per_prompt(
    predictions: np.ndarray,
    golden: np.ndarray,
    orders: np.ndarray | None,
    n_values,
    heldout: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    oracle=None,
    device: str | None = None,
    heldout_truth: np.ndarray | None = None,
) -> tuple[dict, dict]:
    """:func:`evaluate`'s metrics, and the per-test-prompt values behind them: ``bon_gain`` and
    ``oracle_bon_gain`` at the largest N and ``spearman`` (NaN where undefined), (P,) lists each.

    The per-prompt values are kept apart from the metrics so that no table or tracker takes
    them for scalar metrics; the findings resample test prompts with them.
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    golden = np.asarray(golden, dtype=np.float64)
    if not np.isfinite(predictions).all():
        raise ValueError("predictions contain NaN or inf")
    ns = clip_n_values(n_values, golden.shape[1])
    if orders is None:
        metrics, picked, oracle_picked, ranked = exact_best_of_n(predictions, golden, ns, oracle)
        gain = picked - golden.mean(axis=1)
        oracle_gain = oracle_picked - golden.mean(axis=1)
    else:
        ns, picked, oracle, golden = best_of_n_picks(
            predictions, golden, orders, ns, oracle, device
        )
        metrics = bon_summary(ns, picked.mean(axis=(0, 1)), oracle.mean(axis=(0, 1)), golden)
        gain = bon_gain_per_prompt(picked, golden)
        oracle_gain = bon_gain_per_prompt(oracle, golden)
        ranked = None
    metrics.update(pick_quality(predictions, golden, ns, ranked=ranked))
    rho = spearman_per_prompt(predictions, golden)
    metrics.update(summarize_spearman(rho))
    metrics.update(pair_accuracy(predictions.ravel(), golden.ravel(), *heldout))
    metrics.update(pair_calibration(predictions, heldout, heldout_truth))
    per_prompt = {
        "bon_gain": gain.tolist(),
        "oracle_bon_gain": oracle_gain.tolist(),
        "spearman": rho.tolist(),
    }
    return metrics, per_prompt
