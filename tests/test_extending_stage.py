"""A new stage is one declaration in the package and one rule.

In a private copy of the checkout, the test adds what docs/architecture.md#adding-a-stage shows,
verbatim: the declared stage at the end of ``workflow/embrm/stages.py`` and the rule at the end of
``workflow/rules/summarize.smk``, nothing else. The command line then has the stage, and the
workflow runs it on a tiny grid: one number per run, read from every run's predictions.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
from conftest import REPO, TINY_CONFIG, deep_merge, snakemake

DOCS = REPO / "docs" / "architecture.md"


def documented_stage() -> tuple[str, str]:
    """The declaration (python block) and the rule (snakemake block) of the docs section."""
    section = DOCS.read_text().split("## Adding a stage\n", 1)[1].split("\n## ", 1)[0]
    (declaration,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    (rule,) = re.findall(r"```snakemake\n(.*?)```", section, flags=re.S)
    return declaration, rule


def test_a_new_stage_is_one_declaration_and_one_rule(repo_copy, tmp_path):
    declaration, rule = documented_stage()
    for path, addition in (
        ("workflow/embrm/stages.py", declaration),
        ("workflow/rules/summarize.smk", rule),
    ):
        target = repo_copy / path
        target.write_text(target.read_text() + "\n\n" + addition)
    env = {**os.environ, "PYTHONPATH": str(repo_copy / "workflow")}
    usage = subprocess.run(
        [sys.executable, "-m", "embrm", "prediction-means", "--help"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert "--predictions" in usage.stdout and "--names" in usage.stdout
    config = deep_merge(TINY_CONFIG, {"grid": {"designs": ["same-random"], "heads": ["clf-lgb"]}})
    workdir = tmp_path / "run"
    target = "results/default/prediction_means.csv"
    snakemake(workdir, "--cores", "2", target, config=config, repo=repo_copy)
    table = pd.read_csv(workdir / target).set_index("run")
    runs = sorted((workdir / "results/default/runs").rglob("predictions.npy"))
    assert len(table) == len(runs) == 2
    for path in runs:
        name = str(path.parent.relative_to(workdir / "results/default/runs"))
        expected = np.load(path).mean(dtype=np.float64)
        assert table.loc[name, "mean_prediction"] == expected
