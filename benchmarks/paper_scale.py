"""Paper scale on one machine: memory, speed and cost of embrm at the study's shapes.

    python benchmarks/paper_scale.py            # train 40,000 × 10, test 2,000 × 500, D = 2048
    python benchmarks/paper_scale.py --quick    # D = 256 and a tenth of the prompts, to try it out

Runs the real workflow (Snakemake, the same rules and `python -m embrm` jobs as `make run`, MLflow
included) on `configs/paper-scale.yaml` trimmed to one cell per head and quantity: BT annotator
β = 1, same-prompt random pairs, seed 0, heads bt-mlp, clf-mlp and clf-lgb at 5,000 and 40,000
pairs, with `training.threads` = the machine's cores and `training.scoring: run`. The world
(float16 embeddings, 1.6 GB train and 4.1 GB test) is built once and kept under --workdir; later
invocations reuse it and rerun everything downstream.

It then reads Snakemake's per-job benchmark files and prints, for every job, wall time, CPU time and
peak resident memory (target: no job above 6 GB), and for every run:

- core-hours: the cores a job holds (its `threads`) times its wall time, summed over the run's
  train and evaluate jobs plus its share of the pairs and annotate jobs it reads; the ratio to the
  study's ≈ 0.46 core-hour per run (about 6,000 core-hours for 12,960 runs);
- for the MLP heads, the matrix-product FLOPs of training (epochs actually run) and of scoring the
  1,000,000 test embeddings, divided by the run's wall time, against the fp32 matrix-multiply peak
  measured here with torch at the same thread count (target for bt-mlp at 40,000 pairs: ≥ 60%).

`--protocols embrm,study` measures every head under each named protocol (docs/heads.md,
"Two training protocols"): the heads keep their type's name under `embrm` and are named
`<type>.study` under the study's released procedure, and the grid is totalled per protocol.

Finally it extrapolates the study's full grid (12 worlds: 6 LLMs × 2 datasets; per world 3 pairing
designs × 6 β × 3 heads × 4 quantities × 5 seeds = 1,080 runs) on this machine: a run's cost is
interpolated linearly in the number of pairs between the two measured quantities, per head.
FLOP counting is that of benchmarks/heads.py. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from heads import forward_flops, matmul_peak, train_flops  # noqa: E402

PAPER_CORE_HOURS_PER_RUN = 6000 / 12960
MEMORY_TARGET_MB = 6 * 1024
FLOP_TARGET = 0.60
HEADS = ("bt-mlp", "clf-mlp", "clf-lgb")
# The study's grid: per world, 3 pairing designs × 6 β × 5 seeds for each head and quantity.
GRID_WORLDS = 12
GRID_QUANTITIES = (5_000, 10_000, 20_000, 40_000)
RUNS_PER_HEAD_AND_QUANTITY = 3 * 6 * 5
QUICK_WORLD = {"train_prompts": 4_000, "test_prompts": 200, "dim": 256}
QUICK_QUANTITIES = (500, 4_000)


PROTOCOLS = ("embrm", "study")


def head_name(head_type: str, protocol: str) -> str:
    """The benchmark's name for a head type under a protocol: the type itself under embrm's."""
    return head_type if protocol == "embrm" else f"{head_type}.{protocol}"


def head_type_of(name: str) -> str:
    return name.split(".", 1)[0]


def benchmark_config(
    quick: bool,
    threads: int,
    heads: list[str],
    lgb_pairs: list[int] | None,
    protocols: tuple[str, ...] = ("embrm",),
) -> tuple[dict, tuple[int, int]]:
    """The trimmed paper-scale config; ``heads`` are head types, each run under every protocol."""
    config = yaml.safe_load((REPO / "configs" / "paper-scale.yaml").read_text())
    config["heads"] = {
        head_name(h, p): {"type": h, "params": {"protocol": p}} for p in protocols for h in HEADS
    }
    named = [head_name(h, p) for p in protocols for h in heads]
    quantities = QUICK_QUANTITIES if quick else (5_000, 40_000)
    if quick:
        config["worlds"]["paper"].update(QUICK_WORLD)
    config["annotators"] = {"bt": {"model": "bt", "beta": 1}}
    config["training"]["threads"] = threads
    # Each train job scores its own model, so every run's cost stands alone; what a cell's shared
    # pass saves is measured by benchmarks/shared_scoring.py.
    config["training"]["scoring"] = "run"
    config["tracking"]["experiment"] = "paper-scale-benchmark"
    lgb_heads = [h for h in named if head_type_of(h) == "clf-lgb"]
    main_heads = [h for h in named if h not in lgb_heads or lgb_pairs is None]
    config["grid"].update(
        annotators=["bt"],
        designs=["same-random"],
        quantities=list(quantities),
        heads=main_heads,
        seeds=[0],
    )
    config.pop("extra_grids", None)
    if lgb_heads and lgb_pairs is not None:
        if main_heads:
            config["extra_grids"] = [{"heads": lgb_heads, "quantities": lgb_pairs}]
        else:  # clf-lgb alone: its quantities are the whole grid
            config["grid"].update(heads=lgb_heads, quantities=lgb_pairs)
    return config, quantities


def extra(config: dict) -> list[str]:
    return [h for grid in config.get("extra_grids", []) for h in grid.get("heads", [])]


def number(value: str) -> float:
    return float(value) if value not in ("", "NA", "-") else float("nan")


def read_benchmarks(results: Path) -> dict[str, dict]:
    """'stage/relative/path' (without .tsv) -> {s, cpu_s, max_rss_mb} from Snakemake's files."""
    jobs = {}
    for path in sorted((results / "benchmarks").rglob("*.tsv")):
        with open(path) as handle:
            row = list(csv.DictReader(handle, delimiter="\t"))[-1]

        key = str(path.relative_to(results / "benchmarks").with_suffix(""))
        jobs[key] = {
            name: number(row.get(column, ""))
            for name, column in (("s", "s"), ("cpu_s", "cpu_time"), ("rss_mb", "max_rss"))
        }
    return jobs


def mlp_flops(info: dict, dim: int, test_rows: int) -> float:
    """Matrix-product FLOPs of an MLP run: its epochs of training and one pass over the test set."""
    head = info["head"]
    hidden = head["hidden"]
    pairs = info["train_pairs"]
    n_val = min(round(head["val_fraction"] * pairs), pairs - 1)
    n_train = pairs - n_val
    fwd = forward_flops(dim, hidden)
    epoch = 2 * n_train * train_flops(dim, hidden) + 2 * n_val * fwd
    return sum(info["epochs_run"]) * epoch + test_rows * fwd * len(info["epochs_run"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="D = 256, a tenth of the prompts")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(os.environ.get("TMPDIR", "/tmp")) / "embrm-bench-paper-scale",
        help="kept between invocations: the world is built only once",
    )
    parser.add_argument("--heads", default=",".join(HEADS), help="comma-separated head types")
    parser.add_argument(
        "--lgb-pairs",
        help="comma-separated quantities for clf-lgb only (default: the same two as the MLPs); "
        "a clf-lgb fit at 40,000 pairs and D = 2048 takes ten minutes or more on 2 cores",
    )
    parser.add_argument(
        "--protocols",
        default="embrm",
        help="comma-separated training protocols, each head measured under each (embrm, study)",
    )
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument(
        "--report-only", action="store_true", help="print the last run's figures, run nothing"
    )
    args = parser.parse_args()
    heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    lgb_pairs = [int(q) for q in args.lgb_pairs.split(",")] if args.lgb_pairs else None
    protocols = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
    unknown = [p for p in protocols if p not in PROTOCOLS] + [h for h in heads if h not in HEADS]
    if unknown or not protocols or not heads:
        parser.error(f"--heads takes {', '.join(HEADS)} and --protocols {', '.join(PROTOCOLS)}; "
                     f"got {', '.join(unknown) or 'none'}")  # fmt: skip
    workdir = args.workdir / ("quick" if args.quick else "full")
    workdir.mkdir(parents=True, exist_ok=True)
    config, quantities = benchmark_config(args.quick, args.threads, heads, lgb_pairs, protocols)
    heads = [head_name(h, p) for p in protocols for h in heads]
    results = workdir / "results" / "default"  # its config.yaml: experiment default
    if args.report_only:
        config = yaml.safe_load((workdir / "config.yaml").read_text())
        heads = [h for h in config["heads"] if h in {*config["grid"]["heads"], *extra(config)}]
        report(args, config, quantities, heads, lgb_pairs, results, None, None, None)
        return 0
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    # Keep the world (and the record of what building it cost); everything else runs again.
    for name in ("pairs", "annotations", "runs", "tracking", "tables", "figures", "logs"):
        shutil.rmtree(results / name, ignore_errors=True)
    for stage in ("pairs", "annotate", "train", "evaluate"):
        shutil.rmtree(results / "benchmarks" / stage, ignore_errors=True)
    for name in ("mlflow.db", "summary.csv"):
        (results / name).unlink(missing_ok=True)

    peak = matmul_peak(args.threads, 4096 if not args.quick else 1024)
    print(f"fp32 matmul peak: {peak['wall']:.1f} GFLOP/s at {args.threads} thread(s)", flush=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--cores", str(args.threads), "--quiet", "all"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, cwd=workdir, env=env, check=True)
    wall = time.perf_counter() - started
    peak_after = matmul_peak(args.threads, 4096 if not args.quick else 1024)
    (workdir / "peak.json").write_text(json.dumps({"before": peak, "after": peak_after}))
    report(args, config, quantities, heads, lgb_pairs, results, wall, peak, peak_after)
    return 0


def report(args, config, quantities, heads, lgb_pairs, results, wall, peak, peak_after) -> None:
    if peak is None:  # --report-only: the peaks measured with that run
        saved = json.loads((results.parent.parent / "peak.json").read_text())
        peak, peak_after = saved["before"], saved["after"]
    jobs = read_benchmarks(results)
    spec = config["worlds"]["paper"]
    dim = spec["dim"]
    test_rows = spec["test_prompts"] * spec["test_responses"]
    threads = config["training"]["threads"]

    print(f"\nfp32 matmul peak {peak['wall']:.1f} GFLOP/s, re-measured at the end: "
          f"{peak_after['wall']:.1f}" + (f"; workflow wall time {wall:.0f} s" if wall else ""))  # fmt: skip
    print(f"\n{'job':<64}{'wall s':>9}{'CPU s':>9}{'peak MB':>9}")
    for key, job in sorted(jobs.items(), key=lambda item: -item[1]["rss_mb"]):
        print(f"{key:<64}{job['s']:9.1f}{job['cpu_s']:9.1f}{job['rss_mb']:9.0f}")
    largest = max(jobs.items(), key=lambda item: item[1]["rss_mb"])
    print(f"largest job: {largest[0]} at {largest[1]['rss_mb'] / 1024:.2f} GB "
          f"(target ≤ {MEMORY_TARGET_MB / 1024:.0f} GB: "
          f"{'met' if largest[1]['rss_mb'] <= MEMORY_TARGET_MB else 'missed'})")  # fmt: skip
    if "world/paper" in jobs:
        w = jobs["world/paper"]
        print(f"world build: {w['s']:.0f} s wall, {w['cpu_s'] / 3600:.3f} CPU-hours, once per "
              "world (real worlds are LLM embeddings instead)")  # fmt: skip

    runs = {}
    print(f"\n{'run':<28}{'train s':>9}{'eval s':>8}{'epochs':>8}{'GFLOP/s':>9}{'of peak':>9}"
          f"{'core-h':>9}{'vs 0.46':>9}{'BoN gain':>10}{'ρ':>7}")  # fmt: skip
    measured = sorted({n for n in [*quantities, *(lgb_pairs or [])]})
    for n in measured:
        cell = f"paper/same-random/n{n}/seed0"
        here = [h for h in heads if f"train/{cell}/bt-beta1/{h}" in jobs]
        shared = (jobs[f"pairs/{cell}"]["s"] + jobs[f"annotate/{cell}/bt-beta1"]["s"]) / len(here)
        for head in here:
            run = f"{cell}/bt-beta1/{head}"
            train, evaluate = jobs[f"train/{run}"], jobs[f"evaluate/{run}"]
            info = json.loads((results / "runs" / run / "train.json").read_text())
            metrics = json.loads((results / "runs" / run / "metrics.json").read_text())
            run_wall = train["s"] + evaluate["s"]
            core_hours = (train["s"] * threads + evaluate["s"] + shared) / 3600
            # FLOPs are counted for embrm's procedure (pairs once, epochs run); the study's
            # mirrored examples and sampled batches are timed only.
            flops = mlp_flops(info, dim, test_rows) if head in ("bt-mlp", "clf-mlp") else None
            rate = flops / run_wall / 1e9 if flops else None
            runs[(head, n)] = {
                "train_s": train["s"],
                "evaluate_s": evaluate["s"],
                "train_cpu_s": train["cpu_s"],
                "train_rss_mb": train["rss_mb"],
                "fit_s": info["fit_seconds"],
                "predict_s": info["predict_seconds"],
                "epochs": sum(info["epochs_run"]),
                "gflops": rate,
                "of_peak": rate / peak["wall"] if rate else None,
                "core_hours": core_hours,
                "bon_gain": metrics["metrics"]["mean"]["bon_gain"],
                "spearman": metrics["metrics"]["mean"]["spearman"],
            }
            r = runs[(head, n)]
            rate_text = f"{rate:9.1f}{100 * r['of_peak']:8.0f}%" if rate else f"{'—':>9}{'—':>9}"
            print(f"{head + ' n' + str(n):<28}{train['s']:9.1f}{evaluate['s']:8.1f}{r['epochs']:8d}"
                  f"{rate_text}{core_hours:9.3f}{PAPER_CORE_HOURS_PER_RUN / core_hours:8.1f}×"
                  f"{r['bon_gain']:10.3f}{r['spearman']:7.3f}")  # fmt: skip

    main_run = runs.get(("bt-mlp", quantities[-1]))
    if main_run:
        print(f"\nbt-mlp at {quantities[-1]} pairs: {100 * main_run['of_peak']:.0f}% of the "
              f"matmul peak over the whole run (target ≥ {100 * FLOP_TARGET:.0f}%: "
              f"{'met' if main_run['of_peak'] >= FLOP_TARGET else 'missed'}); "
              f"fit {main_run['fit_s']:.0f} s, scoring {test_rows:,} test embeddings "
              f"{main_run['predict_s']:.0f} s")  # fmt: skip

    # The study's grid, interpolating each head's cost linearly in the number of pairs.
    low, high = quantities
    print(f"\nthe study's grid on this machine ({GRID_WORLDS} worlds × 1,080 runs), "
          f"heads measured at {low:,} and {high:,} pairs")  # fmt: skip
    totals = {}
    for protocol in PROTOCOLS:
        named = [h for h in heads if h in {head_name(t, protocol) for t in HEADS}]
        if named:
            totals[protocol] = grid_total(protocol, named, runs, low, high)
    if args.quick:
        print("(--quick: smaller shapes, so these figures are not the paper-scale ones)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "peak_gflops": peak["wall"],
                    "peak_gflops_after": peak_after["wall"],
                    "jobs": jobs,
                    "runs": {f"{h}/n{n}": r for (h, n), r in runs.items()},
                    "grid_core_hours_measured_heads": totals,
                },
                indent=2,
            )
        )


def run_cost(cost_low: float, cost_high: float, low: int, high: int, pairs: int) -> float:
    """A run's core-hours at `pairs`, linear in the pairs through the two measured runs.

    Beyond the measured range (the --quick shapes) a falling line would reach zero and below, so
    the cost is held at the cheaper measured run's: a run with more pairs does no less work.
    """
    line = cost_low + (cost_high - cost_low) * (pairs - low) / (high - low)
    return max(line, min(cost_low, cost_high))


def grid_total(protocol: str, heads: list[str], runs: dict, low: int, high: int) -> float:
    """Print one protocol's grid total and return the core-hours of its fully measured heads."""
    total = 0.0
    complete = [h for h in heads if (h, low) in runs and (h, high) in runs]
    print(f" protocol {protocol}:")
    for head in complete:
        a, b = runs[(head, low)]["core_hours"], runs[(head, high)]["core_hours"]
        per_quantity = [run_cost(a, b, low, high, q) for q in GRID_QUANTITIES]
        head_total = GRID_WORLDS * RUNS_PER_HEAD_AND_QUANTITY * sum(per_quantity)
        total += head_total
        print(f"  {head:<14} {head_total:9.0f} core-hours "
              f"({' / '.join(f'{c:.3f}' for c in per_quantity)} per run at "
              f"{' / '.join(f'{q // 1000}k' for q in GRID_QUANTITIES)} pairs)")  # fmt: skip
    if complete:
        runs_total = GRID_WORLDS * RUNS_PER_HEAD_AND_QUANTITY * len(complete) * len(GRID_QUANTITIES)
        per_run = total / runs_total
        print(f"  measured       {total:9.0f} core-hours for {runs_total:,} runs ({per_run:.3f} "
              f"per run: {PAPER_CORE_HOURS_PER_RUN / per_run:.1f}× less than the study's ≈ "
              f"{PAPER_CORE_HOURS_PER_RUN:.2f})")  # fmt: skip
    partial = [h for h in heads if h not in complete and any(k[0] == h for k in runs)]
    bound = total
    for head in partial:
        # Measured at one quantity only: its cost there, for every quantity, bounds it from below
        # (every head costs more with more pairs).
        cheapest = min(r["core_hours"] for (h, _), r in runs.items() if h == head)
        share = GRID_WORLDS * RUNS_PER_HEAD_AND_QUANTITY * len(GRID_QUANTITIES) * cheapest
        bound += share
        print(f"  {head:<14} ≥ {share:7.0f} core-hours (measured at "
              f"{', '.join(str(n) for h, n in runs if h == head)} pairs only: a lower bound)")  # fmt: skip
    if partial or len(complete) == len(HEADS):
        grid_runs = GRID_WORLDS * RUNS_PER_HEAD_AND_QUANTITY * len(HEADS) * len(GRID_QUANTITIES)
        at_least, at_most = ("≥ ", "≤ ") if partial else ("", "")
        print(f"  all            {at_least}{bound:.0f} core-hours for the {grid_runs:,} runs "
              f"against the study's ≈ 6,000: {at_most}{6000 / bound:.1f}× less; {at_least}"
              f"{bound / (os.cpu_count() or 1) / 24:.1f} days on this {os.cpu_count()}-core "
              "machine")  # fmt: skip
    return total


if __name__ == "__main__":
    sys.exit(main())
