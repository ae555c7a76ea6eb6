"""Experiments as units: one config file runs as written, in its own results folder; bad input stops
before any job; interrupted runs resume; degenerate runs are flagged; the plan is what runs."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, TINY_CONFIG, deep_merge, snakemake
from embrm import invocation, preflight
from embrm.config import Plan, experiment_name, load
from embrm.errors import ConfigError
from embrm.layout import Layout
from embrm.plan import describe
from embrm.summary import aggregate, build_summary, run_status
from fake_runs import record, write

SHIPPED = ["config.yaml", *sorted(str(p.relative_to(REPO)) for p in REPO.glob("configs/*.yaml"))]
# Columns that measure time or place, not results.
TIMING = re.compile(r"(_seconds|^device$|^host$)")


def embrm(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "embrm", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def train_jobs(result: subprocess.CompletedProcess, rule: str = "train") -> int:
    """Train jobs (or another rule's) of a dry run printed with `-q rules`."""
    found = re.search(rf"^{rule}\s+(\d+)$", result.stdout + result.stderr, re.MULTILINE)
    return int(found.group(1)) if found else 0


def results_snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def metric_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if not TIMING.search(c)]]


# --- 1. one config file, no merge with config.yaml ------------------------------------------------


def test_configfile_runs_alone_without_config_yaml(tmp_path):
    """config.yaml here has an extra block; --configfile other.yaml must not inherit it."""
    default = deep_merge(TINY_CONFIG, {})
    default["extra_grids"] = [{"designs": ["same-similar"], "heads": ["clf-lgb"]}]
    write_config(tmp_path / "config.yaml", default)
    other = write_config(tmp_path / "other.yaml", TINY_CONFIG)
    planned = {
        name: len(Plan(load(tmp_path / name)).runs) for name in ("config.yaml", "other.yaml")
    }
    assert planned["config.yaml"] > planned["other.yaml"]
    alone = snakemake(tmp_path, "-n", "-q", "rules", "--configfile", str(other))
    assert train_jobs(alone) == planned["other.yaml"]
    plain = snakemake(tmp_path, "-n", "-q", "rules")
    assert train_jobs(plain) == planned["config.yaml"]
    assert not (tmp_path / "results").exists()


def test_experiment_name_from_key_or_file_stem(tmp_path):
    assert experiment_name("configs/text-minilm.yaml") == "text-minilm"
    assert experiment_name("config.yaml") == "default" == experiment_name(None)
    named = write_config(tmp_path / "x.yaml", {**TINY_CONFIG, "experiment": "mine"})
    config = load(named)
    assert config["experiment"] == "mine" and config["tracking"]["experiment"] == "mine"
    assert load(write_config(tmp_path / "y.yaml", TINY_CONFIG))["experiment"] == "y"


@pytest.mark.parametrize("name", ["mlflow.db", "MLflow.DB", "mlflow.db-wal", "mlflow.db.lock"])
def test_names_that_results_shares_between_experiments_are_refused(name, tmp_path):
    """results/mlflow.db is every experiment's MLflow store: an experiment of that name would
    write its folder over it. The schema refuses the key; the file-stem path is checked too."""
    with pytest.raises(
        ConfigError, match=rf"config key 'experiment': '{re.escape(name)}' is reserved"
    ):
        load(write_config(tmp_path / "x.yaml", {**TINY_CONFIG, "experiment": name}))
    stem = write_config(tmp_path / f"{name}.yaml", TINY_CONFIG)
    result = embrm("plan", str(stem), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {stem}: the file name gives the experiment name")
    assert "is reserved" in result.stderr and not (tmp_path / "results").exists()


def test_config_file_errors_name_the_file_once(tmp_path):
    # An empty file: what was expected, with the file's name.
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    result = embrm("plan", str(empty), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {empty}: the config file is empty; expected a mapping with at least the keys "
        "worlds, annotators, heads, grid"
    )
    # A file stem that is no valid name: the path once, from the plan and from Snakemake alike.
    stem = write_config(tmp_path / "my experiment.yaml", TINY_CONFIG)
    planned = embrm("plan", str(stem), cwd=tmp_path)
    parsed = snakemake(tmp_path, "-n", "--configfile", str(stem), check=False)
    for result in (planned, parsed):
        assert result.returncode != 0
        assert "the file name gives the experiment name 'my experiment'" in result.stderr
        assert result.stderr.count(str(stem)) == 1, result.stderr
    # A directory where an .npy file is expected says so.
    (tmp_path / "arrays.npy").mkdir()
    config = deep_merge(TINY_CONFIG, {})
    config["worlds"]["tiny"] = {
        "source": "npy",
        **{s: {"embeddings": "arrays.npy", "rewards": "arrays.npy"} for s in ("train", "test")},
    }
    result = embrm("plan", str(write_config(tmp_path / "npy.yaml", config)), cwd=tmp_path)
    assert result.returncode == 2
    assert "arrays.npy is a directory; expected an .npy file" in result.stderr
    assert "does not exist" not in result.stderr


# --- 9. a faithful plan: embrm plan == Snakemake's train jobs, for every shipped config ------------


def test_plan_prints_completed_config_table_and_count(tmp_path):
    path = write_config(tmp_path / "tiny.yaml", TINY_CONFIG)
    text = describe(path)
    assert "experiment: tiny" in text and "evaluation:" in text and "repeats: 10" in text
    assert re.search(r"^tiny\s+cross-random\s+bt-beta1\s+200\s+bt-mlp,clf-lgb\s+0\s+2$", text, re.M)
    assert text.rstrip().endswith("experiment 'tiny' → results/tiny/; 8 runs")
    result = embrm("plan", str(path), "--quiet", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip().endswith("8 runs")


@pytest.mark.slow
@pytest.mark.parametrize("config", SHIPPED)
def test_shipped_config_plan_equals_snakemake_train_jobs(config):
    """The README's command for each shipped config, planned with -n in the repository
    (every job, so that results a user's `make run` left there change nothing)."""
    planned = embrm("plan", "--quiet", config, cwd=REPO)
    assert planned.returncode == 0, planned.stderr
    runs = int(re.search(r"(\d+) runs$", planned.stdout.strip()).group(1))
    name = embrm("plan", "--name", config, cwd=REPO).stdout.strip()
    args = ["-n", "--forceall", "-q", "rules", "--cores", "all", "--resources", "gpu=1"]
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", *args, "--configfile", config],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert dry.returncode == 0, dry.stderr[-3000:]
    plan = Plan(load(REPO / config))
    looks = plan.config.get("findings", {}).get("looks")
    if looks:  # sequential looks: the plan counts every seed, a first invocation its first look
        from embrm.findings.sequential import look_runs

        assert runs == len(plan.runs)
        runs = len(look_runs(plan.runs, plan.config["grid"]["seeds"], looks, 0))
    layout = Layout(plan)
    if layout.cell_jobs:  # execution.jobs: one job per cell trains every run of its cell
        assert train_jobs(dry) == 0
        assert train_jobs(dry, "cell") == len(layout.cells)
        assert sum(len(runs_of_cell) for runs_of_cell in layout.cells.values()) == runs
    else:
        assert train_jobs(dry) == runs
    assert name == ("default" if config == "config.yaml" else Path(config).stem)


# --- 3, 5, 9. input errors before any job ---------------------------------------------------------


def npy_world(tmp_path: Path, train: tuple, test: tuple, train_rewards=None, **split) -> dict:
    """An npy world from arrays of the given shapes (rewards default to the leading two axes)."""
    g = np.random.default_rng(0)
    spec = {"source": "npy"}
    for name, shape in (("train", train), ("test", test)):
        emb, rew = tmp_path / f"{name}_emb.npy", tmp_path / f"{name}_rew.npy"
        np.save(emb, g.standard_normal(shape).astype(np.float32))
        reward_shape = train_rewards if (name == "train" and train_rewards) else shape[:2]
        np.save(rew, g.standard_normal(reward_shape))
        spec[name] = {"embeddings": str(emb), "rewards": str(rew), **split}
    return spec


def npy_config(tmp_path: Path, spec: dict, **grid) -> Path:
    config = copy.deepcopy(TINY_CONFIG)
    config["worlds"] = {"arrays": spec}
    config["grid"].update({"worlds": ["arrays"], **grid})
    return write_config(tmp_path / "exp.yaml", config)


def assert_stops_before_any_job(tmp_path: Path, config: Path, *needles: str) -> None:
    """`embrm plan` and `snakemake -n` both refuse, naming what is wrong; nothing is written."""
    plan = embrm("plan", str(config), cwd=tmp_path)
    assert plan.returncode != 0
    dry = snakemake(tmp_path, "-n", "--configfile", str(config), check=False)
    assert dry.returncode != 0
    for needle in needles:
        assert needle in plan.stderr, plan.stderr
        assert needle in dry.stderr, dry.stderr[-3000:]
    assert "Traceback" not in plan.stderr + dry.stderr
    assert not (tmp_path / "results").exists()


def test_auto_layout_stops_on_a_prompt_major_bon_test_split(tmp_path):
    """40 prompts × 64 responses (more responses than prompts) used to be read transposed."""
    spec = npy_world(tmp_path, (300, 6, 8), (40, 64, 8), layout="auto")
    spec["train"]["layout"] = "prompt-major"
    assert_stops_before_any_job(
        tmp_path,
        npy_config(tmp_path, spec),
        "worlds.arrays.test.layout",
        "prompt-major reads 40 prompts × 64 responses",
        "response-major reads 64 prompts × 40 responses",
    )


def test_two_dimensional_embeddings_named_before_any_job(tmp_path):
    spec = npy_world(tmp_path, (1800, 8), (40, 64, 8), layout="prompt-major")
    spec["train"]["rewards"] = spec["test"]["rewards"]
    assert_stops_before_any_job(
        tmp_path, npy_config(tmp_path, spec), "train_emb.npy", "expected 3 axes"
    )


def test_missing_npy_file_and_rewards_mismatch(tmp_path):
    spec = npy_world(tmp_path, (300, 6, 8), (40, 50, 8), layout="prompt-major")
    spec["test"]["embeddings"] = str(tmp_path / "nowhere.npy")
    assert_stops_before_any_job(
        tmp_path, npy_config(tmp_path, spec), "worlds.arrays.test.embeddings", "nowhere.npy"
    )
    spec = npy_world(tmp_path, (300, 6, 8), (40, 50, 8), (300, 7), layout="prompt-major")
    assert_stops_before_any_job(tmp_path, npy_config(tmp_path, spec), "train_rew.npy", "(300, 7)")


def test_pairs_beyond_an_npy_world_capacity(tmp_path):
    """80,000 pairs on a 400-prompt × 8-response world (at most 400 × 28 = 11,200)."""
    spec = npy_world(tmp_path, (400, 8, 8), (40, 50, 8), layout="prompt-major")
    assert_stops_before_any_job(
        tmp_path,
        npy_config(tmp_path, spec, quantities=[200, 80000]),
        "grid.quantities[1]",
        "80000 pairs",
        "11200",
    )


def test_yaml_syntax_error_and_missing_file_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("worlds:\n  tiny: {source: synthetic\ngrid: [\n")
    result = embrm("plan", str(bad), cwd=tmp_path)
    assert result.returncode != 0 and "bad.yaml" in result.stderr and "line" in result.stderr
    assert "Traceback" not in result.stderr
    result = embrm("plan", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert result.returncode != 0 and "missing.yaml: config file not found" in result.stderr


def test_scale_error_says_a_number_is_allowed(tmp_path):
    config = deep_merge(TINY_CONFIG, {"annotation": {"scale": "big"}})
    with pytest.raises(ConfigError) as error:
        Plan(config)
    assert "annotation.scale" in str(error.value) and "number" in str(error.value)


def test_cuda_without_a_gpu_stops_before_any_job(tmp_path, monkeypatch):
    import torch

    config = deep_merge(TINY_CONFIG, {"training": {"device": "cuda"}})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"training\.device.*cuda"):
        preflight.check_device(Plan(config).config)
    # The workflow: the onstart hook refuses before any job when no GPU is visible.
    path = write_config(tmp_path / "gpu.yaml", config)
    result = snakemake(
        tmp_path, "--cores", "1", "--configfile", str(path), check=False,
        env={"CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    assert result.returncode != 0 and "training.device" in result.stderr
    assert not list((tmp_path / "results").rglob("*.npy"))


# --- 4. the Spearman figure -----------------------------------------------------------------------


def test_spearman_figure_with_one_seed_and_different_head_sets(tmp_path):
    """One seed; two settings with only an ensemble clf-lgb and one with only bt-mlp, long setting
    labels: seaborn's legend used to leave the panels no room (left cannot be >= right)."""
    from embrm.figures import render

    long_name = "ability-ability1-perfect0.1-spread1-useless0.1"
    records = [
        record(design="same-random", n=2000, head="clf-lgb", members=3, spearman=0.7),
        record(design="cross-random", n=2000, head="clf-lgb", members=3, spearman=0.6),
        record(design="same-similar", n=2000, head="bt-mlp", spearman=0.5),
    ]
    for run in (records[0], records[2]):
        run["run"]["annotator"] = long_name
    summary = build_summary(write(records, tmp_path / "runs"))
    summary.to_parquet(tmp_path / "summary.parquet")
    render("spearman", tmp_path / "summary.parquet", tmp_path / "s.png", tmp_path / "s.svg")
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "s.svg").stat().st_size > 0


# --- 8. degenerate runs ---------------------------------------------------------------------------


def test_degenerate_runs_are_flagged_and_left_out_of_aggregates(tmp_path):
    constant = record(seed=1, gain=0.018)
    constant["metrics"]["mean"]["spearman"] = float("nan")
    constant["metrics"]["mean"]["spearman_defined_fraction"] = 0.0
    first_step = record(seed=2)
    records = [record(seed=0), constant, first_step]
    for run, best in zip(records, ([4], [3], [1]), strict=True):
        # n = 2,000 pairs with the MLP's default batch of 10,240: one full-batch step per epoch.
        run["training"].update(best_epoch=best, train_pairs=2000)
        run["training"]["head"].update(batch_size=10240, val_fraction=0.2)
    assert run_status(records[0]) == "ok"
    assert "constant predictions" in run_status(constant)
    assert "first optimizer step" in run_status(first_step)
    # Under embrm's schedule an epoch has at least min_steps_per_epoch steps: best epoch 1 is
    # then ten steps of training, not one.
    scheduled = record(seed=4)
    scheduled["training"].update(best_epoch=[1], train_pairs=2000)
    scheduled["training"]["head"].update(batch_size=10240, val_fraction=0.2, min_steps_per_epoch=10)
    assert run_status(scheduled) == "ok"
    scheduled["training"]["head"]["min_steps_per_epoch"] = 1
    assert "first optimizer step" in run_status(scheduled)
    # A record that holds the schedule the head used is read, not worked out again.
    scheduled["training"]["steps_per_epoch"] = [7]
    assert run_status(scheduled) == "ok"
    scheduled["training"]["head"]["min_steps_per_epoch"] = 10
    scheduled["training"]["steps_per_epoch"] = [1]
    assert "first optimizer step" in run_status(scheduled)
    half = record(seed=3)
    half["metrics"]["mean"]["spearman_defined_fraction"] = 0.3
    assert "undefined on 70% of the test prompts" in run_status(half)
    summary = build_summary(write(records, tmp_path))
    assert list(summary["status"].str.startswith("degenerate")) == [False, True, True]
    row = aggregate(summary).iloc[0]
    assert row["seeds"] == 1 and row["degenerate_runs"] == 2
    assert row["bon_gain_mean"] == pytest.approx(summary.loc[0, "bon_gain"])


# --- 7. kill -9, resume; two experiments in one checkout ------------------------------------------


def test_claim_clears_stale_locks_only_when_alone(tmp_path):
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("x")
    results = tmp_path / "results" / "e"
    results.mkdir(parents=True)
    (results / ".summary.csv.abc.tmp").write_text("half")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
            " fcntl.flock(fd, fcntl.LOCK_SH); print('held', flush=True); time.sleep(60)",
            str(tmp_path / ".snakemake" / "embrm-invocations.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        # Another invocation runs: its lock and files are not touched.
        fd_count = len(invocation._HELD)
        assert invocation.claim(tmp_path / ".snakemake", results) == []
        assert (locks / "0.output.lock").exists() and (results / ".summary.csv.abc.tmp").exists()
    finally:
        holder.kill()
        holder.wait()
    for fd in invocation._HELD[fd_count:]:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    del invocation._HELD[fd_count:]
    removed = invocation.claim(tmp_path / ".snakemake", results)
    assert len(removed) == 2 and not (locks / "0.output.lock").exists()
    assert not (results / ".summary.csv.abc.tmp").exists()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # four small workflow invocations; 13 minutes on 2 busy cores
def test_two_experiments_one_killed_and_resumed_stay_intact(tiny_workflow, tmp_path):
    """Experiment a (the tiny config) is killed with SIGKILL mid-run and resumed by the same
    command, then experiment b runs in the same checkout: a's folder is untouched by b, a's
    summary equals the tiny config run alone, both MLflow experiments exist, no .tmp is left."""
    a = write_config(tmp_path / "a.yaml", TINY_CONFIG)
    b_config = deep_merge(TINY_CONFIG, {"annotators": {"bt": {"model": "bt", "beta": 3}}})
    b_config["grid"].update(designs=["cross-random"], heads=["clf-lgb"])
    b = write_config(tmp_path / "b.yaml", b_config)
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--cores", "2", "--configfile", str(a),
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not list(tmp_path.glob("results/a/runs/**/train.json")):
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)  # the whole invocation, jobs included, as a crash would
    run.wait()
    assert not (tmp_path / "results/a/summary.csv").exists()
    assert list((tmp_path / ".snakemake" / "locks").glob("*.lock"))  # the stale lock
    (tmp_path / "results/a/.leftover.npy.x1y2.tmp").write_text("half-written")
    resumed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert not list((tmp_path / "results").rglob("*.tmp"))

    before = results_snapshot(tmp_path / "results/a")
    snakemake(tmp_path, "--cores", "2", "--configfile", str(b))
    assert results_snapshot(tmp_path / "results/a") == before
    alone = pd.read_csv(tiny_workflow / "results/default/summary.csv")
    pd.testing.assert_frame_equal(
        metric_columns(pd.read_csv(tmp_path / "results/a/summary.csv")), metric_columns(alone)
    )
    b_summary = pd.read_csv(tmp_path / "results/b/summary.csv")
    assert len(b_summary) == len(Plan(b_config).runs) == 1
    for name in ("a", "b"):
        assert (tmp_path / f"results/{name}/config.used.yaml").exists()
        assert list((tmp_path / f"results/{name}/figures").glob("*.png"))
        synced = json.loads((tmp_path / f"results/{name}/tracking/synced.json").read_text())
        assert synced["experiment"] == name
    with sqlite3.connect(tmp_path / "results/mlflow.db") as db:
        names = {row[0] for row in db.execute("select name from experiments")}
    assert {"a", "b"} <= names
    report = subprocess.run(
        [*command[:5], "--configfile", str(b), "--report", "results/b/report.html"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    assert "results/b/summary.csv" in (tmp_path / "results/b/report.html").read_text()


# --- 10. progress on the console -------------------------------------------------------------------


def test_progress_logger_shows_overall_progress_and_time_left(tmp_path):
    """`--logger embrm` (what `make run` uses on a terminal): bars with percent and time left."""
    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: expand("o{i}", i=range(4))\n\n'
        'rule one:\n    output: "o{i}"\n    shell: "sleep 0.5; touch {output}"\n'
    )
    command = f"{sys.executable} -m snakemake --cores 1 --logger embrm"
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow"), "COLUMNS": "120"}
    # `script` gives Snakemake a terminal, where the progress display is drawn.
    result = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stdout)
    assert "Total Progress" in plain
    # percent done, elapsed time, then the estimate of the time left (mm:ss)
    assert re.search(r"\d+%\s+\d+:\d\d:\d\d\s+\d\d:\d\d", plain), plain[-2000:]
