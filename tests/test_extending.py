"""Extending embrm is one module and one registry line.

In a private copy of the checkout, each test adds what docs/annotation-and-pairing.md tells a user
to add — the documented module, verbatim, and the documented registry line — and nothing else;
then it runs that axis's generic tests (which parametrize over the registry, so nothing in
``tests/`` is edited) and a tiny workflow grid with the new model or design.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, TINY_CONFIG, deep_merge, run_pytest_in, snakemake

DOCS = REPO / "docs" / "annotation-and-pairing.md"
BLOCK = re.compile(r"`(workflow/embrm/[\w/]+\.py)`[^`]*?:\n\n```python\n(.*?)```", re.S)


def documented_extension(section: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The documented module (path, text) and registry line (path, line) of a docs section."""
    text = DOCS.read_text()
    start = text.index(f"### {section}\n")
    end = text.index("\n## ", start)
    blocks = BLOCK.findall(text[start:end])
    assert len(blocks) == 2, f"docs section '{section}': expected a module and a registry line"
    (module_path, module), (registry_path, line) = blocks
    assert len(line.splitlines()) == 1, "the registry addition is one line"
    return (module_path, module), (registry_path, line.rstrip("\n"))


def extend(copy: Path, section: str) -> None:
    """Add the documented module and registry line to ``copy``, checking that is all it takes."""
    (module_path, module), (registry_path, line) = documented_extension(section)
    target = copy / module_path
    assert not target.exists()
    target.write_text(module)
    registry = copy / registry_path
    before = registry.read_text().splitlines(keepends=True)
    opening = next(i for i, row in enumerate(before) if row.startswith("MODULES = ("))
    closing = next(i for i in range(opening, len(before)) if before[i].startswith(")"))
    registry.write_text("".join([*before[:closing], line + "\n", *before[closing:]]))
    assert len(registry.read_text().splitlines()) == len(before) + 1


def registered(copy: Path, expression: str) -> str:
    """Evaluate ``expression`` with the copy's embrm (the test process imports this checkout's)."""
    result = subprocess.run(
        [sys.executable, "-c", f"import embrm.annotators, embrm.designs\nprint({expression})"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(copy / "workflow"), "PATH": str(Path(sys.executable).parent)},
        check=True,
    )
    return result.stdout.strip()


def assert_generic_tests_pass(copy: Path, test_file: str, name: str) -> None:
    result = run_pytest_in(copy, test_file, "-m", "not slow", "-rA")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    passed = [row for row in result.stdout.splitlines() if name in row and "PASSED" in row]
    assert len(passed) >= 4, f"generic tests did not run over '{name}':\n{result.stdout[-3000:]}"


def test_a_new_annotator_model_is_one_module_and_one_registry_line(repo_copy):
    extend(repo_copy, "Adding an annotator model")
    assert registered(repo_copy, "list(embrm.annotators.MODELS)[-1]") == "cauchy"
    assert_generic_tests_pass(repo_copy, "tests/test_annotators.py", "cauchy")


def test_a_new_design_is_one_module_and_one_registry_line(repo_copy):
    extend(repo_copy, "Adding a design")
    assert "same-adjacent" in registered(repo_copy, "list(embrm.designs.DESIGNS)")
    assert_generic_tests_pass(repo_copy, "tests/test_pairing.py", "same-adjacent")


def tiny_grid(**grid) -> dict:
    config = deep_merge(
        TINY_CONFIG,
        {"heads": {"clf-lgb": {"params": {"n_estimators": 10}}}, "tracking": {"enabled": False}},
    )
    config["grid"].update(heads=["clf-lgb"], **grid)
    return config


@pytest.mark.slow
def test_a_new_annotator_model_runs_in_the_workflow(repo_copy, tmp_path):
    extend(repo_copy, "Adding an annotator model")
    workdir = tmp_path / "run"
    config = tiny_grid(annotators=["heavy"], designs=["same-random"])
    config["annotators"] = {"heavy": {"model": "cauchy", "gamma": [1, 4]}}
    figure = "results/default/figures/gain_vs_beta.png"  # drawn over γ, the model's own knob
    snakemake(
        workdir,
        "--cores",
        "2",
        "results/default/summary.csv",
        figure,
        config=config,
        repo=repo_copy,
    )
    assert (workdir / figure).stat().st_size > 0
    summary = pd.read_csv(workdir / "results" / "default" / "summary.csv").set_index("annotator")
    assert set(summary.index) == {"cauchy-gamma1", "cauchy-gamma4"}
    assert (summary["annotator_model"] == "cauchy").all() and summary["beta"].isna().all()
    assert summary.loc["cauchy-gamma4", "annotator_gamma"] == 4
    # the quality knob is found by its own name: better labels at larger γ
    quality = registered(
        repo_copy,
        "__import__('embrm.settings').settings.quality(__import__('pandas').read_csv("
        f"{str(workdir / 'results/default/summary.csv')!r})).tolist()",
    )
    assert sorted(json.loads(quality)) == [1.0, 4.0]
    errors = summary["annotation_realized_error_rate"]
    assert errors["cauchy-gamma4"] < errors["cauchy-gamma1"]
    metrics = next((workdir / "results" / "default" / "runs").rglob("cauchy-gamma4/*/metrics.json"))
    name = registered(
        repo_copy,
        "__import__('embrm.tracking.record').tracking.record.run_name("
        f"__import__('embrm.io').io.read_json({str(metrics)!r}))",
    )
    assert " · cauchy γ=4 · " in name


@pytest.mark.slow
def test_a_new_design_runs_in_the_workflow(repo_copy, tmp_path):
    extend(repo_copy, "Adding a design")
    workdir = tmp_path / "run"
    config = tiny_grid(designs=["same-random", "same-adjacent"])
    config["annotators"] = {"bt": {"model": "bt", "beta": 1}}
    snakemake(workdir, "--cores", "2", "results/default/summary.csv", config=config, repo=repo_copy)
    pairs = workdir / "results" / "default" / "pairs" / "tiny" / "same-adjacent" / "n200"
    assert (pairs / "seed0.npz").exists()
    summary = pd.read_csv(workdir / "results" / "default" / "summary.csv").set_index("design")
    adjacent = summary.loc["same-adjacent"]
    assert (adjacent["prompt_pairing"], adjacent["candidates"]) == ("same", "adjacent")
    gap = summary["annotation_mean_abs_dr"]
    assert gap["same-adjacent"] < gap["same-random"]  # adjacent ranks: the closest pairs
