"""Findings: the statistics on constructed summaries with known answers, and the workflow stage."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from embrm import findings as F

HEADS = {"bt-mlp": "bt-mlp", "clf-mlp": "clf-mlp", "clf-lgb": "clf-lgb"}
CANDIDATES = ("random", "similar", "diversified")


def error_rate(beta: float, pairing: str) -> float:
    """Label error falling with β; cross-prompt pairs are easier."""
    return (0.4 if pairing == "same" else 0.3) / (1 + beta)


def summary(
    *,
    seeds=range(5),
    betas=(0.5, 10.0),
    quantities=(500, 2000),
    candidates=CANDIDATES,
    pairings=("same", "cross"),
    gain=None,
    noise=0.01,
    seed_noise=0.0,
    rng_seed=0,
) -> pd.DataFrame:
    """One row per run; ``gain(head, pairing, candidates, n, beta, error)`` gives the true value,
    plus independent noise per run and a shared offset per seed (which pairing removes)."""
    rng = np.random.default_rng(rng_seed)
    offsets = {s: rng.normal(0, seed_noise) for s in seeds}
    rows = []
    for seed, beta, n, cand, pairing, head in itertools.product(
        seeds, betas, quantities, candidates, pairings, HEADS
    ):
        err = error_rate(beta, pairing)
        # Cross-prompt pairs: a gap of about 2.5 whatever the candidate rule.
        same_dr = {"random": 1.1, "similar": 0.3, "diversified": 3.0}[cand]
        dr = 2.5 if pairing == "cross" else same_dr
        value = 0.5 if gain is None else gain(head, pairing, cand, n, beta, err)
        rows.append(
            {
                "world": "w",
                "design": f"{pairing}-{cand}",
                "prompt_pairing": pairing,
                "candidates": cand,
                "n": n,
                "annotator": f"bt-beta{beta:g}",
                "annotator_model": "bt",
                "beta": beta,
                "head": head,
                "head_type": HEADS[head],
                "seed": seed,
                "bon_gain_normalized": value + offsets[seed] + rng.normal(0, noise),
                "annotation_mean_abs_dr": dr + rng.normal(0, 0.01),
                "annotation_realized_error_rate": err,
            }
        )
    return pd.DataFrame(rows)


def parts(table: pd.DataFrame, part: str) -> pd.DataFrame:
    return table[table["part"] == part]


def claim(table: pd.DataFrame, number: str) -> str:
    return table[(table["part"] == "all") & (table["claim"] == number)]["verdict"].item()


def planted(head, pairing, cand, n, beta, err):
    """Every claim true: classifiers ahead at high error, BT slightly ahead at low error; more
    and cleaner labels help, BT more; cross-prompt helps, most for similar, a little for
    diversified, in proportion to the gap difference."""
    value = 0.3 + 0.1 * (n == 2000) + 0.1 * (beta == 10.0)
    if head == "bt-mlp":
        value += 0.05 * (n == 2000) + 0.05 * (beta == 10.0)
    elif err > 0.1:
        value += 0.05
    else:
        value += 0.04
    if pairing == "cross":
        value += {"similar": 0.12, "random": 0.06, "diversified": 0.01}[cand]
    return value


def reversed_(head, pairing, cand, n, beta, err):
    """Every claim reversed: BT ahead at high error, fewer and noisier labels help, cross-prompt
    hurts, most where the gap grows most (similar)."""
    value = 0.5 - 0.1 * (n == 2000) - 0.1 * (beta == 10.0)
    if head == "bt-mlp" and err > 0.1:
        value += 0.1
    if head != "bt-mlp":
        value -= 0.05 * (n == 2000) + 0.05 * (beta == 10.0)
    if pairing == "cross":
        value -= {"similar": 0.12, "random": 0.06, "diversified": 0.04}[cand]
    return value


def test_planted_effects_are_replicated():
    frame = summary(gain=planted, seed_noise=0.2)
    frame["annotator_ability"] = np.nan  # another annotator model's parameter, absent here
    table = F.findings(frame)
    for number in "1234":
        assert claim(table, number) == F.REPLICATED, table.to_string()
    tested = table[table["part"] != "all"]
    assert (tested["verdict"] == F.REPLICATED).all()
    assert (tested["seeds"] == 5).all()
    # Pairing removes the shared per-seed offset (std 0.2): the intervals stay narrow.
    widths = (tested["ci_high"] - tested["ci_low"]).dropna()
    assert (widths < 0.08).all()
    # 1a is a non-inferiority test against −margin on same-prompt random pairs; the planted
    # effect at β = 0.5 is +0.05 at 500 pairs and 0 at 2,000.
    plan = F.load()
    row = parts(table, "1a").iloc[0]
    assert row["threshold"] == -plan.match_margin
    assert row["effect"] == pytest.approx(0.025, abs=0.012)  # 10 cells, noise 0.01 a run
    assert row["cells"] == 2 * 5  # (n = 500, 2000) × 5 seeds of same-random only
    # Every row names the plan it was decided under.
    assert set(table["plan_version"]) == {plan.version}
    assert set(table["plan_sha256"]) == {plan.sha256}


def test_planted_reversal_is_contradicted():
    table = F.findings(summary(gain=reversed_))
    for number in "1234":
        assert claim(table, number) == F.CONTRADICTED, table.to_string()
    assert (parts(table, "3d")["effect"] < -0.03).all()
    assert (parts(table, "3d")["verdict"] == F.CONTRADICTED).all()
    assert (parts(table, "4")["effect"] < 0).all()
    assert "Holm" in table[(table["claim"] == "2") & (table["part"] == "all")]["note"].item()


def test_pure_noise_is_not_decided_and_planning_numbers_exceed_five_seeds():
    table = F.findings(summary(noise=0.05, rng_seed=3))
    tested = table[(table["part"] != "all") & (table["verdict"] != F.NOT_TESTED)]
    assert (tested["verdict"] == F.INCONCLUSIVE).mean() >= 0.8
    assert not (tested["verdict"] == F.REPLICATED).any()
    inconclusive = tested[tested["verdict"] == F.INCONCLUSIVE]
    assert (inconclusive["seeds_to_replicate"] > 5).all()
    # Contradicting at Holm's strictest step needs at least as many seeds as replicating.
    assert (inconclusive["seeds_to_contradict"] >= inconclusive["seeds_to_replicate"]).all()
    assert (inconclusive["detectable_now"] > 0).all()


def test_a_grid_without_a_beta_axis_does_not_test_claim_1():
    table = F.findings(summary(gain=planted, betas=(1.0,)))
    assert claim(table, "1") == F.NOT_TESTED
    notes = " ".join(table[(table["claim"] == "1") & (table["part"] != "all")]["note"])
    assert "β" in notes
    # Noisier-label parts of claim 2 are not tested either; the quantity parts still are.
    assert (parts(table, "2b")["verdict"] == F.NOT_TESTED).all()
    assert (parts(table, "2a")["verdict"] == F.REPLICATED).all()


def test_missing_axes_are_listed_not_dropped():
    table = F.findings(summary(gain=planted, candidates=("random",), quantities=(500,)))
    assert (parts(table, "3b")["verdict"] == F.NOT_TESTED).all()
    assert (parts(table, "2a")["verdict"] == F.NOT_TESTED).all()
    assert claim(table, "4") == F.NOT_TESTED  # one candidate rule: no slope
    assert claim(table, "3") == F.REPLICATED  # the tested parts (random) hold
    assert "not tested" in table[(table["claim"] == "3") & (table["part"] == "all")]["note"].item()


def test_scores_and_pages(tmp_path):
    table = F.findings(summary(gain=planted))
    scores = F.claim_scores(table)
    assert scores == {f"findings.claim{c}": 1.0 for c in "1234"}
    md = F.markdown(table, {"runs": 10})
    assert md.startswith("# Findings") and md.count("| **replicated** |") == 4
    plan = F.load()
    assert f"analysis plan {plan.version} (sha256 {plan.sha256[:12]})" in md
    assert "shared_quality" in md and "nonlinearity" in md  # what the verdicts depend on
    assert "Claim 3, **replicated**" in F.rst(table) and plan.version in F.rst(table)
    path = tmp_path / "summary.csv"
    summary(gain=planted).to_csv(path, index=False)
    F.write(path, tmp_path / "f.csv", tmp_path / "f.md", tmp_path / "f.rst", tmp_path / "f.html")
    back = pd.read_csv(tmp_path / "f.csv")
    assert list(back.columns) == F.COLUMNS and len(back) == len(table)
    assert "analysis plan" in (tmp_path / "f.html").read_text()


# ---------------------------------------------------------------------------------------------
# The analysis plan


def test_the_plan_is_read_from_its_document_and_hashed():
    import hashlib

    plan = F.load()
    text = F.PLAN_PATH.read_text(encoding="utf-8")
    assert plan.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert f"- **{plan.version}**" in text  # the version has its change-log entry
    assert plan.metric == F.METRIC == "bon_gain_normalized"
    # Every registered part names a margin the plan defines.
    for contrast in F.REGISTRY:
        assert getattr(plan, contrast.margin) > 0
    from embrm.findings.plan import parse

    with pytest.raises(ValueError, match="lacks sesoi"):
        parse(text.replace("sesoi: 0.02 ", "other: 0.02 "), "plan.md")
    with pytest.raises(ValueError, match=r"plan.md: no ```yaml block"):
        parse("# nothing", "plan.md")
    # A changed plan has another hash: a verdict names the exact document.
    assert parse(text + "\n").sha256 != plan.sha256


# ---------------------------------------------------------------------------------------------
# One test per defect the plan corrects


def test_claim_1_does_not_pool_pairing_designs():
    """On cross-prompt pairs the classifiers win big; on the study's same-prompt random pairs
    they trail Bradley-Terry. Claim 1 is about the latter only."""

    def gain(head, pairing, cand, n, beta, err):
        if head == "bt-mlp":
            return 0.5
        return 0.8 if pairing == "cross" else 0.4

    table = F.findings(summary(gain=gain, candidates=("random", "similar")))
    rows = parts(table, "1a")
    assert ((rows["effect"] + 0.1).abs() < 0.015).all()  # pooled over designs: about +0.1
    assert (rows["verdict"] == F.CONTRADICTED).all()
    # cells: same-random runs of both quantities above 10% error, per seed
    assert (rows["cells"] == 2 * 5).all()


def test_1b_is_not_replicated_when_bradley_terry_leads_everywhere():
    """BT ahead at every error level, by less at high error: the old difference of differences
    was replicated; now 1a (classifiers match above 10%) is contradicted."""

    def gain(head, pairing, cand, n, beta, err):
        if head == "bt-mlp":
            return 0.6
        return 0.5 if err > 0.1 else 0.3

    table = F.findings(summary(gain=gain))
    assert (parts(table, "1a")["verdict"] == F.CONTRADICTED).all()
    assert (parts(table, "1b")["verdict"] == F.REPLICATED).all()
    assert claim(table, "1") == F.CONTRADICTED


def test_3d_is_decided_per_head():
    """Two heads gain from cross-prompt diversified pairs, one loses beyond the margin: the
    average over heads is positive, but "never negative" fails for that head."""

    def gain(head, pairing, cand, n, beta, err):
        if pairing == "same" or cand != "diversified":
            return (
                0.5
                + (0.1 if pairing == "cross" and cand == "similar" else 0.0)
                + (0.05 if pairing == "cross" and cand == "random" else 0.0)
            )
        return 0.5 + (-0.06 if head == "clf-lgb" else 0.05)

    table = F.findings(summary(gain=gain))
    rows = parts(table, "3d").set_index("statement")
    assert len(rows) == 3 and rows["effect"].mean() > 0
    lgb = rows.loc[next(s for s in rows.index if s.startswith("clf-lgb"))]
    assert lgb["verdict"] == F.CONTRADICTED
    assert lgb["threshold"] == -F.load().never_negative_margin
    assert claim(table, "3") == F.CONTRADICTED


def test_zero_variance_part_is_not_decided():
    """Heads with identical values in every seed: no variance, no decision (never a
    'replicated with p = 0')."""
    frame = summary(noise=0.0)  # every run 0.5: every contrast exactly 0, no spread
    table = F.findings(frame)
    tested = table[(table["part"] != "all") & (table["verdict"] != F.NOT_TESTED)]
    assert len(tested) > 10
    assert (tested["verdict"] == F.INCONCLUSIVE).all()
    assert tested["note"].str.contains("degenerate").all()
    assert tested["seeds_to_replicate"].isna().all()
    # A constant non-zero difference: still not decided.
    shifted = frame.copy()
    shifted.loc[shifted["prompt_pairing"] == "cross", "bon_gain_normalized"] += 0.1
    row = parts(F.findings(shifted), "3a").iloc[0]
    assert row["effect"] == pytest.approx(0.1) and row["verdict"] == F.INCONCLUSIVE


def test_planning_numbers_are_sign_aware_and_match_the_t_test_power():
    from embrm.findings import statistics as st
    from statsmodels.stats.power import TTestPower

    # Seeds only (P = 1): the one-sided t-test at 2.5%, 80% power, d = distance / σ_s.
    comp = {"var_seed": 0.04**2, "var_prompt": 0.0, "var_inter": 0.0}
    expected = TTestPower().solve_power(
        effect_size=0.02 / 0.04, alpha=0.025, power=0.8, alternative="larger"
    )
    got = st.seeds_for_power(comp, 1, 0.02, 0.025, 0.8, 10_000)
    assert abs(got - expected) <= 1.5  # a normal approximation around the t-test's exact power
    # Contradicting at Holm's strictest step over 10 parts needs more seeds.
    assert st.seeds_for_power(comp, 1, 0.02, 0.0025, 0.8, 10_000) > got
    # The test set's floor: prompt variance alone too wide for the distance, at any seeds.
    floor = {"var_seed": 0.01**2, "var_prompt": 0.5**2, "var_inter": 0.1**2}
    assert st.seeds_for_power(floor, 250, 0.02, 0.025, 0.8, 10_000) == float("inf")
    assert st.seeds_for_halfwidth(floor, 250, 0.02, 0.95, 10_000) == float("inf")
    # Mirror data: the observed effect's sign changes, the planning numbers do not.
    frame = summary(noise=0.05, rng_seed=3)
    mirrored = frame.copy()
    mirrored["bon_gain_normalized"] = 1.0 - mirrored["bon_gain_normalized"]
    a, b = F.findings(frame), F.findings(mirrored)
    tested = (a["part"] != "all") & (a["verdict"] != F.NOT_TESTED)
    np.testing.assert_allclose(a.loc[tested, "effect"], -b.loc[tested, "effect"], atol=1e-12)
    for column in ("seeds_to_replicate", "seeds_to_contradict", "seeds_for_halfwidth"):
        pd.testing.assert_series_equal(a.loc[tested, column], b.loc[tested, column])


def test_halfwidth_planning_uses_an_upper_bound_of_the_spread():
    from embrm.findings import statistics as st

    rng = np.random.default_rng(0)
    y = rng.normal(0, 0.03, (5, 1)) + rng.normal(0, 0.0, (5, 1))
    ms = st.mean_squares(y)
    point, upper = st.components(ms), st.upper_components(ms, 0.95)
    assert upper["var_seed"] > 2 * point["var_seed"]  # 4 df: the bound is far above
    assert st.seeds_for_halfwidth(upper, 1, 0.02, 0.95, 10_000) > st.seeds_for_halfwidth(
        point, 1, 0.02, 0.95, 10_000
    )


# ---------------------------------------------------------------------------------------------
# Figures


def structured(tau: float, shared: float, lam: float, rng_seed: int) -> pd.DataFrame:
    """A world of the sensitivity plane whose cross − same gain grows with τ·ρ."""

    def gain(head, pairing, cand, n, beta, err):
        return 0.5 + (0.05 * tau * shared - 0.02 if pairing == "cross" else 0.0)

    frame = summary(
        gain=gain, betas=(1.0,), quantities=(2000,), candidates=("random",), rng_seed=rng_seed
    )
    frame["world"] = f"t{tau:g}-r{shared:g}-l{lam:g}"
    frame["world_tau"], frame["world_sigma"] = tau, 1.0
    frame["world_shared_quality"], frame["world_nonlinearity"] = shared, lam
    return frame


def test_findings_figures_render(tmp_path):
    from embrm.figures.findings import FINDINGS_FIGURES as FIGURES
    from embrm.figures.findings import available, map_points, render

    plane = pd.concat(
        [
            structured(tau, shared, lam, i)
            for i, (tau, shared, lam) in enumerate(
                itertools.product((0.5, 2.0), (0.0, 1.0), (0.0, 1.0))
            )
        ],
        ignore_index=True,
    )
    points = map_points(plane)
    # one paired value per world, head and seed: 8 worlds × 3 heads × 5 seeds
    assert len(points) == 8 * 3 * 5
    top = points[(points["tau_over_sigma"] == 2.0) & (points["shared_quality"] == 1.0)]
    assert top["difference"].mean() == pytest.approx(0.08, abs=0.01)
    single = summary(gain=planted)
    assert FIGURES["findings"].drawable(single)
    assert not FIGURES["cross_prompt_map"].drawable(single)  # one world
    assert FIGURES["cross_prompt_map"].drawable(plane)
    drawable, skipped = available(single)
    assert drawable == ["findings"] and "two or more worlds" in skipped["cross_prompt_map"]
    path = tmp_path / "plane.parquet"
    plane.to_parquet(path)
    render("cross_prompt_map", path, tmp_path / "map.png", tmp_path / "map.svg")
    assert (tmp_path / "map.png").stat().st_size > 10_000
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from embrm.figures import head_palette

    for name, frame in (("findings", single), ("cross_prompt_map", plane)):
        figure = FIGURES[name].draw(frame, head_palette(frame["head"]))
        assert "over 5 seed(s)" in figure._suptitle.get_text().replace("\n", " ")
        figure.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
        if name == "cross_prompt_map":
            # rows = heads; every panel compares the same quantity on one y-axis
            axes = figure.axes
            assert len(axes) == 3 * 3 and len({ax.get_ylim() for ax in axes}) == 1
        plt.close(figure)


# ---------------------------------------------------------------------------------------------
# The workflow stage


@pytest.mark.slow
def test_workflow_writes_findings_report_and_mlflow(tiny_workflow, tmp_path):
    from conftest import snakemake
    from embrm.tracking import INVOCATION_TAG
    from mlflow.tracking import MlflowClient

    results = tiny_workflow / "results" / "default"
    md = (results / "findings.md").read_text()
    table = pd.read_csv(results / "findings.csv", dtype={"claim": str})
    claims = table[table["part"] == "all"]
    assert list(claims["claim"]) == ["1", "2", "3", "4"]
    # the tiny grid has one seed: nothing can be decided, and the table says why
    assert set(claims["verdict"]) <= {F.INCONCLUSIVE, F.NOT_TESTED}
    assert "one seed" in " ".join(table["note"].fillna(""))
    tested = table[(table["part"] != "all") & (table["verdict"] != F.NOT_TESTED)]
    assert set(tested["interval"]) == {F.NO_INTERVAL}
    # Per-test-prompt values in every run's metrics.json, none in the summary's columns.
    import json

    record = json.loads(next((results / "runs").rglob("metrics.json")).read_text())
    assert len(record["per_prompt"]["aggregations"]["mean"]["bon_gain"]) == 40
    columns = pd.read_csv(results / "summary.csv", nrows=0).columns
    assert not [c for c in columns if "per_prompt" in c or c == "bon_n"]
    for claim_row in claims.itertuples():
        assert f"{claim_row.claim}. " in md and claim_row.verdict in md
    # MLflow: the findings on the parent run, a metric per decided or undecided claim
    client = MlflowClient(f"sqlite:///{results.parent / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("default")
    parents = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get(INVOCATION_TAG) == "true"
    ]
    parent = parents[0]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "findings")}
    assert artifacts == {"findings/findings.csv", "findings/findings.md"}
    expected = F.claim_scores(table)
    assert expected and {k: parent.data.metrics[k] for k in expected} == expected
    # The report opens on the findings.
    report = tmp_path / "report.html"
    snakemake(tiny_workflow, "--report", str(report))
    page = report.read_text()
    assert "Findings" in page and "Claim 1" in page


# ---------------------------------------------------------------------------------------------
# The interval over seeds and test prompts


def with_prompts(frame: pd.DataFrame, prompts: int = 40, spread: float = 0.05, rng_seed: int = 0):
    """Per-prompt values that reproduce every run's ``bon_gain_normalized``: the oracle's
    per-prompt gains shared by the world, the run's normalized gain plus independent noise per
    prompt (centred so that the ratio of means is the run's value)."""
    rng = np.random.default_rng(rng_seed)
    oracle = rng.uniform(2.0, 4.0, prompts)
    out = {}
    for _, row in frame.iterrows():
        noise = rng.normal(0.0, spread, prompts)
        noise -= (noise * oracle).sum() / oracle.sum()
        out[F.run_key(row)] = {
            "bon_gain": (row["bon_gain_normalized"] + noise) * oracle,
            "oracle_bon_gain": oracle,
        }
    return out


def prompt_world(heterogeneity: float, effect: float = 0.05, prompts: int = 60, rng_seed: int = 1):
    """Same- and cross-prompt random pairs, one head, five seeds. On test prompt p cross − same
    is ``effect + heterogeneity · z_p``, z_p fixed (every seed is scored on the same prompts);
    seeds add little."""
    rng = np.random.default_rng(rng_seed)
    oracle = rng.uniform(2.0, 4.0, prompts)
    z = rng.standard_normal(prompts)
    z -= (z * oracle).sum() / oracle.sum()  # the planted effect is exactly ``effect``
    rows, per_prompt = [], {}
    for seed, pairing in itertools.product(range(5), ("same", "cross")):
        normalized = 0.5 + rng.normal(0, 0.005) + rng.normal(0, 0.05, prompts)
        if pairing == "cross":
            normalized = normalized + effect + heterogeneity * z
        row = {
            "world": "w",
            "design": f"{pairing}-random",
            "n": 2000,
            "annotator": "bt-beta1",
            "beta": 1.0,
            "head": "bt-mlp",
            "seed": seed,
            "bon_gain_normalized": (normalized * oracle).sum() / oracle.sum(),
            "annotation_mean_abs_dr": 2.5 if pairing == "cross" else 1.1,
            "annotation_realized_error_rate": 0.3,
        }
        rows.append(row)
        per_prompt[F.run_key(row)] = {"bon_gain": normalized * oracle, "oracle_bon_gain": oracle}
    return pd.DataFrame(rows), per_prompt


def part_row(table: pd.DataFrame, part: str, contains: str) -> pd.Series:
    rows = table[(table["part"] == part) & table["statement"].str.contains(contains)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_prompt_heterogeneity_widens_the_interval_and_is_named():
    frame, per_prompt = prompt_world(heterogeneity=0.3)
    table = F.findings(frame, per_prompt=per_prompt)
    row = part_row(table, "3a", "random")
    plain = part_row(F.findings(frame), "3a", "random")
    assert row["effect"] == pytest.approx(0.05, abs=0.01)
    assert plain["effect"] == pytest.approx(row["effect"], abs=1e-12)  # the same weights
    # The seeds agree (the seeds-only interval excludes 0), the prompts do not.
    assert plain["ci_low"] > 0 and plain["interval"] == F.SEEDS_ONLY
    assert row["interval"] == F.CROSSED and row["ci_low"] < 0 < row["ci_high"]
    assert row["verdict"] == F.INCONCLUSIVE and row["limited_by"] == "test prompts"
    assert row["share_prompt"] > 0.8
    # 0.3 / √60 per prompt draw: no number of seeds reaches the smallest effect of interest.
    assert row["seeds_to_replicate"] == np.inf and "more test prompts" in row["note"]
    assert claim(table, "3") == F.INCONCLUSIVE


def test_homogeneous_prompt_effect_is_replicated():
    frame, per_prompt = prompt_world(heterogeneity=0.0)
    row = part_row(F.findings(frame, per_prompt=per_prompt), "3a", "random")
    assert row["verdict"] == F.REPLICATED and row["interval"] == F.CROSSED
    assert row["ci_low"] > 0 and row["ci_low"] < row["effect"] < row["ci_high"]


def test_per_prompt_values_reproduce_each_run_and_carry_the_oracle():
    rng = np.random.default_rng(0)
    gain, oracle = rng.uniform(0, 3, (4, 30)), rng.uniform(2, 4, (4, 30))
    z = F.prompt_values(gain, oracle, F.METRIC)
    np.testing.assert_allclose(z.mean(axis=1), gain.mean(axis=1) / oracle.mean(axis=1))
    # The linearization is the first-order change of the ratio of means: removing one prompt.
    keep = np.ones(30, dtype=bool)
    keep[7] = False
    exact = gain[:, keep].mean(axis=1) / oracle[:, keep].mean(axis=1)
    approx = (z[:, keep].sum(axis=1)) / 29
    np.testing.assert_allclose(approx, exact, atol=2e-3)
    np.testing.assert_array_equal(F.prompt_values(gain, oracle, "bon_gain"), gain)


def test_every_claim_gets_a_crossed_interval_on_the_planted_grid():
    frame = summary(gain=planted)
    per_prompt = with_prompts(frame)
    table = F.findings(frame, per_prompt=per_prompt)
    plain = F.findings(frame)
    tested = table[(table["part"] != "all") & (table["verdict"] != F.NOT_TESTED)]
    assert len(tested) > 20 and (tested["interval"] == F.CROSSED).all()
    assert (tested["prompts"] == 40).all()
    # The same weights: the point estimates are those of the seeds-only table.
    pd.testing.assert_series_equal(table["effect"], plain["effect"])
    # Prompt noise only widens: the crossed interval contains the seeds-only one's centre.
    assert (tested["ci_low"] <= tested["effect"]).all()
    assert ((tested["ci_high"] - tested["ci_low"]) > 0).all()
    assert {claim(table, c) for c in "1234"} == {F.REPLICATED}


def test_runs_without_per_prompt_values_fall_back_to_the_seeds(tmp_path):
    frame, per_prompt = prompt_world(heterogeneity=0.3)
    plain = F.findings(frame)
    row = part_row(plain, "3a", "random")
    assert row["verdict"] == F.REPLICATED and row["interval"] == F.SEEDS_ONLY
    old = dict(per_prompt)
    old.pop(next(iter(old)))  # one run evaluated before per-prompt values were stored
    table = F.findings(frame, per_prompt=old)
    assert part_row(table, "3a", "random")["interval"] == F.SEEDS_ONLY
    pd.testing.assert_series_equal(table["verdict"], plain["verdict"])
    md = F.markdown(table)
    assert "1 of 10 runs have no per-prompt values" in md and "intervals over seeds only" in md
    # Values that do not reproduce the summary's are not used either.
    shifted = {k: {**v, "bon_gain": v["bon_gain"] + 0.1} for k, v in per_prompt.items()}
    why = F.world_prompt_values(F.prepare(frame, F.METRIC), F.METRIC, shifted)[1]
    assert "do not reproduce" in why
    # Written with metrics files: old records (no per_prompt key) are read as missing.
    from embrm.io import write_json

    paths = []
    for i, (_, run) in enumerate(frame.iterrows()):
        record = {"run": {k: run[k] for k in F.RUN_KEYS}}
        if i:
            values = per_prompt[F.run_key(run)]
            record["per_prompt"] = {
                "bon_n": 50,
                "oracle_bon_gain": values["oracle_bon_gain"].tolist(),
                "aggregations": {"mean": {"bon_gain": values["bon_gain"].tolist()}},
            }
        paths.append(tmp_path / f"run{i}.json")
        write_json(paths[-1], record)
    assert len(F.read_per_prompt(paths)) == len(frame) - 1
    frame.to_csv(tmp_path / "summary.csv", index=False)
    written = F.write(
        tmp_path / "summary.csv", tmp_path / "f.csv", tmp_path / "f.md", metric_files=paths
    )
    assert part_row(written, "3a", "random")["interval"] == F.SEEDS_ONLY
    frame.iloc[1:].to_csv(tmp_path / "summary.csv", index=False)
    full = F.write(
        tmp_path / "summary.csv", tmp_path / "g.csv", tmp_path / "g.md", metric_files=paths[1:]
    )
    assert part_row(full, "3a", "random")["interval"] == F.CROSSED


def brute_force(y: np.ndarray) -> tuple[float, float, float, float]:
    """Var(mean) and Satterthwaite df of a crossed two-way layout, by loops: sums of squares,
    expected mean squares solved for the components (the REML estimate of a balanced layout
    when none is negative), then the variance of the grand mean."""
    s, p = y.shape
    grand = sum(y[i, j] for i in range(s) for j in range(p)) / (s * p)
    rows = [sum(y[i, j] for j in range(p)) / p for i in range(s)]
    cols = [sum(y[i, j] for i in range(s)) / s for j in range(p)]
    ss_s = p * sum((r - grand) ** 2 for r in rows)
    ss_p = s * sum((c - grand) ** 2 for c in cols)
    ss_e = sum((y[i, j] - rows[i] - cols[j] + grand) ** 2 for i in range(s) for j in range(p))
    ms_s, ms_p, ms_e = ss_s / (s - 1), ss_p / (p - 1), ss_e / ((s - 1) * (p - 1))
    var_s, var_p, var_e = (ms_s - ms_e) / p, (ms_p - ms_e) / s, ms_e
    assert var_s > 0 and var_p > 0  # the layouts below are drawn so that no component is cut
    variance = var_s / s + var_p / p + var_e / (s * p)
    # The MLS interval: the seed piece MS_S/(SP) on S − 1 df, the prompt piece on P − 1 df.
    from scipy import stats

    half = np.hypot(
        stats.t.ppf(0.975, s - 1) * np.sqrt(ms_s / (s * p)),
        stats.t.ppf(0.975, p - 1) * np.sqrt((ms_p - ms_e) / (s * p)),
    )
    return grand, variance, half, var_s


def test_interval_matches_a_brute_force_crossed_anova():
    from embrm.findings import statistics as st

    rng = np.random.default_rng(5)
    for s, p in ((5, 30), (3, 12), (8, 50)):
        y = (
            rng.normal(0, 0.05, (s, 1))
            + rng.normal(0, 0.1, (1, p))
            + rng.normal(0, 0.05, (s, p))
            + 0.2
        )
        mean, variance, half, var_s = brute_force(y)
        out = st.crossed_interval(y)
        assert out["effect"] == pytest.approx(mean)
        assert out["se"] ** 2 == pytest.approx(variance)
        assert out["var_seed"] == pytest.approx(var_s)
        assert out["ci_low"] == pytest.approx(mean - half)
        assert out["ci_high"] == pytest.approx(mean + half)
        assert s - 1 <= out["df"] <= p - 1  # the effective df lies between the two sources'
        # The p-value inverts the interval: at the bound's distance it is 2.5%.
        at_bound = st.one_sided_p(out, float(out["ci_low"]), upper=True)
        assert at_bound == pytest.approx(0.025, rel=1e-3)
        assert out["share_seed"] + out["share_prompt"] + out["share_interaction"] == pytest.approx(
            1
        )


# ---------------------------------------------------------------------------------------------
# Error rates, proven by simulation from the crossed model


# Standard deviations of a part's per-seed, per-prompt contrast, in the range of the default
# world's parts (docs/findings.md, the variance components measured there): seed, prompt,
# seed × prompt.
SETTINGS = [(0.01, 0.05, 0.15), (0.03, 0.1, 0.3), (0.05, 0.02, 0.1), (0.002, 0.2, 0.2)]
REPS, SEEDS, PROMPTS = 1500, 5, 250


def simulate(theta, sds, reps=REPS, parts=1, rng_seed=0, seeds=SEEDS, prompts=PROMPTS):
    """(reps, parts, S, P) draws of the crossed model with mean ``theta``."""
    rng = np.random.default_rng(rng_seed)
    s_sd, p_sd, e_sd = sds
    shape = (reps, parts)
    return (
        theta
        + rng.normal(0, s_sd, (*shape, seeds, 1))
        + rng.normal(0, p_sd, (*shape, 1, prompts))
        + rng.normal(0, e_sd, (*shape, seeds, prompts))
    )


def mc_bound(rate: float, reps: int = REPS) -> float:
    """Nominal rate plus three Monte-Carlo standard errors."""
    return rate + 3 * np.sqrt(rate * (1 - rate) / reps)


@pytest.mark.parametrize("sds", SETTINGS)
def test_coverage_and_false_replication_at_the_threshold(sds):
    from embrm.findings import statistics as st

    out = st.crossed_interval(simulate(0.0, sds)[:, 0])
    covered = (out["ci_low"] <= 0) & (0 <= out["ci_high"])
    assert covered.mean() >= 0.95 - 3 * np.sqrt(0.05 * 0.95 / REPS)
    # A part exactly at its threshold is replicated (interval above) at most 2.5% of the time.
    assert (out["ci_low"] > 0).mean() <= mc_bound(0.025)
    # A non-inferiority part exactly at its margin likewise.
    out = st.crossed_interval(simulate(-0.02, sds)[:, 0])
    assert (out["ci_low"] > -0.02).mean() <= mc_bound(0.025)


@pytest.mark.parametrize("sds", SETTINGS[:2])
def test_false_negligible_at_the_smallest_effect(sds):
    from embrm.findings import statistics as st

    plan = F.load()
    out = st.crossed_interval(simulate(plan.sesoi, sds)[:, 0])
    verdict = st.verdicts(
        out["ci_low"],
        out["ci_high"],
        np.ones(REPS),
        0.0,
        st.SUPERIORITY,
        plan.sesoi,
        0.05,
        out["se"],
    )
    assert (verdict == st.NEGLIGIBLE).mean() <= mc_bound(0.025)


@pytest.mark.parametrize("claim_parts", [4, 10, 8, 1])  # claims 1, 2, 3, 4 of the default grid
def test_false_contradicted_per_claim_is_within_the_level(claim_parts):
    """Every part of a claim exactly at its threshold: Holm keeps "contradicted" at 2.5% for
    the claim; without it, any of 10 parts at 2.5% would contradict claim 2 about 22% of the
    time."""
    from embrm.findings import statistics as st

    sds = SETTINGS[1]
    # 50 prompts: the multiplicity rule does not depend on P, and the arrays stay small.
    y = simulate(0.0, sds, parts=claim_parts, rng_seed=claim_parts, prompts=50)
    out = st.crossed_interval(y)
    p = st.one_sided_p(out, 0.0, upper=False)
    adjusted = st.holm(p)
    contradicted = (adjusted < 0.025).any(axis=-1)
    assert contradicted.mean() <= mc_bound(0.025)
    if claim_parts == 10:
        assert (p < 0.025).any(axis=-1).mean() > 0.15  # what the rule corrects


@pytest.mark.parametrize("claim_parts", [4, 10])
def test_false_replicated_per_claim_is_within_the_level(claim_parts):
    """One part exactly at its threshold, the others clearly true: the claim (every part
    replicated) is replicated at most 2.5% of the time."""
    from embrm.findings import statistics as st

    sds = SETTINGS[0]
    se = np.sqrt(sds[0] ** 2 / SEEDS + sds[1] ** 2 / 50 + sds[2] ** 2 / (SEEDS * 50))
    theta = np.full((claim_parts, 1, 1), 6 * se)
    theta[0] = 0.0
    out = st.crossed_interval(simulate(theta, sds, parts=claim_parts, prompts=50))
    replicated = (out["ci_low"] > 0).all(axis=-1)
    assert replicated.mean() <= mc_bound(0.025)
    assert (out["ci_low"][:, 1:] > 0).mean() > 0.9  # the true parts do replicate


def test_power_at_a_clear_effect():
    """A part clearly beyond its threshold (four standard errors) is replicated nearly always,
    and never contradicted."""
    from embrm.findings import statistics as st

    sds = SETTINGS[0]
    se = np.sqrt(sds[0] ** 2 / SEEDS + sds[1] ** 2 / PROMPTS + sds[2] ** 2 / (SEEDS * PROMPTS))
    out = st.crossed_interval(simulate(4 * se, sds)[:, 0])
    assert (out["ci_low"] > 0).mean() > 0.7
    assert (out["ci_high"] < 0).mean() == 0


def test_findings_figure_shows_the_findings_table(tmp_path):
    """The figure draws findings.csv as the findings stage wrote it: its verdicts (colours) and
    its intervals, not a recomputation from the summary."""
    from embrm.figures.findings import VERDICT_COLOURS, render

    frame = summary(gain=planted)
    table = F.findings(frame)
    tested = (table["part"] != "all") & table["effect"].notna()
    # a table whose every part is negligible, with a wide interval
    table.loc[tested, "verdict"] = F.NEGLIGIBLE
    table.loc[tested, "ci_low"] = table.loc[tested, "effect"] - 5.0
    table.loc[tested, "ci_high"] = table.loc[tested, "effect"] + 5.0
    summary_path, findings_path = tmp_path / "summary.parquet", tmp_path / "findings.csv"
    frame.to_parquet(summary_path)
    table.to_csv(findings_path, index=False)

    import matplotlib

    matplotlib.use("Agg")
    from embrm.figures import head_palette
    from embrm.figures.findings import FINDINGS_FIGURES, read_findings

    figure = FINDINGS_FIGURES["findings"].draw(
        frame, head_palette(frame["head"]), table=read_findings(findings_path)
    )
    lines = [line for ax in figure.axes for line in ax.get_lines()]
    colours = {line.get_color() for line in lines if line.get_marker() == "o"}
    assert colours == {VERDICT_COLOURS[F.NEGLIGIBLE]}
    widths = [
        np.ptp(line.get_xdata())
        for line in lines
        if line.get_linewidth() == 2 and line.get_marker() in ("None", "")
    ]
    assert len(widths) == tested.sum()
    assert widths == pytest.approx([10.0] * len(widths))
    # Rows of one height in both panels (claim 4 beside claim 1).
    parts_ax, claim4 = figure.axes[:2]
    assert parts_ax.get_ylim() == claim4.get_ylim()
    render("findings", summary_path, tmp_path / "f.png", tmp_path / "f.svg", findings_path)
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_power_benchmark_reads_the_components_of_a_findings_table(tmp_path, capsys):
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location(
        "findings_power", REPO / "benchmarks" / "findings_power.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    frame = summary(gain=planted)
    F.findings(frame, per_prompt=with_prompts(frame)).to_csv(tmp_path / "f.csv", index=False)
    args = [str(tmp_path / "f.csv"), "--reps", "300", "--seeds", "5", "--effects", "0", "3"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert "median components over" in out and "3 × sesoi" in out
    with pytest.raises(SystemExit, match="no variance components"):
        pd.DataFrame({"part": ["1a"]}).to_csv(tmp_path / "old.csv", index=False)
        bench.main([str(tmp_path / "old.csv")])


def test_pages_name_the_world_knobs_the_verdicts_depend_on():
    frame = structured(2.0, 0.5, 1.0, 0)
    meta = F.grid_meta(frame)
    assert meta["world t2-r0.5-l1"] == "tau 2, sigma 1, shared_quality 0.5, nonlinearity 1"
    md = F.markdown(F.findings(frame), meta)
    assert "shared_quality 0.5" in md and "decides the sign of claim 3a" in md


def test_a_new_claim_is_one_registry_entry(monkeypatch):
    """A contrast declared once gets the point estimate, the interval, the verdict, Holm and
    the planning numbers like every other part."""
    from embrm.findings import claims, table
    from embrm.findings.claims import Built, Contrast, cell_mean, match

    def bigger_budget_for_clf_lgb(frame, plan):
        cells = match(
            frame[frame["head"] == "clf-lgb"],
            ["design", "annotator", "seed"],
            big={"n": 2000},
            small={"n": 500},
        )
        return [
            Built("clf-lgb: 2,000 − 500 pairs", cell_mean(cells, big=1.0, small=-1.0), len(cells))
        ]

    entry = Contrast(
        "5", "5a", "more pairs help clf-lgb", F.SUPERIORITY, "sesoi", bigger_budget_for_clf_lgb
    )
    monkeypatch.setitem(claims.CLAIMS, "5", "More pairs help the LightGBM classifier.")
    monkeypatch.setattr(table, "REGISTRY", [*claims.REGISTRY, entry])
    frame = summary(gain=planted)
    result = F.findings(frame, per_prompt=with_prompts(frame))
    row = parts(result, "5a").iloc[0]
    assert claim(result, "5") == F.REPLICATED
    assert row["effect"] == pytest.approx(0.1, abs=0.01)  # planted: +0.1 at 2,000 pairs
    assert row["interval"] == F.CROSSED and np.isfinite(row["seeds_to_replicate"])
