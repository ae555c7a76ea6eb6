"""Sequential looks: the spending function, the procedure's error rates by simulation from the
crossed model, one look's table and decisions, and the workflow running look by look."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, snakemake
from embrm.config import Plan
from embrm.errors import ConfigError
from embrm.findings import looks as L
from embrm.findings import sequential as S
from embrm.findings import statistics as st
from embrm.findings.plan import load
from test_findings import SETTINGS, mc_bound, planted, simulate, summary, with_prompts

LOOKS = [5, 10, 20]
REPS, PROMPTS = 1500, 50  # 50 prompts: the rules do not depend on P, and the arrays stay small


# ---------------------------------------------------------------------------------------------
# Spending and boundaries


def test_spending_is_the_level_at_the_last_look_and_grows_with_information():
    t = np.array([0.1, 0.25, 0.5, 0.75, 1.0])
    spent = S.spent(t, 0.025)
    assert spent[-1] == pytest.approx(0.025, rel=1e-12)
    assert np.all(np.diff(spent) > 0) and S.spent(0.0, 0.025) == 0
    # O'Brien-Fleming type: almost nothing early (a quarter of the seeds spends < 1e-4)
    assert spent[1] < 1e-4
    # A single look is the fixed design: its nominal level is the whole level.
    assert S.nominal_levels([1.0], 0.025)[0] == pytest.approx(0.025)


def test_boundaries_match_the_published_lan_demets_values():
    """Lan-DeMets O'Brien-Fleming bounds, one-sided 0.025 (Jennison & Turnbull; gsDesign's
    sfLDOF): three equal looks 3.7103, 2.5114, 1.9930; five 4.8769, 3.3569, 2.6803, 2.2898,
    2.0310."""
    three = -np.asarray(S.stats.norm.ppf(S.nominal_levels([1 / 3, 2 / 3, 1], 0.025)))
    np.testing.assert_allclose(three, [3.7103, 2.5114, 1.9930], atol=2e-4)
    five = -np.asarray(S.stats.norm.ppf(S.nominal_levels([0.2, 0.4, 0.6, 0.8, 1], 0.025)))
    np.testing.assert_allclose(five, [4.8769, 3.3569, 2.6803, 2.2898, 2.0310], atol=2e-4)


def test_brownian_motion_crosses_the_boundaries_at_the_spent_rates():
    """The cumulative probability of crossing by look k under H0 is the level spent at t_k, and
    the level at the last look: simulated with the canonical joint distribution of the looks."""
    fractions = S.information(LOOKS)
    c = S.stats.norm.isf(S.nominal_levels(fractions, 0.025))
    rng = np.random.default_rng(0)
    reps = 400_000
    steps = rng.standard_normal((reps, len(fractions))) * np.sqrt(np.diff([0, *fractions]))
    z = np.cumsum(steps, axis=1) / np.sqrt(fractions)
    crossed = np.maximum.accumulate(z >= c, axis=1).mean(axis=0)
    se = np.sqrt(0.025 * 0.975 / reps)
    np.testing.assert_allclose(crossed, S.spent(fractions, 0.025), atol=3 * se)


# ---------------------------------------------------------------------------------------------
# The procedure's error rates over all looks, simulated from the crossed model


def looked(
    theta, sds, parts=1, rng_seed=0, threshold=0.0, superiority=True, distance=0.02, prompts=PROMPTS
):
    y = simulate(
        theta, sds, reps=REPS, parts=parts, rng_seed=rng_seed, seeds=LOOKS[-1], prompts=prompts
    )
    return S.run_looks(y, LOOKS, threshold, distance, superiority, load())[:2]


@pytest.mark.parametrize("sds", SETTINGS)
def test_a_part_at_its_threshold_is_falsely_decided_within_the_level(sds):
    verdict, _ = looked(0.0, sds)
    assert (verdict == st.REPLICATED).mean() <= mc_bound(0.025)
    assert (verdict == st.CONTRADICTED).mean() <= mc_bound(0.025)
    # a non-inferiority part exactly at its margin likewise
    verdict, _ = looked(-0.02, sds, rng_seed=1, threshold=-0.02, superiority=False)
    assert (verdict == st.REPLICATED).mean() <= mc_bound(0.025)


@pytest.mark.parametrize("sds", SETTINGS[:2])
def test_a_part_at_the_smallest_effect_is_falsely_negligible_within_the_level(sds):
    verdict, _ = looked(load().sesoi, sds, rng_seed=2)
    assert (verdict == st.NEGLIGIBLE).mean() <= mc_bound(0.025)


@pytest.mark.parametrize("claim_parts", [4, 10])
def test_a_true_claim_is_falsely_contradicted_within_the_level(claim_parts):
    """Every part at its threshold: Holm's step-down, each level spent over the looks, keeps
    "contradicted" at 2.5% for the claim over all looks."""
    verdict, _ = looked(0.0, SETTINGS[1], parts=claim_parts, rng_seed=claim_parts, prompts=10)
    assert (verdict == st.CONTRADICTED).any(axis=-1).mean() <= mc_bound(0.025)


def test_a_clear_effect_is_decided_before_the_last_look():
    """Five standard errors (at the last look's seeds) beyond the threshold: replicated nearly
    always, most often before the last look; the seeds saved are the point of the looks."""
    sds = SETTINGS[0]
    se = np.sqrt(sds[0] ** 2 / 20 + sds[1] ** 2 / PROMPTS + sds[2] ** 2 / (20 * PROMPTS))
    verdict, at = looked(5 * se, sds, rng_seed=3)
    assert (verdict == st.REPLICATED).mean() > 0.95
    assert ((at > 0) & (at < len(LOOKS))).mean() > 0.5
    assert (verdict == st.CONTRADICTED).mean() == 0


def test_the_test_set_floor_stops_a_part_for_futility_at_the_first_look():
    """Prompt variance alone wider than the smallest effect: more seeds cannot decide the part,
    whose conditional power is then near 0 at every verdict; a part whose seeds make the
    difference keeps looking."""
    plan = load()
    floor = simulate(0.0, (0.001, 0.3, 0.01), reps=200, prompts=20, seeds=5)[:, 0]
    result = st.crossed_interval(floor)
    power = S.futility(result, 0, LOOKS, 0.0, plan.sesoi, True, plan, 1)
    assert (power < plan.futility_power).mean() > 0.9
    seeds = simulate(0.03, (0.05, 0.001, 0.01), reps=200, prompts=20, seeds=5)[:, 0]
    power = S.futility(st.crossed_interval(seeds), 0, LOOKS, 0.0, plan.sesoi, True, plan, 1)
    assert (power >= plan.futility_power).mean() > 0.9


# ---------------------------------------------------------------------------------------------
# One look's table, the runs it needs and its decisions


def planted_grid(seeds=6):
    frame = summary(seeds=range(seeds), quantities=(500,), gain=planted, noise=0.05)
    return frame, with_prompts(frame, prompts=20, spread=0.05)


def test_a_look_names_its_state_and_a_decided_part_stays_decided():
    frame, per_prompt = planted_grid()
    looks = [3, 4, 6]
    first, needed = L.look_table(frame, per_prompt, looks, list(range(6)), 0)
    parts = first[(first["part"] != "all") & (first["verdict"] != st.NOT_TESTED)]
    assert set(parts["state"]) <= {S.OPEN, S.DECIDED, S.FUTILE}
    assert set(first["seeds_used"]) == {3} and set(first["look"]) == {1}
    fractions = S.information(looks)
    assert first["alpha_spent"].iloc[0] == pytest.approx(2 * S.spent(fractions[0], 0.025))
    assert first["nominal_level"].iloc[0] == pytest.approx(S.nominal_levels(fractions, 0.025)[0])
    # The settings needed are exactly those the open parts' weights cover.
    open_parts = parts[parts["state"] == S.OPEN]
    assert needed and not open_parts.empty
    # Look 2 on other data: what look 1 decided keeps its row, verdict and look.
    second, _ = L.look_table(
        frame.assign(bon_gain_normalized=0.5), per_prompt, looks, list(range(6)), 1, previous=first
    )
    keep = parts[parts["state"].isin([S.DECIDED, S.FUTILE])]
    assert not keep.empty
    merged = keep.merge(second, on=["world", "part", "statement"], suffixes=("", "_2"))
    assert (merged["verdict"] == merged["verdict_2"]).all()
    assert (merged["decided_at_look"] == merged["decided_at_look_2"]).all()
    assert (merged["effect"] == merged["effect_2"]).all()
    assert set(second["look"]) == {2}


def test_the_next_look_runs_only_the_new_seeds_of_the_needed_settings():
    config = copy.deepcopy(TINY_CONFIG)
    config["grid"]["seeds"] = [3, 1, 2, 0]  # the order of grid.seeds is the order of the looks
    plan = Plan(config)
    first = S.look_runs(plan.runs, config["grid"]["seeds"], [2, 4], 0)
    assert {r.seed for r in first} == {3, 1} and len(first) == len(plan.runs) // 2
    wanted = ("tiny", "same-random", 200, "bt-beta10", "bt-mlp")
    previous = {"runs": [r.run_dir for r in first], "needed": [list(wanted)]}
    second = S.look_runs(plan.runs, config["grid"]["seeds"], [2, 4], 1, previous)
    added = [r for r in second if r.run_dir not in previous["runs"]]
    assert sorted(r.seed for r in added) == [0, 2]
    assert {(r.world, r.design, r.n, r.annotator, r.head) for r in added} == {wanted}


def test_looks_are_validated_with_the_key_named():
    for looks, message in [
        ([3, 2], "findings.looks[1]': 2 seeds after 3"),
        ([2, 6], "findings.looks[1]': the last look asks for 6 seeds but grid.seeds lists 1"),
        ([1], "findings.looks[0]"),
    ]:
        config = copy.deepcopy(TINY_CONFIG)
        config["findings"] = {"looks": looks}
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            Plan(config)
    # Without the key the config is completed exactly as before: no findings block at all.
    assert "findings" not in Plan(copy.deepcopy(TINY_CONFIG)).config


# ---------------------------------------------------------------------------------------------
# The workflow, look by look


def test_without_looks_the_workflow_has_no_look_job(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "2", config=TINY_CONFIG)
    assert "look" not in result.stdout.split("Job stats:")[1].split()
    assert "checkpoint" not in result.stdout + result.stderr


def looked_config() -> dict:
    """The tiny grid on same-prompt random pairs, three seeds, looks 2 → 3, and a run in no
    claim's contrast (a Thurstone annotator with one head)."""
    config = copy.deepcopy(TINY_CONFIG)
    config["grid"]["designs"] = ["same-random"]
    config["grid"]["seeds"] = [0, 1, 2]
    config["annotators"]["thurstone"] = {"model": "thurstone", "beta": 1}
    config["extra_grids"] = [{"annotators": ["thurstone"], "heads": ["clf-lgb"]}]
    config["findings"] = {"looks": [2, 3]}
    config["tracking"] = {"enabled": False}
    return config


def check_looks_ran(results, config) -> None:
    """Look 1 ran every planned run of seeds 0 and 1; the third seed's run folders are exactly
    the settings look 1's open parts need; the experiment's findings are the last look's."""
    ran = {p.parent.relative_to(results / "runs").as_posix() for p in results.rglob("metrics.json")}
    plan = Plan(config)
    first = json.loads((results / "looks/look-1/decisions.json").read_text())
    assert first["seeds"] == [0, 1]
    assert {r.run_dir for r in plan.runs if r.seed in (0, 1)} <= ran
    needed = {tuple(s) for s in first["needed"]}
    third = {
        r.run_dir
        for r in plan.runs
        if r.seed == 2 and (r.world, r.design, r.n, r.annotator, r.head) in needed
    }
    assert {run for run in ran if "/seed2/" in run} == third
    assert any("/seed0/thurstone" in run for run in ran)
    assert not any("/seed2/thurstone" in run for run in ran)
    assert first["done"] == (not first["open"])
    last = 1 if first["done"] else 2
    assert (results / "findings.md").read_text() == (
        results / f"looks/look-{last}/findings.md"
    ).read_text()
    table = L.read(results / "findings.csv")
    assert set(table["look"]) == {last}
    tested = table[(table["part"] != "all") & (table["verdict"] != st.NOT_TESTED)]
    assert set(tested["state"]) <= {S.DECIDED, S.FUTILE, S.LAST, S.OPEN}
    assert len(pd.read_csv(results / "summary.csv")) == len(ran)


@pytest.mark.slow
def test_the_second_look_runs_only_what_the_open_parts_need(tmp_path):
    """Two looks, 2 → 3 seeds, in one invocation: the second runs only the open parts' runs."""
    config = looked_config()
    snakemake(tmp_path, "--cores", "2", config=config)
    check_looks_ran(tmp_path / "results" / "default", config)
