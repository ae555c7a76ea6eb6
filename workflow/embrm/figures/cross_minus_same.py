"""Figure 4: cross-prompt minus same-prompt gain per candidate rule and head."""

from __future__ import annotations

import pandas as pd

from ..summary import t_interval
from .settings import CANDIDATE_ORDER, _has_matched, _matched_gains
from .spec import Figure
from .style import (
    _common_settings,
    _finish_legend,
    _heads,
    _n_max_label,
    _title,
    _world_titles,
    _wrap,
)


def draw_cross_minus_same(summary: pd.DataFrame, palette: dict):
    import seaborn as sns

    matched = _matched_gains(summary)
    matched, settings = _common_settings(matched, "candidates", ["world"], ["n", "annotator"])
    per_seed = (
        matched.groupby(["world", "candidates", "head", "seed"])["gain_difference"]
        .mean()
        .reset_index()
    )
    per_seed["panel"] = per_seed["world"].map(_world_titles(summary))
    panels = per_seed["panel"].nunique()
    heads = _heads(per_seed, palette)
    candidates = [c for c in CANDIDATE_ORDER if c in set(per_seed["candidates"])]
    grid = sns.catplot(
        data=per_seed,
        x="candidates",
        order=candidates,
        y="gain_difference",
        hue="head",
        hue_order=heads,
        col="panel",
        col_wrap=_wrap(panels),
        kind="bar",
        saturation=1.0,  # the exact head colours, as in the line figures
        errorbar=t_interval,
        palette=palette,
        height=3.8,
        aspect=max(1.0, 0.45 * len(candidates) * max(1, len(heads)) / 2),
        sharey=False,
        capsize=0.1,
    )
    for ax in grid.axes.flat:
        ax.axhline(0, color="black", linewidth=0.8)
    grid.set_titles("{col_name}")
    grid.set_axis_labels(
        "candidate responses", f"cross − same {_n_max_label(summary)} gain (golden reward)"
    )
    _finish_legend(grid)
    _title(
        grid,
        "Cross-prompt minus same-prompt gain",
        f"mean over {settings} setting(s) of pairs and annotator shared by every candidate rule "
        "and over seeds; whiskers: 95% interval over seeds; above 0: cross-prompt pairing wins",
    )
    return grid.figure


FIGURE = Figure(
    "cross_minus_same",
    4,
    "Cross-prompt minus same-prompt gain",
    "a candidate rule run with both same- and cross-prompt pairing (same world, number "
    "of pairs, annotator, head and seed)",
    _has_matched,
    draw_cross_minus_same,
    "For each candidate rule (random, similar, diversified) and head: the Best-of-N gain "
    "with cross-prompt pairs minus the gain with same-prompt pairs, matched on world, "
    "number of pairs, annotator, head and seed, then averaged over the settings shared by "
    "every candidate rule and over seeds. Bars above 0 mean cross-prompt annotation "
    "trains a better reward model. The study expects the advantage to be largest for "
    "similar candidates (same-prompt pairs are then hard to label) and smallest for "
    "diversified ones. Whiskers are 95% intervals over seeds.",
)
