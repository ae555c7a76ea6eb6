"""Figure 7: per-prompt Spearman correlation per head and setting."""

from __future__ import annotations

import pandas as pd

from ..summary import t_interval
from .settings import SETTING_KEYS, _any_runs
from .spec import Figure
from .style import (
    LABELS,
    _finish_legend,
    _heads,
    _label_order,
    _panel_labels,
    _reduce_keys,
    _title,
    _world_titles,
    _wrap,
)

MAX_SETTINGS = 30  # rows of the Spearman figure per panel


def draw_spearman(summary: pd.DataFrame, palette: dict):
    import seaborn as sns

    data = summary.copy()
    keys, dropped = _reduce_keys(data, SETTING_KEYS, ["n", "annotator", "design"], MAX_SETTINGS)
    data["setting"] = _panel_labels(data, keys).replace("", "all runs")
    settings = _label_order(data, keys, data["setting"])
    per_seed = data.groupby(["world", "setting", "head", "seed"])["spearman"].mean().reset_index()
    per_seed["panel"] = per_seed["world"].map(_world_titles(summary))
    panels = per_seed["panel"].nunique()
    heads = _heads(per_seed, palette)
    height = max(3.0, 0.45 * len(settings) * max(1, len(heads)) / 2 + 1.2)
    # The setting labels sit left of each panel: the panel must be wider than the longest label
    # (about 0.08 inch per character at this size), or the legend seaborn puts on the right
    # leaves no room and subplots_adjust fails ("left cannot be >= right").
    width = max(5.0, 0.08 * max(len(label) for label in settings) + 3.5)
    grid = sns.catplot(
        data=per_seed,
        y="setting",
        order=settings,
        x="spearman",
        hue="head",
        hue_order=heads,
        col="panel",
        col_wrap=_wrap(panels),
        kind="point",
        errorbar=t_interval,
        # seaborn divides the dodge by (heads - 1): a one-head grid must not dodge at all.
        dodge=0.5 if len(heads) > 1 else False,
        linestyle="none",
        palette=palette,
        markers="o",
        height=height,
        aspect=max(1.2, width / height),
        sharex=False,
    )
    for ax in grid.axes.flat:
        # ρ lies in [-1, 1]; a t-interval from few seeds may not, and is cut at the frame.
        low, high = ax.get_xlim()
        ax.set_xlim(max(low, -1.05), min(high, 1.05))
    grid.set_titles("{col_name}")
    grid.set_axis_labels("mean per-prompt Spearman ρ (predicted vs golden reward)", "setting")
    _finish_legend(grid)
    note = f"averaged over {', '.join(LABELS.get(k, k) for k in dropped)}; " if dropped else ""
    _title(
        grid,
        "Spearman correlation per head and setting",
        f"{note}points: mean over seeds, bars: 95% interval",
    )
    return grid.figure


FIGURE = Figure(
    "spearman",
    7,
    "Spearman correlation per head and setting",
    "at least one run",
    _any_runs,
    draw_spearman,
    "Per test prompt, the Spearman rank correlation between a head's predicted rewards "
    "and the golden rewards of all that prompt's responses, averaged over the prompts "
    "where it is defined (summary column spearman_defined_fraction gives their share). "
    "One row per setting (design, number of pairs, annotator; averaged over some of "
    "them when there are too many rows), one colour per head, one panel per world. "
    "1 means the head orders responses exactly like the golden reward; Best-of-N only "
    "needs the top of that order right. Bars are 95% intervals over seeds.",
)
