"""The two training protocols side by side: cost per run, and results on a reduced default grid.

    python benchmarks/protocols.py            # cost: each head under both protocols, same data
    python benchmarks/protocols.py --grid     # reduced grid through the stages, both protocols
    python benchmarks/protocols.py --grid --heads bt-mlp,clf-mlp --jobs 15   # part, in parallel
    python benchmarks/protocols.py --report a/grid.json b/grid.json          # merge parts

Cost mode trains bt-mlp, clf-mlp and clf-lgb under ``protocol: embrm`` and ``protocol: study`` on
one annotated set of the default world of config.yaml (cross-random, 2,000 pairs, β = 1, seed 0)
and prints, per run, the training seconds, the epochs (boosting rounds for clf-lgb) and the
optimizer steps (rounds for clf-lgb).

Grid mode runs the pipeline's own stages (world, pairs, annotation, training, evaluation) on the
default world for same-random and cross-random pairs × β ∈ {1, 10} × ``--quantities`` (2,000) ×
``--seeds`` (0, 1, 2) × the three heads × both protocols, writes every run's metrics.json under
``--workdir``, prints BoN-500 gain, Spearman, epochs and seconds per setting, and tests the study's
findings under each protocol with paired t-tests over seeds (95% intervals).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

import yaml  # noqa: E402
from embrm import stages  # noqa: E402
from embrm.heads.mlp import MLPHead  # noqa: E402

HEADS = ("bt-mlp", "clf-mlp", "clf-lgb")
PROTOCOLS = ("embrm", "study")
# Head parameters per protocol label; "embrm-1step" is embrm's protocol with the schedule it had
# before min_steps_per_epoch (one full-batch step per epoch below 10,240 examples), MLPs only.
VARIANTS = {
    "embrm": {"protocol": "embrm"},
    "study": {"protocol": "study"},
    "embrm-1step": {"protocol": "embrm", "min_steps_per_epoch": 1},
}


def steps_of(info: dict, curves: list[dict], params: dict, n_pairs: int) -> int:
    """Optimizer steps (boosting rounds) of one single-member run."""
    epochs = info["epochs_run"][0]
    if params["type"] == "clf-lgb":
        return epochs
    objective_examples = n_pairs if params["type"] == "bt-mlp" else 2 * n_pairs
    if params["protocol"] == "study":
        if params["type"] == "bt-mlp":
            objective_examples = 2 * n_pairs  # both orders
        n_train = objective_examples - math.ceil(params["val_fraction"] * objective_examples)
        return epochs * math.ceil(n_train / min(params["batch_size"], n_train))
    n_train_pairs = n_pairs - min(round(params["val_fraction"] * n_pairs), n_pairs - 1)
    per_pair = 1 if params["type"] == "bt-mlp" else 2
    return epochs * MLPHead.epoch_schedule(params, n_train_pairs * per_pair)[1]


class Pipeline:
    """The stages on the default world, cached under ``workdir``."""

    def __init__(self, workdir: Path, threads: int):
        # Imported up front so that no run's training time includes a library's import.
        import torch  # noqa: F401

        try:
            import lightgbm  # noqa: F401
        except ImportError:  # a machine that runs only the MLP heads
            pass

        # config.yaml spells out the world and evaluation settings in full, so it is read as
        # plain YAML here (no schema validation needed, nor its dependencies).
        self.config = yaml.safe_load((REPO / "config.yaml").read_text())
        self.workdir, self.threads = workdir, threads
        self.world = workdir / "world"
        spec = self.config["worlds"]["synthetic"]
        marker = self.world / "spec.json"
        if not (marker.is_file() and json.loads(marker.read_text()) == spec):
            stages.build_world(spec, self.world, threads=threads, device="cpu")
            marker.write_text(json.dumps(spec))

    def annotated(self, design: str, n: int, seed: int, beta: float) -> tuple[Path, Path, Path]:
        cell = self.workdir / design / f"n{n}" / f"seed{seed}"
        pairs = cell / "pairs.npz"
        if not pairs.is_file():
            stages.make_pairs(self.world, design, n, seed, 2000, pairs)
        labels, stats = cell / f"bt-{beta:g}" / "labels.npz", cell / f"bt-{beta:g}" / "stats.json"
        if not labels.is_file():
            spec = {"model": "bt", "beta": beta}
            stages.annotate(self.world, pairs, spec, "std", seed, labels, stats)
        return pairs, labels, stats

    def run(self, design, n, seed, beta, head, protocol, evaluate=True) -> dict:
        pairs, labels, stats = self.annotated(design, n, seed, beta)
        out = labels.parent / f"{head}-{protocol}"
        metrics = out / "metrics.json"
        if metrics.is_file():
            return json.loads(metrics.read_text())
        spec = {"type": head, "members": 1, "params": VARIANTS[protocol]}
        stages.train(
            self.world, pairs, labels, spec, seed, threads=self.threads, device="cpu",
            model_dir=out / "model", predictions_out=out / "predictions.npy",
            curves_out=out / "curves.csv", info_out=out / "train.json",
        )  # fmt: skip
        if not evaluate:
            return {"training": json.loads((out / "train.json").read_text())}
        run = {"design": design, "quantity": n, "seed": seed, "beta": beta, "head": head,
               "protocol": protocol}  # fmt: skip
        stages.evaluate(
            self.world, out / "predictions.npy", pairs, labels, stats, out / "train.json",
            out / "curves.csv", run, self.config["evaluation"], metrics,
        )  # fmt: skip
        return json.loads(metrics.read_text())


def cost(args) -> None:
    pipeline = Pipeline(args.workdir, args.threads)
    n = 2000
    print(f"default world, cross-random, {n} pairs, β = 1, seed 0, {args.threads} thread(s)")
    print(f"{'head':8} {'protocol':8} {'seconds':>8} {'epochs':>7} {'steps':>6}")
    for head, protocol in itertools.product(HEADS, PROTOCOLS):
        result = pipeline.run("cross-random", n, 0, 1.0, head, protocol, evaluate=False)
        info = result["training"]
        steps = steps_of(info, [], info["head"], n)
        print(
            f"{head:8} {protocol:8} {info['fit_seconds']:8.2f} {info['epochs_run'][0]:7d} "
            f"{steps:6d}"
        )


def interval(diffs: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, 95% t-interval and paired t-test p-value of per-seed differences."""
    from scipy import stats

    mean = float(np.mean(diffs))
    if diffs.size < 2 or np.all(diffs == diffs[0]):
        return mean, mean, mean, float("nan")
    half = float(stats.t.ppf(0.975, diffs.size - 1) * stats.sem(diffs))
    p = float(stats.ttest_1samp(diffs, 0.0).pvalue)
    return mean, mean - half, mean + half, p


def verdict(low: float, high: float, positive: str, negative: str) -> str:
    if low > 0:
        return positive
    if high < 0:
        return negative
    return "inconclusive"


def grid_row(args, setting) -> dict:
    design, n, beta, seed, head, protocol = setting
    result = Pipeline(args.workdir, args.threads).run(design, n, seed, beta, head, protocol)
    metrics, training = result["metrics"]["mean"], result["training"]
    return {
        "design": design, "quantity": n, "beta": beta, "seed": seed, "head": head,
        "protocol": protocol, "gain": metrics["bon_gain"], "spearman": metrics["spearman"],
        "epochs": training["epochs_run"][0], "best_epoch": training["best_epoch"][0],
        "seconds": training["fit_seconds"], "steps": steps_of(training, [], training["head"], n),
    }  # fmt: skip


def grid(args) -> None:
    pipeline = Pipeline(args.workdir, args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    quantities = [int(q) for q in args.quantities.split(",")]
    heads = [h for h in args.heads.split(",") if h]
    designs, betas = ("same-random", "cross-random"), (1.0, 10.0)
    protocols = [p for p in args.protocols.split(",") if p]
    settings = list(itertools.product(designs, quantities, betas, seeds, heads, protocols))
    for design, n, beta, seed, *_ in settings:
        pipeline.annotated(design, n, seed, beta)  # pairs and labels first, once
    rows = []
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # no fork after torch is loaded
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            for row in pool.map(grid_row, [args] * len(settings), settings):
                rows.append(row)
                print(json.dumps(row), flush=True)
    else:
        for setting in settings:
            rows.append(grid_row(args, setting))
            print(json.dumps(rows[-1]), flush=True)
    (args.workdir / "grid.json").write_text(json.dumps(rows, indent=2) + "\n")
    report(rows, seeds)


def report(rows: list[dict], seeds: list[int]) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows)
    present = [h for h in HEADS if h in set(frame["head"])]
    labels = [p for p in VARIANTS if p in set(frame["protocol"])]
    keys = ["design", "quantity", "beta", "head", "protocol"]
    table = frame.groupby(keys).agg(
        gain=("gain", "mean"), gain_sd=("gain", "std"), spearman=("spearman", "mean"),
        spearman_sd=("spearman", "std"), epochs=("epochs", "mean"), steps=("steps", "mean"),
        seconds=("seconds", "mean"),
    )  # fmt: skip
    print(f"\nmeans over {len(seeds)} seeds")
    print(table.round(3).to_string())

    def values(protocol, head, **where):
        part = frame[(frame["protocol"] == protocol) & (frame["head"] == head)]
        for key, value in where.items():
            part = part[part[key] == value]
        return part.sort_values("seed")

    for other_label in [p for p in labels if p != "embrm"]:
        compare(frame, present, other_label, values)
    print("\nfindings (paired over seeds; mean difference [95% interval], p)")
    findings(frame, present, labels, values)


def compare(frame, present, other_label, values) -> None:
    print(f"\nprotocols compared (paired over seeds, same pairs and labels): embrm − {other_label}")
    for design, n, beta in itertools.product(
        sorted(set(frame["design"])), sorted(set(frame["quantity"])), sorted(set(frame["beta"]))
    ):
        for head in present:
            where = {"design": design, "quantity": n, "beta": beta}
            mine, theirs = values("embrm", head, **where), values(other_label, head, **where)
            if mine.empty or theirs.empty:
                continue
            cells = []
            for metric in ("gain", "spearman"):
                d = mine[metric].to_numpy() - theirs[metric].to_numpy()
                mean, low, high, _ = interval(d)
                cells.append(f"{metric} {mean:+.3f} [{low:+.3f}, {high:+.3f}]")
            print(f"  {design} n={n} β={beta:g} {head}: " + "; ".join(cells))


def findings(frame, present, labels, values) -> None:
    for protocol in labels:
        print(f"\nprotocol {protocol}")
        for design, n, beta in itertools.product(
            sorted(set(frame["design"])), sorted(set(frame["quantity"])), sorted(set(frame["beta"]))
        ):
            bt = values(protocol, "bt-mlp", design=design, quantity=n, beta=beta)
            for clf in [h for h in present if h.startswith("clf") and "bt-mlp" in present]:
                other = values(protocol, clf, design=design, quantity=n, beta=beta)
                for metric in ("gain", "spearman"):
                    d = other[metric].to_numpy() - bt[metric].to_numpy()
                    mean, low, high, p = interval(d)
                    print(
                        f"  F1 {design} n={n} β={beta:g}: {clf} − bt-mlp {metric} {mean:+.3f} "
                        f"[{low:+.3f}, {high:+.3f}] p={p:.3f} → "
                        f"{verdict(low, high, clf + ' better', 'bt-mlp better')}"
                    )
        for n in sorted(set(frame["quantity"])):
            for design in sorted(set(frame["design"])):
                # F2: drop in gain from β = 10 to β = 1, CLF minus BT (negative: CLF degrades less)
                drops = {}
                for head in present:
                    hi = values(protocol, head, design=design, quantity=n, beta=10.0)
                    lo = values(protocol, head, design=design, quantity=n, beta=1.0)
                    drops[head] = hi["gain"].to_numpy() - lo["gain"].to_numpy()
                for clf in [h for h in present if h.startswith("clf") and "bt-mlp" in present]:
                    mean, low, high, p = interval(drops["bt-mlp"] - drops[clf])
                    print(
                        f"  F2 {design} n={n}: gain lost from β=10 to β=1, bt-mlp − {clf} "
                        f"{mean:+.3f} [{low:+.3f}, {high:+.3f}] p={p:.3f} → "
                        f"{verdict(low, high, clf + ' degrades less', 'bt-mlp degrades less')}"
                    )
            for head, beta in itertools.product(present, sorted(set(frame["beta"]))):
                cross = values(protocol, head, design="cross-random", quantity=n, beta=beta)
                same = values(protocol, head, design="same-random", quantity=n, beta=beta)
                if cross.empty or same.empty:
                    continue
                mean, low, high, p = interval(cross["gain"].to_numpy() - same["gain"].to_numpy())
                print(
                    f"  F3 n={n} β={beta:g} {head}: cross − same gain {mean:+.3f} "
                    f"[{low:+.3f}, {high:+.3f}] p={p:.3f} → "
                    f"{verdict(low, high, 'cross better', 'same better')}"
                )
        seconds = frame[frame["protocol"] == protocol]["seconds"]
        print(f"  F4 cost: {seconds.mean():.2f} s per run on average, {seconds.sum():.0f} s in all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", action="store_true", help="reduced grid, both protocols")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--quantities", default="2000")
    parser.add_argument("--threads", type=int, default=1, help="threads per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (grid mode)")
    parser.add_argument("--heads", default=",".join(HEADS), help="grid mode: comma-separated")
    parser.add_argument(
        "--protocols", default=",".join(PROTOCOLS), help=f"grid mode, some of {list(VARIANTS)}"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "embrm-protocols"
    )
    parser.add_argument(
        "--report", type=Path, nargs="+", help="only print the report of these grid.json files"
    )
    args = parser.parse_args()
    if args.report:
        rows = [row for path in args.report for row in json.loads(path.read_text())]
        report(rows, sorted({row["seed"] for row in rows}))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.grid:
        grid(args)
    else:
        cost(args)


if __name__ == "__main__":
    main()
