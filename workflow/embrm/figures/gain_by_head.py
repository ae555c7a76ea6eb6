"""Figure 1: Best-of-N gain per head, one panel per world."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..summary import t_interval
from .settings import SETTING_KEYS, _any_runs
from .spec import BON_CAPTION, Figure
from .style import _common_settings, _heads, _n_max_label, _title, _world_titles, _wrap


def draw_gain_by_head(summary: pd.DataFrame, palette: dict):
    import seaborn as sns

    data, settings = _common_settings(summary, "head", ["world"], SETTING_KEYS)
    per_seed = (
        data.groupby(["world", "head", "seed"])[["bon_gain", "bon_gain_normalized"]]
        .mean()
        .reset_index()
    )
    heads = _heads(per_seed, palette)
    titles = _world_titles(summary)
    per_seed["panel"] = per_seed["world"].map(titles)
    panels = per_seed["panel"].nunique()
    grid = sns.catplot(
        data=per_seed,
        x="head",
        y="bon_gain",
        hue="head",
        order=heads,
        hue_order=heads,
        col="panel",
        col_wrap=_wrap(panels),
        kind="bar",
        saturation=1.0,  # the exact head colours, as in the line figures
        errorbar=t_interval,
        palette=palette,
        height=3.8,
        aspect=max(1.4, 0.45 * len(heads)),
        legend=False,
        sharey=False,
        capsize=0.15,
    )
    for panel, ax in grid.axes_dict.items():
        ax.axhline(0, color="black", linewidth=0.8)
        rows = per_seed[per_seed["panel"] == panel]
        for i, head in enumerate(heads):
            values = rows[rows["head"] == head]
            if values.empty:
                continue
            share = values["bon_gain_normalized"].mean()
            mean, high = values["bon_gain"].mean(), t_interval(values["bon_gain"])[1]
            top = max(mean, high if np.isfinite(high) else mean, 0.0)  # above the whisker
            if np.isfinite(top) and np.isfinite(share):
                ax.annotate(
                    f"{share:.0%} of oracle",
                    (i, top),
                    xytext=(0, 4),
                    textcoords="offset points",
                    ha="center",
                    fontsize=9,
                )
        ax.margins(y=0.15)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("reward head", f"{_n_max_label(summary)} gain (golden reward)")
    seeds = per_seed["seed"].nunique()
    _title(
        grid,
        "Best-of-N gain per head",
        f"mean over {settings} shared setting(s) and {seeds} seed(s); whiskers: 95% interval "
        "over seeds; label: share of the oracle's gain",
    )
    return grid.figure


FIGURE = Figure(
    "gain_by_head",
    1,
    "Best-of-N gain per head",
    "at least one run",
    _any_runs,
    draw_gain_by_head,
    "Headline comparison of the reward heads. Each bar is a head's Best-of-N gain at the "
    "largest N, averaged over the grid settings that every head ran (design, number of "
    "pairs, annotator) and over seeds; one panel per world. Whiskers are 95% t-intervals "
    "over seeds (absent with one seed). The label on each bar is the gain as a share "
    "of what picking by the golden reward gains (100% = a perfect reward model). " + BON_CAPTION,
)
