"""Figure 5: reward gap of the annotated pairs against the cross-prompt gain."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .settings import CANDIDATE_ORDER, _matched_gains, _matched_spread
from .spec import Figure
from .style import _heads, _n_max_label, _title, _world_titles, _wrap


def draw_dr_vs_cross_gain(summary: pd.DataFrame, palette: dict):
    import seaborn as sns

    matched = _matched_gains(summary)
    points = (
        matched.groupby(["world", "candidates", "n", "annotator", "head"])
        .agg(
            dr_difference=("dr_difference", "mean"),
            gain_difference=("gain_difference", "mean"),
            seeds=("seed", "nunique"),
        )
        .reset_index()
    )
    points["panel"] = points["world"].map(_world_titles(summary))
    panels = points["panel"].nunique()
    heads = _heads(points, palette)
    candidates = [c for c in CANDIDATE_ORDER if c in set(points["candidates"])]
    grid = sns.relplot(
        data=points,
        x="dr_difference",
        y="gain_difference",
        hue="head",
        hue_order=heads,
        style="candidates",
        style_order=candidates,
        palette=palette,
        col="panel",
        col_wrap=_wrap(panels),
        kind="scatter",
        s=80,
        height=3.8,
        aspect=1.5,
        facet_kws={"sharex": False, "sharey": False},
    )
    for panel, ax in grid.axes_dict.items():
        ax.axhline(0, color="black", linewidth=0.8)
        ax.axvline(0, color="grey", linewidth=0.6, linestyle=":")
        rows = points[points["panel"] == panel]
        if len(rows) >= 3 and rows["dr_difference"].nunique() >= 2:
            r = np.corrcoef(rows["dr_difference"], rows["gain_difference"])[0, 1]
            ax.text(
                0.03,
                0.95,
                f"Pearson r = {r:.2f} ({len(rows)} points)",
                transform=ax.transAxes,
                va="top",
                fontsize=9,
            )
    grid.set_titles("{col_name}")
    grid.set_axis_labels(
        "mean |Δr| of annotated pairs:\ncross − same (golden reward)",
        f"cross − same\n{_n_max_label(summary)} gain (golden reward)",
    )
    _title(
        grid,
        "Reward gap of the annotated pairs vs cross-prompt gain",
        "one point per setting (candidate rule, pairs, annotator, head), mean over seeds",
    )
    return grid.figure


FIGURE = Figure(
    "dr_vs_cross_gain",
    5,
    "Reward gap of annotated pairs vs cross-prompt gain",
    "same- and cross-prompt runs of two or more (candidate rule, number of pairs) "
    "settings in one world",
    _matched_spread,
    draw_dr_vs_cross_gain,
    "One point per setting (candidate rule, number of pairs, annotator, head; mean over "
    "seeds). x: how much larger the mean golden-reward gap |Δr| of the annotated "
    "training pairs is with cross-prompt than with same-prompt pairing; y: how much "
    "larger the Best-of-N gain is. Larger gaps make labels more accurate, so the study "
    "expects points to rise from left to right; the Pearson r over the points of a panel "
    "is printed in its corner. Marker shape is the candidate rule, colour the head.",
)
