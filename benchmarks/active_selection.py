"""Cost of one active-annotation round at the study's shapes.

    python benchmarks/active_selection.py                 # 40,000 × 10 responses, D = 2,048
    python benchmarks/active_selection.py --batch 500     # a smaller round

A round of a cross-prompt active design at paper scale: 40,000 prompts × 10 responses of
dimension D = 2,048, a bt-mlp selection model (D → 1024 → 512 → 1, so penultimate width 512), a
pool of 100,000 unlabelled cross-prompt candidates, a batch of ``--batch`` pairs to select, and
``--past`` pairs already labelled (for the past-aware rule). For every rule it times, with the
package's own code: drawing the pool (:func:`embrm.active.pool.draw_pool`), the selection model's
features of every distinct pool response (one forward pass each) and, for ``pastdopt``, of the
labelled pairs, and the selection itself. The clf-lgb stand-in (features = the embeddings,
d = 2,048) is timed on ``--stand-in-batch`` picks and its per-pick cost printed.

The embeddings are generated on demand (a fixed rank-32 construction plus noise, read block by
block like a memory-mapped world), so the 3.3 GB array is never held in memory; the model's
weights are random (the cost of a forward pass and of a selection does not depend on training).
Training between rounds is not included: it is the train stage's cost at that number of labels.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from embrm.active import RULES  # noqa: E402
from embrm.active.features import SelectionModel  # noqa: E402
from embrm.active.pool import draw_pool, pair_keys  # noqa: E402
from embrm.heads.torch_common import build_mlp, setup_torch  # noqa: E402


class GeneratedEmbeddings:
    """(N, D) float32 rows made on demand: rank-``latent`` structure plus small noise."""

    def __init__(self, rows: int, dim: int, latent: int = 32, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.shape = (rows, dim)
        self.z = rng.normal(size=(rows, latent)).astype(np.float32)
        self.w = (rng.normal(size=(latent, dim)) / np.sqrt(latent)).astype(np.float32)
        self.noise = (0.1 * rng.normal(size=(4099, dim))).astype(np.float32)

    def __getitem__(self, index):
        index = np.asarray(index)
        return self.z[index] @ self.w + self.noise[index % self.noise.shape[0]]


class RandomHead:
    """A bt-mlp-shaped torch model with random weights, as the selection model reads it."""

    def __init__(self, dim: int, hidden: list[int], threads: int):
        _, device = setup_torch("cpu", threads, 0)
        self.model_ = build_mlp(dim, hidden).eval()
        self.device_ = device


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - started


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=40_000)
    parser.add_argument("--responses", type=int, default=10)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--hidden", type=int, nargs="+", default=[1024, 512])
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--past", type=int, default=10_000)
    parser.add_argument("--stand-in-batch", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    rows = args.prompts * args.responses
    embeddings = GeneratedEmbeddings(rows, args.dim)
    rng = np.random.default_rng(0)
    past = draw_pool(args.prompts, args.responses, "cross", args.past, np.empty(0, np.int64), rng)
    labelled = pair_keys(past.a, past.b, rows)
    print(
        f"{args.prompts:,} prompts × {args.responses} responses, D = {args.dim}, selection model "
        f"{args.dim} → {' → '.join(map(str, args.hidden))} → 1, cross-prompt pool of "
        f"{args.pool:,}, batch {args.batch:,}, {args.past:,} pairs labelled, {args.threads} threads"
    )
    model = SelectionModel(RandomHead(args.dim, args.hidden, args.threads), "random bt-mlp")
    candidates, pool_s = timed(
        draw_pool, args.prompts, args.responses, "cross", args.pool, labelled, rng
    )
    (diff, dr_hat), features_s = timed(model.pair_features, embeddings, candidates.a, candidates.b)
    responses = np.unique(np.concatenate([candidates.a, candidates.b])).size
    print(f"pool draw {pool_s:.2f} s; features of {responses:,} pool responses {features_s:.1f} s")
    (past_diff, past_dr), past_s = timed(model.pair_features, embeddings, past.a, past.b)
    print(f"features of the {args.past:,} labelled pairs {past_s:.1f} s")
    candidates.diff, candidates.dr_hat = diff, dr_hat
    candidates.past_diff, candidates.past_dr_hat = past_diff, past_dr
    for name, rule in RULES.items():
        picks, select_s = timed(
            rule.select, candidates, args.batch, rng=np.random.default_rng(1), ridge=1e-3
        )
        assert np.unique(picks).size == picks.size == min(args.batch, candidates.size)
        total = pool_s + select_s
        if getattr(rule, "NEEDS_MODEL", False):
            total += features_s
        if getattr(rule, "NEEDS_PAST", False):
            total += past_s
        print(f"{name:>13}: selection {select_s:7.2f} s, round {total:7.2f} s (without training)")
    if args.stand_in_batch:
        # clf-lgb's stand-in: a linear model, so h is the embedding itself (d = D).
        stand_in = SelectionModel(RandomHead(args.dim, [], args.threads), "linear stand-in")
        (diff, dr_hat), features_s = timed(
            stand_in.pair_features, embeddings, candidates.a, candidates.b
        )
        candidates.diff, candidates.dr_hat = diff, dr_hat
        _, select_s = timed(RULES["dopt"].select, candidates, args.stand_in_batch, ridge=1e-3)
        print(
            f"stand-in dopt (d = {args.dim}): features {features_s:.1f} s, {args.stand_in_batch} "
            f"picks {select_s:.2f} s ({1e3 * select_s / args.stand_in_batch:.0f} ms per pick)"
        )


if __name__ == "__main__":
    main()
