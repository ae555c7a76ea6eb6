"""Adding a head is one module and one registry line: nothing in tests/ or the schema is edited.

In a private copy of the checkout, the example of docs/heads.md ("Adding a head") is added exactly
as the page shows it; the generic head tests then pass for it, and a tiny grid sweeps it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import (
    REPO,
    TINY_CONFIG,
    add_registered_module,
    deep_merge,
    docs_module_example,
    run_pytest_in,
    snakemake,
)
from embrm.heads import HEAD_TYPES

DOCS = REPO / "docs" / "heads.md"
REGISTRY = Path("workflow/embrm/heads/__init__.py")


def docs_example() -> dict:
    """The module, its path and the registry line that docs/heads.md's example adds."""
    module, path, entry = docs_module_example(
        DOCS, "Adding a head", "class ", r"`(workflow/embrm/heads/\w+\.py)`"
    )
    types = re.findall(r'^    type_name = "([\w.+-]+)"$', module, flags=re.M)
    assert len(types) == 1, "the example module defines one head type"
    return {"module": module, "path": path, "entry": entry, "type": types[0]}


def add_docs_head(copy: Path) -> str:
    """Add the docs' head to the copy: one new module and one line in MODULES."""
    example = docs_example()
    add_registered_module(copy, example["path"], example["module"], REGISTRY, example["entry"])
    return example["type"]


def test_docs_example_is_a_new_head_type():
    example = docs_example()
    assert example["type"] not in HEAD_TYPES
    assert not (REPO / example["path"]).exists()


@pytest.mark.slow
def test_docs_head_passes_the_generic_head_tests(repo_copy):
    head_type = add_docs_head(repo_copy)
    # Every test of tests/test_heads.py except the other heads' own parametrized cases: the
    # registry-wide tests (schema block, config, prediction checks) now include the new head.
    others = " or ".join(HEAD_TYPES)
    result = run_pytest_in(repo_copy, "tests/test_heads.py", "-rA", "-k", f"not ({others})")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    passed = set(re.findall(rf"PASSED tests/test_heads\.py::(\w+)\[{head_type}\]", output))
    assert {
        "test_registry_entry_declares_what_the_generic_tests_need",
        "test_head_learns_a_separable_reward",
        "test_fit_returns_self_and_params_round_trip",
        "test_saved_head_reloads_and_predicts_identically",
        "test_same_seed_and_threads_same_bits_other_threads_within_tolerance",
        "test_ensemble_members_predict_stack_and_reload",
        "test_nan_in_training_embeddings_names_the_file_and_row",
    } <= passed, output[-3000:]
    assert "PASSED tests/test_heads.py::test_schema_heads_block_is_derived_from_the_registry" in (
        output
    )


@pytest.mark.slow
def test_docs_head_runs_in_a_tiny_grid_with_a_sweep(repo_copy, tmp_path):
    head_type = add_docs_head(repo_copy)
    config = deep_merge(TINY_CONFIG, {"annotators": {"bt": {"model": "bt", "beta": 10}}})
    config["heads"] = {head_type: {"params": {"alpha": [0.5, 2.0]}}}
    config["grid"].update(designs=["same-random"], heads=[head_type])
    summary_csv = "results/default/summary.csv"  # the runs and their table; no figures
    snakemake(tmp_path / "run", "--cores", "2", summary_csv, config=config, repo=repo_copy)
    summary = pd.read_csv(tmp_path / "run" / summary_csv)
    assert sorted(summary["head"]) == [f"{head_type}-alpha0.5", f"{head_type}-alpha2"]
    assert set(summary["head_type"]) == {head_type}
    assert dict(zip(summary["head"], summary["head_param_alpha"], strict=True)) == {
        f"{head_type}-alpha0.5": 0.5,
        f"{head_type}-alpha2": 2.0,
    }
    assert summary["spearman"].gt(0).all() and summary["bon_gain"].notna().all()
