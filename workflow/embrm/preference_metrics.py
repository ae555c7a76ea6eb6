"""Test metrics of a world without a golden reward (:mod:`embrm.sources.preferences`).

The test pairs are *all* given pairs of the test split: every two responses of a unit (the
chosen/rejected pair of a pairwise row; every two scored responses of a multi-response prompt).
A pair's target is 1 when its first response is preferred, 0 when its second is, 1/2 for a tie
(the dataset's ``tie`` flag, or equal scores).

- ``pref_accuracy``: share of non-tied pairs whose preferred response scores higher; equal
  predicted scores count 1/2. Tied pairs are left out (their count is ``pref_tie_pairs``).
- ``pref_accuracy_<subset>``: the same within each subset (characters other than letters, digits,
  ``_``, ``.`` and ``-`` in the name become ``_``).
- ``pref_section_score`` (RewardBench's rule): within a section, the accuracy over all its
  non-tied pairs (its subsets weighted by their pair counts); then the unweighted mean over
  sections. Without configured sections every subset is its own section, so this is the plain
  mean of the subset accuracies.
- ``pref_log_loss``: the pair probability is σ(s_a − s_b), the Bradley-Terry probability of two
  pointwise scores; −mean[t·log p + (1 − t)·log(1 − p)] over all pairs, ties included with t = 1/2.
- ``pref_brier``: mean (p − t)² over all pairs.
- ``pref_ece``: expected calibration error over non-tied pairs in 10 equal-width bins of
  p(first preferred), with presentation orders symmetrised (each pair counted in both orders), so
  that the result does not depend on which side was listed first.

Per test prompt (``prompt_pair_counts``), the sum of the non-tied pairs' right values and their
count: the findings' interval over test prompts. Units of one prompt (the rows of a pairwise
dataset that share it) are not independent draws, so the prompt, not the pair, is the unit of
resampling, as the split is.

For the multi-response form, the existing Spearman and Best-of-N metrics are computed against the
dataset's scores (``spearman``, ``bon_gain``, ...); for pairwise forms they and every metric that
needs a golden reward are NaN.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# Metrics of :mod:`embrm.evaluation` that compare with a golden reward: NaN in a preference world
# whose rewards are only the observed order (pairwise forms).
GOLDEN_METRICS = (
    "bon_reward",
    "bon_gain_curve",
    "oracle_bon_reward",
    "random_pick_reward",
    "oracle_best_reward",
    "bon_gain",
    "oracle_bon_gain",
    "bon_gain_normalized",
    "spearman",
    "accuracy_vs_golden",
)
# ``spearman_defined_fraction`` stays: with K = 2 it is the share of non-tied test units whose two
# predictions differ, which is what the summary's check for constant predictions reads.
BINS = 10


def info(world_info: dict) -> dict | None:
    """The ``preferences`` block of a world's world.json (None: a world with a golden reward)."""
    return world_info.get("preferences")


def given_test_pairs(rewards: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every given pair of a (P, K) test split: flat ``a``, ``b``, target, unit."""
    prompts, responses = rewards.shape
    low, high = np.triu_indices(responses, k=1)
    unit = np.repeat(np.arange(prompts), low.size)
    a = unit * responses + np.tile(low, prompts)
    b = unit * responses + np.tile(high, prompts)
    flat = rewards.ravel()
    target = np.where(flat[a] > flat[b], 1.0, np.where(flat[a] < flat[b], 0.0, 0.5))
    return a, b, target, unit


def subset_metric(name: str) -> str:
    """The metric name of a subset's accuracy: characters that tables and MLflow keys do not
    take become ``_``."""
    return "pref_accuracy_" + re.sub(r"[^A-Za-z0-9_.-]", "_", str(name))


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def pair_metrics(
    scores: np.ndarray,
    rewards: np.ndarray,
    subsets: np.ndarray,
    names: list[str],
    sections: dict[str, list[str]] | None = None,
) -> dict:
    """The metrics of the module docstring for (P, K) predicted ``scores``."""
    a, b, target, unit = given_test_pairs(np.asarray(rewards, dtype=np.float64))
    flat = np.asarray(scores, dtype=np.float64).ravel()
    diff = flat[a] - flat[b]
    decided = target != 0.5
    right = np.where(diff == 0, 0.5, (diff > 0) == (target == 1.0))
    out: dict[str, float] = {
        "pref_pairs": float(a.size),
        "pref_tie_pairs": float(np.count_nonzero(~decided)),
        "pref_accuracy": float(right[decided].mean()) if decided.any() else float("nan"),
    }
    pair_subset = np.asarray(subsets)[unit]
    per_subset: dict[str, tuple[float, int]] = {}
    for code, name in enumerate(names):
        mask = decided & (pair_subset == code)
        count = int(mask.sum())
        per_subset[name] = (float(right[mask].mean()) if count else float("nan"), count)
        if len(names) > 1:
            out[subset_metric(name)] = per_subset[name][0]
    sections = sections or {name: [name] for name in names}
    section_scores = []
    for members in sections.values():
        counts = [per_subset[m][1] for m in members if m in per_subset]
        total = sum(counts)
        if total:
            section_scores.append(
                sum(per_subset[m][0] * per_subset[m][1] for m in members if per_subset[m][1])
                / total
            )
    out["pref_section_score"] = float(np.mean(section_scores)) if section_scores else float("nan")
    log_p, log_q = _log_sigmoid(diff), _log_sigmoid(-diff)
    out["pref_log_loss"] = float(-(target * log_p + (1 - target) * log_q).mean())
    p = np.exp(log_p)
    out["pref_brier"] = float(((p - target) ** 2).mean())
    out["pref_ece"] = expected_calibration_error(
        np.concatenate([p[decided], 1 - p[decided]]),
        np.concatenate([target[decided], 1 - target[decided]]),
    )
    return out


def prompt_pair_counts(
    scores: np.ndarray, rewards: np.ndarray, prompt_of_unit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per test prompt (codes 0..G−1 of each unit), the sum of its non-tied pairs' right values
    (equal predicted scores count 1/2, as in ``pref_accuracy``) and their count: their ratio of
    sums over all prompts is ``pref_accuracy``."""
    a, b, target, unit = given_test_pairs(np.asarray(rewards, dtype=np.float64))
    flat = np.asarray(scores, dtype=np.float64).ravel()
    diff = flat[a] - flat[b]
    decided = target != 0.5
    right = np.where(diff == 0, 0.5, (diff > 0) == (target == 1.0)) * decided
    prompt = np.asarray(prompt_of_unit)[unit]
    groups = int(np.max(prompt_of_unit)) + 1 if len(prompt_of_unit) else 0
    return (
        np.bincount(prompt, weights=right, minlength=groups),
        np.bincount(prompt, weights=decided.astype(float), minlength=groups),
    )


def split_prompt_codes(world_dir, split: str = "test") -> np.ndarray:
    """Each unit's prompt in ``split``, coded 0..G−1 in order of first appearance (from the world's
    ``preferences.parquet``, which lists the units of each split in order)."""
    import pandas as pd

    from .sources.preferences import UNITS_FILE

    units = pd.read_parquet(Path(world_dir) / UNITS_FILE, columns=["split", "p", "prompt"])
    test = units[units["split"] == split].sort_values("p", kind="stable")
    codes, _ = pd.factorize(test["prompt"], sort=False)
    return codes


def expected_calibration_error(p: np.ndarray, outcome: np.ndarray, bins: int = BINS) -> float:
    """Σ_bins (n_bin / n)·|mean p − mean outcome| over equal-width bins of p."""
    if p.size == 0:
        return float("nan")
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for index in range(bins):
        mask = which == index
        if mask.any():
            total += mask.sum() * abs(p[mask].mean() - outcome[mask].mean())
    return float(total / p.size)


def apply(world_dir, world_info: dict, results: dict, predictions: dict) -> dict:
    """Add the preference metrics to every aggregation's ``results`` (in place) and blank the
    metrics that need a golden reward. ``predictions``: aggregation -> (P, K) test scores.
    Returns, per aggregation, the per-test-prompt counts of :func:`prompt_pair_counts`
    (``pref_right``, ``pref_decided``; empty for a world with a golden reward)."""
    block = info(world_info)
    if block is None:
        return {}
    from .world import World

    world = World(world_dir)
    subsets = np.load(Path(world_dir) / "test_subsets.npy")
    prompts = split_prompt_codes(world_dir)
    if prompts.size != world.test.rewards.shape[0]:
        raise ValueError(
            f"{world_dir}: {prompts.size} test units in preferences.parquet, "
            f"{world.test.rewards.shape[0]} in the test rewards; rebuild the world"
        )
    per_prompt = {}
    for how, metrics in results.items():
        right, decided = prompt_pair_counts(predictions[how], world.test.rewards, prompts)
        per_prompt[how] = {"pref_right": right.tolist(), "pref_decided": decided.tolist()}
        metrics.update(
            pair_metrics(
                predictions[how],
                world.test.rewards,
                subsets,
                block["subsets"],
                block.get("sections") or None,
            )
        )
        # Pairwise rewards are only the observed order; multi-response scores are the dataset's
        # own, so Spearman and Best-of-N against them stay, but nothing is called golden.
        blank = ("accuracy_vs_golden",) if block.get("scores") else GOLDEN_METRICS
        for name in blank:
            if isinstance(metrics.get(name), list):
                metrics[name] = [float("nan")] * len(metrics[name])
            elif name in metrics:
                metrics[name] = float("nan")
    return per_prompt
