"""Benchmark of the reward-model heads at the study's scale, and the search behind clf-lgb's defaults.

    python benchmarks/heads.py              # D = 2048, 40,000 pairs, 100,000 test embeddings
    python benchmarks/heads.py --quick      # D = 256, 4,000 pairs, 10,000 test embeddings
    python benchmarks/heads.py --tune-lgb   # the clf-lgb default search (validation data only)

For each head it prints the training time, the evaluation time on the test embeddings (read from a
memory-mapped .npy file), the achieved GFLOP/s and its share of this machine's fp32 matrix-multiply
peak (measured first, with large torch matmuls at the same thread count), the validation accuracy,
and, for the MLP heads, the same figures for a straightforward implementation of the study's
scripts: BT pairs fed in both orders, a fresh random batch drawn for every step
(``randperm(n)[:batch]``, ceil(n / batch) steps per epoch), the two sides of a pair through the
network in separate calls, sigmoid + BCELoss, and for evaluation the whole test array in one tensor.
Both procedures get the same data, split, initial weights, optimizer, batch size, epoch limit and
early stopping (patience 3 on the validation loss, best epoch kept), and validation accuracy is
measured on the same held-out pairs. So the baseline measures the released code's work per step,
not the study's protocol (split by example, its stopping rule, final weights): that is
``protocol: study``, compared with embrm's in ``benchmarks/protocols.py``.

FLOPs are counted for the matrix products a training step needs: forward 2·Σ in·out per row;
backward 2·Σ in·out for weight gradients plus 2·Σ in·out for input gradients of every layer but
the first (embeddings need no gradient). Element-wise work is not counted, so GFLOP/s is a lower
bound on the arithmetic actually done.

Data: a synthetic world (``embrm.sources.synthetic``) with 2 responses per training prompt, one
same-prompt pair per prompt, labels from the Bradley-Terry annotator (β = 1 by default), built
once and cached under ``--workdir``. The machine should be otherwise idle: shared cores make every
figure slower and noisier (the peak is re-measured at the end to show drift).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from embrm.annotators import BradleyTerry, annotate  # noqa: E402
from embrm.designs import make_pairs  # noqa: E402
from embrm.evaluation_agreement import spearman_summary  # noqa: E402
from embrm.heads import HEAD_TYPES, make_head  # noqa: E402
from embrm.heads.base import PairData, pair_accuracy  # noqa: E402
from embrm.heads.torch_common import TorchHead  # noqa: E402
from embrm.seeding import rng  # noqa: E402
from embrm.world import World  # noqa: E402

FULL = {"dim": 2048, "pairs": 40_000, "test_prompts": 200, "test_responses": 500}
QUICK = {"dim": 256, "pairs": 4_000, "test_prompts": 20, "test_responses": 500}
MLP_HEADS = ("bt-mlp", "clf-mlp")


# -- timing -------------------------------------------------------------------------------------
class Clock:
    """Wall and process CPU time of a block. On a shared machine the CPU-time rates stay close to
    what an idle machine gives, while wall-time rates drop with the other load."""

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def matmul_peak(threads: int, size: int, repeats: int = 5) -> dict:
    """Best fp32 GFLOP/s of a square torch matmul at ``threads`` threads: per wall second and per
    CPU second (the latter is the per-core rate the CPU-time efficiencies are measured against)."""
    import torch

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(size, size, generator=g)
    y = torch.randn(size, size, generator=g)
    out = torch.empty(size, size)
    torch.matmul(x, y, out=out)  # warm-up
    best = {"wall": 0.0, "cpu": 0.0}
    for _ in range(repeats):
        with Clock() as clock:
            torch.matmul(x, y, out=out)
        best["wall"] = max(best["wall"], 2 * size**3 / clock.wall / 1e9)
        best["cpu"] = max(best["cpu"], 2 * size**3 / max(clock.cpu, 1e-9) / 1e9)
    return best


# -- data -----------------------------------------------------------------------------------------
def world_spec(shape: dict) -> dict:
    return {
        "source": "synthetic",
        "kind": "nonlinear",
        "train_prompts": shape["pairs"],
        "train_responses": 2,
        "test_prompts": shape["test_prompts"],
        "test_responses": shape["test_responses"],
        "dim": shape["dim"],
        "latent_dim": 16,
        "tau": 0.5,
        "sigma": 1.0,
        "sigma_spread": 0.2,
        "noise": 0.1,
        "nonlinearity": 1.0,
        "dtype": "float32",
        "seed": 0,
    }


def load_world(shape: dict, workdir: Path) -> World:
    from embrm.sources.synthetic import build

    spec = world_spec(shape)
    directory = workdir / f"world-d{shape['dim']}-n{shape['pairs']}"
    marker = directory / "spec.json"
    if not (marker.is_file() and json.loads(marker.read_text()) == spec):
        started = time.perf_counter()
        build(spec, directory)
        marker.write_text(json.dumps(spec))
        print(f"built world {directory} in {time.perf_counter() - started:.0f} s")
    return World(directory)


def pair_data(world: World, pairs: int, beta: float, seed: int = 0) -> PairData:
    rewards = world.train.rewards
    a, b = make_pairs(rewards, "same-random", pairs, rng(seed, "bench-pairs"))
    flat = rewards.ravel()
    label, stats = annotate(
        BradleyTerry(beta), flat[a], flat[b], world.reward_std, rng(seed, "bench-labels")
    )
    print(
        f"{pairs} same-prompt pairs, β = {beta}: realized label error "
        f"{stats['realized_error_rate']:.3f}"
    )
    return PairData(world.train.flat_embeddings, a, b, label, source=world.train.embeddings_path)


# -- FLOP counts ----------------------------------------------------------------------------------
def layer_sizes(dim: int, hidden: list[int]) -> list[tuple[int, int]]:
    widths = [dim, *hidden, 1]
    return list(itertools.pairwise(widths))


def forward_flops(dim: int, hidden: list[int]) -> int:
    return sum(2 * i * o for i, o in layer_sizes(dim, hidden))


def train_flops(dim: int, hidden: list[int]) -> int:
    """Forward + backward matrix-product FLOPs per row (no input gradient for the first layer)."""
    layers = layer_sizes(dim, hidden)
    backward = sum(2 * i * o for i, o in layers) + sum(2 * i * o for i, o in layers[1:])
    return forward_flops(dim, hidden) + backward


# -- the study's procedure, written straightforwardly ---------------------------------------------
def authors_procedure(head_type: str, data: PairData, seed: int, threads: int, params: dict):
    """The study scripts' work per step with embrm's split and early stopping (module docstring:
    not the study's protocol); returns (model, epochs, Clock)."""
    import torch
    from embrm.heads.torch_common import build_mlp

    torch.set_num_threads(threads)
    clock = Clock().__enter__()
    rows, a, b = data.compact()
    x = torch.from_numpy(rows)
    train_pairs, val_pairs = data.split(params["val_fraction"], np.random.default_rng(seed))

    def dataset(pairs):
        won = data.label[pairs] > 0
        win = torch.from_numpy(np.where(won, a[pairs], b[pairs]))
        lose = torch.from_numpy(np.where(won, b[pairs], a[pairs]))
        if head_type == "bt-mlp":  # (2n, 2, D): (winner, loser) → 1 and (loser, winner) → 0
            pos = torch.stack([x[win], x[lose]], dim=1)
            neg = torch.stack([x[lose], x[win]], dim=1)
            inputs = torch.cat([pos, neg])
        else:  # (2n, D): winners → 1, losers → 0
            inputs = torch.cat([x[win], x[lose]])
        labels = torch.cat([torch.ones(len(pairs)), torch.zeros(len(pairs))]).view(-1, 1)
        return inputs, labels

    x_train, y_train = dataset(train_pairs)
    x_val, y_val = dataset(val_pairs)
    torch.manual_seed(seed)
    model = build_mlp(data.dim, params["hidden"])
    optimizer = torch.optim.Adam(model.parameters(), lr=params["lr"])
    criterion = torch.nn.BCELoss()

    def forward(inputs):
        if head_type == "bt-mlp":
            return torch.sigmoid(model(inputs[:, 0]) - model(inputs[:, 1]))
        return torch.sigmoid(model(inputs))

    batch = min(params["batch_size"], x_train.shape[0])
    best, best_state, stale, epochs = math.inf, None, 0, 0
    for _ in range(params["max_epochs"]):
        epochs += 1
        model.train()
        for _ in range(0, x_train.shape[0], batch):
            idx = torch.randperm(x_train.shape[0])[:batch]
            optimizer.zero_grad()
            loss = criterion(forward(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = float(criterion(forward(x_val), y_val))
        if val_loss < best:
            best, stale = val_loss, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= params["patience"]:
                break
    model.load_state_dict(best_state)
    model.eval()
    clock.__exit__()
    return model, epochs, clock


def validation_accuracy(score, data: PairData, seed: int, val_fraction: float) -> float:
    """Pairwise accuracy against the labels on the heads' validation split."""
    _, val_pairs = data.split(val_fraction, np.random.default_rng(seed))
    a, b, label = data.a[val_pairs], data.b[val_pairs], data.label[val_pairs]
    sa = score(np.asarray(data.embeddings[a], dtype=np.float32))
    sb = score(np.asarray(data.embeddings[b], dtype=np.float32))
    return pair_accuracy(np.where(label > 0, sa - sb, sb - sa))


# -- one head -------------------------------------------------------------------------------------
def bench_head(head_type, data, world, threads, seed, baseline) -> list[dict]:
    """One row for the head, plus one for the study's procedure when there is one."""
    head = make_head(head_type, seed=seed, device="cpu", threads=threads)
    with Clock() as fit:
        head.fit(data)
    test = world.test.embeddings
    with Clock() as evaluation:
        scores = head.predict_reward(test, source=world.test.embeddings_path)
    p = head.params
    n_val = min(round(p["val_fraction"] * data.size), data.size - 1)
    n_train = data.size - n_val
    test_rows = int(np.prod(test.shape[:-1]))
    hidden = p.get("hidden", [])
    fwd = forward_flops(data.dim, hidden)
    row = {
        "head": head_type,
        "fit": fit,
        "eval": evaluation,
        "epochs": len(head.curves_),
        "best_epoch": head.best_epoch_,
        "val_accuracy": head.curves_[head.best_epoch_ - 1]["val_accuracy"],
        "test_spearman": spearman_summary(scores, world.test.rewards)["spearman"],
        "fit_flops": None,
        "eval_flops": test_rows * fwd if isinstance(head, TorchHead) else None,
    }
    if head_type in MLP_HEADS:
        # Every epoch trains on 2 rows per training pair (BT: both sides; CLF: winner and loser)
        # and scores 2 rows per validation pair.
        epoch = 2 * n_train * train_flops(data.dim, hidden) + 2 * n_val * fwd
        row["fit_flops"] = row["epochs"] * epoch
    rows = [row]
    if baseline and head_type in MLP_HEADS:
        import torch

        model, epochs, base_fit = authors_procedure(head_type, data, seed, threads, p)

        def score(block):
            with torch.no_grad():
                return model(torch.from_numpy(block)).squeeze(-1).numpy()

        with Clock() as base_eval:
            # Straightforward evaluation: the whole test array as one tensor, one forward call.
            base_scores = score(np.array(test, dtype=np.float32).reshape(-1, data.dim))
        examples = 2 * n_train  # oriented pairs (BT) or responses (CLF)
        batch = min(p["batch_size"], examples)
        rows_per_step = 2 * batch if head_type == "bt-mlp" else batch
        val_rows = 4 * n_val if head_type == "bt-mlp" else 2 * n_val
        epoch = math.ceil(examples / batch) * rows_per_step * train_flops(data.dim, hidden)
        rows.append(
            {
                "head": "  study",
                "fit": base_fit,
                "eval": base_eval,
                "epochs": epochs,
                "best_epoch": None,
                "val_accuracy": validation_accuracy(score, data, seed, p["val_fraction"]),
                "test_spearman": spearman_summary(
                    base_scores.reshape(world.test.rewards.shape), world.test.rewards
                )["spearman"],
                "fit_flops": epochs * (epoch + val_rows * fwd),
                "eval_flops": test_rows * fwd,
            }
        )
    return rows


def as_json(row: dict) -> dict:
    out = {k: v for k, v in row.items() if k not in ("fit", "eval")}
    for key in ("fit", "eval"):
        out[f"{key}_wall_s"], out[f"{key}_cpu_s"] = row[key].wall, row[key].cpu
    return out


def report(rows: list[dict], peak: dict, peak_after: dict, threads: int) -> None:
    def rate(flops, clock):
        if not flops:
            return f"{'—':>20}"
        wall = flops / clock.wall / 1e9
        return f"{wall:6.1f} {100 * wall / peak['wall']:4.0f}% {100 * flops / clock.cpu / 1e9 / peak['cpu']:4.0f}%"

    print()
    print(
        f"fp32 matmul peak at {threads} thread(s): {peak['wall']:.1f} GFLOP/s "
        f"({peak['cpu']:.1f} per CPU second); re-measured at the end: {peak_after['wall']:.1f} "
        f"({peak_after['cpu']:.1f})"
    )
    print(
        f"{'head':<11}{'train s':>9}{'(CPU s)':>9}{'epochs':>7}{'GFLOP/s wall% cpu%':>21}"
        f"{'eval s':>8}{'(CPU s)':>8}{'GFLOP/s wall% cpu%':>21}{'val acc':>9}{'test ρ':>8}"
    )
    previous = None
    for r in rows:
        print(
            f"{r['head']:<11}{r['fit'].wall:9.1f}{r['fit'].cpu:9.1f}{r['epochs']:7d}"
            f"{rate(r['fit_flops'], r['fit'])}{r['eval'].wall:8.2f}{r['eval'].cpu:8.2f}"
            f"{rate(r['eval_flops'], r['eval'])}{r['val_accuracy']:9.4f}{r['test_spearman']:8.3f}"
        )
        if r["head"] == "  study":
            ours = previous
            print(
                f"{'  speed-up':<11}{r['fit'].wall / ours['fit'].wall:8.2f}×"
                f"{r['fit'].cpu / ours['fit'].cpu:8.2f}×{'':28}"
                f"{r['eval'].wall / ours['eval'].wall:7.2f}×{r['eval'].cpu / ours['eval'].cpu:7.2f}×"
                f"{'':21}{ours['val_accuracy'] - r['val_accuracy']:+9.4f}"
            )
        previous = r
    print(
        "\nGFLOP/s: matrix-product FLOPs per wall second; wall% / cpu%: share of the matmul peak "
        "per wall second / per CPU second (— : not a matrix-product workload). 'study' = the "
        "study's procedure (both-order pairs, random batches); speed-up = study time / embrm time "
        "(wall, CPU); last column = embrm val acc − study val acc."
    )


def summarize_speedups(rows: list[dict]) -> None:
    """Per head, over seeds: embrm against the study's procedure, per run and per epoch.

    Early stopping ends the two procedures after different numbers of epochs (their batches
    differ), so a single seed's per-run ratio mixes speed with luck; the per-epoch ratio compares
    equal work, and the mean over seeds shows what a grid of runs costs.
    """
    pairs = [
        (ours, study) for ours, study in itertools.pairwise(rows) if study["head"] == "  study"
    ]
    for head in dict.fromkeys(ours["head"] for ours, _ in pairs):
        mine = [(o, s) for o, s in pairs if o["head"] == head]
        run = sum(s["fit"].wall for _, s in mine) / sum(o["fit"].wall for o, _ in mine)
        epoch = sum(s["fit"].wall / s["epochs"] for _, s in mine) / sum(
            o["fit"].wall / o["epochs"] for o, _ in mine
        )
        accuracy = np.mean([o["val_accuracy"] - s["val_accuracy"] for o, s in mine])
        print(
            f"{head} over {len(mine)} seed(s): study / embrm training time {run:.2f}× per run, "
            f"{epoch:.2f}× per epoch; mean validation accuracy difference {accuracy:+.4f}"
        )


# -- clf-lgb search -------------------------------------------------------------------------------
# The space searched for embrm's clf-lgb defaults. It is reduced to what finishes in about a
# quarter of an hour on a shared 2-core machine: 72 combinations, of which the search scores
# LightGBM's stock settings, the previous defaults and --tune-trials random draws.
TUNE_GRID = {
    "num_leaves": [7, 15, 31],
    "learning_rate": [0.02, 0.05, 0.1],
    "min_child_samples": [20, 80],
    "lambda_l2": [0.0, 10.0],
    "subsample": [1.0, 0.8],  # 1.0: all rows and columns; 0.8: bagging and feature_fraction 0.8
}
STOCK = {"num_leaves": 31, "learning_rate": 0.1, "min_child_samples": 20, "lambda_l2": 0.0}


def lgb_params(candidate: dict) -> dict:
    """Head parameters of one search candidate (``subsample`` sets rows and columns together)."""
    params = {k: v for k, v in candidate.items() if k != "subsample"}
    share = candidate["subsample"]
    params.update(
        feature_fraction=share, bagging_fraction=share, bagging_freq=1 if share < 1 else 0
    )
    return params


def tune_lgb(args) -> None:
    """Search clf-lgb settings on training data only: each candidate is scored by the validation
    log-loss (at its early-stopped round) on the held-out 20% of the training pairs, averaged over
    8 training sets of the default world of config.yaml (same/cross-random × β ∈ {1, 10} × 500 and
    2,000 pairs). The test split is never opened."""

    from embrm.config import load
    from embrm.sources.synthetic import build

    config = load(REPO / "config.yaml")
    spec = config["worlds"]["synthetic"]
    directory = args.workdir / "tune-world"
    marker = directory / "spec.json"
    if not (marker.is_file() and json.loads(marker.read_text()) == spec):
        build(spec, directory)
        marker.write_text(json.dumps(spec))
    world = World(directory)
    settings = list(itertools.product(["same-random", "cross-random"], [1.0, 10.0], [500, 2000]))
    datasets = []
    flat = world.train.rewards.ravel()
    for design, beta, n in settings:
        a, b = make_pairs(world.train.rewards, design, n, rng(0, "tune", design, n))
        label, _ = annotate(
            BradleyTerry(beta), flat[a], flat[b], world.reward_std, rng(0, "tune-label", beta)
        )
        datasets.append(PairData(world.train.flat_embeddings, a, b, label))
    grid = [
        dict(zip(TUNE_GRID, values, strict=True))
        for values in itertools.product(*TUNE_GRID.values())
    ]
    draw = np.random.default_rng(0).permutation(len(grid))[: args.tune_trials]
    previous = {
        "num_leaves": 15, "learning_rate": 0.02, "min_child_samples": 80, "lambda_l2": 10.0,
        "subsample": 0.8,
    }  # fmt: skip
    candidates = [{**STOCK, "subsample": 1.0}, previous]
    candidates += [grid[i] for i in draw if grid[i] not in candidates]
    rows = []
    for i, candidate in enumerate(candidates):
        started = time.perf_counter()
        losses, accuracies, rounds = [], [], []
        for seed_index, data in enumerate(datasets):
            head = make_head(
                "clf-lgb", seed=seed_index, threads=args.threads, **lgb_params(candidate)
            ).fit(data)
            best = head.curves_[head.best_epoch_ - 1]
            losses.append(best["val_loss"])
            accuracies.append(best["val_accuracy"])
            rounds.append(head.best_epoch_)
        row = {
            **candidate,
            "val_loss": float(np.mean(losses)),
            "val_accuracy": float(np.mean(accuracies)),
            "rounds": float(np.mean(rounds)),
            "seconds": time.perf_counter() - started,
        }
        rows.append(row)
        print(f"[{i + 1}/{len(candidates)}] {json.dumps(row)}", flush=True)
    rows.sort(key=lambda r: r["val_loss"])
    print(f"\nbest settings (mean validation log-loss over {len(datasets)} training sets):")
    for row in rows[:10]:
        print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes (D = 256, 4,000 pairs)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--heads", default=",".join(HEAD_TYPES), help="comma-separated head types")
    parser.add_argument("--beta", type=float, default=1.0, help="annotation quality β")
    parser.add_argument(
        "--seeds", default="0", help="comma-separated seeds; several average out early stopping"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the study-procedure runs")
    parser.add_argument(
        "--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "embrm-bench-heads"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--tune-lgb", action="store_true", help="run the clf-lgb default search")
    parser.add_argument("--tune-trials", type=int, default=48)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    # Per-epoch progress from the heads.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if args.tune_lgb:
        tune_lgb(args)
        return

    shape = QUICK if args.quick else FULL
    heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    peak = matmul_peak(args.threads, 1024 if args.quick else 4096)
    print(f"fp32 matmul peak: {peak['wall']:.1f} GFLOP/s at {args.threads} thread(s)", flush=True)
    world = load_world(shape, args.workdir)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        data = pair_data(world, shape["pairs"], args.beta, seed)
        for head_type in heads:
            for row in bench_head(head_type, data, world, args.threads, seed, not args.no_baseline):
                rows.append({**row, "seed": seed})
                print(json.dumps(as_json(row)), flush=True)
    peak_after = matmul_peak(args.threads, 1024 if args.quick else 4096)
    report(rows, peak, peak_after, args.threads)
    summarize_speedups(rows)
    if args.json:
        args.json.write_text(json.dumps([as_json(r) for r in rows], indent=2))
    if args.json:
        summary = {
            "peak_gflops": peak,
            "peak_after": peak_after,
            "threads": args.threads,
            "shape": shape,
            "beta": args.beta,
            "rows": [as_json(row) for row in rows],
        }
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
