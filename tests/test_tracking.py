"""MLflow tracking: real parallel writers, idempotent reruns, outages of a real tracking server."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, TINY_CONFIG, deep_merge, snakemake
from embrm.config import ConfigError, Plan, validate
from embrm.hashing import config_hash
from embrm.io import read_json, write_json
from embrm.tracking import (
    CONTENT_TAG,
    INVOCATION_TAG,
    LOGGED_AT_TAG,
    RUN_KEY_TAG,
    build_payload,
    git_state,
    log_run,
    run_key,
    run_name,
    sync,
)
from mlflow_server import MlflowServer

# 2 heads x 2 designs x 2 betas x 2 seeds = 16 runs; LightGBM heads keep training cheap.
LGB_HEADS = {
    "clf-lgb": {"params": {"n_estimators": 20}},
    "clf-lgb-small": {"type": "clf-lgb", "params": {"n_estimators": 8, "num_leaves": 7}},
}
PARALLEL_CONFIG = deep_merge(
    {k: v for k, v in TINY_CONFIG.items() if k != "heads"},
    {
        "heads": LGB_HEADS,
        "training": {"threads": 1},
        "grid": {"heads": list(LGB_HEADS), "seeds": [0, 1]},
        "tracking": {"mode": "jobs", "experiment": "parallel-jobs"},
    },
)
# Dry runs that check "nothing to do" ignore the "code" trigger: an edit of the workflow's source
# while the tests run must not count as a rerun caused by tracking.
OWN_TRIGGERS = ("--rerun-triggers", "mtime", "params", "input", "software-env")
# What every run must carry, whatever else the record holds.
REQUIRED_METRICS = {
    "bon_gain",
    "bon_gain_normalized",
    "bon_reward_by_n",
    "bon_gain_by_n",
    "spearman",
    "accuracy_vs_labels",
    "accuracy_vs_golden",
    "annotation_pairs",
    "annotation_mean_abs_dr",
    "annotation_expected_error_rate",
    "annotation_realized_error_rate",
    "train_loss",
    "time/fit_s",
    "time/evaluate_s",
    "time/train_s",
    "time/annotate_s",
    "time/pairs_s",
    "time/world_s",
}
REQUIRED_PARAMS = {
    "world",
    "source",
    "design",
    "pairing",
    "candidates",
    "n",
    "seed",
    "annotator",
    "annotator.model",
    "annotator.beta",
    "annotation.scale",
    "head",
    "head.type",
    "head.n_estimators",
    "training.threads",
    "training.cpu_capability",
}
REQUIRED_TAGS = {
    "embrm.git_commit",
    "embrm.git_dirty",
    "embrm.config_hash",
    "embrm.version",
    "embrm.rule",
    "embrm.wildcards",
    "embrm.device",
    "embrm.host",
    RUN_KEY_TAG,
    CONTENT_TAG,
}


def client_for(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def active_runs(client, experiment_id: str) -> list:
    return client.search_runs([experiment_id], max_results=5000)


def keyed(runs) -> list:
    return [r for r in runs if RUN_KEY_TAG in r.data.tags]


def parents(runs) -> list:
    return [r for r in runs if r.data.tags.get(INVOCATION_TAG) == "true"]


def logging_interval(run) -> tuple[int, int]:
    first, last = run.data.tags[LOGGED_AT_TAG].split("-")
    return int(first), int(last)


def max_overlap(runs) -> int:
    """Most runs whose logging intervals (create to the content hash) overlap at one instant."""
    intervals = [logging_interval(r) for r in runs]
    events = sorted(
        [(first, 1) for first, _ in intervals] + [(last, -1) for _, last in intervals],
        key=lambda e: (e[0], e[1]),
    )
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def records(results: Path) -> dict[str, Path]:
    return {run_key(read_json(p)): p for p in sorted((results / "runs").glob("**/metrics.json"))}


# --------------------------------------------------------------------------------------------
# 16 evaluate jobs logging at once (tracking.mode: jobs) into a fresh sqlite database


@pytest.fixture(scope="module")
def parallel_workflow(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("parallel-jobs")
    # First everything up to training, so that all 16 evaluate jobs become ready together and
    # really log at the same time in the second invocation.
    snakemake(workdir, "--cores", "16", "--until", "train", config=PARALLEL_CONFIG)
    assert not (workdir / "results/mlflow.db").exists()  # no parent run for a run-less invocation
    started = time.time()
    result = snakemake(workdir, "--cores", "16")
    (workdir / "elapsed.txt").write_text(f"{time.time() - started:.1f}")
    (workdir / "second.log").write_text(result.stdout + result.stderr)
    return workdir


@pytest.mark.slow
def test_sixteen_parallel_jobs_log_exactly_the_expected_runs(parallel_workflow):
    results = parallel_workflow / "results" / "default"
    plan = Plan(PARALLEL_CONFIG)
    assert len(plan.runs) == 16
    expected = records(results)
    assert len(expected) == 16
    uri = f"sqlite:///{results.parent / 'mlflow.db'}"
    client = client_for(uri)
    experiment = client.get_experiment_by_name("parallel-jobs")
    assert experiment is not None
    assert experiment.artifact_location == (results / "mlartifacts").resolve().as_uri()
    default = client.get_experiment_by_name("Default")
    assert default is None or not client.search_runs([default.experiment_id])

    runs = active_runs(client, experiment.experiment_id)
    children, invocation = keyed(runs), parents(runs)
    assert len(invocation) == 1 and len(children) == 16 and len(runs) == 17
    assert {r.data.tags[RUN_KEY_TAG] for r in children} == set(expected)
    parent = invocation[0]
    assert parent.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "figures")}
    assert artifacts and all(a.endswith((".png", ".svg")) for a in artifacts)

    commit = git_state(REPO)
    for run in children:
        path = expected[run.data.tags[RUN_KEY_TAG]]
        record = read_json(path)
        payload = build_payload(path)
        assert run.info.run_name == run_name(record)
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        # Logged by its own evaluate job, not by the end-of-workflow safety net.
        assert run.data.tags["embrm.logged_by"] == "job"
        assert run.data.tags[CONTENT_TAG] == payload.content
        assert REQUIRED_TAGS <= set(run.data.tags)
        assert run.data.tags["embrm.git_commit"] == commit["embrm.git_commit"]
        assert run.data.tags["embrm.config_hash"] == config_hash(plan.config)
        assert run.data.tags["embrm.rule"] == "evaluate"
        # Every metric present, with the series on their steps.
        assert set(run.data.metrics) == {name for name, _, _ in payload.metrics}
        assert REQUIRED_METRICS <= set(run.data.metrics)
        assert run.data.metrics["bon_gain"] == pytest.approx(record["metrics"]["mean"]["bon_gain"])
        bon = client.get_metric_history(run.info.run_id, "bon_reward_by_n")
        assert [m.step for m in sorted(bon, key=lambda m: m.step)] == record["metrics"]["mean"][
            "n_values"
        ]
        epochs = sorted({int(float(row["epoch"])) for row in record["curves"]})
        history = client.get_metric_history(run.info.run_id, "train_loss")
        assert sorted(m.step for m in history) == epochs
        assert REQUIRED_PARAMS <= set(run.data.params)
        assert run.data.params == payload.params
        # The run's times are the job's: training started, evaluation ended (not the logging).
        train = read_json(path.parent / "train.json")
        assert run.info.start_time == round(train["started_at"] * 1000)
        assert run.info.end_time == round(record["finished_at"] * 1000)
        assert run.info.end_time - run.info.start_time >= 1000 * train["fit_seconds"]
        assert logging_interval(run)[0] >= run.info.end_time  # logged after the job's work
        logged = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert logged == {"predictions.npy", "curves.csv", "metrics.json"}

    # The 16 loggers really ran concurrently, and the safety-net sync found nothing missing.
    assert max_overlap(children) >= 2
    synced = read_json(results / "tracking/synced.json")
    assert synced["unchanged"] == 16 and synced["created"] == synced["replaced"] == 0
    assert synced["parent_run_id"] == parent.info.run_id
    assert not (results / "tracking/invocation.json").exists()
    print(
        f"16 parallel jobs: max {max_overlap(children)} logging at once; second invocation "
        f"{(parallel_workflow / 'elapsed.txt').read_text()} s"
    )


@pytest.mark.slow
def test_rerunning_the_workflow_or_the_sync_adds_no_run(parallel_workflow):
    results = parallel_workflow / "results" / "default"
    again = snakemake(parallel_workflow, "-n", "--cores", "2", *OWN_TRIGGERS)
    assert "Nothing to be done" in again.stdout + again.stderr
    snakemake(parallel_workflow, "--cores", "2", "--forcerun", "track")
    synced = read_json(results / "tracking/synced.json")
    assert synced["unchanged"] == 16 and synced["created"] == synced["replaced"] == 0
    client = client_for(f"sqlite:///{results.parent / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("parallel-jobs")
    runs = active_runs(client, experiment.experiment_id)
    assert len(keyed(runs)) == 16
    assert len({r.data.tags[RUN_KEY_TAG] for r in keyed(runs)}) == 16
    # The forced sync is an invocation of its own: one more parent, finished, nothing running.
    assert len(parents(runs)) == 2
    assert all(r.info.status == "FINISHED" for r in runs)


@pytest.mark.slow
def test_sync_creates_leaves_replaces_and_repairs(parallel_workflow, tmp_path):
    """The sync's contract, on copies of real run records and a fresh database."""
    source = parallel_workflow / "results" / "default"
    results = tmp_path / "results"
    shutil.copytree(source / "runs", results / "runs")
    shutil.copytree(source / "benchmarks", results / "benchmarks")
    figures = sorted((source / "figures").glob("*.png"))
    uri = f"sqlite:///{results / 'mlflow.db'}"

    def run_sync(**extra):
        return sync(
            sorted((results / "runs").glob("**/metrics.json")),
            uri=uri,
            experiment="contract",
            artifact_location=(results / "mlartifacts").as_uri(),
            results_dir=results,
            tags={"embrm.config_hash": "test"},
            artifacts=["curves"],
            parent_files={"figures": figures},
            **extra,
        )

    first = run_sync()
    assert first["created"] == 16 and first["parent_run_id"]
    second = run_sync()
    assert second["unchanged"] == 16 and second["created"] == second["replaced"] == 0
    assert second["parent_run_id"] is None  # nothing new: no empty parent run

    client = client_for(uri)
    experiment_id = first["experiment_id"]
    by_key = {r.data.tags[RUN_KEY_TAG]: r for r in keyed(active_runs(client, experiment_id))}
    paths = list(records(results).items())

    # A recomputed run (same definition, other numbers) replaces the old one.
    key, path = paths[0]
    record = read_json(path)
    record["metrics"]["mean"]["bon_gain"] += 1.0
    write_json(path, record)
    # A run cut short before its content tag was written is redone.
    cut_key = paths[1][0]
    client.delete_tag(by_key[cut_key].info.run_id, CONTENT_TAG)
    # A duplicate left by a second writer of the same run is removed.
    dup_key, dup_path = paths[2]
    log_run(
        client,
        experiment_id,
        None,
        build_payload(dup_path, ["curves"]),
        {"embrm.config_hash": "test"},
        logged_by="sync",
        existing=[],
    )

    third = run_sync()
    assert third["replaced"] == 2 and third["duplicates_removed"] == 1
    assert third["unchanged"] == 14 and third["created"] == 0
    runs = keyed(active_runs(client, experiment_id))
    assert len(runs) == 16 and len({r.data.tags[RUN_KEY_TAG] for r in runs}) == 16
    assert client.get_run(by_key[key].info.run_id).info.lifecycle_stage == "deleted"
    latest = next(r for r in runs if r.data.tags[RUN_KEY_TAG] == key)
    assert latest.data.metrics["bon_gain"] == pytest.approx(record["metrics"]["mean"]["bon_gain"])
    assert [r.info.run_id for r in runs if r.data.tags[RUN_KEY_TAG] == dup_key] == [
        by_key[dup_key].info.run_id
    ]  # the older of the two stays

    # Another hyperparameter is another run: the old one stays for comparison.
    record["training"]["head"]["n_estimators"] = 99
    write_json(path, record)
    fourth = run_sync()
    assert fourth["created"] == 1 and fourth["unchanged"] == 15
    assert len(keyed(active_runs(client, experiment_id))) == 17


def test_run_identity_is_the_definition(parallel_workflow):
    path = next(iter(records(parallel_workflow / "results" / "default").values()))
    record = read_json(path)
    key = run_key(record)
    timing = json.loads(json.dumps(record))
    timing["training"]["fit_seconds"] += 5
    assert run_key(timing) == key  # same run, recomputed
    for change in (
        lambda r: r["training"]["head"].update(num_leaves=3),
        lambda r: r["annotation"]["annotator"].update(beta=0.5),
        lambda r: r["run"].update(seed=r["run"]["seed"] + 1),
        lambda r: r["evaluation"].update(repeats=7),
    ):
        other = json.loads(json.dumps(record))
        change(other)
        assert run_key(other) != key
    name = run_name(record)
    head, pairing, quality, n, seed, world = name.split(" · ")
    run = record["run"]
    assert head == run["head"] and pairing == run["design"].replace("-", "/")
    assert quality == f"β={record['annotation']['annotator']['beta']:g}"
    assert (n, seed, world) == (f"n={run['n']}", f"seed {run['seed']}", run["world"])


def test_tracking_config_errors_name_the_key():
    for tracking, key in (
        ({"uri": "./mlruns"}, "tracking.uri"),
        ({"mode": "live"}, "tracking.mode"),
        ({"artifacts": ["model"]}, "tracking.artifacts[0]"),
    ):
        with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
            validate(deep_merge(TINY_CONFIG, {"tracking": tracking}))
    config = validate(deep_merge(TINY_CONFIG, {"tracking": {"uri": "http://mlflow:5000"}}))
    assert config["tracking"]["mode"] == "sync"
    assert config["tracking"]["artifacts"] == ["predictions", "curves", "metrics"]


def test_telemetry_is_off_even_when_the_environment_turns_it_on(tmp_path):
    code = (
        "import os\n"
        "from mlflow.telemetry.utils import is_telemetry_disabled\n"
        "before = is_telemetry_disabled()\n"
        "from embrm.tracking import quiet_environment; quiet_environment()\n"
        "print(before, os.environ['MLFLOW_DISABLE_TELEMETRY'], is_telemetry_disabled())"
    )
    # No CI markers either: MLflow turns telemetry off by itself in CI, which would hide a bug.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MLFLOW_DISABLE_TELEMETRY": "false"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "true", "True"]


# --------------------------------------------------------------------------------------------
# A real tracking server stopped mid-workflow


OUTAGE_CONFIG = deep_merge(
    {k: v for k, v in TINY_CONFIG.items() if k != "heads"},
    {
        "heads": LGB_HEADS,
        "training": {"threads": 1},
        "grid": {"heads": list(LGB_HEADS)},
        "tracking": {"mode": "jobs", "experiment": "outage"},
    },
)


def complete_runs(db: Path) -> int:
    """Runs holding their content tag (complete), read straight from the server's database."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute(
                "select count(*) from tags t join runs r on r.run_uuid = t.run_uuid "
                "where t.key = ? and r.lifecycle_stage = 'active'",
                (CONTENT_TAG,),
            ).fetchone()[0]
    except sqlite3.Error:
        return 0  # tables not created yet


@pytest.mark.slow
def test_server_outage_mid_workflow_loses_and_duplicates_nothing(tmp_path):
    store = tmp_path / "server"
    server = MlflowServer(store / "mlflow.db", store / "artifacts", tmp_path / "server.log")
    workdir = tmp_path / "work"
    config = deep_merge(OUTAGE_CONFIG, {"tracking": {"uri": server.uri}})
    cells = len(Plan(config).runs)
    assert cells == 8
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--cores", "2"]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    try:
        server.start()
        with open(tmp_path / "first.log", "w") as log:
            workflow = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=log, env=env)
        try:
            # Stop the server as soon as the first job has logged its run.
            deadline = time.monotonic() + 400
            while complete_runs(store / "mlflow.db") == 0 and time.monotonic() < deadline:
                assert workflow.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
                time.sleep(0.1)
            server.stop()
            logged_before = complete_runs(store / "mlflow.db")
            assert 1 <= logged_before < cells
            assert workflow.wait(timeout=400) == 0, (tmp_path / "first.log").read_text()[-3000:]
        finally:
            if workflow.poll() is None:
                workflow.kill()
        results = workdir / "results" / "default"
        # Everything is on disk and the sync is marked pending.
        assert len(list((results / "runs").glob("**/metrics.json"))) == cells
        assert (results / "summary.csv").exists()
        pending = read_json(results / "tracking/synced.json")
        assert pending["pending_since"]
        assert complete_runs(store / "mlflow.db") == logged_before

        metrics_times = {
            p: p.stat().st_mtime_ns for p in (results / "runs").glob("**/metrics.json")
        }
        server.start()
        snakemake(workdir, "--cores", "2")
        # Only the sync reran: no run was recomputed.
        assert metrics_times == {
            p: p.stat().st_mtime_ns for p in (results / "runs").glob("**/metrics.json")
        }
        synced = read_json(results / "tracking/synced.json")
        assert "pending_since" not in synced
        assert synced["created"] + synced["replaced"] >= cells - logged_before
        assert synced["created"] + synced["replaced"] + synced["unchanged"] == cells

        client = client_for(server.uri)
        experiment = client.get_experiment_by_name("outage")
        runs = active_runs(client, experiment.experiment_id)
        children = keyed(runs)
        assert len(children) == cells
        assert {r.data.tags[RUN_KEY_TAG] for r in children} == set(records(results))
        assert all(CONTENT_TAG in r.data.tags and r.info.status == "FINISHED" for r in children)
        # The interrupted invocation's parent is closed, not left RUNNING.
        assert len(parents(runs)) == 2
        assert all(r.info.status != "RUNNING" for r in runs)
        default = client.get_experiment_by_name("Default")
        assert default is None or not client.search_runs([default.experiment_id])

        # The retry settled the pending state: nothing left to do.
        third = snakemake(workdir, "-n", "--cores", "2", *OWN_TRIGGERS)
        assert "Nothing to be done" in third.stdout + third.stderr
    finally:
        server.stop()


# A fresh SQLite store opened by several processes at once: each migrates the schema, and without
# the creation lock all but one fail (and the file can be left broken).
OPEN_FRESH_STORE = """
import sys
from embrm.tracking import open_backend
import mlflow.tracking  # imported before the start signal, so every process opens at once
print("ready", flush=True)
sys.stdin.readline()
client, experiment_id = open_backend(sys.argv[1], sys.argv[2], None)
print(experiment_id)
"""


def test_processes_creating_the_store_at_once_all_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_FRESH_STORE, uri, f"experiment-{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(3)
    ]
    assert [p.stdout.readline().strip() for p in processes] == ["ready"] * 3
    for p in processes:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [(*p.communicate(timeout=120), p.returncode) for p in processes]
    assert all(code == 0 for _, _, code in results), [err[-1500:] for _, err, _ in results]
    assert len({out.strip() for out, _, _ in results}) == 3
    with sqlite3.connect(tmp_path / "results" / "mlflow.db") as db:
        names = {row[0] for row in db.execute("select name from experiments")}
    assert {f"experiment-{i}" for i in range(3)} <= names


@pytest.mark.slow
def test_two_experiments_started_together_in_a_fresh_checkout_both_sync(tmp_path):
    """Both invocations create the shared results/mlflow.db: both syncs succeed the first time.
    With tracking.mode: jobs both create it in their onstart hooks, at the same moment."""
    config = deep_merge(
        TINY_CONFIG,
        {"annotators": {"bt": {"model": "bt", "beta": 3}}, "tracking": {"mode": "jobs"}},
    )
    config["grid"].update(designs=["same-random"], heads=["clf-lgb"])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    invocations = []
    for name in ("first", "second"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**config, "experiment": name}))
        command = [
            sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
            "--cores", "1", "--configfile", f"{name}.yaml",
        ]  # fmt: skip
        invocations.append(
            subprocess.Popen(
                command,
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=900)[0] for p in invocations]
    assert [p.returncode for p in invocations] == [0, 0], [o[-3000:] for o in outputs]
    for name in ("first", "second"):
        synced = read_json(tmp_path / f"results/{name}/tracking/synced.json")
        assert synced["experiment"] == name and not synced.get("pending_since"), synced
        assert not synced.get("retried_pending_since"), synced  # logged on the first try
    with sqlite3.connect(tmp_path / "results" / "mlflow.db") as db:
        names = {row[0] for row in db.execute("select name from experiments")}
        runs = db.execute("select count(*) from runs where status = 'FINISHED'").fetchone()[0]
    assert {"first", "second"} <= names and runs >= 2
