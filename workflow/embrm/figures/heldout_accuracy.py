"""Figure 11: held-out pair accuracy per head against the number of annotated pairs.

The one figure that reads the same in a world with a golden reward and in a preference dataset
without one (docs/preferences.md): the share of held-out pairs a head orders as the reference
does. The reference is the golden reward where the world has one (``accuracy_vs_golden``) and
the dataset's own held-out preferences where it has none (``pref_accuracy``, ties left out).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..summary import t_interval
from .settings import _any_runs
from .spec import Figure
from .style import _finish_legend, _heads, _title, _wrap

GOLDEN, PREFERENCE = "accuracy_vs_golden", "pref_accuracy"


def reference_accuracy(summary: pd.DataFrame) -> pd.Series:
    """Each run's held-out accuracy against its world's reference order: the dataset's
    preferences where the run has them (a preference world), else the golden order."""
    golden = summary[GOLDEN].astype(float)
    if PREFERENCE not in summary:
        return golden
    preference = summary[PREFERENCE].astype(float)
    return preference.where(np.isfinite(preference), golden)


def draw_heldout_accuracy(summary: pd.DataFrame, palette: dict):
    import seaborn as sns

    data = summary.assign(accuracy=reference_accuracy(summary))
    data = data[np.isfinite(data["accuracy"])]
    data["panel"] = data["world"].astype(str) + " · " + data["annotator"].astype(str)
    # Averaged within each seed first (over designs), then the interval over seeds.
    per_seed = data.groupby(["panel", "n", "head", "seed"])["accuracy"].mean().reset_index()
    order = sorted(per_seed["n"].unique())
    per_seed["pairs"] = per_seed["n"].map(lambda n: f"{int(n):,}")
    heads = _heads(per_seed, palette)
    panels = per_seed["panel"].nunique()
    grid = sns.catplot(
        data=per_seed,
        x="pairs",
        order=[f"{int(n):,}" for n in order],
        y="accuracy",
        hue="head",
        hue_order=heads,
        col="panel",
        col_wrap=_wrap(panels),
        kind="point",
        errorbar=t_interval,
        dodge=0.3 if len(heads) > 1 else False,
        palette=palette,
        markers="o",
        height=3.2,
        aspect=1.2,
        sharey=False,
    )
    for ax in grid.axes.flat:
        ax.axhline(0.5, color="0.6", linewidth=0.8, linestyle=":")  # a random order
    grid.set_titles("{col_name}")
    grid.set_axis_labels("annotated pairs", "held-out pair accuracy")
    _finish_legend(grid)
    _title(
        grid,
        "Held-out pair accuracy per head",
        "against the golden order, or a preference dataset's own; points: mean over seeds, "
        "bars: 95% interval; dotted: a random order",
    )
    return grid.figure


FIGURE = Figure(
    "heldout_accuracy",
    11,
    "Held-out pair accuracy per head",
    "at least one run",
    _any_runs,
    draw_heldout_accuracy,
    "The share of held-out pairs each head orders as the reference does, against the number of "
    "annotated training pairs, one panel per world and annotator, one colour per head. The "
    "reference is the golden reward where the world has one (summary column "
    "accuracy_vs_golden) and, in a preference dataset without one (docs/preferences.md), the "
    "dataset's own held-out preferences, ties left out (pref_accuracy). Runs of other designs "
    "are averaged within each seed; bars are 95% intervals over seeds. The dotted line, 0.5, is "
    "a random order. This is what a practitioner with a preference dataset can measure; the "
    "study scores heads by Best-of-N gain (figures 1 to 6), which only needs the top of the "
    "order right.",
)
