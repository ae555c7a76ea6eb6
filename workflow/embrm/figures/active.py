"""The learning-curve figure: Best-of-N gain and Spearman against the number of labels.

Points come from :func:`embrm.active.curves.learning_points`: every round of an active run (the
model trained on the labels of the earlier rounds) and every run's final quantity, so static
designs draw their quantity axis and active designs their rounds on the same axes. One column per
head, one line per design; values are means over seeds (after averaging over worlds and
annotators within a seed when several ran) with 95% t-intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..active import is_active
from ..active.curves import has_curves, learning_points
from ..summary import t_interval
from .spec import Figure
from .style import _heads, _log_ticks

PANEL_METRICS = {"bon_gain": "Best-of-N gain", "spearman": "Spearman (per prompt)"}


def _designs(frame: pd.DataFrame) -> list[str]:
    """Static designs first, then active ones, each alphabetically."""
    names = sorted(set(frame["design"]))
    return [d for d in names if not is_active(d)] + [d for d in names if is_active(d)]


def _spread(values: list, min_decades: float = 0.2) -> list:
    """Tick values at least ``min_decades`` apart on the log axis (labels would overlap)."""
    ticks = [values[0]]
    for value in values[1:]:
        if np.log10(value) - np.log10(ticks[-1]) >= min_decades:
            ticks.append(value)
    return ticks


def draw_learning_curves(summary: pd.DataFrame, palette: dict):
    import matplotlib.pyplot as plt

    points = learning_points(summary)
    per_seed = (
        points.groupby(["head", "design", "labels", "seed"])[list(PANEL_METRICS)]
        .mean()
        .reset_index()
    )
    heads = _heads(per_seed, palette)
    designs = _designs(per_seed)
    colours = dict(
        zip(designs, plt.get_cmap("tab10" if len(designs) <= 10 else "tab20").colors, strict=False)
    )
    figure, axes = plt.subplots(
        len(PANEL_METRICS),
        len(heads),
        figsize=(4.2 * len(heads) + 1.5, 3.4 * len(PANEL_METRICS)),
        squeeze=False,
        sharex="col",
    )
    for col, head in enumerate(heads):
        for row, (metric, label) in enumerate(PANEL_METRICS.items()):
            ax = axes[row][col]
            data = per_seed[per_seed["head"] == head]
            for design in designs:
                line = data[data["design"] == design]
                if line.empty:
                    continue
                stats = (
                    line.groupby("labels")[metric]
                    .apply(lambda v: (float(np.nanmean(v)), *t_interval(v.dropna())))
                    .sort_index()
                )
                x = stats.index.to_numpy(dtype=float)
                mean = np.array([s[0] for s in stats])
                low = np.array([s[1] for s in stats])
                high = np.array([s[2] for s in stats])
                style = "-" if is_active(design) else "--"
                ax.plot(x, mean, style, marker="o", ms=3, color=colours[design], label=design)
                if np.isfinite(low).any():
                    ax.fill_between(x, low, high, color=colours[design], alpha=0.15, lw=0)
            ax.set_xscale("log")
            _log_ticks(ax, _spread(sorted(set(data["labels"]))), lambda v: f"{v:,.0f}")
            if row == 0:
                ax.set_title(f"head {head}")
            if row == len(PANEL_METRICS) - 1:
                ax.set_xlabel("labelled pairs")
            if col == 0:
                ax.set_ylabel(label)
    handles, names = [], []
    for ax in figure.axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            if name not in names:
                handles.append(handle)
                names.append(name)
    figure.legend(handles, names, title="design", loc="center left", bbox_to_anchor=(1.0, 0.5))
    seeds = per_seed["seed"].nunique()
    figure.suptitle(
        f"Learning curves: quality against labels (mean over {seeds} seed"
        f"{'s' if seeds != 1 else ''}; bands: 95% intervals; solid: active designs)"
    )
    figure.tight_layout()
    return figure


LEARNING_CURVES = Figure(
    "learning_curves",
    8,
    "Learning curves per design and head",
    "two or more numbers of labels for one design and head (an active design, or a static one "
    "run at two or more quantities)",
    has_curves,
    draw_learning_curves,
    "Best-of-N gain at the largest N (top) and mean per-prompt Spearman correlation (bottom) "
    "against the number of labelled pairs (log scale), one column per head and one line per "
    "design. Active designs (solid lines) contribute a point per round: the model trained on the "
    "labels chosen so far, evaluated on the test set; static designs (dashed) a point per "
    "quantity of the grid. A curve that rises earlier reaches the same quality with fewer "
    "labels; the horizontal gap between two curves at a given height is the labels one design "
    "saves over the other. Bands are 95% t-intervals over seeds (absent with one seed). The "
    "budget table fits these curves to say how many labels each target needs.",
)
