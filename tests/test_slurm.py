"""Cluster submission through profiles/slurm and snakemake-executor-plugin-slurm.

Without SLURM: the profile dry-runs, jobs are grouped per cell, and resource requests follow the
configured shapes and device. With root: a real single-node SLURM cluster (Debian packages,
installed if missing) runs the tiny grid through sbatch, and its summary.csv matches the local
run of the same config.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, TINY_CONFIG, deep_merge, snakemake
from slurm_cluster import LocalSlurm, cannot_run_reason, install

PROFILE = REPO / "profiles" / "slurm"
# Columns that measure the run rather than the result: wall-clock times and the executing host.
NON_DETERMINISTIC_COLUMNS = ("fit_seconds", "predict_seconds", "evaluate_seconds", "host")
RUN_KEY = ("world", "design", "n", "seed", "annotator", "head", "aggregation")
SLURM_PROGRAMS = ("sbatch", "squeue", "sinfo", "scontrol", "sacct", "srun")


def no_slurm_path(tmp_path: Path) -> str:
    """A PATH with the virtual environment and the few programs a dry run needs, no SLURM."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("sh", "bash", "env", "which"):
        if shutil.which(program):
            os.symlink(shutil.which(program), bin_dir / program)
    path = os.pathsep.join([str(Path(sys.executable).parent), str(bin_dir)])
    assert all(shutil.which(p, path=path) is None for p in SLURM_PROGRAMS)
    return path


def cells_per_submission() -> int:
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    return int(dict(g.split("=") for g in profile["group-components"])["cell"])


def planned_jobs(output: str) -> list[dict]:
    """Rule, wildcards and resources of every job a dry run lists."""
    jobs = []
    for line in output.splitlines():
        line = line.strip()
        if match := re.match(r"^(?:local)?rule (\w+):$", line):
            jobs.append({"rule": match.group(1), "wildcards": {}, "resources": {}})
        elif jobs and line.startswith(("wildcards:", "resources:")):
            field = line.split(":", 1)[0]
            for item in line.split(":", 1)[1].split(", "):
                key, _, value = item.strip().partition("=")
                jobs[-1][field][key] = int(value) if value.isdigit() else value
    return jobs


def dry_run(tmp_path: Path, config: dict, env: dict | None = None) -> str:
    result = snakemake(
        tmp_path / "work", "-n", "--workflow-profile", str(PROFILE), config=config, env=env
    )
    return result.stdout + result.stderr


def test_profile_dry_runs_without_slurm(tmp_path):
    output = dry_run(tmp_path, TINY_CONFIG, env={"PATH": no_slurm_path(tmp_path)})
    assert "Using workflow specific profile" in output and "profiles/slurm" in output
    jobs = planned_jobs(output)
    counts = {rule: sum(j["rule"] == rule for j in jobs) for rule in ("world", "train", "evaluate")}
    assert counts == {"world": 1, "train": 8, "evaluate": 8}
    # pairs, annotate, train and evaluate of a cell form one group; the profile bundles cells.
    assert output.count("Group job cell") == math.ceil(2 / cells_per_submission())
    for job in jobs:
        if job["rule"] in ("world", "pairs", "annotate", "train", "evaluate"):
            assert job["resources"]["mem_mb"] >= 256 and job["resources"]["runtime"] >= 5, job


def test_resources_scale_with_shapes_and_device(tmp_path):
    def by_rule(name, config):
        out = {}
        for job in planned_jobs(dry_run(tmp_path / name, config)):
            out.setdefault(job["rule"], []).append(job["resources"])
        return out

    # The setting whose peak memory docs/slurm.md reports: D = 1024, 4000 × 10 train and
    # 200 × 500 test responses, 8000 pairs, the heads' default hyperparameters.
    large_config = deep_merge(
        TINY_CONFIG,
        {
            "worlds": {"tiny": {"dim": 1024, "train_prompts": 4000, "train_responses": 10}},
            "grid": {"quantities": [8000], "designs": ["cross-random"]},
        },
    )
    large_config["worlds"]["tiny"].update(test_prompts=200, test_responses=500)
    large_config["heads"] = {"bt-mlp": {}, "clf-lgb": {}}
    small = by_rule("small", TINY_CONFIG)
    large = by_rule("large", large_config)
    gpu = by_rule("gpu", deep_merge(TINY_CONFIG, {"training": {"device": "cuda"}}))

    for rule in ("world", "train"):
        assert min(r["mem_mb"] for r in large[rule]) > max(r["mem_mb"] for r in small[rule])
    # Training 30 epochs of the default MLP on 8000 pairs needs more than the shortest request.
    assert max(r["runtime"] for r in large["train"]) > max(r["runtime"] for r in small["train"])
    # Measured there: about 1.2 GB peak RSS to train an MLP head (1.0 GB LightGBM), 1.1 GB to
    # build the world. Requests cover that without asking for several times more.
    assert all(1200 <= r["mem_mb"] <= 4000 for r in large["train"])
    assert all(1150 <= r["mem_mb"] <= 4000 for r in large["world"])
    # A GPU for every training job, and for Best-of-N in evaluate, when, and only when,
    # training.device is cuda.
    for rule in ("train", "evaluate"):
        assert {r["gpu"] for r in small[rule]} == {0}
        assert {r["gpu"] for r in gpu[rule]} == {1}
    assert all("gpu" not in r for rule in ("world", "pairs") for r in gpu[rule])
    # training.scoring: cell: train jobs no longer hold the test predictions; one score job per
    # cell asks for what scoring all of its models together needs.
    cell = by_rule("cell", deep_merge(large_config, {"training": {"scoring": "cell"}}))
    assert len(cell["score"]) == 1 and len(cell["train"]) == len(large["train"])
    own = sorted(r["mem_mb"] for r in large["train"])
    scored_elsewhere = sorted(r["mem_mb"] for r in cell["train"])
    assert all(a <= b for a, b in zip(scored_elsewhere, own, strict=True))
    assert sum(scored_elsewhere) < sum(own)
    assert cell["score"][0]["runtime"] >= max(r["runtime"] for r in small["train"])
    assert cell["score"][0]["mem_mb"] >= 1024


def read_summary(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    columns = [c for c in reader.fieldnames if c not in NON_DETERMINISTIC_COLUMNS]
    key = [c for c in RUN_KEY if c in columns]
    rows.sort(key=lambda row: tuple(row[c] for c in key))
    return columns, [{c: row[c] for c in columns} for row in rows]


@pytest.fixture(scope="module")
def slurm_cluster():
    # Not a skip: on a machine that cannot run the daemons the suite must say so and fail.
    reason = cannot_run_reason()
    if reason is not None:
        pytest.fail(reason)
    install()
    cluster = LocalSlurm()
    try:
        with cluster:
            yield cluster
    finally:
        cluster.cleanup()


def run_workflow(
    workdir: Path, *args: str, env: dict, timeout: float, config: dict = TINY_CONFIG
) -> tuple[int, str]:
    """The real workflow in ``workdir`` with ``config``; on timeout the whole process group
    (Snakemake and the jobs it runs on this host) is stopped, so nothing outlives the test."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args]
    venv_bin = str(Path(sys.executable).parent)
    full_env = {**os.environ, **env, "PATH": f"{venv_bin}{os.pathsep}{env['PATH']}"}
    with subprocess.Popen(
        command,
        cwd=workdir,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                output, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                output, _ = process.communicate()
            raise AssertionError(f"no result after {timeout} s:\n{output[-6000:]}") from None
    return process.returncode, output


def through_sbatch(cluster, workdir: Path, config: dict = TINY_CONFIG) -> str:
    """The workflow through profiles/slurm on the local cluster; its output, once it succeeded."""
    returncode, output = run_workflow(
        workdir,
        "--workflow-profile",
        str(PROFILE),
        # The test node has this many CPUs; on a real cluster the profile's value applies.
        "--cores",
        str(cluster.cpus),
        # The test cluster starts jobs at once: poll early instead of the profile's 10 s.
        "--slurm-init-seconds-before-status-checks",
        "1",
        env=cluster.env,
        timeout=480,
        config=config,
    )
    assert returncode == 0, f"{output[-6000:]}\n{cluster.logs()}"
    return output


@pytest.mark.slow
def test_tiny_grid_through_sbatch_matches_local_run(slurm_cluster, tiny_workflow, tmp_path):
    cluster = slurm_cluster
    workdir = tmp_path / "slurm-run"
    output = through_sbatch(cluster, workdir)

    # Every compute job went through sbatch: SLURM's own records (squeue keeps finished jobs
    # for MinJobAge) name them after the plugin's run id and say which rule or group they ran.
    records = cluster.queue()
    assert records, f"no SLURM jobs recorded:\n{output[-4000:]}"
    assert {r["state"] for r in records} == {"COMPLETED"}, records
    assert len({r["name"] for r in records}) == 1, records  # one workflow run
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", output))
    assert submitted == {r["id"] for r in records}
    comments = sorted(r["comment"] for r in records)
    assert [c for c in comments if c.startswith("rule_world")] == ["rule_world_wildcards_tiny"]
    groups = [r for r in records if r["comment"].startswith("rule_cell")]
    # The two cells' 22 pairs/annotate/train/evaluate jobs went out in
    # ceil(cells / group-components) submissions, not 22.
    assert len(groups) == math.ceil(2 / cells_per_submission())
    assert len(records) == 1 + len(groups)
    # A grouped submission asked SLURM for the CPUs its layers need, for memory and a time limit.
    details = cluster.job_details(groups[0]["id"])
    assert details["NumCPUs"] == str(cluster.cpus) and "mem=" in details["TRES"], details
    assert details["TimeLimit"] not in ("UNLIMITED", "Partition_Limit"), details
    # Aggregation, figures and the MLflow import ran on the submitting host, never through
    # sbatch, and the import found every run the compute nodes produced.
    for rule in ("config_snapshot", "summarize", "figure", "track"):
        assert f"localrule {rule}:" in output, rule
    synced = json.loads((workdir / "results" / "default" / "tracking" / "synced.json").read_text())
    assert synced["runs"] == 8 and synced["created"] == 8, synced

    local_columns, local_rows = read_summary(tiny_workflow / "results" / "default" / "summary.csv")
    slurm_columns, slurm_rows = read_summary(workdir / "results" / "default" / "summary.csv")
    assert slurm_columns == local_columns
    assert len(slurm_rows) == len(local_rows) == 8
    for local_row, slurm_row in zip(local_rows, slurm_rows, strict=True):
        differing = {
            c: (local_row[c], slurm_row[c]) for c in local_columns if local_row[c] != slurm_row[c]
        }
        assert not differing, differing


def test_profile_submits_one_group_per_cells_with_cell_jobs(tmp_path):
    """execution.jobs: cell: a cell is one job, the profile bundles cells into submissions, and
    a submission asks for what its cells need by the cost model (embrm.resources.Requests.cell)."""
    config = deep_merge(TINY_CONFIG, {"execution": {"jobs": "cell"}})
    output = dry_run(tmp_path, config, env={"PATH": no_slurm_path(tmp_path)})
    jobs = planned_jobs(output)
    assert sorted(j["rule"] for j in jobs if j["rule"] in ("world", "cell", "train")) == [
        "cell",
        "cell",
        "world",
    ]
    assert output.count("Group job cell") == math.ceil(2 / cells_per_submission())
    fine = planned_jobs(dry_run(tmp_path / "fine", TINY_CONFIG))
    trains = [j["resources"] for j in fine if j["rule"] == "train"]
    for job in (j for j in jobs if j["rule"] == "cell"):
        # one step at a time: the largest step's memory, the steps' times added up
        assert job["resources"]["mem_mb"] == max(r["mem_mb"] for r in trains), job
        assert job["resources"]["runtime"] >= max(r["runtime"] for r in trains), job


@pytest.mark.slow
def test_cell_jobs_through_sbatch_match_local_run(slurm_cluster, tiny_workflow, tmp_path):
    """The same grid with one job per cell: the cells go through sbatch in
    ceil(cells / group-components) submissions and give the local fine-grained run's summary."""
    cluster = slurm_cluster
    workdir = tmp_path / "slurm-cells"
    output = through_sbatch(
        cluster, workdir, config=deep_merge(TINY_CONFIG, {"execution": {"jobs": "cell"}})
    )
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", output))
    records = [r for r in cluster.queue() if r["id"] in submitted]
    assert records and {r["state"] for r in records} == {"COMPLETED"}, records
    groups = [r for r in records if r["comment"].startswith("rule_cell")]
    assert len(groups) == math.ceil(2 / cells_per_submission())
    assert len(records) == 1 + len(groups)  # the world, then the cells' groups
    assert "rule train:" not in output and "rule evaluate:" not in output
    local_columns, local_rows = read_summary(tiny_workflow / "results" / "default" / "summary.csv")
    slurm_columns, slurm_rows = read_summary(workdir / "results" / "default" / "summary.csv")
    assert (slurm_columns, slurm_rows) == (local_columns, local_rows)


@pytest.mark.slow
def test_sequential_looks_through_sbatch_run_only_what_the_open_parts_need(slurm_cluster, tmp_path):
    """findings.looks on a cluster: each look is a checkpoint decided on the submitting host, and
    the next look's runs (only those its open parts need) go out through sbatch."""
    from test_sequential import check_looks_ran, looked_config

    cluster = slurm_cluster
    config = looked_config()
    workdir = tmp_path / "slurm-looks"
    output = through_sbatch(cluster, workdir, config=config)
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", output))
    records = [r for r in cluster.queue() if r["id"] in submitted]
    assert records and {r["state"] for r in records} == {"COMPLETED"}, records
    # The looks decide on the submitting host (a local rule); the runs' jobs went through sbatch.
    assert not [r for r in records if "look" in r["comment"]], records
    assert any(r["comment"].startswith("rule_cell") for r in records), records
    check_looks_ran(workdir / "results" / "default", config)
