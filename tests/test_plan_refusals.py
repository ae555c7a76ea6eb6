"""`embrm plan` refuses every config the workflow refuses while it is parsed, with the same message:
both build the same plan and layout (embrm/layout.py). Each refusal runs through embrm's CLI
`python -m embrm plan FILE` and `snakemake -n --configfile FILE`, and the two `error:` lines must
be equal."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, TINY_CONFIG, deep_merge
from embrm.cli import main

TEXT_WORLD = {
    "source": "table",
    "path": str(REPO / "tests" / "data" / "text-set.jsonl"),
    "columns": {"prompt": "prompt", "response": "response", "reward": "reward", "split": "split"},
    "template": "{prompt} {answer}",
    "embedder": {"type": "sentence"},
}

# One config per refusal the workflow can raise at parse time, and the words its message has.
REFUSALS = {
    "schema": ({"grid": {"quantities": [-5]}}, "config key 'grid.quantities[0]'"),
    "experiment-name": ({"experiment": "mlflow.db"}, "mlflow.db"),
    "annotator-rule": ({"annotators": {"bt": {"model": "bt", "beta": [1, -2]}}}, "annotators.bt"),
    "reference": ({"grid": {"heads": ["no-such-head"]}}, "'grid.heads[0]': 'no-such-head'"),
    "head-params": ({"heads": {"bt-mlp": {"params": {"hidden": "wide"}}}}, "heads.bt-mlp"),
    "capacity": ({"grid": {"quantities": [100000]}}, "allows at most"),
    "stack-with-active": (
        {"training": {"stack": True}, "grid": {"designs": ["same-random", "same-activerandom"]}},
        "config key 'training.stack'",
    ),
    "active-settings": (
        {"active": {"pool_size": 10, "round_size": 50}},
        "config key 'active.pool_size'",
    ),
    "world-template": (
        {"worlds": {"text": TEXT_WORLD}, "grid": {"worlds": ["text"]}},
        "config key 'worlds.text.template'",
    ),
    "missing-input": (
        {
            "worlds": {
                "arrays": {
                    "source": "npy",
                    "train": {"embeddings": "nowhere/train.npy", "rewards": "nowhere/r.npy"},
                    "test": {"embeddings": "nowhere/test.npy", "rewards": "nowhere/t.npy"},
                }
            },
            "grid": {"worlds": ["arrays"]},
        },
        "nowhere/",
    ),
}


def error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error: ")]
    assert lines, output[-3000:]
    return lines[0]


def config_of(name: str) -> dict:
    change = REFUSALS[name][0]
    config = deep_merge(TINY_CONFIG, change)
    if "worlds" in change:  # a grid of the other world only
        del config["worlds"]["tiny"]
    return config


@pytest.fixture(scope="module")
def workflow_says(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """`snakemake -n` on each refused config, the processes started together (each only parses
    the workflow)."""
    folder = tmp_path_factory.mktemp("refusals")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "workflow"),
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}",
    }
    started = {}
    for name in REFUSALS:
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config_of(name), sort_keys=False))
        command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                   "-n", "--cores", "1", "--configfile", str(path)]  # fmt: skip
        started[name] = (path, subprocess.Popen(
            command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env,
        ))  # fmt: skip
    said = {}
    for name, (path, process) in started.items():
        output, _ = process.communicate(timeout=600)
        said[name] = (path, process.returncode, output)
    return said


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_plan_and_snakemake_refuse_with_the_same_message(name, workflow_says, capsys, monkeypatch):
    path, status, output = workflow_says[name]
    assert status != 0, output[-3000:]
    monkeypatch.chdir(path.parent)
    assert main(["plan", str(path)]) == 2
    said = error_line(capsys.readouterr().err)
    assert REFUSALS[name][1] in said, said
    assert error_line(output) == said
