"""Wall time of the default experiment, end to end, and where it goes.

Runs the workflow on a config (default: config.yaml) in a fresh directory with all cores, then
reads Snakemake's per-job benchmark files and prints, per stage: jobs, summed job seconds, mean,
max and peak memory. Usage:

    python benchmarks/default_grid.py [--config config.yaml] [--cores all] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 600


def number(value: str) -> float:
    return float(value) if value not in ("", "NA", "-") else 0.0


def stage_times(results: Path) -> dict[str, list[tuple[float, float, float]]]:
    """stage -> [(seconds, max_rss_mb, cpu_seconds)] from Snakemake's benchmark TSVs."""
    stages = defaultdict(list)
    for path in (results / "benchmarks").rglob("*.tsv"):
        stage = path.relative_to(results / "benchmarks").parts[0].removesuffix(".tsv")
        with open(path) as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                stages[stage].append(
                    (float(row["s"]), number(row["max_rss"]), number(row["cpu_time"]))
                )
    return stages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    parser.add_argument("--cores", default="all")
    parser.add_argument("--keep", help="run in this directory and keep it")
    args = parser.parse_args()

    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="embrm-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.config, workdir / "config.yaml")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--cores", args.cores, "--quiet", "all"]  # fmt: skip
    started = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=workdir, env=env, check=True)
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Snakemake and every job it ran; the jobs' own share is in their benchmark files.
    cpu_all = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime
    )

    stages = stage_times(workdir / "results" / "default")  # config.yaml: experiment default
    print(f"config: {args.config}   cores: {args.cores} (machine has {os.cpu_count()})")
    print(f"{'stage':<16}{'jobs':>6}{'sum s':>10}{'mean s':>9}{'max s':>9}{'peak MB':>9}")
    for stage, rows in sorted(stages.items(), key=lambda item: -sum(r[0] for r in item[1])):
        seconds = [r[0] for r in rows]
        print(f"{stage:<16}{len(rows):>6}{sum(seconds):>10.1f}{sum(seconds) / len(rows):>9.2f}"
              f"{max(seconds):>9.2f}{max(r[1] for r in rows):>9.0f}")  # fmt: skip
    job_seconds = sum(r[0] for rows in stages.values() for r in rows)
    job_cpu = sum(r[2] for rows in stages.values() for r in rows)
    print(f"total job seconds {job_seconds:.1f}; wall {wall:.1f} s "
          f"({wall / 60:.2f} min; target ≤ {TARGET_SECONDS / 60:.0f} min: "
          f"{'met' if wall <= TARGET_SECONDS else 'missed'}); "
          f"parallel efficiency {job_seconds / wall:.2f} jobs busy on average")  # fmt: skip
    print(f"CPU time: jobs {job_cpu:.0f} s, Snakemake itself (scheduling, bookkeeping) "
          f"{cpu_all - job_cpu:.0f} s")  # fmt: skip
    if not args.keep:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
