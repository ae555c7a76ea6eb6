"""`embrm plan` refuses every config the workflow refuses while it is parsed, with the same message:
both build the same plan and layout (embrm/layout.py). Each refusal runs through
`python -m embrm plan FILE` and `snakemake -n --configfile FILE`, and the two `error:` lines must
be equal."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import REPO, TINY_CONFIG, deep_merge

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


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_plan_and_snakemake_refuse_with_the_same_message(name, tmp_path):
    change, words = REFUSALS[name]
    config = deep_merge(TINY_CONFIG, change)
    if name == "world-template" or name == "missing-input":
        del config["worlds"]["tiny"]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env_path = {"PYTHONPATH": str(REPO / "workflow")}
    import os

    env = {
        **os.environ,
        **env_path,
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
    }
    plan = subprocess.run(
        [sys.executable, "-m", "embrm", "plan", str(path)],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert plan.returncode == 2, plan.stdout + plan.stderr
    workflow = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "-n",
         "--cores", "1", "--configfile", str(path)],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert workflow.returncode != 0, workflow.stdout[-2000:] + workflow.stderr[-2000:]
    said = error_line(plan.stderr)
    assert words in said, said
    assert error_line(workflow.stdout + workflow.stderr) == said
