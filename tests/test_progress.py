"""Long jobs' own progress on the console (`--logger embrm` follows the running jobs' log files)
and config files that Snakemake cannot read, named with file and line."""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from embrm import embedders, progress
from embrm.heads import make_head
from embrm.heads.base import PairData
from snakemake_logger_plugin_embrm.config_errors import config_files, explain
from snakemake_logger_plugin_embrm.follow import TAIL_BYTES, JobLogs, LogTail, describe

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def embrm_line(message: str) -> str:
    """A line as a job writes it to its log (embrm's CLI log format)."""
    return f"2026-01-01 00:00:00,000 embrm INFO {message}\n"


# --- the progress line ---------------------------------------------------------------------------


def test_progress_line_round_trips_and_ignores_other_lines():
    step = progress.Step("bt-mlp", "epoch", 3, 50, at_most=True, details="val loss 0.6931")
    assert str(step) == "progress bt-mlp: epoch 3 of at most 50; val loss 0.6931"
    assert progress.parse(embrm_line(str(step))) == step
    timed = progress.Step("embedding test", "texts", 640, 2000, eta_seconds=3725.0, details="x")
    assert str(timed) == "progress embedding test: texts 640 of 2000, ETA 1:02:05; x"
    assert progress.parse(str(timed)) == timed
    stalled = progress.parse("progress score: texts 0 of 9, ETA -")
    assert stalled.done == 0 and math.isinf(stalled.eta_seconds) and stalled.eta == "-"
    # Python's default logging format puts a colon before the message
    assert progress.parse("INFO:embrm:progress clf-lgb: round 100 of at most 400").done == 100
    for other in (
        embrm_line("trained bt-mlp in 1.0 s"),
        embrm_line("world written to results/x in 0.1 s"),
        "in progress now: 3 of 4",  # "progress" not followed by a task and a count
        "",
    ):
        assert progress.parse(other) is None


def test_training_logs_progress_lines_per_epoch_and_per_round(caplog):
    g = np.random.default_rng(0)
    x = g.standard_normal((200, 8)).astype(np.float32)
    a = g.integers(200, size=400)
    b = (a + g.integers(1, 200, size=400)) % 200
    data = PairData(x, a, b, (x[a, 0] > x[b, 0]).astype(np.uint8))
    with caplog.at_level(logging.INFO, logger="embrm"):
        make_head("bt-mlp", seed=0, threads=1, max_epochs=3, patience=5, hidden=[8]).fit(data)
        make_head("clf-lgb", seed=0, threads=1, n_estimators=200, early_stopping_rounds=500).fit(
            data
        )
    steps = [progress.parse(r.getMessage()) for r in caplog.records]
    epochs = [s for s in steps if s and s.unit == "epoch"]
    assert [(s.task, s.done, s.total, s.at_most) for s in epochs] == [
        ("bt-mlp", k, 3, True) for k in (1, 2, 3)
    ]
    assert all("val loss" in s.details for s in epochs)
    rounds = [s for s in steps if s and s.unit == "round"]
    assert rounds and all(s.task == "clf-lgb" and s.total == 200 for s in rounds)
    assert rounds[0].done == 100


class CountingEmbedder:
    dim, device, dtype = 4, "cpu", "float32"

    def embed(self, texts):
        return np.array([[len(t), 1.0, 2.0, 3.0] for t in texts], dtype=np.float32)


def test_embedding_logs_texts_done_of_total_with_eta(caplog, tmp_path):
    texts = [f"text {i}" for i in range(12)]
    spec = {"type": "sentence", "batch_size": 5, "store_dtype": "float32"}
    with caplog.at_level(logging.INFO, logger="embrm"):
        embedders.embed_to_npy(
            texts, spec, tmp_path / "e.npy", shape=(4, 3), embedder=CountingEmbedder()
        )
    steps = [s for s in map(progress.parse, (r.getMessage() for r in caplog.records)) if s]
    assert steps[0].done == 0 and steps[-1].done == steps[-1].total == 12
    assert all(s.task == "embedding" and s.unit == "texts" and not s.at_most for s in steps)
    assert steps[-1].eta_seconds == 0.0 and steps[-1].eta == "0:00:00"


# --- following a growing log ---------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_job_logs_follow_a_growing_file(tmp_path):
    log = tmp_path / "logs" / "train.log"
    clock = Clock()
    jobs = JobLogs(every=1.0, clock=clock)
    jobs.start(7, "train", [str(log)])
    jobs.start(8, "pairs", [str(tmp_path / "never-written.log")])
    jobs.start(9, "world", [])
    jobs.poll()
    assert jobs.steps() == []  # no file yet: nothing, no error

    log.parent.mkdir()
    with open(log, "w") as handle:
        handle.write(embrm_line("fitting"))
        handle.write(embrm_line(str(progress.Step("bt-mlp", "epoch", 1, 9, True, None, "a"))))
        handle.write(embrm_line(str(progress.Step("bt-mlp", "epoch", 2, 9, True)))[:40])  # cut
        handle.flush()
        clock.now = 0.5
        jobs.poll()
        assert jobs.steps() == []  # throttled: read at most once a second
        clock.now = 1.0
        jobs.poll()
        assert [(r, s.done) for r, s in jobs.steps()] == [("train", 1)]  # the cut line waits
        handle.write(embrm_line(str(progress.Step("bt-mlp", "epoch", 2, 9, True)))[40:])
        handle.flush()
        clock.now = 2.0
        jobs.poll()
        ((rule, step),) = jobs.steps()
        assert (rule, step.done, step.total) == ("train", 2, 9)
        assert describe(rule, step) == "train · bt-mlp: epoch 2 of at most 9"

    # Rewritten from the start (a rerun of the job): read again from the beginning.
    log.write_text(embrm_line(str(progress.Step("bt-mlp", "epoch", 1, 4, True))))
    jobs.poll(force=True)
    assert jobs.steps()[0][1].total == 4
    log.unlink()
    jobs.poll(force=True)  # removed while running: the last step stays, nothing raised
    assert jobs.steps()[0][1].total == 4
    jobs.stop(7)
    jobs.stop(12345)  # unknown job: ignored
    assert jobs.steps() == []


def test_log_tail_skips_ahead_on_a_large_backlog(tmp_path):
    log = tmp_path / "big.log"
    filler = "x" * 99 + "\n"
    log.write_text(filler * (3 * TAIL_BYTES // len(filler)) + "last line\n")
    tail = LogTail(str(log))
    lines = tail.new_lines()
    # about a third of the 3 × TAIL_BYTES file
    assert lines[-1] == "last line" and len(lines) <= TAIL_BYTES // len(filler) + 1
    assert all(line == filler.strip() for line in lines[:-1])  # no line cut at its start
    assert tail.new_lines() == []


# --- the console of a running workflow -----------------------------------------------------------

# Two jobs log progress lines while they run; a third declares a log it never writes.
PROGRESS_SNAKEFILE = """
rule all:
    input: "fit1.done", "fit2.done", "quiet.done"

rule fit:
    output: "fit{i}.done"
    log: "logs/fit{i}.log"
    shell: "python job.py fit{wildcards.i} 2> {log} && touch {output}"

rule quiet:
    output: "quiet.done"
    log: "logs/quiet.log"
    shell: "sleep 1 && touch {output}"
"""

PROGRESS_JOB = """
import logging, sys, time
from embrm.progress import report
logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(asctime)s embrm %(levelname)s %(message)s")
for epoch in range(1, 9):
    report(sys.argv[1], "epoch", epoch, 8, at_most=True, details=f"val loss {1 / epoch:.4f}")
    time.sleep(0.6)
"""


def run_on_terminal(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow"), "COLUMNS": "140"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    # `script` gives Snakemake a terminal, where the progress display is drawn.
    return subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def console_lines(output: str) -> set[str]:
    return {line.strip() for line in ANSI.sub("", output).replace("\r", "\n").splitlines()}


@pytest.mark.slow
def test_console_shows_the_running_jobs_progress_lines(tmp_path):
    (tmp_path / "Snakefile").write_text(PROGRESS_SNAKEFILE)
    (tmp_path / "job.py").write_text(PROGRESS_JOB)
    command = f"{sys.executable} -m snakemake --cores 3 --logger embrm"
    result = run_on_terminal(command, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    shown = {
        (m["task"], int(m["epoch"]))
        for line in console_lines(result.stdout)
        if (
            m := re.fullmatch(r"fit · (?P<task>fit\d): epoch (?P<epoch>\d) of at most 8 · .*", line)
        )
    }
    # Each job's line advanced while it ran (read about once a second, jobs take ~5 s).
    for task in ("fit1", "fit2"):
        epochs = sorted(epoch for name, epoch in shown if name == task)
        assert len(epochs) >= 2 and epochs[-1] > epochs[0], sorted(shown)
    assert "val loss" in result.stdout
    # The plain log lines of the jobs stay in their files; the console gets only the summary.
    assert "embrm INFO" not in result.stdout
    # Without the logger, the console is Snakemake's as before: no job progress lines.
    for name in ("fit1.done", "fit2.done", "quiet.done"):
        (tmp_path / name).unlink()
    plain = run_on_terminal(f"{sys.executable} -m snakemake --cores 3", tmp_path)
    assert plain.returncode == 0 and "epoch" not in plain.stdout
    assert "steps (100%) done" in plain.stdout


# --- config files Snakemake cannot read ----------------------------------------------------------

BAD_YAML = "grid:\n  worlds: [tiny\n  heads: x\n"


def snakemake_with(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A dry run of the workflow in ``cwd``; stdout holds stdout and stderr together."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    return subprocess.run(
        [*command, "--directory", str(cwd), "-n", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )


def test_config_files_are_found_on_the_command_line():
    argv = ["snakemake", "--cores", "2", "--configfile", "a.yaml", "-n"]
    assert config_files(argv) == ["a.yaml"]
    assert config_files(["snakemake", "--configfiles", "a.yaml", "b.yaml", "--cores"]) == [
        "a.yaml",
        "b.yaml",
    ]
    assert config_files(["snakemake", "--configfile=c.yaml", "all"]) == ["c.yaml"]
    assert config_files(["snakemake", "--cores", "all"]) == []


def test_explain_names_file_and_line_only_for_config_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(BAD_YAML)
    snakemake_yaml = "WorkflowError:\nConfig file is not valid JSON or YAML. In case of YAML, …"
    account = explain(snakemake_yaml, "WorkflowError", ["snakemake", "--configfile", "bad.yaml"])
    assert account == (
        "error: bad.yaml: not valid YAML at line 3, column 8: expected ',' or ']', but got ':'"
    )
    missing = "Traceback …\n  File …/configfile.py …\nFileNotFoundError: … 'gone.yaml'"
    assert explain(missing, "FileNotFoundError", ["snakemake", "--configfile", "gone.yaml"]) == (
        "error: gone.yaml: config file not found"
    )
    # An empty file and a directory: Snakemake names neither.
    (tmp_path / "empty.yaml").write_text("")
    not_mapping = (
        "WorkflowError:\nConfig file must be given as JSON or YAML with keys at top level."
    )
    assert explain(not_mapping, "WorkflowError", ["snakemake", "--configfile", "empty.yaml"]) == (
        "error: empty.yaml: the config file is empty; expected a mapping with at least the keys "
        "worlds, annotators, heads, grid"
    )
    (tmp_path / "folder.yaml").mkdir()
    directory = "IsADirectoryError: [Errno 21] Is a directory: 'folder.yaml'"
    assert explain(
        directory, "IsADirectoryError", ["snakemake", "--configfile", "folder.yaml"]
    ) == ("error: folder.yaml: is a directory, expected a YAML config file")
    # Other errors pass through untouched.
    assert explain("MissingInputException …", "MissingInputException", ["snakemake"]) is None


@pytest.mark.slow
def test_snakemake_config_file_errors_name_file_and_line(tmp_path):
    """What Snakemake itself prints, and what `--logger embrm` and the Snakefile add."""
    (tmp_path / "bad.yaml").write_text(BAD_YAML)
    where = "line 3, column 8: expected ',' or ']', but got ':'"

    # --configfile with a YAML syntax error: Snakemake's own words name neither file nor line...
    plain = snakemake_with("--configfile", "bad.yaml", cwd=tmp_path)
    assert plain.returncode == 1
    assert "Config file is not valid JSON or YAML" in plain.stdout
    assert "bad.yaml" not in plain.stdout and "line 3" not in plain.stdout
    # ...the logger adds them.
    logged = snakemake_with("--configfile", "bad.yaml", "--logger", "embrm", cwd=tmp_path)
    assert logged.returncode == 1
    assert f"error: bad.yaml: not valid YAML at {where}" in logged.stdout

    # A missing --configfile: a traceback from Snakemake, one line with the logger.
    plain = snakemake_with("--configfile", "gone.yaml", cwd=tmp_path)
    assert plain.returncode == 1 and "Traceback" in plain.stdout
    assert "FileNotFoundError: [Errno 2] No such file or directory: 'gone.yaml'" in plain.stdout
    logged = snakemake_with("--configfile", "gone.yaml", "--logger", "embrm", cwd=tmp_path)
    assert logged.returncode == 1 and "Traceback" not in logged.stdout
    assert "error: gone.yaml: config file not found" in logged.stdout

    # Plain `snakemake` reads config.yaml in the Snakefile, which names file and line itself,
    # and the file when it is empty.
    (tmp_path / "config.yaml").write_text(BAD_YAML)
    default = snakemake_with(cwd=tmp_path)
    assert default.returncode == 1
    assert f"error: config.yaml: not valid YAML at {where}" in default.stdout
    (tmp_path / "config.yaml").write_text("# nothing yet\n")
    empty = snakemake_with(cwd=tmp_path)
    assert empty.returncode == 1
    assert "error: config.yaml: the config file is empty" in empty.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_make_run_names_file_and_line_of_a_config_error(tmp_path):
    """`make run CONFIG=F` checks F with embrm's reader before Snakemake reads it."""
    (tmp_path / "bad.yaml").write_text(BAD_YAML)
    venv = Path(sys.executable).parent.parent
    if not (venv / ".installed").exists():
        pytest.fail(f"{venv}: not the project's venv made by `make install`")
    # -o: the venv counts as installed (never reinstalled into from a test).
    make = ["make", "-C", str(REPO), f"VENV={venv}", "-o", f"{venv}/.installed", "run"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    for config, message in (
        (tmp_path / "bad.yaml", "not valid YAML at line 3, column 8"),
        (tmp_path / "gone.yaml", "config file not found"),
    ):
        result = subprocess.run(
            [*make, f"CONFIG={config}"], capture_output=True, text=True, env=env, timeout=300
        )
        assert result.returncode != 0
        assert f"error: {config}: {message}" in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
