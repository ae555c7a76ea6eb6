"""Planning the whole study: what `snakemake -n` costs at 25,920 runs, with fine and cell jobs.

    python benchmarks/plan_scale.py                   # both modes; the fine one takes minutes
    python benchmarks/plan_scale.py --modes cell      # cell jobs only
    python benchmarks/plan_scale.py --worlds 2        # a smaller study of the same shape

Writes the study's config: `configs/paper-scale.yaml` (one world: 6 β × 6 designs × 4 quantities ×
3 heads × 5 seeds = 2,160 runs) with its world repeated as 12 worlds (world seeds 0 to 11), so
25,920 runs in 1,440 cells. Nothing is built or run: for each `execution.jobs` mode it times a dry
run (`snakemake -n`) as its own process and reads that process's peak resident memory
(`ru_maxrss` from wait4). Then, for the cell jobs, it dry-runs `profiles/slurm` and counts what
would go through sbatch (group jobs and ungrouped non-local jobs), and times one parse of the
workflow (`snakemake --list-rules`), which every submission's own Snakemake pays on its node.
Prints one table; docs/paper-scale.md#planning-the-whole-study holds a measured one.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
STUDY = REPO / "configs" / "paper-scale.yaml"
MB = 1024 * 1024


def study_config(worlds: int, jobs: str) -> dict:
    """configs/paper-scale.yaml with its world repeated ``worlds`` times (distinct world seeds)."""
    config = yaml.safe_load(STUDY.read_text())
    (name, world), *_ = config["worlds"].items()
    names = [f"{name}{i:02d}" for i in range(worlds)]
    config["worlds"] = {n: {**world, "seed": i} for i, n in enumerate(names)}
    config["grid"]["worlds"] = names
    config["execution"] = {"jobs": jobs}
    return config


def runs_of(config: dict) -> int:
    grid = config["grid"]
    betas = config["annotators"]["bt"]["beta"]
    axes = [grid["worlds"], grid["designs"], grid["quantities"], grid["heads"], grid["seeds"]]
    count = len(betas)
    for axis in axes:
        count *= len(axis)
    return count


def timed(workdir: Path, *args: str) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak resident MB and output of one Snakemake process (and its
    children). CPU seconds are what the plan costs on a busy machine too."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--configfile", "plan-scale.yaml", *args]  # fmt: skip
    log = workdir / "snakemake.out"
    with open(log, "w") as handle:
        seconds, cpu, peak, code = measure(command, cwd=workdir, stdout=handle)
    output = log.read_text()
    if code != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{output[-3000:]}")
    return seconds, cpu, peak, output


def measure(command: list[str], **kwargs) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds (user + system), peak resident MB and exit code of a process."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stderr=subprocess.STDOUT, **kwargs)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss * 1024 / MB, os.waitstatus_to_exitcode(status)


def job_total(output: str) -> int:
    return int(re.search(r"^total\s+(\d+)$", output, re.M).group(1))


def local_rules() -> set[str]:
    """Rules named in the rule files' `localrules:` blocks, and the target rule `all`."""
    names = {"all"}
    for path in (REPO / "workflow" / "rules").glob("*.smk"):
        for block in re.findall(r"^localrules:\n((?:    \w+,?\n)+)", path.read_text(), re.M):
            names.update(re.findall(r"(\w+)", block))
    return names


def submissions(output: str) -> tuple[int, int]:
    """(group jobs, ungrouped jobs) that a dry run with profiles/slurm would submit."""
    groups = len(re.findall(r"\] Group job \w+", output))
    local = local_rules()
    single = [r for r in re.findall(r"^rule (\w+):$", output, re.M) if r not in local]
    return groups, len(single)


# The cluster of the estimate (docs/paper-scale.md#the-whole-study-on-a-cluster).
NODES, CORES_PER_NODE = 50, 32


def makespan(seconds: list[float], slots: int) -> float:
    """Wall time of jobs of these lengths on ``slots`` slots, longest first onto the least loaded
    slot (what a queue that starts the longest waiting job first achieves)."""
    import heapq

    loads = [0.0] * slots
    for length in sorted(seconds, reverse=True):
        heapq.heapreplace(loads, loads[0] + length)
    return max(loads)


def estimate(worlds: int, overhead: float) -> None:
    """The study's wall time on NODES × CORES_PER_NODE from the cost model (embrm.resources:
    seconds of work per cell, before the requests' margins), with ``overhead`` seconds per cell
    job (its own Snakemake's parse and the imports, measured here in CPU seconds). Columns: slots (cell jobs
    at once), the longest cell, the world build before it, load (all cells' work per slot: the
    wall time of perfect packing) and wall (worlds, then the cells packed longest first)."""
    sys.path.insert(0, str(REPO / "workflow"))
    from embrm.config import Plan
    from embrm.resources import Requests

    print(
        f"\nestimate: {NODES} nodes x {CORES_PER_NODE} cores, {overhead:.0f} s start-up per cell job"
    )
    print(
        f"{'setting':<40} {'slots':>5} {'longest cell h':>14} {'world h':>7} {'load h':>7} {'wall h':>7}  most work"
    )
    for device, threads in [("cpu", 2), ("cpu", 8), ("cuda", 2), ("cuda", CORES_PER_NODE)]:
        config = study_config(worlds, "cell")
        config["training"].update(device=device, threads=threads)
        plan = Plan(config)
        requests = Requests(plan, "/nonexistent")
        cells: dict[tuple, list[str]] = {}
        for run in plan.runs:
            cells.setdefault((run.world, run.design, run.n, run.seed), []).append(run.head)
        lengths, by_head = [], {}
        for (world, _, n, _), heads in cells.items():
            lengths.append(requests.cell_need(world, heads, [], n)[1] + overhead)
            for head in heads:
                cost, members, _ = requests.head(head, requests.shapes(world), n)
                work = (cost.fit_seconds + cost.score_seconds) * members
                by_head[head] = by_head.get(head, 0.0) + work
        # A cell job asks for one GPU with training.device: cuda: one cell per node at a time.
        slots = NODES if device == "cuda" else NODES * (CORES_PER_NODE // threads)
        world_h = max(requests.world_seconds(w) for w in plan.unique("world")) / 3600
        wall = world_h + makespan(lengths, slots) / 3600
        top = max(by_head, key=by_head.get)
        share = by_head[top] / sum(by_head.values())
        where = "1 GPU per node" if device == "cuda" else "CPU only"
        print(
            f"{where + f', training.threads {threads}':<40} {slots:>5} {max(lengths) / 3600:>14.2f}"
            f" {world_h:>7.2f} {sum(lengths) / slots / 3600:>7.1f} {wall:>7.1f}  {top} ({share:.0%})"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=12)
    parser.add_argument("--modes", default="cell,run", help="execution.jobs values, in order")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/embrm-plan-scale"))
    parser.add_argument(
        "--estimate-only",
        type=float,
        metavar="SECONDS",
        help="skip the dry runs; estimate the wall time with this start-up per cell job",
    )
    args = parser.parse_args(argv)
    if args.estimate_only is not None:
        estimate(args.worlds, args.estimate_only)
        return 0
    overhead = None

    print(f"{'mode':>6} {'runs':>7} {'jobs':>7} {'wall s':>7} {'CPU s':>7} {'peak MB':>8}  what")

    def row(mode, runs, jobs, seconds, cpu, peak, what):
        print(f"{mode:>6} {runs:>7} {jobs:>7} {seconds:>7.1f} {cpu:>7.1f} {peak:>8.0f}  {what}")
        sys.stdout.flush()

    for mode in args.modes.split(","):
        workdir = args.workdir / mode
        workdir.mkdir(parents=True, exist_ok=True)
        config = study_config(args.worlds, mode)
        (workdir / "plan-scale.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        runs = runs_of(config)
        seconds, cpu, peak, output = timed(workdir, "-n", "--cores", "32")
        row(mode, runs, job_total(output), seconds, cpu, peak, "snakemake -n")
        if mode != "cell":
            continue
        profile = str(REPO / "profiles" / "slurm")
        seconds, cpu, peak, output = timed(workdir, "-n", "--workflow-profile", profile)
        groups, single = submissions(output)
        what = f"-n with profiles/slurm: sbatch jobs ({groups} groups + {single} single jobs)"
        row(mode, runs, groups + single, seconds, cpu, peak, what)
        seconds, cpu, peak, _ = timed(workdir, "--list-rules")
        row(mode, runs, "", seconds, cpu, peak, "parse only (each submission's Snakemake)")
        imports = measure([sys.executable, "-c", IMPORTS])
        row("", "", "", *imports[:3], "imports of a cell job: " + IMPORTS.removeprefix("import "))
        overhead = cpu + imports[1]
    if overhead is not None:
        estimate(args.worlds, overhead)
    return 0


# What a cell job imports before its first step.
IMPORTS = "import embrm.stages, embrm.heads.mlp, torch, lightgbm"


if __name__ == "__main__":
    sys.exit(main())
