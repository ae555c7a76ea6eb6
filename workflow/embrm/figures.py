"""Seaborn figures of the summary table, each saved as PNG and SVG.

A figure needs variation along its axis; whether the grid provides it is known from the config
(:func:`available`), so the workflow only asks for figures that can be drawn and logs the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .io import atomic_path

log = logging.getLogger("embrm")

HEAD_ORDER = ["bt-mlp", "clf-mlp", "clf-lgb", "bt-linear", "clf-linear"]


@dataclass(frozen=True)
class Figure:
    name: str
    draw: Callable[[pd.DataFrame], object]
    needs: str | None  # a grid axis that must hold at least two values
    title: str
    caption: str  # shown in the Snakemake report: what the figure shows and how to read it


def head_palette(heads) -> dict:
    import seaborn as sns

    known = [h for h in HEAD_ORDER if h in set(heads)] + sorted(set(heads) - set(HEAD_ORDER))
    colours = sns.color_palette("colorblind", n_colors=max(len(HEAD_ORDER), len(known)))
    ordered = HEAD_ORDER + [h for h in known if h not in HEAD_ORDER]
    return {head: colours[ordered.index(head) % len(colours)] for head in known}


def _primary(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[summary["aggregation"] == "mean"]


def draw_gain_by_head(summary: pd.DataFrame):
    import seaborn as sns

    data = _primary(summary)
    grid = sns.catplot(
        data=data,
        x="head",
        y="bon_gain",
        hue="head",
        col="world",
        kind="bar",
        errorbar=("ci", 95),
        palette=head_palette(data["head"]),
        height=3.6,
        aspect=1.2,
        legend=False,
        order=list(head_palette(data["head"])),
    )
    n_max = int(data["bon_n_max"].max())
    grid.set_axis_labels("reward head", f"BoN-{n_max} gain (golden reward)")
    grid.set_titles("world: {col_name}")
    return grid.figure


def draw_gain_vs_beta(summary: pd.DataFrame):
    import seaborn as sns

    data = _primary(summary).dropna(subset=["beta"])
    grid = sns.relplot(
        data=data,
        x="beta",
        y="bon_gain",
        hue="head",
        style="head",
        kind="line",
        marker="o",
        errorbar=("ci", 95),
        palette=head_palette(data["head"]),
        col="design",
        height=3.6,
        aspect=1.1,
        facet_kws={"sharey": False},
    )
    grid.set(xscale="log")
    grid.set_axis_labels("annotation quality β (log scale)", "BoN gain (golden reward)")
    grid.set_titles("pairing: {col_name}")
    return grid.figure


FIGURES = {
    fig.name: fig
    for fig in [
        Figure(
            "gain_by_head",
            draw_gain_by_head,
            None,
            "Best-of-N gain per head",
            "Best-of-N gain per reward head: the golden reward of the response each head picks "
            "among all test responses of a prompt, minus the prompt's mean golden reward (what a "
            "random pick earns), averaged over prompts; bars are means over all settings and "
            "seeds, whiskers 95% intervals. Higher is better; zero means no better than random.",
        ),
        Figure(
            "gain_vs_beta",
            draw_gain_vs_beta,
            "beta",
            "Best-of-N gain vs annotation quality",
            "Best-of-N gain against annotation quality β (log scale) per head, one panel per "
            "pairing design. Small β means noisy labels (about 38% wrong at β = 0.5), large β "
            "clean ones (about 5% at β = 10). The study finds classification heads degrade more "
            "gracefully than Bradley-Terry as β falls.",
        ),
    ]
}


def available(axis_values: dict[str, list]) -> tuple[list[str], dict[str, str]]:
    """Figures the grid can draw, and for the others why not."""
    drawable, skipped = [], {}
    for name, fig in FIGURES.items():
        values = axis_values.get(fig.needs, []) if fig.needs else [None, None]
        if len(values) >= 2:
            drawable.append(name)
        else:
            skipped[name] = (
                f"the grid has {len(values)} value(s) of '{fig.needs}'; need two or more"
            )
    return drawable, skipped


def render(name: str, summary_path: str | Path, png: str | Path, svg: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    figure = FIGURES[name].draw(pd.read_csv(summary_path))
    for path, fmt in ((png, "png"), (svg, "svg")):
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
    plt.close(figure)
