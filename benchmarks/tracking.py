"""Cost of MLflow tracking: the end-of-workflow sync, and per-job logging (tracking.mode: jobs).

Takes the run records of a finished workflow (``--results``, default ``results/default``), replicates
them to ``--runs`` records (other seeds, so other run keys) in a temporary directory, and
measures against a fresh sqlite database:

* the sync creating every run, and a second sync finding them all unchanged;
* one ``python -m embrm tracking log-job`` process (what each evaluate job adds in jobs mode),
  wall and CPU seconds, and the part of it that is importing MLflow.

Usage: python benchmarks/tracking.py [--results results/default] [--runs 200] [--artifacts curves]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from embrm.io import read_json, write_json  # noqa: E402
from embrm.tracking import (  # noqa: E402
    artifact_location,
    start_invocation,
    sync,
)


def replicate(source: Path, target: Path, runs: int) -> list[Path]:
    records = sorted((source / "runs").glob("**/metrics.json"))
    if not records:
        raise SystemExit(f"error: no run records under {source}/runs; run the workflow first")
    out = []
    for i in range(runs):
        path = records[i % len(records)]
        record = read_json(path)
        run = record["run"]
        run["seed"] += 1000 * (i // len(records) + 1)
        run["run_dir"] = (
            f"{run['world']}/{run['design']}/n{run['n']}/seed{run['seed']}/"
            f"{run['annotator']}/{run['head']}"
        )
        directory = target / "runs" / run["run_dir"]
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / "metrics.json", record)
        for name in ("curves.csv", "predictions.npy"):
            if (path.parent / name).exists():
                (directory / name).write_bytes((path.parent / name).read_bytes())
        out.append(directory / "metrics.json")
    return out


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict) -> tuple[float, float]:
    cpu, started = child_cpu(), time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started, child_cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/default"))
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--artifacts", nargs="*", default=["curves"])
    args = parser.parse_args()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with tempfile.TemporaryDirectory(prefix="embrm-tracking-bench-") as tmp:
        results = Path(tmp) / "results"
        files = replicate(args.results.resolve(), results, args.runs)
        uri = f"sqlite:///{results / 'mlflow.db'}"
        common = {
            "uri": uri,
            "experiment": "bench",
            "artifact_location": artifact_location(uri, None, results),
            "results_dir": results,
            "tags": {"embrm.config_hash": "bench"},
            "artifacts": args.artifacts,
        }
        started = time.perf_counter()
        first = sync(files, **common)
        create = time.perf_counter() - started
        started = time.perf_counter()
        second = sync(files, **common)
        unchanged = time.perf_counter() - started
        assert first["created"] == len(files) and second["unchanged"] == len(files)

        imports = timed([sys.executable, "-c", "import mlflow.tracking"], env)
        state = Path(tmp) / "invocation.json"
        start_invocation(
            {
                "uri": uri,
                "experiment": "bench-jobs",
                "artifacts": args.artifacts,
                "config_hash": "bench",
                "repo": str(REPO),
                "results": str(results),
            },
            state,
        )
        job = [sys.executable, "-m", "embrm", "tracking", "log-job", "--state", str(state)]
        job_times = [timed([*job, "--metrics", str(f)], env) for f in files[:3]]
    wall = sorted(t[0] for t in job_times)[1]
    cpu = sorted(t[1] for t in job_times)[1]
    report = {
        "runs": len(files),
        "artifacts": args.artifacts,
        "sync_create_s": round(create, 2),
        "sync_create_runs_per_s": round(len(files) / create, 1),
        "sync_unchanged_s": round(unchanged, 2),
        "log_job_wall_s": round(wall, 2),
        "log_job_cpu_s": round(cpu, 2),
        "mlflow_import_wall_s": round(imports[0], 2),
        "mlflow_import_cpu_s": round(imports[1], 2),
    }
    print(json.dumps(report, indent=2))
    print(
        f"sync: {report['sync_create_runs_per_s']} runs/s created, {len(files)} unchanged runs "
        f"checked in {report['sync_unchanged_s']} s; jobs mode adds {report['log_job_cpu_s']} s "
        f"CPU per run ({report['mlflow_import_cpu_s']} s of it importing MLflow)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
