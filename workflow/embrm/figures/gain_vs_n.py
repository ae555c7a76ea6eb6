"""Figure 3: Best-of-N gain against the number of annotated pairs."""

from __future__ import annotations

import pandas as pd

from .settings import _n_rows
from .spec import BON_CAPTION, Figure
from .style import _line_panels, _log_ticks, _n_max_label, _title


def draw_gain_vs_n(summary: pd.DataFrame, palette: dict):
    grid, per_seed, note = _line_panels(
        summary,
        _n_rows(summary),
        "n",
        ["world", "design", "annotator"],
        ["design", "annotator"],
        palette,
        "annotated training pairs (log scale)",
        f"{_n_max_label(summary)} gain (golden reward)",
    )
    single = per_seed["panel"].nunique() == 1
    for panel, ax in [("", grid.ax)] if single else grid.axes_dict.items():
        rows = per_seed if single else per_seed[per_seed["panel"] == panel]
        quantities = sorted(rows["n"].unique())
        _log_ticks(ax, quantities, lambda v: f"{int(v):,}")
        if len(quantities) > 4:  # long labels close together
            ax.tick_params(axis="x", labelrotation=30)
    _title(
        grid,
        "Best-of-N gain vs number of annotations",
        f"{note}points: mean over seeds, bars: 95% interval",
    )
    return grid.figure


FIGURE = Figure(
    "gain_vs_n",
    3,
    "Best-of-N gain vs number of annotations",
    "two or more numbers of pairs within one combination of world, design, annotator and head",
    lambda frame: bool(_n_rows(frame).any()),
    draw_gain_vs_n,
    "Best-of-N gain against the number of annotated training pairs (log scale), one line "
    "per head and one panel per world, design and annotator (averaged over designs, then "
    "annotators, when that would make too many panels). Steeper lines mean a head needs "
    "more annotations; the study expects classification heads to degrade more gracefully "
    "with fewer pairs. Bars are 95% intervals over seeds. " + BON_CAPTION,
)
