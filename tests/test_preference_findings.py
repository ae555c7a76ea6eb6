"""Findings on a world without a golden reward: claims 1 and 2 on held-out preference accuracy
(embrm.findings.preference_claims), their weights, their error rates, and the demo's table."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pandas as pd
import pytest
from embrm import findings as F
from embrm.findings import preference_claims as PC
from embrm.findings import statistics as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HEADS = ("bt-mlp", "clf-mlp")
ANNOTATORS = {  # name: (model, flip rate as the summary stores it)
    "observed": ("observed", float("nan")),
    "flip-rate0.1": ("flip", 0.1),
    "flip-rate0.3": ("flip", 0.3),
}


def accuracy_of(head: str, n: int, rate: float) -> float:
    """Planted accuracy: more pairs help (+4 points), flips hurt (−10 points per 0.1 for
    Bradley-Terry, −6 for the classifier), the classifier 1 point behind on clean labels."""
    eps = 0.0 if rate != rate else rate
    value = 0.70 + 0.04 * (n == 200)
    if head == "bt-mlp":
        return value - 1.0 * eps
    return value - 0.01 - 0.6 * eps


def pref_summary(seeds=range(3), quantities=(50, 200), annotators=ANNOTATORS, extra=()):
    """One row per run of a preference world, the accuracy planted exactly."""
    rows = []
    for seed, n, annotator, head in itertools.product(seeds, quantities, annotators, HEADS):
        model, rate = annotators[annotator]
        rows.append(
            {
                "world": "prefs",
                "source": "preferences",
                "design": "given",
                "n": n,
                "annotator": annotator,
                "annotator_model": model,
                "annotator_rate": rate,
                "head": head,
                "head_type": head,
                "seed": seed,
                "bon_gain_normalized": float("nan"),
                "pref_accuracy": accuracy_of(head, n, rate),
            }
        )
    return pd.DataFrame([*rows, *extra])


def contrasts(frame: pd.DataFrame) -> dict[str, list]:
    plan = F.load()
    data = F.prepare(frame, plan.metric).assign(value=100 * frame["pref_accuracy"])
    out = {}
    for contrast in PC.REGISTRY:
        built = contrast.build(data, plan)
        out.setdefault(contrast.part, []).extend([built] if isinstance(built, str) else built)
    return out, data


# ---------------------------------------------------------------------------------------------
# Weights over runs


def test_each_contrast_weighs_the_runs_it_states():
    frame = pref_summary()
    built, data = contrasts(frame)
    value = data["value"]

    def one(part):
        (item,) = built[part]
        w = item.weights.reindex(data.index, fill_value=0.0)
        # a within-seed contrast: its weights sum to 0 in every seed, one cell per seed's unit
        assert np.allclose(w.groupby(data["seed"]).sum(), 0.0)
        assert (w.groupby(data["seed"]).apply(lambda x: (x != 0).sum()) > 0).all()
        return w, float((w * value).sum() / data["seed"].nunique())

    # 1a-acc: the classifier minus Bradley-Terry at the largest flip rate (0.3) only.
    w, effect = one("1a-acc")
    assert effect == pytest.approx(-1 + 0.4 * 30)  # −1 point + 40% of BT's 30-point loss
    used = data.loc[w != 0]
    assert set(used["annotator"]) == {"flip-rate0.3"} and set(used["n"]) == {50, 200}
    assert np.allclose(w[used.index].abs(), 1 / 2)  # two cells (n) per seed
    assert np.allclose(w[used.index] * np.where(used["head"] == "clf-mlp", 1, -1), 1 / 2)
    # 1b-acc: that lead at 0.3 minus at 0 (observed); the flip rate 0.1 is not used.
    w, effect = one("1b-acc")
    assert effect == pytest.approx(0.4 * 30 - 0 - (-1 + 1)) and effect == pytest.approx(12)
    assert set(data.loc[w != 0, "annotator"]) == {"observed", "flip-rate0.3"}
    # 2a-acc, per head: accuracy at 200 minus at 50 pairs, within each annotator.
    for item, head in zip(built["2a-acc"], HEADS, strict=True):
        w = item.weights.reindex(data.index, fill_value=0.0)
        assert (
            set(data.loc[w != 0, "head"]) == {head} and len(set(data.loc[w != 0, "annotator"])) == 3
        )
        assert float((w * value).sum()) / 3 == pytest.approx(4)
    # 2b-acc, per head: accuracy at flip rate 0 minus at 0.3.
    effects = [float((i.weights * value[i.weights.index]).sum()) / 3 for i in built["2b-acc"]]
    assert effects == pytest.approx([30, 18])
    # 2c-acc: both heads gain 4 points from more pairs: Bradley-Terry's loss minus the
    # classifier's is 0. 2d-acc: 30 − 18 = 12, the same contrast as 1b-acc (and it says so).
    assert one("2c-acc")[1] == pytest.approx(0)
    w2d, effect = one("2d-acc")
    assert effect == pytest.approx(12)
    assert np.allclose(w2d, one("1b-acc")[0])
    assert "1b-acc" in built["2d-acc"][0].note and "2d-acc" in built["1b-acc"][0].note
    # The parts that need a golden reward are not tested, with the reason.
    for part in ("1-bon", "2-bon", "3", "4"):
        assert built[part] and all("golden reward" in b for b in built[part])


def test_noise_axis_is_the_flip_rate_setting_and_other_runs_are_left_out():
    other = {  # another annotator model and another design: on neither axis
        "world": "prefs", "source": "preferences", "design": "given", "n": 50,
        "annotator": "bt-beta1", "annotator_model": "bt", "annotator_rate": float("nan"),
        "head": "bt-mlp", "head_type": "bt-mlp", "seed": 0, "pref_accuracy": 0.99,
        "bon_gain_normalized": float("nan"),
    }  # fmt: skip
    frame = pref_summary(extra=[other, {**other, "design": "same-random", "annotator": "observed",
                                        "annotator_model": "observed"}])  # fmt: skip
    assert list(PC.flip_rate(frame.iloc[:6])) == [0, 0, 0.1, 0.1, 0.3, 0.3]
    assert np.isnan(PC.flip_rate(frame).iloc[-2])
    built, data = contrasts(frame)
    for items in built.values():
        for item in items:
            if not isinstance(item, str):
                assert not set(item.weights.index) & set(data.index[-2:])
    # A grid with one flip rate everywhere: the parts on the noise axis say why not.
    built, _ = contrasts(pref_summary(annotators={"observed": ANNOTATORS["observed"]}))
    assert "no flipped labels" in built["1a-acc"][0]
    assert "one flip rate" in built["2d-acc"][0]
    assert not isinstance(built["2c-acc"][0], str)  # the quantity axis is still there


def test_prompt_values_reproduce_each_runs_accuracy_and_weigh_prompts_by_their_pairs():
    rng = np.random.default_rng(1)
    decided = rng.integers(0, 5, (3, 12)).astype(float)  # prompts with 0 to 4 non-tied pairs
    right = np.floor(decided * rng.uniform(0, 1, decided.shape) * 2) / 2  # ties count 1/2
    values = PC.linearized_accuracy(right, decided)
    assert np.allclose(values.mean(axis=1), 100 * right.sum(1) / decided.sum(1))
    # a prompt with no non-tied pair carries no information: its value is the run's accuracy
    empty = decided == 0
    assert np.allclose(
        values[empty], np.broadcast_to(values.mean(1, keepdims=True), values.shape)[empty]
    )
    frame = pref_summary(
        seeds=[0], quantities=[50], annotators={"observed": ANNOTATORS["observed"]}
    )
    frame["pref_accuracy"] = right[:2].sum(1) / decided[:2].sum(1)
    data = frame.assign(value=100 * frame["pref_accuracy"])
    per_prompt = {
        F.run_key(row): {"pref_right": right[i], "pref_decided": decided[i]}
        for i, (_, row) in enumerate(frame.iterrows())
    }
    z, why = PC.prompt_values(data, per_prompt)
    assert why == "" and np.allclose(z, values[:2])
    per_prompt[F.run_key(frame.iloc[0])]["pref_right"] = right[2]
    z, why = PC.prompt_values(data, per_prompt)
    assert z is None and "do not reproduce pref_accuracy" in why
    del per_prompt[F.run_key(frame.iloc[0])]["pref_right"]
    assert "1 of 2 runs have no per-prompt pair counts" in PC.prompt_values(data, per_prompt)[1]


def test_prompt_pair_counts_group_the_units_of_a_prompt():
    from embrm.preference_metrics import pair_metrics, prompt_pair_counts

    rng = np.random.default_rng(2)
    rewards = rng.integers(0, 3, (9, 3)).astype(float)  # ties within units
    scores = rng.integers(0, 2, (9, 3)).astype(float)  # equal predicted scores too
    prompt = np.array([0, 0, 1, 2, 2, 2, 3, 4, 4])
    right, decided = prompt_pair_counts(scores, rewards, prompt)
    assert right.shape == decided.shape == (5,)
    accuracy = pair_metrics(scores, rewards, np.zeros(9, int), ["all"])["pref_accuracy"]
    assert right.sum() / decided.sum() == pytest.approx(accuracy)
    one = prompt_pair_counts(scores, rewards, np.arange(9))
    assert right[2] == one[0][3] + one[0][4] + one[0][5]
    assert decided[0] == one[1][0] + one[1][1]


def test_planted_preference_effects_decide_the_parts():
    """The planted grid with per-prompt values: every tested part gets the crossed interval,
    and the verdicts follow the planted truth and the plan's 1-point margin."""
    rng = np.random.default_rng(3)
    frame = pref_summary(seeds=range(4))
    prompts, per_prompt = 40, {}
    decided = rng.integers(1, 4, prompts).astype(float)
    difficulty = rng.normal(0, 0.03, prompts)
    for i, row in frame.iterrows():
        right = np.clip(row["pref_accuracy"] + difficulty + rng.normal(0, 0.004, prompts), 0, 1)
        right = right * decided
        frame.loc[i, "pref_accuracy"] = right.sum() / decided.sum()
        per_prompt[F.run_key(row)] = {"pref_right": right, "pref_decided": decided}
    table = F.findings(frame, per_prompt=per_prompt)
    tested = table[(table["part"] != "all") & (table["verdict"] != F.NOT_TESTED)]
    assert set(tested["part"]) == {"1a-acc", "1b-acc", "2a-acc", "2b-acc", "2c-acc", "2d-acc"}
    assert set(tested["interval"]) == {F.CROSSED} and set(tested["prompts"]) == {prompts}
    assert set(tested["metric"]) == {"pref_accuracy"}
    verdict = dict(
        zip(tested["part"] + ":" + tested["statement"].str[:7], tested["verdict"], strict=True)
    )
    assert verdict["1a-acc:clf-mlp"] == F.REPLICATED  # +11 points at flip rate 0.3
    assert verdict["2c-acc:bt-mlp "] == F.NEGLIGIBLE  # both gain 4 points from more pairs
    claims = table[table["part"] == "all"].set_index("claim")
    assert (
        claims.loc["1", "verdict"] == F.REPLICATED
        and "not tested: 1-bon" in claims.loc["1", "note"]
    )
    assert claims.loc["2", "verdict"] == F.NEGLIGIBLE  # 2c is negligible, the rest replicated
    assert set(claims.loc[["3", "4"], "verdict"]) == {F.NOT_TESTED}
    assert F.claim_scores(table) == {"findings.claim1": 1.0, "findings.claim2": 0.0}
    md = F.markdown(table)
    assert "held-out preference accuracy in percentage points" in md
    assert "match margin 1 point" in md and "1a-acc" in md
    # Without per-prompt values: over seeds only, and the page says why.
    table = F.findings(frame, per_prompt={})
    assert set(table.loc[table["verdict"] != F.NOT_TESTED, "interval"]) - {""} == {F.SEEDS_ONLY}
    assert "no per-prompt pair counts" in table.attrs["prompt_fallback"]["prefs"]


# ---------------------------------------------------------------------------------------------
# Error rates, by simulation through the accuracy's per-prompt values

REPS = 1000


def simulate_accuracy(difference, seeds=5, prompts=30, reps=REPS, rng_seed=0, shared=False):
    """(reps, S, P) per-prompt values of a two-run contrast (classifier − Bradley-Terry) whose
    true accuracy difference is ``difference`` points: binary pair outcomes, 1 to 6 non-tied
    pairs per prompt, prompt difficulty shared by both heads, a training offset per run.
    ``shared``: the two heads' outcomes on a pair come from one uniform (heads of a cell score the
    same pairs, and mostly agree), each head's chance on a pair off by its own N(0, 0.1): they
    disagree on about one pair in ten, so their difference is more precise than two independent
    runs'."""
    rng = np.random.default_rng(rng_seed)
    decided = rng.integers(1, 7, prompts)
    difficulty = np.repeat(rng.normal(0, 0.08, prompts), decided)  # per pair
    starts = np.concatenate([[0], np.cumsum(decided)[:-1]])
    uniform = rng.uniform(size=(reps, seeds, decided.sum()))
    values = []
    for shift in (difference / 100, 0.0):
        offset = rng.normal(0, 0.002 if shared else 0.01, (reps, seeds, 1))
        own = rng.normal(0, 0.1, uniform.shape) if shared else 0.0
        p = np.clip(0.72 + shift + difficulty + offset + own, 0, 1)
        draw = uniform if shared else rng.uniform(size=uniform.shape)
        right = np.add.reduceat((draw < p).astype(float), starts, axis=-1)
        values.append(PC.linearized_accuracy(right, np.broadcast_to(decided, right.shape)))
    # the true accuracy of a run is its pair-weighted mean over these prompts
    return values[0] - values[1]


@pytest.mark.parametrize(
    ("prompts", "shared"), [(15, False), (60, False), (300, True)]
)  # the demo's test prompts; more; many, with the heads' outcomes on a pair related
def test_error_rates_of_the_accuracy_parts(prompts, shared):
    plan = F.load()
    margin = plan.preference_match_margin

    def interval(difference, rng_seed):
        y = simulate_accuracy(difference, prompts=prompts, rng_seed=rng_seed, shared=shared)
        return st.crossed_interval(y)

    # Non-inferiority exactly at the margin: replicated at most 2.5% of the time.
    out = interval(-margin, 0)
    assert (out["ci_low"] > -margin).mean() <= mc_bound(0.025)
    # A superiority part at 0: covered at 95%; replicated, and contradicted, each at most 2.5%.
    out = interval(0.0, 1)
    assert ((out["ci_low"] <= 0) & (0 <= out["ci_high"])).mean() >= 0.95 - 3 * np.sqrt(
        0.05 * 0.95 / REPS
    )
    assert (out["ci_low"] > 0).mean() <= mc_bound(0.025)
    assert (out["ci_high"] < 0).mean() <= mc_bound(0.025)
    spread = float(out["effect"].std())  # the estimate's standard deviation at this size
    # At the smallest effect of interest: called negligible at most 2.5% of the time.
    out = interval(plan.preference_sesoi, 2)
    verdict = st.verdicts(
        out["ci_low"], out["ci_high"], np.ones(REPS), 0.0, st.SUPERIORITY,
        plan.preference_sesoi, plan.alpha, out["se"],
    )  # fmt: skip
    assert (verdict == st.NEGLIGIBLE).mean() <= mc_bound(0.025)
    # ...and a clear effect (four standard deviations of the estimate) is found.
    out = interval(4 * spread, 3)
    assert (out["ci_low"] > 0).mean() > 0.7


def mc_bound(rate: float, reps: int = REPS) -> float:
    """Nominal rate plus three Monte-Carlo standard errors."""
    return rate + 3 * np.sqrt(rate * (1 - rate) / reps)


# ---------------------------------------------------------------------------------------------
# The demo, small, end to end


def test_preference_demo_findings_test_claims_1_and_2_on_accuracy(tmp_path):
    """The demo's config on one world, two heads, two seeds: metrics.json stores the per-prompt
    pair counts, and findings.csv holds the accuracy parts with an interval over seeds and test
    prompts, the parts that need a golden reward not tested."""
    import json

    import yaml
    from conftest import REPO, deep_merge, snakemake

    config = yaml.safe_load((REPO / "configs" / "preferences-demo.yaml").read_text())
    config["worlds"] = {"pref-pairs": config["worlds"]["pref-pairs"]}
    config["worlds"]["pref-pairs"]["path"] = str(REPO / "tests" / "data" / "pref-explicit.jsonl")
    config = deep_merge(
        config,
        {
            "tracking": {"enabled": False},
            "evaluation": {"repeats": 5},
            "grid": {"worlds": ["pref-pairs"], "heads": list(HEADS), "seeds": [0, 1]},
        },
    )
    target = f"results/{config['experiment']}/findings.csv"
    snakemake(tmp_path, "--cores", "2", target, config=config)
    results = tmp_path / "results" / config["experiment"]
    table = pd.read_csv(results / "findings.csv", dtype={"claim": str, "plan_version": str})
    tested = table[(table["part"] != "all") & (table["verdict"] != F.NOT_TESTED)]
    assert set(tested["part"]) == {"1a-acc", "1b-acc", "2a-acc", "2b-acc", "2c-acc", "2d-acc"}
    assert set(tested["interval"]) == {F.CROSSED} and (tested["prompts"] == 15).all()
    assert set(table["plan_version"]) == {F.load().version}
    untested = table[table["verdict"] == F.NOT_TESTED]
    assert set(untested["part"]) == {"1-bon", "2-bon", "3", "4", "all"}
    assert untested["note"].str.contains("golden reward").all()
    record = json.loads(next(results.glob("runs/**/metrics.json")).read_text())
    counts = record["per_prompt"]["aggregations"]["mean"]
    assert len(counts["pref_right"]) == len(counts["pref_decided"]) == 15
    assert sum(counts["pref_right"]) / sum(counts["pref_decided"]) == pytest.approx(
        record["metrics"]["mean"]["pref_accuracy"]
    )
