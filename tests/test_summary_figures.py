"""Summary tables, per-setting intervals, and the figures: which the grid allows, and drawing them."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, TINY_CONFIG, deep_merge
from embrm.config import Plan, load
from embrm.figures import FIGURES, available, head_palette, plan_settings, render, rst_escape
from embrm.summary import aggregate, build_summary, config_html, setting_columns, write_tables
from fake_runs import grid, record, write


def test_summary_has_one_row_per_run_with_every_setting_and_metric(tmp_path):
    records = grid(seeds=(0, 1), members=3)
    summary = build_summary(write(records, tmp_path))
    assert len(summary) == len(records)
    assert not summary.duplicated(["world", "design", "n", "annotator", "head", "seed"]).any()
    for column in [
        "world",
        "source",
        "design",
        "prompt_pairing",
        "candidates",
        "n",
        "annotator",
        "annotator_model",
        "beta",
        "head",
        "head_type",
        "members",
        "seed",
        "world_tau",
        "head_param_hidden",
        "head_param_lr",
        "annotation_mean_abs_dr",
        "annotation_realized_error_rate",
        "heldout_realized_error_rate",
        "train_loss",
        "eval_loss",
        "bon_gain",
        "bon_gain_normalized",
        "oracle_bon_gain",
        "random_pick_reward",
        "spearman",
        "spearman_defined_fraction",
        "accuracy_vs_labels",
        "accuracy_vs_golden",
        "bon_reward_at_50",
        "bon_gain_at_2",
        "oracle_bon_reward_at_10",
        "bon_gain__min",
        "spearman__first",
    ]:
        assert column in summary.columns, column
    # The head's seed is derived from the run seed: a measurement of the run, not a setting.
    assert "head_param_seed" not in summary.columns
    assert "seed" not in setting_columns(summary)
    row = summary.iloc[0]
    assert row["bon_gain__min"] == pytest.approx(row["bon_gain"] - 0.05)
    assert row["bon_gain_at_50"] == pytest.approx(row["bon_gain"])
    assert row["bon_gain_at_2"] == pytest.approx(row["bon_reward_at_2"] - row["random_pick_reward"])


def test_aggregate_gives_mean_and_t_interval_over_seeds(tmp_path):
    gains = [0.1, 0.4, 0.7]
    records = [record(seed=s, gain=g) for s, g in enumerate(gains)]
    records.append(record(seed=0, gain=0.3, head="clf-lgb"))
    summary = build_summary(write(records, tmp_path))
    table = aggregate(summary).set_index("head")
    assert table.loc["bt-mlp", "seeds"] == 3
    # By hand: mean 0.4, sd 0.3, t(0.975, 2) = 4.302653, half width 4.302653 * 0.3 / sqrt(3).
    half = 4.302652729911275 * 0.3 / np.sqrt(3)
    assert table.loc["bt-mlp", "bon_gain_mean"] == pytest.approx(0.4)
    assert table.loc["bt-mlp", "bon_gain_ci95_low"] == pytest.approx(0.4 - half)
    assert table.loc["bt-mlp", "bon_gain_ci95_high"] == pytest.approx(0.4 + half)
    # One seed: a mean and no interval.
    assert table.loc["clf-lgb", "bon_gain_mean"] == pytest.approx(0.3)
    assert np.isnan(table.loc["clf-lgb", "bon_gain_ci95_low"])
    assert "seed_mean" not in table.columns


def test_tables_are_written_and_read_back(tmp_path):
    paths = write(grid(seeds=(0, 1)), tmp_path / "runs")
    out = {name: tmp_path / name for name in ("s.csv", "s.parquet", "a.csv", "s.html", "a.html")}
    summary = write_tables(paths, *out.values())
    pd.testing.assert_frame_equal(pd.read_parquet(out["s.parquet"]), summary)
    assert len(pd.read_csv(out["s.csv"])) == len(summary)
    assert len(pd.read_csv(out["a.csv"])) == len(summary) // 2
    page = out["s.html"].read_text()
    assert page.count("</tr>") == len(summary) + 1 and "http" not in page
    assert "bon_gain" in out["a.html"].read_text()


def settings(config: dict) -> pd.DataFrame:
    return plan_settings(Plan(config))


def test_the_default_grid_draws_every_figure():
    drawable, skipped = available(plan_settings(Plan(load(REPO / "config.yaml"))))
    assert drawable == list(FIGURES) and skipped == {}


@pytest.mark.parametrize(
    ("override", "missing"),
    [
        # the tiny grid: one number of pairs, one candidate rule
        ({}, {"gain_vs_n", "dr_vs_cross_gain", "learning_curves"}),
        (
            {"annotators": {"bt": {"model": "bt", "beta": 1}}, "grid": {"quantities": [100, 200]}},
            {"gain_vs_beta"},
        ),
        (
            {"grid": {"designs": ["same-random", "same-similar"], "quantities": [100, 200]}},
            {"cross_minus_same", "dr_vs_cross_gain"},
        ),
        ({"grid": {"quantities": [100, 200]}}, set()),
        (
            {"evaluation": {"n_values": [50, 500]}},
            {
                "gain_vs_n",
                "dr_vs_cross_gain",
                "bon_curves",
                "learning_curves",
                "overoptimization",
                "gao_fit",
            },
        ),
    ],
)
def test_figures_whose_axis_has_one_value_are_skipped_with_a_reason(override, missing):
    config = deep_merge(TINY_CONFIG, override)
    drawable, skipped = available(settings(config))
    assert set(skipped) == missing
    assert set(drawable) == set(FIGURES) - missing
    for name, reason in skipped.items():
        assert FIGURES[name].needs in reason


def test_beta_must_vary_within_one_setting_not_just_across_the_grid():
    # β = 1 runs only same-random, β = 10 only cross-random: two β values, no β axis.
    config = deep_merge(
        TINY_CONFIG,
        {
            "annotators": {"a": {"model": "bt", "beta": 1}, "b": {"model": "bt", "beta": 10}},
            "grid": {"annotators": ["a"], "designs": ["same-random"]},
            "extra_grids": [{"annotators": ["b"], "designs": ["cross-random"]}],
        },
    )
    assert sorted(settings(config)["beta"].unique()) == [1.0, 10.0]
    drawable, skipped = available(settings(config))
    assert "gain_vs_beta" in skipped and "gain_vs_beta" not in drawable


def test_head_colours_are_fixed_by_name():
    one = head_palette(["clf-lgb", "bt-mlp"])
    two = head_palette(["bt-mlp", "my-head", "clf-mlp", "clf-lgb"])
    assert one["bt-mlp"] == two["bt-mlp"] and one["clf-lgb"] == two["clf-lgb"]
    assert len(set(two.values())) == 4
    assert list(one) == ["bt-mlp", "clf-lgb"]


def test_captions_survive_restructuredtext():
    from docutils.core import publish_parts

    for spec in FIGURES.values():
        body = publish_parts(rst_escape(spec.caption), writer="html")["body"]
        assert "system-message" not in body, spec.name
        assert "|Δr|" in body or "|" not in spec.caption


def test_config_page_lists_drawn_and_skipped_figures():
    page = config_html(
        copy.deepcopy(TINY_CONFIG),
        8,
        {"gain_by_head": "1. Best-of-N gain per head"},
        {"gain_vs_n": "figure '3. …' needs two or more numbers of pairs; the grid has none"},
    )
    assert "1. Best-of-N gain per head" in page and "gain_vs_n" in page
    assert yaml.safe_dump(TINY_CONFIG["grid"], sort_keys=False).splitlines()[0] in page


@pytest.fixture(scope="module")
def two_world_summary(tmp_path_factory):
    """World alpha: same/cross × two β × two sizes; world beta (another source): same/cross at
    one β and size. Three heads, two seeds."""
    directory = tmp_path_factory.mktemp("fake-summary")
    heads = ("bt-mlp", "clf-lgb", "clf-mlp")
    designs = ("same-random", "cross-random")
    records = grid(worlds=("alpha",), designs=designs, heads=heads, seeds=(0, 1))
    records += grid(
        worlds=("beta",),
        designs=designs,
        quantities=(100,),
        betas=(1.0,),
        heads=heads,
        seeds=(0, 1),
    )
    for rec in records:
        if rec["run"]["world"] == "beta":
            rec["run"]["source"] = "npy"
    paths = write(records, directory / "runs")
    out = [directory / name for name in ("s.csv", "s.parquet", "a.csv")]
    write_tables(paths, *out)
    return out[1]


# Figures with one panel per world; the others draw only the settings where their axis varies.
PER_WORLD = {"gain_by_head", "cross_minus_same", "dr_vs_cross_gain", "bon_curves", "spearman"}


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_draws_png_and_svg(two_world_summary, tmp_path, name):
    png, svg = tmp_path / f"{name}.png", tmp_path / f"{name}.svg"
    render(name, two_world_summary, png, svg)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "</svg>" in text
    if name in PER_WORLD:
        assert "world alpha (source: synthetic)" in text and "world beta (source: npy)" in text
    for head in ("bt-mlp", "clf-lgb", "clf-mlp"):  # in the legend or on the axis
        assert head in text


def test_figures_use_the_fixed_head_colours(two_world_summary):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    summary = pd.read_parquet(two_world_summary)
    palette = head_palette(summary["head"])
    figure = FIGURES["gain_by_head"].draw(summary, palette)
    colours = {
        tuple(np.round(to_rgb(patch.get_facecolor()), 3))
        for ax in figure.axes
        for patch in ax.patches
    }
    plt.close(figure)
    assert {tuple(np.round(c, 3)) for c in palette.values()} <= colours


def test_render_refuses_a_figure_the_summary_cannot_support(tmp_path):
    paths = write(grid(quantities=(100,)), tmp_path / "runs")
    table = tmp_path / "s.parquet"
    write_tables(paths, tmp_path / "s.csv", table, tmp_path / "a.csv")
    with pytest.raises(ValueError, match="numbers of pairs"):
        render("gain_vs_n", table, tmp_path / "x.png", tmp_path / "x.svg")
    assert not (tmp_path / "x.png").exists()


def test_a_one_head_grid_draws_every_figure_it_allows(tmp_path):
    # One head means one hue level: seaborn's dodged point plots divide by (levels - 1).
    paths = write(grid(heads=("clf-lgb",), seeds=(0, 1)), tmp_path / "runs")
    table = tmp_path / "s.parquet"
    write_tables(paths, tmp_path / "s.csv", table, tmp_path / "a.csv")
    drawn = []
    for name in FIGURES:
        try:
            render(name, table, tmp_path / f"{name}.png", tmp_path / f"{name}.svg")
        except ValueError:
            continue  # the figure needs an axis this grid does not vary
        drawn.append(name)
    assert {"spearman", "gain_by_head", "bon_curves"} <= set(drawn)
