"""Shared fixtures: a tiny valid config and a runner for the real Snakemake workflow."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_CONFIG = {
    "worlds": {
        "tiny": {
            "source": "synthetic",
            "train_prompts": 300,
            "train_responses": 6,
            "test_prompts": 40,
            "test_responses": 50,
            "dim": 16,
            "latent_dim": 4,
            "seed": 0,
        }
    },
    "annotators": {"bt": {"model": "bt", "beta": [1, 10]}},
    "heads": {
        "bt-mlp": {"params": {"hidden": [32, 16], "max_epochs": 5, "batch_size": 256}},
        "clf-lgb": {"params": {"n_estimators": 40}},
    },
    "evaluation": {"repeats": 10, "n_values": [2, 10, 50]},
    "annotation": {"heldout_pairs": 200},
    "grid": {
        "worlds": ["tiny"],
        "annotators": ["bt"],
        "designs": ["same-random", "cross-random"],
        "quantities": [200],
        "heads": ["bt-mlp", "clf-lgb"],
        "seeds": [0],
    },
}


# What embrm promises about threads (docs/heads.md#determinism): the same config, seed and
# thread count give the same bits, run to run and at any --cores; across thread counts torch's
# CPU kernels may reduce in another order (they do at 2 threads on some AVX-512 CPUs), so results
# agree to this tolerance, relative to the size of the values compared.
THREAD_TOLERANCE = 1e-3


def assert_agree_across_threads(one, other, what: str = "") -> None:
    """``other`` (another thread count) equals ``one`` within :data:`THREAD_TOLERANCE` of the
    values' scale (their spread or their mean magnitude, whichever is larger)."""
    import numpy as np

    one, other = np.asarray(one, dtype=np.float64), np.asarray(other, dtype=np.float64)
    assert one.shape == other.shape, (what, one.shape, other.shape)
    finite = np.isfinite(one)
    np.testing.assert_array_equal(finite, np.isfinite(other), err_msg=what)
    scale = (
        max(float(np.std(one[finite])), float(np.mean(np.abs(one[finite])))) if finite.any() else 0
    )
    np.testing.assert_allclose(
        other[finite], one[finite], rtol=0, atol=THREAD_TOLERANCE * (scale or 1.0), err_msg=what
    )


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture
def tiny_config() -> dict:
    return copy.deepcopy(TINY_CONFIG)


def snakemake(
    workdir: Path,
    *args: str,
    config: dict | None = None,
    check: bool = True,
    timeout: int = 900,
    env: dict | None = None,
    repo: Path = REPO,
) -> subprocess.CompletedProcess:
    """Run the workflow of ``repo`` (this checkout unless a copy is given) in ``workdir``, with
    ``config`` as its config.yaml. Jobs import embrm from ``repo``'s own package."""
    workdir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(repo / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    full_env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        **({"PYTHONPATH": str(repo / "workflow")} if repo != REPO else {}),
        **(env or {}),
    }
    result = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=full_env
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
            f"{result.stderr[-6000:]}"
        )
    return result


@pytest.fixture(scope="session")
def tiny_workflow(tmp_path_factory) -> Path:
    """The tiny config run once end to end; tests read its results (never modify them)."""
    workdir = tmp_path_factory.mktemp("tiny-workflow")
    snakemake(workdir, "--cores", "2", config=TINY_CONFIG)
    return workdir


# What a copy of the checkout needs to run its tests and its workflow.
COPIED = (
    "Snakefile",
    "config.yaml",
    "pyproject.toml",
    "workflow",
    "tests",
    "configs",
    "docs",
    "envs",
)


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    """A private copy of the checkout, to extend (a new module, a registry line) inside a test."""
    import shutil

    copy_root = tmp_path / "repo"
    copy_root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results", ".snakemake")
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy_root / name, ignore=ignore)
        else:
            shutil.copy2(source, copy_root / name)
    return copy_root


def run_pytest_in(repo: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run pytest inside a copy of the checkout, importing embrm from that copy."""
    env = {**os.environ, "PYTHONPATH": str(repo / "workflow")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def docs_module_example(
    page: Path, heading: str, module_marker: str, path_pattern: str
) -> tuple[str, str, str]:
    """A docs page's example of extending a registry, as the page shows it under ``## heading``:
    the module's code (the python block holding ``module_marker``), its path (the last match of
    ``path_pattern`` named before the code) and the one line it adds to ``MODULES``."""
    import re

    section = page.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    module = next(b for b in blocks if module_marker in b)
    registry = next(b for b in blocks if b.startswith("MODULES"))
    path = re.findall(path_pattern, section[: section.index(module)])[-1]
    entries = re.findall(r'^    "(\w+)",$', registry, flags=re.M)
    assert len(entries) == 1, "the example adds one line to MODULES"
    return module, path, f'    "{entries[0]}",'


def add_registered_module(copy: Path, path: str, module: str, registry: Path, entry: str) -> None:
    """Write ``module`` at ``path`` in the checkout copy and add ``entry`` to the ``MODULES`` tuple
    of ``registry``: the two edits the docs ask of an extension."""
    target = copy / path
    assert not target.exists()
    target.write_text(module)
    registry_file = copy / registry
    lines = registry_file.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("MODULES = ("))
    end = next(i for i in range(start, len(lines)) if lines[i] == ")")
    lines.insert(end, entry)
    registry_file.write_text("\n".join(lines) + "\n")


@pytest.fixture
def training_batches(monkeypatch) -> list:
    """The example indices of every training step an MLP head takes (validation passes are not
    recorded), in order, as the fit draws them."""
    from embrm.heads.mlp import MLPHead

    draws: list = []
    original = MLPHead.probability

    def recording(self, x, examples, idx):
        if self.model_.training:
            draws.append(idx.cpu().numpy().copy())
        return original(self, x, examples, idx)

    monkeypatch.setattr(MLPHead, "probability", recording)
    return draws
