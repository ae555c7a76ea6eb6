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
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 600


def stage_times(results: Path) -> dict[str, list[tuple[float, float]]]:
    """stage -> [(seconds, max_rss_mb)] from Snakemake's benchmark TSVs."""
    stages = defaultdict(list)
    for path in (results / "benchmarks").rglob("*.tsv"):
        stage = path.relative_to(results / "benchmarks").parts[0].removesuffix(".tsv")
        with open(path) as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                rss = float(row["max_rss"]) if row["max_rss"] not in ("", "NA", "-") else 0.0
                stages[stage].append((float(row["s"]), rss))
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
    subprocess.run(command, cwd=workdir, env=env, check=True)
    wall = time.perf_counter() - started

    stages = stage_times(workdir / "results")
    print(f"config: {args.config}   cores: {args.cores} (machine has {os.cpu_count()})")
    print(f"{'stage':<16}{'jobs':>6}{'sum s':>10}{'mean s':>9}{'max s':>9}{'peak MB':>9}")
    for stage, rows in sorted(stages.items(), key=lambda item: -sum(s for s, _ in item[1])):
        seconds = [s for s, _ in rows]
        print(f"{stage:<16}{len(rows):>6}{sum(seconds):>10.1f}{sum(seconds) / len(rows):>9.2f}"
              f"{max(seconds):>9.2f}{max(r for _, r in rows):>9.0f}")  # fmt: skip
    job_seconds = sum(s for rows in stages.values() for s, _ in rows)
    print(f"total job seconds {job_seconds:.1f}; wall {wall:.1f} s "
          f"({wall / 60:.2f} min; target ≤ {TARGET_SECONDS / 60:.0f} min: "
          f"{'met' if wall <= TARGET_SECONDS else 'missed'}); "
          f"parallel efficiency {job_seconds / wall:.2f} jobs busy on average")  # fmt: skip
    if not args.keep:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
