"""Bad data files stop an experiment before any job runs, naming the file, and leave no output.

The checks that need only a header, a size or a name run wherever the plan is built (``embrm
plan``, Snakemake's parse); those that read the data run in ``embrm plan`` and in the workflow's
onstart hook, before the first job (``embrm.preflight.check_data``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TINY_CONFIG, deep_merge, snakemake
from embrm.config import Plan
from embrm.errors import EmbrmError
from embrm.preflight import check_data, check_inputs


def npy_world(folder: Path, spoil: str | None = None) -> dict:
    """A small npy world (train 40 × 5, test 12 × 6, D = 8), with one defect when ``spoil`` is
    given; the spoiled file is always the test split's."""
    g = np.random.default_rng(0)
    spec = {"source": "npy"}
    for split, (n, k) in {"train": (40, 5), "test": (12, 6)}.items():
        embeddings = g.standard_normal((n, k, 8)).astype(np.float32)
        rewards = g.standard_normal((n, k))
        if split == "test" and spoil == "nan-embeddings":
            embeddings[3, 2, 1] = np.nan
        if split == "test" and spoil == "inf-embeddings":
            embeddings[7, 0, 5] = np.inf
        if split == "test" and spoil == "nan-rewards":
            rewards[4, 1] = np.nan
        emb, rew = folder / f"{split}-embeddings.npy", folder / f"{split}-rewards.npy"
        np.save(emb, embeddings)
        np.save(rew, rewards)
        if split == "test" and spoil == "truncated":
            emb.write_bytes(emb.read_bytes()[:-100])  # a copy cut short keeps its header
        spec[split] = {"embeddings": emb.name, "rewards": rew.name, "layout": "prompt-major"}
    return spec


def table_rows() -> list[dict]:
    return [
        {
            "prompt": f"question {p}?",
            "response": f"answer {p}.{k}",
            "reward": p + k / 10,
            "split": s,
        }
        for s, prompts in (("train", range(4)), ("test", range(4, 7)))
        for p in prompts
        for k in range(3)
    ]


def table_world(folder: Path, spoil: str) -> dict:
    """A table world whose one file has the defect ``spoil``."""
    frame = pd.DataFrame(table_rows())
    name = "mine.jsonl"
    if spoil == "missing-reward-column":
        frame = frame.drop(columns="reward")
    elif spoil == "non-numeric-reward":
        frame["reward"] = frame["reward"].astype(object)
        frame.loc[4, "reward"] = "high"
    elif spoil == "ragged":
        frame = frame.drop(index=2)
    if spoil == "empty-jsonl":
        (folder / name).write_text("")
    elif spoil == "empty-csv":
        name = "mine.csv"
        (folder / name).write_text("")
    elif spoil == "header-only-csv":
        name = "mine.csv"
        (folder / name).write_text("prompt,response,reward,split\n")
    elif spoil == "unknown-suffix":
        name = "mine.tsv"
        frame.to_csv(folder / name, index=False)
    else:
        frame.to_json(folder / name, orient="records", lines=True)
    return {"source": "table", "path": name}


# The defects, each with the file its error must name and what it must say.
NPY_DEFECTS = {
    "nan-embeddings": ("test-embeddings.npy", r"NaN or inf \(prompt 3, response 2\)"),
    "inf-embeddings": ("test-embeddings.npy", r"NaN or inf \(prompt 7, response 0\)"),
    "nan-rewards": ("test-rewards.npy", r"rewards contain NaN or inf \(prompt 4, response 1\)"),
    "truncated": ("test-embeddings.npy", r"truncated: its header declares float32 \(12, 6, 8\)"),
}
TABLE_DEFECTS = {
    "missing-reward-column": ("mine.jsonl", r"missing column\(s\) \['reward'\]"),
    "empty-jsonl": ("mine.jsonl", r"no rows|cannot read"),
    "empty-csv": ("mine.csv", r"no rows|cannot read"),
    "header-only-csv": ("mine.csv", r"no rows"),
    "non-numeric-reward": ("mine.jsonl", r"row 4: reward 'high' is not a finite number"),
    "ragged": ("mine.jsonl", r"ragged train split"),
    "unknown-suffix": ("mine.tsv", r"cannot tell the table format from the file name"),
}
# Found from a header, a size or a name alone: refused wherever the plan is checked.
FROM_HEADER_OR_NAME = {"truncated", "unknown-suffix"}


def experiment(folder: Path, defect: str | None) -> Path:
    """A one-world experiment in ``folder`` whose world has ``defect`` (None: a sound npy
    world); returns its config file."""
    spec = table_world(folder, defect) if defect in TABLE_DEFECTS else npy_world(folder, defect)
    config = deep_merge(TINY_CONFIG, {"tracking": {"enabled": False}})
    config["worlds"] = {"mine": spec}
    config["grid"].update(worlds=["mine"], designs=["same-random"], heads=["clf-lgb"])
    config["evaluation"]["n_values"] = [2, 3]
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def outputs(folder: Path) -> list[str]:
    """Everything a run wrote in ``folder`` besides Snakemake's state and logs."""
    results = folder / "results"
    if not results.exists():
        return []
    return sorted(
        str(p.relative_to(folder))
        for p in results.rglob("*")
        if p.is_file() and "logs" not in p.relative_to(results).parts
    )


@pytest.mark.parametrize("defect", [*NPY_DEFECTS, *TABLE_DEFECTS])
def test_embrm_plan_refuses_each_data_error_naming_the_file(defect, tmp_path):
    experiment(tmp_path, defect)
    result = subprocess.run(
        [sys.executable, "-m", "embrm", "plan", "config.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    file, message = {**NPY_DEFECTS, **TABLE_DEFECTS}[defect]
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: config.yaml:"), result.stderr
    assert file in result.stderr
    assert pd.Series([result.stderr]).str.contains(message).all(), result.stderr
    assert outputs(tmp_path) == [] and not (tmp_path / "results").exists()


@pytest.mark.parametrize("defect", sorted(FROM_HEADER_OR_NAME))
def test_header_size_and_name_defects_need_no_read(defect, tmp_path, monkeypatch):
    """Refused by the plan's own checks (Snakemake's parse runs them too), not only by the
    content scan."""
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load(experiment(tmp_path, defect).read_text())
    with pytest.raises(EmbrmError, match={**NPY_DEFECTS, **TABLE_DEFECTS}[defect][1]):
        check_inputs(Plan(config, source="config.yaml"))


@pytest.mark.parametrize("defect", ["nan-embeddings", "header-only-csv", "truncated"])
def test_the_workflow_stops_before_any_job_with_nothing_written(defect, tmp_path):
    experiment(tmp_path, defect)
    result = snakemake(tmp_path, "--cores", "2", check=False)
    file, message = {**NPY_DEFECTS, **TABLE_DEFECTS}[defect]
    assert result.returncode != 0
    assert "\nerror: config.yaml: " in result.stderr
    assert file in result.stderr
    assert pd.Series([result.stderr]).str.contains(message).all(), result.stderr[-3000:]
    assert outputs(tmp_path) == []
    assert not (tmp_path / "results" / "default" / "config.used.yaml").exists()


def test_verified_files_are_not_read_again_until_they_change(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load(experiment(tmp_path, None).read_text())
    plan = Plan(config, source="config.yaml")
    cache = tmp_path / "verified.json"
    check_data(plan, cache)
    assert cache.is_file()
    # An unchanged file is trusted from the cache: a defect slipped in without changing its size
    # or time is not seen (the cache keys on both), which shows the file was not read again.
    test_embeddings = tmp_path / "test-embeddings.npy"
    stat = test_embeddings.stat()
    spoiled = np.load(test_embeddings)
    spoiled[0, 0, 0] = np.nan
    np.save(test_embeddings, spoiled)
    os.utime(test_embeddings, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    check_data(plan, cache)
    # Once its time changes, it is read and refused.
    os.utime(test_embeddings, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(EmbrmError, match=r"test-embeddings\.npy: embeddings contain NaN"):
        check_data(plan, cache)
