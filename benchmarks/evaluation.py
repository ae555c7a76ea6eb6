"""Evaluation speed at paper shape: vectorized Best-of-N against a per-prompt loop.

    python benchmarks/evaluation.py [--prompts 2000] [--responses 500] [--repeats 100]

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

from embrm.evaluation import (
    best_of_n,
    best_of_n_loop,
    bon_orders,
    evaluate,
    spearman_per_prompt,
)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--responses", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

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
    print(f"host: {platform.node()}, {os.cpu_count()} CPUs, numpy {np.__version__}")

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
