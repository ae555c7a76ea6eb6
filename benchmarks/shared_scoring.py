"""Scoring several models with one read of the test set (`training.scoring: cell`) against one
read per model (`training.scoring: run`).

    python benchmarks/shared_scoring.py                  # the paper-scale world, page cache warm
    python benchmarks/shared_scoring.py --cold           # evict the test file before each pass

Uses the world that `benchmarks/paper_scale.py` builds (D = 2048, 1,000,000 float16 test
embeddings, 4.1 GB); `--world` points at any other built world. Trains one model per head on the
world's first pairs (scoring cost does not depend on how well a model is trained, so the MLPs get
one epoch and clf-lgb a fixed number of rounds), then times, with the workflow's own score stage:

- one pass per model, as the train jobs of `training.scoring: run` make them;
- one pass for all models, as a cell's score job makes it;
- one pass that only reads, converts and checks the test embeddings.

It checks that both ways write identical predictions, and prints the seconds each way and the
saving. `--cold` drops the test file from the page cache before every pass (as on a node that has
not read it yet); without it every pass reads from the cache. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from embrm import stages  # noqa: E402
from embrm.heads.base import iter_chunks  # noqa: E402
from embrm.io import write_npz  # noqa: E402
from embrm.world import World  # noqa: E402

DEFAULT_WORLD = (
    Path(os.environ.get("TMPDIR", "/tmp"))
    / "embrm-bench-paper-scale"
    / "full"
    / "results"
    / "default"
    / "worlds"
    / "paper"
)
# Cheap fits: what matters here is the shape of each model, which fixes its scoring cost.
HEADS = {
    "bt-mlp": {"max_epochs": 1},
    "clf-mlp": {"max_epochs": 1},
    "clf-lgb": {"n_estimators": 300, "early_stopping_rounds": 300},
}


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache (clean pages only; no privileges needed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def train_models(world_dir: Path, workdir: Path, pairs: int, threads: int) -> dict[str, str]:
    world = World(world_dir)
    rows = world.train.prompts * world.train.responses
    g = np.random.default_rng(0)
    a = g.integers(rows, size=pairs)
    b = (a + 1 + g.integers(rows - 1, size=pairs)) % rows
    label = (world.train.rewards.ravel()[a] > world.train.rewards.ravel()[b]).astype(np.uint8)
    write_npz(workdir / "pairs.npz", a=a, b=b)
    write_npz(workdir / "labels.npz", label=label)
    models = {}
    for head, params in HEADS.items():
        out = workdir / "runs" / head
        if not (out / "model").is_dir():
            started = time.perf_counter()
            stages.train(
                world_dir, workdir / "pairs.npz", workdir / "labels.npz",
                {"type": head, "members": 1, "params": params}, seed=0, threads=threads,
                device="cpu", model_dir=out / "model", predictions_out=None,
                curves_out=out / "curves.csv", info_out=out / "train.json",
            )  # fmt: skip
            print(f"trained {head} in {time.perf_counter() - started:.0f} s")
        models[f"bt/{head}"] = str(out / "model")
    return models


def timed_score(world: Path, models: dict, out: Path, threads: int, cold: bool) -> float:
    shutil.rmtree(out, ignore_errors=True)
    if cold:
        evict(world / "test_embeddings.npy")
    started = time.perf_counter()
    stages.score(world, models, out, threads=threads, device="cpu")
    return time.perf_counter() - started


def read_pass(world_dir: Path, cold: bool) -> float:
    world = World(world_dir)
    if cold:
        evict(world.test.embeddings_path)
    started = time.perf_counter()
    for _ in iter_chunks(world.test.embeddings, world.test.dim, world.test.embeddings_path, "-"):
        pass
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, default=DEFAULT_WORLD, help="a built world")
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cold", action="store_true", help="evict the test file before each pass")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(os.environ.get("TMPDIR", "/tmp")) / "embrm-bench-shared-scoring",
    )
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()
    if not (args.world / "world.json").is_file():
        sys.exit(
            f"error: {args.world}: no built world there; run benchmarks/paper_scale.py first "
            "(or pass --world)"
        )
    args.workdir.mkdir(parents=True, exist_ok=True)
    models = train_models(args.world, args.workdir, args.pairs, args.threads)
    test = World(args.world).test
    print(f"test embeddings {test.embeddings_path}: {test.embeddings.shape}, "
          f"{test.embeddings.dtype}, {test.embeddings.nbytes / 2**30:.1f} GiB; "
          f"{'cold' if args.cold else 'warm'} page cache, {args.threads} thread(s)")  # fmt: skip
    read_pass(args.world, False)  # warm the cache (or settle it before eviction)

    read_only = read_pass(args.world, args.cold)
    separate = {}
    for name, model in models.items():
        out = args.workdir / "scores" / name.replace("/", "-")
        separate[name] = timed_score(args.world, {name: model}, out, args.threads, args.cold)
    together = timed_score(
        args.world, models, args.workdir / "scores-shared", args.threads, args.cold
    )
    for name in models:
        alone = args.workdir / "scores" / name.replace("/", "-") / f"{name}.npy"
        shared = args.workdir / "scores-shared" / f"{name}.npy"
        if alone.read_bytes() != shared.read_bytes():
            sys.exit(f"error: {name}: shared and separate predictions differ")
    scoring = json.loads((args.workdir / "scores-shared" / "scoring.json").read_text())

    print(f"\n{'pass':<34}{'wall s':>9}")
    print(f"{'read, convert and check only':<34}{read_only:9.1f}")
    for name, seconds in separate.items():
        print(f"{'score ' + name + ' alone':<34}{seconds:9.1f}")
    total = sum(separate.values())
    print(f"{'all separately (sum)':<34}{total:9.1f}")
    print(f"{'all in one pass':<34}{together:9.1f}   (of which reading "
          f"{scoring['read_seconds']:.1f} s)")  # fmt: skip
    print(f"\none read for {len(models)} models saves {total - together:.1f} s "
          f"({100 * (total - together) / total:.0f}% of scoring); predictions identical")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({
            "cold": args.cold, "threads": args.threads, "read_only_s": read_only,
            "separate_s": separate, "together_s": together, "scoring": scoring,
        }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
