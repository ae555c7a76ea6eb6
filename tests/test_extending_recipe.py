"""Adding a training component is one module and one registry line: nothing else is edited.

In a private copy of the checkout, the example of docs/heads.md ("Adding a training component") is
added exactly as the page shows it; the MLP heads then take the new parameter (validated, in the
schema), their training loop obeys it, and the presets still reproduce the recorded procedures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, add_registered_module, docs_module_example, run_pytest_in
from embrm.heads.recipe import COMPONENTS

DOCS = REPO / "docs" / "heads.md"
REGISTRY = Path("workflow/embrm/heads/recipe/__init__.py")


def docs_example() -> dict:
    """The module, its path and the registry line that docs/heads.md's example adds."""
    module, path, entry = docs_module_example(
        DOCS,
        "Adding a training component",
        "COMPONENT = Component(",
        r"`(workflow/embrm/heads/recipe/\w+\.py)`",
    )
    keys = re.findall(r'^    key="(\w+)",$', module, flags=re.M)
    assert len(keys) == 1, "the example module defines one component"
    return {"module": module, "path": path, "entry": entry, "key": keys[0]}


def add_docs_component(copy: Path) -> str:
    example = docs_example()
    add_registered_module(copy, example["path"], example["module"], REGISTRY, example["entry"])
    return example["key"]


def test_docs_example_is_a_new_component():
    example = docs_example()
    assert example["key"] not in COMPONENTS
    assert not (REPO / example["path"]).exists()


CHECK = """
import sys
sys.path.insert(0, "tests/data")
import make_recipe_oracle as oracle
from embrm.heads import HEAD_TYPES, heads_schema, make_head
from embrm.heads.base import PairData
from embrm.errors import ConfigError

key = sys.argv[1]
assert key in HEAD_TYPES["bt-mlp"].defaults and key in HEAD_TYPES["clf-mlp"].defaults
assert key not in HEAD_TYPES["clf-lgb"].defaults  # a torch-only component
blocks = heads_schema()["additionalProperties"]["allOf"]
assert any(key in b["then"]["properties"]["params"]["properties"] for b in blocks)
try:
    make_head("bt-mlp", **{key: "sideways"})
    raise AssertionError("an unknown value must be refused")
except ConfigError as exc:
    assert f"params.{key}'" in str(exc), exc
x, a, b, label, _ = oracle.task()
for protocol in ("study", "embrm"):
    head = make_head(
        "bt-mlp", seed=0, protocol=protocol, stopping="none", hidden=[32, 16], lr=1e-2,
        batch_size=64, max_epochs=40, **{key: "on"},
    ).fit(PairData(x, a, b, label))
    gaps = [r["val_loss"] > 1.25 * r["train_loss"] for r in head.curves_]
    # The loop stopped at the first epoch the new component names, and not before.
    assert gaps[-1] and not any(gaps[:-1]) and len(gaps) < 40, (protocol, gaps)
print("ok")
"""


def test_docs_component_is_read_by_the_schema_and_the_training_loop(repo_copy):
    key = add_docs_component(repo_copy)
    result = subprocess.run(
        [sys.executable, "-c", CHECK, key],
        cwd=repo_copy,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(repo_copy / "workflow")},
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-4000:]


@pytest.mark.slow
def test_presets_are_unchanged_by_a_new_component(repo_copy):
    add_docs_component(repo_copy)
    result = run_pytest_in(repo_copy, "tests/test_recipe.py", "-k", "presets_reproduce")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
