"""Figure 2: Best-of-N gain against annotation quality (β, or another model's own quality knob),
with the realized label error."""

from __future__ import annotations

import pandas as pd

from ..settings import quality
from .settings import _quality_keys, _quality_rows, quality_symbol
from .spec import BON_CAPTION, Figure
from .style import _line_panels, _log_ticks, _n_max_label, _title


def draw_gain_vs_beta(summary: pd.DataFrame, palette: dict):
    from matplotlib.ticker import FixedLocator, NullLocator

    summary = summary.assign(quality=quality(summary))
    rows = _quality_rows(summary)
    symbol = quality_symbol(summary[rows])
    keys = ["world", "design", "n", *_quality_keys(summary)]
    grid, per_seed, note = _line_panels(
        summary,
        rows,
        "quality",
        keys,
        ["n", "design"],
        palette,
        f"annotation quality {symbol} (log scale)",
        f"{_n_max_label(summary)} gain (golden reward)",
    )
    single = per_seed["panel"].nunique() == 1
    for panel, ax in [("", grid.ax)] if single else grid.axes_dict.items():
        rows = per_seed if single else per_seed[per_seed["panel"] == panel]
        errors = rows.groupby("quality")["annotation_realized_error_rate"].mean()
        betas = list(errors.index)
        _log_ticks(ax, betas)
        top = ax.secondary_xaxis("top")
        top.xaxis.set_major_locator(FixedLocator(betas))
        top.xaxis.set_minor_locator(NullLocator())
        top.set_xticklabels([f"{e:.0%}" for e in errors])
        top.set_xlabel("label error rate (realized)", fontsize=9)
        top.tick_params(labelsize=8)
        # The panel title goes above the secondary axis, not over it.
        ax.set_title(ax.get_title(), pad=36)
    _title(
        grid,
        f"Best-of-N gain vs annotation quality {symbol}",
        f"{note}points: mean over seeds, bars: 95% interval; top axis: share of training labels "
        "that contradict the golden order",
    )
    return grid.figure


FIGURE = Figure(
    "gain_vs_beta",
    2,
    "Best-of-N gain vs annotation quality",
    "two or more values of an annotator's quality (β for bt and thurstone) within one combination "
    "of world, design, number of pairs, head and the annotator's other parameters",
    lambda frame: bool(_quality_rows(frame).any()),
    draw_gain_vs_beta,
    "Best-of-N gain against annotation quality β (log scale), one line per head and "
    "one panel per world, design and number of pairs (averaged over the number of pairs, "
    "then the design, when that would make too many panels). Small β gives noisy labels, "
    "large β clean ones; the top axis shows the realized share of training labels that "
    "contradict the golden order at each β. The study expects classification heads to "
    "lose less than Bradley-Terry as β falls, and Bradley-Terry to win only at low label "
    "error. Bars are 95% intervals over seeds. " + BON_CAPTION,
)
