"""Active annotation designs: the selection rules, the round protocol, the budget planner."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, assert_agree_across_threads, deep_merge, snakemake
from embrm.active import DESIGNS, RULES, dopt, levelset, pastdopt
from embrm.active.budget import budget_table, fit_curve, labels_needed, plan_target
from embrm.active.pool import Candidates, draw_pool, pair_keys
from embrm.active.rounds import Settings, run_rounds, schedule
from embrm.config import Plan, validate
from embrm.errors import ConfigError

# -- the selection rules ---------------------------------------------------------------------


def random_candidates(n=12, d=4, seed=0, past=0):
    rng = np.random.default_rng(seed)
    cand = Candidates(np.arange(n), np.arange(n) + n)
    cand.diff = rng.normal(size=(n, d)).astype(np.float32)
    cand.dr_hat = rng.normal(scale=1.5, size=n)
    if past:
        cand.past_diff = rng.normal(size=(past, d)).astype(np.float32)
        cand.past_dr_hat = rng.normal(size=past)
    return cand


def brute_force_greedy(cand, batch, ridge, with_past=False):
    """Each step: a fresh log det of M + w x xᵀ for every remaining candidate (no updates)."""
    x = cand.diff.astype(np.float64)
    w = dopt.fisher_weights(cand.dr_hat)
    lam = dopt.ridge_value(cand.diff, w, ridge)
    m = lam * np.eye(x.shape[1])
    if with_past:
        px = cand.past_diff.astype(np.float64)
        m += (px * dopt.fisher_weights(cand.past_dr_hat)[:, None]).T @ px
    chosen = []
    for _ in range(batch):
        scores = [
            -np.inf if i in chosen else np.linalg.slogdet(m + w[i] * np.outer(x[i], x[i]))[1]
            for i in range(len(x))
        ]
        best = int(np.argmax(scores))
        chosen.append(best)
        m = m + w[best] * np.outer(x[best], x[best])
    return chosen, np.linalg.slogdet(m)[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_d_optimal_equals_brute_force_log_det_search(seed):
    cand = random_candidates(seed=seed)
    picks, gains = dopt.select_information(cand, 6, ridge=1e-2)
    expected, final_logdet = brute_force_greedy(cand, 6, ridge=1e-2)
    assert picks.tolist() == expected
    # The rank-one gains add up to the log det of the final information matrix.
    w = dopt.fisher_weights(cand.dr_hat)
    lam = dopt.ridge_value(cand.diff, w, 1e-2)
    start = np.linalg.slogdet(lam * np.eye(4))[1]
    assert np.isclose(start + gains.sum(), final_logdet, rtol=0, atol=1e-4)  # float32 features
    # A batch of one is the exhaustive optimum; for a batch of two, greedy is within the
    # (1 − 1/e) bound of the exhaustive optimum of the submodular log-det gain.
    x = cand.diff.astype(np.float64)
    m0 = lam * np.eye(4)

    def gain(subset):
        m = m0 + sum(w[i] * np.outer(x[i], x[i]) for i in subset)
        return np.linalg.slogdet(m)[1] - start

    best_one = max(range(len(x)), key=lambda i: gain([i]))
    assert picks[0] == best_one
    best_two = max(gain(s) for s in itertools.combinations(range(len(x)), 2))
    assert gain(picks[:2]) >= (1 - 1 / np.e) * best_two


def test_past_aware_d_optimal_counts_the_labelled_pairs():
    cand = random_candidates(seed=3, past=5)
    picks = pastdopt.select(cand, 5, ridge=1e-2)
    expected, _ = brute_force_greedy(cand, 5, ridge=1e-2, with_past=True)
    assert picks.tolist() == expected
    assert picks.tolist() != dopt.select(cand, 5, ridge=1e-2).tolist()


def test_past_aware_without_past_is_plain_d_optimal():
    cand = random_candidates(n=40, d=6, seed=4)
    cand.past_diff = np.empty((0, 6), np.float32)
    cand.past_dr_hat = np.empty(0)
    assert (
        pastdopt.select(cand, 10, ridge=1e-3).tolist() == dopt.select(cand, 10, ridge=1e-3).tolist()
    )
    cand.past_diff = cand.past_dr_hat = None
    assert (
        pastdopt.select(cand, 10, ridge=1e-3).tolist() == dopt.select(cand, 10, ridge=1e-3).tolist()
    )


def test_d_optimal_picks_are_deterministic_and_agree_across_thread_counts():
    from threadpoolctl import threadpool_limits

    cand = random_candidates(n=3000, d=64, seed=6, past=200)
    past = {"past_diff": cand.past_diff, "past_dr_hat": cand.past_dr_hat}
    found = []
    for threads in (1, 2, 2):
        with threadpool_limits(threads):
            found.append(
                (
                    dopt.select_information(cand, 50, 1e-3),
                    dopt.select_information(cand, 50, 1e-3, **past),
                )
            )
    one, two, again = found
    for (picks, gains), (picks_again, gains_again) in zip(two, again, strict=True):
        assert np.array_equal(picks, picks_again) and np.array_equal(gains, gains_again)
    # Across thread counts BLAS may round differently: the design's information (the summed
    # log-det gains) agrees within the stated tolerance, and so do the picks wherever no two
    # candidates' gains tie to within that rounding.
    for (picks_one, gains_one), (picks_two, gains_two) in zip(one, two, strict=True):
        assert_agree_across_threads([np.sum(gains_one)], [np.sum(gains_two)])
        assert len(set(picks_one) & set(picks_two)) >= 45


def test_level_set_picks_the_smallest_predicted_gaps():
    cand = random_candidates(n=200, seed=5)
    picks = levelset.select(cand, 17)
    gaps = np.abs(cand.dr_hat)
    assert sorted(picks.tolist()) == sorted(np.argsort(gaps)[:17].tolist())
    assert gaps[picks].max() <= np.sort(gaps)[17]


def test_pool_never_offers_a_labelled_or_repeated_pair():
    rng = np.random.default_rng(0)
    for pool, (prompts, responses) in itertools.product(("same", "cross"), [(50, 5), (4, 3)]):
        size = prompts * responses
        labelled = np.empty(0, np.int64)
        while True:
            cand = draw_pool(prompts, responses, pool, 30, labelled, rng)
            if cand.size == 0:
                break
            keys = pair_keys(cand.a, cand.b, size)
            assert np.unique(keys).size == keys.size and not np.isin(keys, labelled).any()
            same_prompt = cand.a // responses == cand.b // responses
            assert same_prompt.all() if pool == "same" else not same_prompt.any()
            assert (cand.a != cand.b).all()
            labelled = np.concatenate([labelled, keys[:7]])
            if labelled.size > 300:
                break


def test_settings_and_designs_are_checked():
    with pytest.raises(ConfigError, match=r"active.pool_size.*round_size"):
        Settings.from_config({"pool_size": 10, "round_size": 20})
    with pytest.raises(ConfigError, match=r"config key 'active.seed_batch'"):
        validate(deep_merge(TINY_CONFIG, {"active": {"seed_batch": 0}}))
    with pytest.raises(ConfigError, match=r"config key 'active'.*'colour'"):
        validate(deep_merge(TINY_CONFIG, {"active": {"colour": 1}}))
    with pytest.raises(ConfigError, match=r"grid.designs"):
        validate(deep_merge(TINY_CONFIG, {"grid": {"designs": ["same-dopt2"]}}))
    plan = Plan(deep_merge(TINY_CONFIG, {"grid": {"designs": list(DESIGNS)}}))
    assert {run.design for run in plan.runs} == set(DESIGNS) and len(RULES) == 4
    assert schedule(250, Settings(seed_batch=100, round_size=60)) == [100, 60, 60, 30]
    assert schedule(50, Settings(seed_batch=100)) == [50]


# -- rounds -----------------------------------------------------------------------------------

HEAD = {
    "type": "bt-mlp",
    "members": 1,
    "params": {"hidden": [16, 8], "max_epochs": 3, "batch_size": 128},
}
EVALUATION = {"repeats": 5, "n_values": [2, 10], "seed": 0}
ANNOTATOR = {"model": "bt", "beta": 1}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from embrm.stages import build_world
    from embrm.world import World

    spec = validate(TINY_CONFIG)["worlds"]["tiny"]
    spec = {**spec, "train_prompts": 60, "train_responses": 4, "test_prompts": 10}
    directory = tmp_path_factory.mktemp("active-world")
    build_world(spec, directory)
    return World(directory)


def rounds(world, design, state, settings, **kwargs):
    heldout = (np.arange(5), np.arange(5) + 5, np.ones(5, np.uint8))
    return run_rounds(
        world, design, 100, 0, ANNOTATOR, 1.0, HEAD, settings, EVALUATION, heldout, state, **kwargs
    )


@pytest.mark.parametrize("design", ["same-pastdopt", "cross-levelset", "same-activerandom"])
def test_rounds_resume_after_a_kill_at_the_same_selections(world, tmp_path, design):
    settings = Settings(seed_batch=30, round_size=20, pool_size=60)
    whole = rounds(world, design, tmp_path / "whole", settings)
    assert whole["complete"] and whole["a"].size == 100 and len(whole["records"]) == 5
    # Killed after two rounds (a half-written temporary file left behind), then resumed.
    partial = rounds(world, design, tmp_path / "killed", settings, stop_after=2)
    assert not partial["complete"] and len(partial["records"]) == 2
    (tmp_path / "killed" / ".round002.npz.tmp").write_bytes(b"partial")
    resumed = rounds(world, design, tmp_path / "killed", settings)
    for key in ("a", "b", "label"):
        assert np.array_equal(whole[key], resumed[key])
    strip = [{k: v for k, v in r.items() if "seconds" not in k} for r in resumed["records"]]
    assert strip == [{k: v for k, v in r.items() if "seconds" not in k} for r in whole["records"]]
    # No labelled pair twice, in either order.
    keys = pair_keys(whole["a"], whole["b"], world.train.rewards.size)
    assert np.unique(keys).size == keys.size
    # Each later round records the metrics of the model that chose it.
    assert [r["labels_before"] for r in whole["records"]] == [0, 30, 50, 70, 90]
    assert all("metrics" in r for r in whole["records"][1:])


def test_changed_settings_start_the_rounds_over(world, tmp_path):
    first = rounds(
        world, "cross-dopt", tmp_path, Settings(seed_batch=30, round_size=35, pool_size=60)
    )
    again = rounds(
        world, "cross-dopt", tmp_path, Settings(seed_batch=40, round_size=30, pool_size=60)
    )
    assert [r["size"] for r in first["records"]] == [30, 35, 35]
    assert [r["size"] for r in again["records"]] == [40, 30, 30]


def test_rules_differ_and_d_optimal_uses_the_last_layer(world, tmp_path):
    settings = Settings(seed_batch=30, round_size=35, pool_size=60)
    picked = {
        design: rounds(world, design, tmp_path / design, settings)
        for design in ("same-dopt", "same-levelset", "same-activerandom")
    }
    # The seed batch is shared; the rules then choose differently from the same pool.
    seeds = {tuple(p["a"][:30]) for p in picked.values()}
    later = {tuple(p["a"][30:]) for p in picked.values()}
    assert len(seeds) == 1 and len(later) == 3
    assert picked["same-dopt"]["records"][1]["selection_model"] == "bt-mlp (last layer)"


def test_a_head_without_a_last_linear_layer_selects_with_the_stand_in(world, tmp_path):
    head = {"type": "clf-lgb", "members": 1, "params": {"n_estimators": 10, "min_child_samples": 2}}
    heldout = (np.arange(5), np.arange(5) + 5, np.ones(5, np.uint8))
    result = run_rounds(
        world,
        "cross-dopt",
        60,
        0,
        ANNOTATOR,
        1.0,
        head,
        Settings(seed_batch=30, round_size=30, pool_size=60),
        EVALUATION,
        heldout,
        tmp_path,
    )
    assert result["records"][1]["selection_model"].startswith("bt-linear on the embeddings")


# -- the budget planner ------------------------------------------------------------------------


def planted_summary(a=0.85, k=800.0, noise=0.01, seeds=4, design="cross-dopt", replicate=0):
    rng = np.random.default_rng(replicate)
    rows = []
    for n in (100, 200, 400, 800, 1600, 3200, 6400):
        for seed in range(seeds):
            g = a * n / (n + k) + rng.normal(scale=noise)
            rows.append(
                {
                    "world": "w",
                    "annotator": "bt",
                    "head": "bt-mlp",
                    "design": design,
                    "seed": seed,
                    "n": n,
                    "bon_gain": 2 * g,
                    "bon_gain_normalized": g,
                    "spearman": g,
                }
            )
    return pd.DataFrame(rows)


def test_budget_planner_recovers_a_planted_curve_and_says_out_of_reach():
    # g(n) = 0.85 n / (n + 800) plus noise: over 60 replicates, the 95% intervals of A, K and of
    # the labels needed for 0.7 (3,733) hold the planted values in about 95% of them.
    truth = float(labels_needed(0.85, 800, 0.7))
    hits = np.zeros(3)
    replicates = 60
    for replicate in range(replicates):
        summary = planted_summary(replicate=replicate)
        fit = fit_curve(summary["n"], summary["bon_gain_normalized"])
        plan = plan_target(fit, 0.7)
        hits += [
            fit["A_low"] <= 0.85 <= fit["A_high"],
            fit["K_low"] <= 800 <= fit["K_high"],
            plan["labels_low"] <= truth <= plan["labels_high"],
        ]
        assert abs(fit["A"] - 0.85) < 0.03 and abs(fit["K"] - 800) < 120
        assert plan["status"] == "within data"
        assert plan_target(fit, 0.95)["status"] == "out of reach"
        assert np.isinf(plan_target(fit, 0.95)["labels_needed"])
    assert (hits / replicates >= 0.85).all(), hits / replicates
    table = budget_table(planted_summary(), [0.7, 0.95])
    assert table["status"].tolist() == ["within data", "out of reach"]
    # A curve that has not levelled off: a target beyond the data is extrapolated.
    steep = planted_summary(k=20_000.0, noise=0.002)
    assert plan_target(fit_curve(steep["n"], steep["bon_gain_normalized"]), 0.5)["status"] == (
        "extrapolated"
    )


def test_same_versus_cross_figures_leave_active_designs_to_the_learning_curves():
    from embrm.figures import _has_matched

    summary = planted_summary(design="same-dopt")
    both = pd.concat([summary, summary.assign(design="cross-dopt")])
    both["prompt_pairing"] = both["design"].str.split("-").str[0]
    both["candidates"] = both["design"].str.split("-").str[1]
    assert not _has_matched(both)
    static = both.replace(
        {"same-dopt": "same-random", "cross-dopt": "cross-random", "dopt": "random"}
    )
    assert _has_matched(static)


def test_budget_command_prints_the_table(tmp_path):
    path = tmp_path / "summary.csv"
    planted_summary().to_csv(path, index=False)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "embrm",
            "budget",
            str(tmp_path),
            "--target",
            "0.7",
            "--target",
            "0.95",
            "--csv",
            str(tmp_path / "b.csv"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "cross-dopt" in out and "out of reach" in out and "within data" in out
    assert len(pd.read_csv(tmp_path / "b.csv")) == 2
    bad = subprocess.run(
        [sys.executable, "-m", "embrm", "budget", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no summary table found" in bad.stderr


# -- the workflow --------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_active_design_runs_in_the_workflow_grid(tmp_path):
    config = deep_merge(
        TINY_CONFIG,
        {
            "annotators": {"bt": {"model": "bt", "beta": 1}},
            "heads": {"bt-mlp": TINY_CONFIG["heads"]["bt-mlp"]},
            "grid": {"designs": ["same-random", "cross-dopt"], "heads": ["bt-mlp"]},
            "active": {"seed_batch": 80, "round_size": 60, "pool_size": 200},
            "tracking": {"enabled": False},
        },
    )
    bad = deep_merge(config, {"active": {"pool_size": 50}})
    refused = snakemake(tmp_path / "bad", "-n", config=bad, check=False)
    assert refused.returncode != 0 and "active.pool_size" in refused.stdout + refused.stderr
    snakemake(tmp_path, "--cores", "2", config=config)
    results = tmp_path / "results" / "default"
    run = results / "runs/tiny/cross-dopt/n200/seed0/bt-beta1/bt-mlp"
    metrics = json.loads((run / "metrics.json").read_text())
    assert json.loads((run / "train.json").read_text())["train_pairs"] == 200
    active = metrics["annotation"]["active"]
    assert [r["labels_before"] for r in active["rounds"]] == [0, 80, 140]
    assert active["selection_model"] == "bt-mlp (last layer)"
    rounds_dir = results / "active/tiny/cross-dopt/n200/seed0/bt-beta1/bt-mlp/rounds"
    assert sorted(p.name for p in rounds_dir.glob("round*.npz")) == [
        "round000.npz",
        "round001.npz",
        "round002.npz",
    ]
    for name in ("learning_curves.png", "learning_curves.svg"):
        assert (results / "figures" / name).stat().st_size > 0
    budget = pd.read_csv(results / "budget.csv")
    assert set(budget["design"]) == {"same-random", "cross-dopt"}
    # The static design's pairs and labels still come from the cell's pairs and annotate jobs.
    assert (results / "pairs/tiny/same-random/n200/seed0.npz").exists()
    assert not (results / "pairs/tiny/cross-dopt").exists()
