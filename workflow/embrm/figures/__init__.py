"""The study's figures, drawn with seaborn from the summary table and saved as PNG and SVG.

Every figure says what it needs from the grid (:attr:`Figure.needs`) and checks it on a table of
run settings (:attr:`Figure.drawable`). The workflow checks the plan before running anything
(:func:`plan_settings`, :func:`available`): a figure whose axis has a single value in the grid
is not asked for, and the reason is logged; the same check runs again on the summary before
drawing. Heads keep one colour in every figure (:func:`head_palette`).

Values are golden rewards, in the world's own reward units. Intervals are 95% t-intervals over
seeds, the same as in ``aggregate.csv``; when a figure averages over other settings, it first
averages within each seed and then takes the interval over seeds.

One module per figure (its drawing and its :class:`~.spec.Figure` entry), listed in
:data:`FIGURES`; :mod:`.settings` holds the settings table and the checks, :mod:`.style` the
drawing helpers every figure shares, :mod:`.render` the saving.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..summary import read_summary
from . import (
    bon_curves,
    cross_minus_same,
    dr_vs_cross_gain,
    gain_by_head,
    gain_vs_beta,
    gain_vs_n,
    heldout_accuracy,
    overoptimization,
    spearman,
)
from . import settings as _settings
from .active import LEARNING_CURVES
from .render import rst_escape, save
from .settings import _has_matched, plan_settings
from .spec import Figure
from .style import head_palette

# The study's figures in the order of their numbers; a new figure is a module and a line here.
FIGURES: dict[str, Figure] = {
    fig.name: fig
    for fig in [
        gain_by_head.FIGURE,
        gain_vs_beta.FIGURE,
        gain_vs_n.FIGURE,
        cross_minus_same.FIGURE,
        dr_vs_cross_gain.FIGURE,
        bon_curves.FIGURE,
        spearman.FIGURE,
        LEARNING_CURVES,
        overoptimization.OVEROPTIMIZATION,
        overoptimization.GAO_FIT,
        heldout_accuracy.FIGURE,
    ]
}


def available(settings: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """Figures the grid can draw, and for each of the others the reason it is not drawn."""
    return _settings.available(settings, FIGURES)


def render(name: str, summary_path: str | Path, png: str | Path, svg: str | Path) -> None:
    """Draw figure ``name`` from the summary table and save it as PNG and SVG."""
    save(FIGURES[name], summary_path, png, svg)


__all__ = [
    "FIGURES",
    "Figure",
    "_has_matched",
    "available",
    "head_palette",
    "plan_settings",
    "read_summary",
    "render",
    "rst_escape",
    "save",
]
