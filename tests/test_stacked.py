"""Stacked training of a cell's MLP runs (``training.stack``): the same models as one by one.

Tolerances, measured on the CPU with fp32 state (the stacked fit sums some products in another
order than a single fit, so results agree to rounding, not bit for bit):

- training and validation curves: max |Δ| about 2e-8 (tolerance 1e-5);
- clf-mlp test predictions: max |Δ| about 1e-6 (tolerance 1e-4);
- bt-mlp test predictions after removing each model's mean: max |Δ| about 3e-6 (tolerance 1e-4).
  Raw bt-mlp predictions can differ by a constant (up to 8e-3 here): the BT loss depends only on
  differences of rewards, so the last layer's bias has a zero gradient up to rounding, and Adam
  scales that rounding noise up to full-size steps. Every metric embrm reports (Best-of-N picks,
  Spearman, pair accuracies) ignores such a constant.
- best epochs and epochs run: identical.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, TINY_CONFIG, assert_agree_across_threads, deep_merge, snakemake
from embrm.config import Plan
from embrm.errors import ConfigError, DataError
from embrm.heads import make_head
from embrm.heads.base import PairData
from embrm.heads.stacked import check_stackable, fit_stacked, stack_refusal

DIM, ROWS, PAIRS = 16, 1500, 800
PARAMS = {"hidden": [32, 16], "batch_size": 128, "max_epochs": 12, "lr": 3e-2, "patience": 1}
BETAS = (0.5, 1, 3, 10)
CURVE_TOL, PREDICTION_TOL = 1e-5, 1e-4


@pytest.fixture(scope="module")
def cell():
    """One cell: shared embeddings and pairs, four annotators' labels (β from noisy to clean)."""
    g = np.random.default_rng(0)
    x = g.standard_normal((ROWS, DIM)).astype(np.float32)
    r = x @ g.standard_normal(DIM) + np.tanh(x[:, 0] * x[:, 1])
    a = g.integers(ROWS, size=PAIRS)
    b = (a + g.integers(1, ROWS, size=PAIRS)) % ROWS
    labels = {}
    for beta in BETAS:
        chance = 1 / (1 + np.exp(-beta * (r[a] - r[b])))
        labels[beta] = (g.random(PAIRS) < chance).astype(np.uint8)
    data = {beta: PairData(x, a, b, labels[beta]) for beta in BETAS}
    test = g.standard_normal((20, 25, DIM)).astype(np.float32)
    return data, test


def runs():
    return [(head, beta) for head in ("bt-mlp", "clf-mlp") for beta in BETAS]


@pytest.fixture(scope="module")
def fitted(cell):
    data, _ = cell
    one = [make_head(h, seed=5, threads=1, **PARAMS).fit(data[beta]) for h, beta in runs()]
    stacked = [make_head(h, seed=5, threads=1, **PARAMS) for h, _ in runs()]
    info = fit_stacked(stacked, [data[beta] for _, beta in runs()], [f"{b}/{h}" for h, b in runs()])
    return one, stacked, info


def curves(head) -> np.ndarray:
    return np.array([[c["train_loss"], c["val_loss"], c["val_accuracy"]] for c in head.curves_])


def test_stacked_fit_gives_the_one_by_one_models(cell, fitted):
    _, test = cell
    one, stacked, info = fitted
    # Two stacks (one per head type, each with its own seed-derived batch order); runs stop at
    # different epochs, so models leave their stack while others keep training.
    assert [(s["type"], s["models"]) for s in info["stacks"]] == [("bt-mlp", 4), ("clf-mlp", 4)]
    assert len({len(h.curves_) for h in stacked}) > 2
    for (head, beta), h1, h2 in zip(runs(), one, stacked, strict=True):
        where = f"{head} β={beta}"
        assert h2.best_epoch_ == h1.best_epoch_, where
        assert h2.steps_per_epoch_ == h1.steps_per_epoch_, where  # recorded in train.json
        assert len(h2.curves_) == len(h1.curves_), where
        assert [c["epoch"] for c in h2.curves_] == [c["epoch"] for c in h1.curves_]
        np.testing.assert_allclose(curves(h2), curves(h1), rtol=0, atol=CURVE_TOL, err_msg=where)
        p1, p2 = h1.predict_reward(test), h2.predict_reward(test)
        if head == "bt-mlp":
            p1, p2 = p1 - p1.mean(), p2 - p2.mean()
        np.testing.assert_allclose(p2, p1, rtol=0, atol=PREDICTION_TOL, err_msg=where)
        assert h2.device_ == "cpu" and h2.dim_ == DIM


def test_stacked_models_save_and_reload_like_their_own_fit(cell, fitted, tmp_path):
    from embrm.heads import load_head

    _, test = cell
    _, stacked, _ = fitted
    stacked[0].save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["head.json", "model.safetensors"]
    reloaded = load_head(tmp_path / "m")
    np.testing.assert_array_equal(reloaded.predict_reward(test), stacked[0].predict_reward(test))
    assert reloaded.best_epoch_ == stacked[0].best_epoch_


def test_stacked_fit_is_deterministic_and_agrees_across_thread_counts(cell):
    data, test = cell
    results = []
    for threads in (1, 2, 2):
        heads = [make_head(h, seed=5, threads=threads, **PARAMS) for h, _ in runs()[::2]]
        fit_stacked(heads, [data[beta] for _, beta in runs()[::2]])
        results.append([(h.predict_reward(test), h.curves_) for h in heads])
    one, two, again = results
    for (p2, c2), (p3, c3) in zip(two, again, strict=True):  # the same threads: the same bits
        np.testing.assert_array_equal(p2, p3)
        assert c2 == c3
    for (p1, c1), (p2, c2) in zip(one, two, strict=True):
        assert_agree_across_threads(p1, p2)
        common = min(len(c1), len(c2))
        assert_agree_across_threads(
            [r["val_loss"] for r in c1[:common]], [r["val_loss"] for r in c2[:common]]
        )


def test_unsupported_heads_are_refused_naming_the_key(cell):
    data, _ = cell
    assert stack_refusal("bt-mlp", {}, 1, "heads.bt-mlp") is None
    assert stack_refusal("clf-mlp", {"protocol": "embrm"}, 1, "heads.x") is None
    cases = {
        ("clf-lgb", (), 1): "'heads.h.type'",
        ("bt-mlp", (), 5): "'heads.h.members'",
        ("bt-mlp", (("protocol", "study"),), 1): "'heads.h.params.protocol'",
        ("clf-mlp", (("min_steps", 10),), 1): "'heads.h.params.min_steps'",
    }
    for (head_type, params, members), key in cases.items():
        reason = stack_refusal(head_type, dict(params), members, "heads.h")
        assert reason and key in reason, (head_type, params, members, reason)
    lgb = make_head("clf-lgb", seed=0)
    with pytest.raises(ConfigError, match=r"'heads\.clf-lgb\.type'.*bt-mlp"):
        check_stackable(lgb, "heads.clf-lgb")
    with pytest.raises(ConfigError, match=r"'heads\.clf-lgb\.type'"):
        fit_stacked([lgb], [data[1]], ["bt/clf-lgb"])


def test_runs_of_one_stack_must_share_pairs(cell):
    data, _ = cell
    first = data[1]
    other = PairData(first.embeddings, first.b, first.a, first.label, pairs_source="other.npz")
    heads = [make_head("bt-mlp", seed=0, **PARAMS) for _ in range(2)]
    with pytest.raises(DataError, match=r"other\.npz.*does not share the cell's pairs"):
        fit_stacked(heads, [first, other])


def test_train_cell_refuses_an_ensemble_and_writes_nothing(tmp_path):
    runs_arg = [{"name": "bt/bt-mlp", "head": {"type": "bt-mlp", "members": 3}, "labels": "x.npz"}]
    out = tmp_path / "cell"
    command = ["train-cell", "--world", str(tmp_path / "w"), "--pairs", "p.npz"]
    command += ["--runs", json.dumps(runs_arg), "--seed", "0", "--out", str(out)]
    result = subprocess.run(
        [sys.executable, "-m", "embrm", *command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "config key 'heads.bt-mlp.members'" in result.stderr
    assert not out.exists()


# -- the workflow -------------------------------------------------------------------------------
STACK_CONFIG = deep_merge(
    TINY_CONFIG,
    {
        "heads": {"clf-mlp": {"params": {"hidden": [32, 16], "max_epochs": 5, "batch_size": 256}}},
        # One cell: 2 annotators × bt-mlp, clf-mlp stacked, clf-lgb one job per run.
        "grid": {"heads": ["bt-mlp", "clf-mlp", "clf-lgb"], "designs": ["same-random"]},
    },
)
KEYS = ["world", "design", "n", "annotator", "head", "seed"]
METRICS = [
    "bon_gain",
    "bon_gain_normalized",
    "spearman",
    "accuracy_vs_golden",
    "accuracy_vs_labels",
    "train_loss",
    "eval_loss",
    "epochs",
]


def job_stats(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_dry_run_plans_one_train_cell_job_per_cell(tmp_path):
    config = deep_merge(STACK_CONFIG, {"training": {"stack": True}})
    result = snakemake(tmp_path, "-n", "--cores", "2", config=config)
    counts = job_stats(result.stdout)
    plan = Plan(config)
    cells = {(r.world, r.design, r.n, r.seed) for r in plan.runs}
    mlp = [r for r in plan.runs if r.head != "clf-lgb"]
    assert counts["train_cell"] == len(cells)
    assert counts["unstack"] == len(mlp)
    assert counts["train"] == len(plan.runs) - len(mlp)
    assert counts["evaluate"] == len(plan.runs)


def test_unstackable_heads_fall_back_to_one_job_per_run(tmp_path):
    config = deep_merge(
        STACK_CONFIG,
        {"training": {"stack": True}, "heads": {"clf-mlp": {"members": 2}}},
    )
    result = snakemake(tmp_path, "-n", "--cores", "2", config=config)
    assert "one job per run for clf-mlp: config key 'heads.clf-mlp.members'" in result.stderr
    counts = job_stats(result.stdout)
    bt = [r for r in Plan(config).runs if r.head == "bt-mlp"]
    assert counts["unstack"] == len(bt)
    assert counts["train"] == len(Plan(config).runs) - len(bt)


@pytest.mark.slow
def test_stacked_workflow_gives_the_same_summary(tmp_path):
    results = {}
    for stack in (False, True):
        workdir = tmp_path / f"stack-{stack}"
        config = deep_merge(STACK_CONFIG, {"training": {"stack": stack}})
        config["tracking"] = {"enabled": False}
        snakemake(workdir, "--cores", "2", config=config)
        results[stack] = workdir / "results" / "default"
    frames = {
        stack: pd.read_csv(path / "summary.csv").sort_values(KEYS).reset_index(drop=True)
        for stack, path in results.items()
    }
    one, stacked = frames[False], frames[True]
    pd.testing.assert_frame_equal(one[KEYS], stacked[KEYS])
    lgb = one["head"] == "clf-lgb"
    # clf-lgb trains one run per job either way: identical.
    pd.testing.assert_frame_equal(one.loc[lgb, METRICS], stacked.loc[lgb, METRICS])
    np.testing.assert_array_equal(one["epochs"], stacked["epochs"])
    np.testing.assert_allclose(
        stacked.loc[~lgb, METRICS[:6]], one.loc[~lgb, METRICS[:6]], rtol=0, atol=1e-5
    )
    # Each stacked run looks like a run trained on its own: same files, its train record.
    plan = Plan(yaml.safe_load((tmp_path / "stack-True" / "config.yaml").read_text()))
    for run in plan.runs:
        own = results[False] / "runs" / run.run_dir
        mine = results[True] / "runs" / run.run_dir
        listing = {p.relative_to(own) for p in own.rglob("*")}
        assert {p.relative_to(mine) for p in mine.rglob("*")} == listing, run.run_dir
        info = json.loads((mine / "train.json").read_text())
        assert ("stacked" in info) == (run.head != "clf-lgb")
        # the batch schedule each head recorded: the one its own fit used
        own_info = json.loads((own / "train.json").read_text())
        assert info["steps_per_epoch"] == own_info["steps_per_epoch"], run.run_dir
    again = snakemake(tmp_path / "stack-True", "-n", "--cores", "2")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_stack_key_is_schema_checked(tmp_path):
    config = deep_merge(TINY_CONFIG, {"training": {"stack": "yes"}})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "embrm", "validate", str(tmp_path / "c.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "training.stack" in result.stderr
