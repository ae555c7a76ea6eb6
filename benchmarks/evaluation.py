"""Evaluation speed: exact Best-of-N against the study's sampled estimator, and the sampled
estimator's vectorized implementation against a per-prompt loop.

    python benchmarks/evaluation.py [--prompts 2000] [--responses 500] [--repeats 100]
    python benchmarks/evaluation.py --exact-only      # only the exact-vs-sampled comparison

First, at the default experiment's test shape (250 prompts x 500 responses) and at the given
shape (the study's 2,000 x 500 by default): the time of the exact Best-of-N (closed form over
ranks, every N from 1 to K) and of the sampled one (``--repeats`` shared orders), each with its
oracle, their ratio, the largest difference between the two curves (sampling noise), and the
time of the exact pick properties (KL, quantile, win rate, over-optimization fit). Then:
Prints the time of the vectorized Best-of-N (predictions and oracle), of the straightforward
per-prompt loop implementation of the same protocol, their ratio, and whether every number
agrees exactly; then the time of one full evaluation (Best-of-N, Spearman, held-out accuracy) and
of the per-prompt scipy Spearman it replaces. Predictions are float32 like a head's output; a
second pass uses predictions rounded to one decimal, so most prompts have tied scores (the
tree heads produce such ties) and the tie-breaking path is timed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workflow"))

from embrm.evaluation import evaluate
from embrm.evaluation_agreement import spearman_per_prompt
from embrm.evaluation_exact import best_of_n_exact, pick_quality
from embrm.evaluation_sampled import best_of_n, best_of_n_loop, bon_orders
from embrm.seeding import rng

N_VALUES = [2, 5, 10, 30, 50, 100, 300, 500]


def timed(function, *args, repeat: int = 1, **kwargs):
    """Best wall time of ``repeat`` calls, and the last result."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        best = min(best, time.perf_counter() - started)
    return best, result


def identical(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def exact_vs_sampled(prompts: int, responses: int, repeats: int, seed: int) -> float:
    """Print exact and sampled Best-of-N times at one shape; return the speed-up."""
    generator = np.random.default_rng(seed)
    shape = (prompts, responses)
    golden = generator.normal(size=shape) + generator.normal(scale=0.5, size=(prompts, 1))
    predictions = (golden + generator.normal(size=shape)).astype(np.float32)
    orders = bon_orders(responses, repeats, rng(seed, "bon"))
    sampled_s, sampled = timed(best_of_n, predictions, golden, orders, N_VALUES, repeat=3)
    exact_s, exact = timed(best_of_n_exact, predictions, golden, N_VALUES, repeat=3)
    quality_s, quality = timed(pick_quality, predictions, golden, exact["n_values"], repeat=3)
    noise = np.max(np.abs(np.subtract(sampled["bon_reward"], exact["bon_reward"])))
    print(f"\nexact vs sampled Best-of-N, {prompts} x {responses} (with the oracle):")
    print(f"  sampled ({repeats} repeats) {sampled_s:8.3f} s")
    print(f"  exact (every N = 1..K) {exact_s:8.3f} s")
    print(f"  speed-up               {sampled_s / exact_s:8.1f}x")
    print(f"  largest |sampled - exact| over the curve {noise:.2e} (sampling noise)")
    print(
        f"  exact pick properties (KL, quantile, win rate, fit) {quality_s:.3f} s; "
        f"KL at N={exact['bon_n_max']}: {quality['bon_kl']:.3f} "
        f"(formula {quality['bon_kl_bound']:.3f})"
    )
    return sampled_s / exact_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--responses", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--exact-only", action="store_true", help="only the exact-vs-sampled comparison"
    )
    args = parser.parse_args()
    print(f"host: {platform.node()}, {os.cpu_count()} CPUs, numpy {np.__version__}")
    for prompts in dict.fromkeys((250, args.prompts)):
        exact_vs_sampled(prompts, args.responses, args.repeats, args.seed)
    if args.exact_only:
        return 0

    generator = np.random.default_rng(args.seed)
    shape = (args.prompts, args.responses)
    golden = generator.normal(size=shape) + generator.normal(scale=0.5, size=(args.prompts, 1))
    predictions = (golden + generator.normal(size=shape)).astype(np.float32)
    orders = bon_orders(args.responses, args.repeats, rng(args.seed, "bon"))
    heldout = (
        generator.integers(golden.size, size=2000),
        generator.integers(golden.size, size=2000),
        generator.integers(2, size=2000),
    )
    print(
        f"shape: {args.prompts} prompts x {args.responses} responses, {args.repeats} repeats, "
        f"N = {N_VALUES}"
    )

    ok = True
    for label, scores in (
        ("float32 predictions", predictions),
        ("rounded predictions (ties)", np.round(predictions, 1)),
    ):
        vector_s, vector = timed(best_of_n, scores, golden, orders, N_VALUES, repeat=3)
        loop_s, loop = timed(best_of_n_loop, scores, golden, orders, N_VALUES)
        same = identical(vector, loop)
        ok &= same
        print(f"\nBest-of-N, {label}:")
        print(f"  vectorized          {vector_s:8.3f} s")
        print(f"  per-prompt loop     {loop_s:8.3f} s")
        print(f"  speed-up            {loop_s / vector_s:8.1f}x")
        print(f"  identical numbers   {same}")
        print(
            f"  BoN-{vector['bon_n_max']} gain {vector['bon_gain']:.4f} "
            f"(oracle {vector['oracle_bon_gain']:.4f}, normalized "
            f"{vector['bon_gain_normalized']:.3f})"
        )

    full_s, metrics = timed(evaluate, predictions, golden, orders, N_VALUES, heldout, repeat=3)
    print(f"\nfull evaluation (BoN + Spearman + held-out accuracy): {full_s:.3f} s")

    from scipy.stats import spearmanr

    spearman_s, rho = timed(spearman_per_prompt, predictions, golden, repeat=3)
    scipy_s, reference = timed(
        lambda: np.array(
            [spearmanr(p, g).statistic for p, g in zip(predictions, golden, strict=True)]
        )
    )
    difference = float(np.max(np.abs(rho - reference)))
    ok &= difference < 1e-12
    print(
        f"Spearman: vectorized {spearman_s:.3f} s, per-prompt scipy {scipy_s:.3f} s "
        f"({scipy_s / spearman_s:.1f}x), max difference {difference:.1e}"
    )
    print(f"mean Spearman {metrics['spearman']:.4f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
