"""What storing embeddings as float16 does to the metrics.

    python benchmarks/float16.py            # D = 2048 (the paper's width), 4,000 × 10 train
    python benchmarks/float16.py --dim 256  # faster

Builds one synthetic world twice, float32 and float16, from the same seed (the float16 world is the
float32 one rounded: generation is identical up to the final cast), draws the same pairs and labels
(same-prompt random, BT β = 1), trains every head on each with the same seeds, and prints per head
the BoN-500 gain, its normalized form and the per-prompt Spearman for both dtypes, the difference,
and the spread of the same metric across training seeds for scale. Also prints the largest relative
rounding error of the stored embeddings.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from embrm.annotators import BradleyTerry, annotate  # noqa: E402
from embrm.designs import make_pairs  # noqa: E402
from embrm.evaluation_agreement import spearman_summary  # noqa: E402
from embrm.evaluation_sampled import best_of_n, bon_orders, oracle_picks  # noqa: E402
from embrm.heads import make_head  # noqa: E402
from embrm.heads.base import PairData  # noqa: E402
from embrm.seeding import rng  # noqa: E402
from embrm.sources.synthetic import build  # noqa: E402
from embrm.world import World  # noqa: E402
from heads import world_spec  # noqa: E402

N_VALUES = [2, 5, 10, 30, 50, 100, 300, 500]
METRICS = ("bon_gain", "bon_gain_normalized", "spearman")


def world(dim: int, dtype: str, workdir: Path) -> World:
    # The heads benchmark's world, with the study's 10 responses per training prompt.
    shape = {"pairs": 4000, "test_prompts": 200, "test_responses": 500, "dim": dim}
    spec = {**world_spec(shape), "train_responses": 10, "dtype": dtype}
    directory = workdir / f"world-d{dim}-{dtype}"
    if not (directory / "world.json").is_file():
        build(spec, directory)
    return World(directory)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--heads", default="bt-mlp,clf-mlp,clf-lgb")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "embrm-bench-fp16"
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    worlds = {dtype: world(args.dim, dtype, args.workdir) for dtype in ("float32", "float16")}
    full, half = (worlds[d].test.embeddings for d in ("float32", "float16"))
    error = np.abs(np.asarray(half[:20], np.float32) - full[:20]) / np.abs(full[:20]).max()
    print(f"float16 rounding: largest error {error.max():.2e} of the largest |value|")

    reference = worlds["float32"]
    rewards = reference.train.rewards
    a, b = make_pairs(rewards, "same-random", args.pairs, rng(0, "fp16-pairs"))
    flat = rewards.ravel()
    label, _ = annotate(BradleyTerry(1.0), flat[a], flat[b], reference.reward_std, rng(0, "fp16"))
    golden = reference.test.rewards
    orders = bon_orders(golden.shape[1], 100, rng(0, "fp16-orders"))
    oracle = oracle_picks(golden, orders, N_VALUES)

    results = {}  # (head, dtype, seed) -> metrics
    seeds = [int(s) for s in args.seeds.split(",")]
    for head_type in args.heads.split(","):
        for dtype, w in worlds.items():
            data = PairData(w.train.flat_embeddings, a, b, label, source=w.train.embeddings_path)
            for seed in seeds:
                head = make_head(head_type, seed=seed, device="cpu", threads=args.threads)
                scores = head.fit(data).predict_reward(w.test.embeddings)
                bon = best_of_n(scores, golden, orders, N_VALUES, oracle=oracle)
                results[head_type, dtype, seed] = {
                    "bon_gain": bon["bon_gain"],
                    "bon_gain_normalized": bon["bon_gain_normalized"],
                    "spearman": spearman_summary(scores, golden)["spearman"],
                }
                print(f"{head_type} {dtype} seed {seed}: {results[head_type, dtype, seed]}")

    print(f"\nD = {args.dim}, {args.pairs} pairs, seeds {seeds}: mean over seeds; 'diff' = "
          "float16 − float32 (mean of per-seed differences); 'seed sd' = std over seeds (float32)")  # fmt: skip
    print(f"{'head':<9}{'metric':<21}{'float32':>9}{'float16':>9}{'diff':>10}{'seed sd':>9}")
    for head_type in args.heads.split(","):
        for metric in METRICS:
            f32 = np.array([results[head_type, "float32", s][metric] for s in seeds])
            f16 = np.array([results[head_type, "float16", s][metric] for s in seeds])
            spread = f32.std(ddof=1) if len(seeds) > 1 else float("nan")
            print(f"{head_type:<9}{metric:<21}{f32.mean():9.4f}{f16.mean():9.4f}"
                  f"{(f16 - f32).mean():+10.4f}{spread:9.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
