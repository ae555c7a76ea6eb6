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
    assert (widths[tested["claim"] != "4"] < 0.05).all()
    # 1a is a non-inferiority test against −margin; the planted effect at β = 0.5 is
    # +0.05 at 500 pairs and 0 at 2,000.
    row = parts(table, "1a").iloc[0]
    assert row["threshold"] == -F.MARGIN and row["effect"] == pytest.approx(0.025, abs=0.005)


def test_planted_reversal_is_contradicted():
    table = F.findings(summary(gain=reversed_))
    for number in "1234":
        assert claim(table, number) == F.CONTRADICTED, table.to_string()
    assert (parts(table, "3d")["effect"] < -0.03).all()
    assert (parts(table, "3d")["verdict"] == F.CONTRADICTED).all()
    assert (parts(table, "4")["effect"] < -0.8).all()


def test_pure_noise_is_inconclusive_with_a_sensible_seeds_needed():
    table = F.findings(summary(noise=0.05, rng_seed=3))
    tested = table[(table["part"] != "all") & (table["verdict"] != F.NOT_TESTED)]
    assert (tested["verdict"] == F.INCONCLUSIVE).mean() >= 0.8
    inconclusive = tested[tested["verdict"] == F.INCONCLUSIVE]
    # Deciding a null effect needs more than the 5 seeds run; the figure matches the power
    # formula for the observed d_z.
    assert (inconclusive["seeds_needed"] > 5).all()
    row = inconclusive.iloc[0]
    assert row["seeds_needed"] == F.seeds_needed(row["effect_size_dz"])


def test_seeds_needed_follows_the_power_formula():
    # d = 1: 10 observations give 80% power at the 5% level (two-sided one-sample t-test).
    assert F.seeds_needed(1.0) == 10
    assert F.seeds_needed(0.5) == 34
    assert F.seeds_needed(0.0) == F.MAX_SEEDS
    assert F.seeds_needed(-1.0) == 10


def test_decide_on_known_values():
    assert F.decide([0.1, 0.2, 0.15, 0.12, 0.18])["verdict"] == F.REPLICATED
    assert F.decide([-0.1, -0.2, -0.15, -0.12, -0.18])["verdict"] == F.CONTRADICTED
    # Non-inferiority: slightly negative but within the margin counts as a match.
    assert F.decide([-0.01, -0.005, -0.008, -0.012, -0.006], -F.MARGIN)["verdict"] == (F.REPLICATED)
    one = F.decide([0.3])
    assert one["verdict"] == F.INCONCLUSIVE and one["seeds"] == 1
    out = F.decide([0.1, -0.05, 0.2, -0.1, 0.05])
    assert out["verdict"] == F.INCONCLUSIVE and out["ci_low"] < 0 < out["ci_high"]


def test_a_grid_without_a_beta_axis_does_not_test_claim_1():
    table = F.findings(summary(gain=planted, betas=(1.0,)))
    assert claim(table, "1") == F.NOT_TESTED
    note = table[(table["claim"] == "1") & (table["part"] != "all")]["note"].item()
    assert "β" in note
    # Noisier-label parts of claim 2 are not tested either; the quantity parts still are.
    assert (parts(table, "2b")["verdict"] == F.NOT_TESTED).all()
    assert (parts(table, "2a")["verdict"] == F.REPLICATED).all()


def test_missing_axes_are_listed_not_dropped():
    table = F.findings(summary(gain=planted, candidates=("random",), quantities=(500,)))
    assert claim(table, "4") == F.NOT_TESTED
    assert (parts(table, "3b")["verdict"] == F.NOT_TESTED).all()
    assert (parts(table, "2a")["verdict"] == F.NOT_TESTED).all()
    assert claim(table, "3") == F.REPLICATED  # the tested parts (random) hold
    assert "not tested" in table[(table["claim"] == "3") & (table["part"] == "all")]["note"].item()


def test_scores_and_pages(tmp_path):
    table = F.findings(summary(gain=planted))
    scores = F.claim_scores(table)
    assert scores == {f"findings.claim{c}": 1.0 for c in "1234"}
    md = F.markdown(table, {"runs": 10})
    assert md.startswith("# Findings") and md.count("| **replicated** |") == 4
    assert "Claim 3, **replicated**" in F.rst(table)
    path = tmp_path / "summary.csv"
    summary(gain=planted).to_csv(path, index=False)
    F.write(path, tmp_path / "f.csv", tmp_path / "f.md", tmp_path / "f.rst", tmp_path / "f.html")
    back = pd.read_csv(tmp_path / "f.csv")
    assert list(back.columns) == F.COLUMNS and len(back) == len(table)


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
    assert set(tested["decided_by"]) == {F.NO_INTERVAL}
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
# The bootstrap over seeds and test prompts


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


def test_prompt_heterogeneity_widens_the_bootstrap_interval():
    frame, per_prompt = prompt_world(heterogeneity=0.3)
    table = F.findings(frame, per_prompt=per_prompt)
    row = part_row(table, "3a", "random")
    assert row["effect"] == pytest.approx(0.05, abs=0.01)
    t_width, boot_width = row["ci_high"] - row["ci_low"], row["boot_high"] - row["boot_low"]
    # The seeds agree (the t-interval excludes 0), the prompts do not: 0.3 / √60 per prompt draw.
    assert row["ci_low"] > 0 and boot_width > 3 * t_width
    assert row["boot_low"] < 0 < row["boot_high"]
    assert row["verdict"] == F.INCONCLUSIVE and row["decided_by"] == F.BY_BOOTSTRAP
    assert np.isnan(row["seeds_needed"]) and "more test prompts" in row["note"]
    assert claim(table, "3") == F.INCONCLUSIVE
    # The same statistic with the test prompts held fixed is as narrow as the seeds make it.
    cross = frame[frame["design"] == "cross-random"].sort_values("seed")
    same = frame[frame["design"] == "same-random"].sort_values("seed")
    keys = [[F.run_key(r) for _, r in part.iterrows()] for part in (cross, same)]
    counts = F.prompt_counts(60, 500, np.random.default_rng(0))
    values = [
        F.resampled_values(
            np.stack([per_prompt[k]["bon_gain"] for k in side]),
            np.stack([per_prompt[k]["oracle_bon_gain"] for k in side]),
            counts,
            F.METRIC,
        )
        for side in keys
    ]
    differences = values[0] - values[1]  # (seeds, 1 + draws)
    draws = np.random.default_rng(1).integers(0, 5, size=(500, 5))
    low, high = F.bootstrap_interval(differences, draws)
    fixed_low, fixed_high = F.bootstrap_interval(differences, draws, prompts=False)
    assert high - low > 5 * (fixed_high - fixed_low)
    assert fixed_low > 0 and low < 0


def test_homogeneous_prompt_effect_is_decided_by_both_intervals():
    frame, per_prompt = prompt_world(heterogeneity=0.0)
    row = part_row(F.findings(frame, per_prompt=per_prompt), "3a", "random")
    assert row["verdict"] == F.REPLICATED and row["decided_by"] == F.BOTH
    assert row["boot_low"] > 0 and row["boot_low"] < row["effect"] < row["boot_high"]


def test_bootstrap_is_deterministic_and_seeded():
    frame, per_prompt = prompt_world(heterogeneity=0.3)
    first = F.findings(frame, per_prompt=per_prompt, resamples=400)
    again = F.findings(frame, per_prompt=per_prompt, resamples=400)
    pd.testing.assert_frame_equal(first, again)
    other = F.findings(frame, per_prompt=per_prompt, resamples=400, seed=1)
    row, other_row = part_row(first, "3a", "random"), part_row(other, "3a", "random")
    assert row["boot_low"] != other_row["boot_low"]
    assert row["boot_low"] == pytest.approx(other_row["boot_low"], abs=0.03)


def test_every_claim_gets_a_bootstrap_interval_on_the_planted_grid():
    frame = summary(gain=planted)
    per_prompt = with_prompts(frame)
    table = F.findings(frame, per_prompt=per_prompt, resamples=300)
    plain = F.findings(frame)
    tested = table[(table["part"] != "all") & (table["verdict"] != F.NOT_TESTED)]
    assert len(tested) > 20 and tested["boot_low"].notna().all()
    assert (tested["boot_low"] <= tested["effect"]).all()
    assert (tested["effect"] <= tested["boot_high"]).all()
    # The t-interval columns are those of the findings without per-prompt values.
    for column in ("effect", "ci_low", "ci_high", "p_value", "effect_size_dz"):
        pd.testing.assert_series_equal(table[column], plain[column])
    # Claims 1-3 replicated on both; claim 4 (Fisher z of r) too.
    assert {claim(table, c) for c in "1234"} == {F.REPLICATED}
    assert set(tested["decided_by"]) == {F.BOTH}


def test_runs_without_per_prompt_values_fall_back_to_the_t_interval(tmp_path):
    frame, per_prompt = prompt_world(heterogeneity=0.3)
    plain = F.findings(frame)
    row = part_row(plain, "3a", "random")
    assert row["verdict"] == F.REPLICATED and row["decided_by"] == F.T_ONLY
    assert np.isnan(row["boot_low"])
    old = dict(per_prompt)
    old.pop(next(iter(old)))  # one run evaluated before per-prompt values were stored
    table = F.findings(frame, per_prompt=old)
    assert part_row(table, "3a", "random")["decided_by"] == F.T_ONLY
    pd.testing.assert_series_equal(table["verdict"], plain["verdict"])
    md = F.markdown(table)
    assert "1 of 10 runs have no per-prompt values" in md and "t-interval over seeds alone" in md
    # Values that do not reproduce the summary's are not used either.
    shifted = {k: {**v, "bon_gain": v["bon_gain"] + 0.1} for k, v in per_prompt.items()}
    why = F.prompt_draws("w", F.prepare(frame), F.METRIC, shifted)[1]
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
    assert part_row(written, "3a", "random")["decided_by"] == F.T_ONLY
    full = F.write(
        tmp_path / "summary.csv", tmp_path / "g.csv", tmp_path / "g.md", metric_files=paths[1:]
    )
    assert part_row(full, "3a", "random")["decided_by"] == F.T_ONLY  # the summary's run is missing


def test_findings_figure_shows_the_findings_table(tmp_path):
    """The figure draws findings.csv as the findings stage wrote it: its verdicts (colours) and
    its bootstrap intervals, not a recomputation from the summary."""
    from embrm.figures.findings import VERDICT_COLOURS, render

    frame = summary(gain=planted)
    table = F.findings(frame)
    tested = (table["part"] != "all") & table["effect"].notna()
    # a table whose every part the bootstrap kept undecided, with a wide interval
    table.loc[tested, "verdict"] = F.INCONCLUSIVE
    table.loc[tested, "boot_low"] = table.loc[tested, "effect"] - 5.0
    table.loc[tested, "boot_high"] = table.loc[tested, "effect"] + 5.0
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
    assert colours == {VERDICT_COLOURS[F.INCONCLUSIVE]}
    widths = [np.ptp(line.get_xdata()) for line in lines if line.get_gid() == "bootstrap"]
    assert len(widths) == tested.sum()
    assert widths == pytest.approx([10.0] * len(widths))
    # Rows of one height in both panels, each bootstrap line just below its own part's point
    # (an autoscaled claim-4 panel put its single row's two lines at opposite edges).
    parts, claim4 = figure.axes[:2]
    assert parts.get_ylim() == claim4.get_ylim()
    for ax in (parts, claim4):
        points = {line.get_ydata()[0] for line in ax.get_lines() if line.get_marker() == "o"}
        for line in ax.get_lines():
            if line.get_gid() == "bootstrap":
                assert line.get_ydata()[0] + 0.25 in points
    render("findings", summary_path, tmp_path / "f.png", tmp_path / "f.svg", findings_path)
    assert (tmp_path / "f.png").stat().st_size > 10_000
