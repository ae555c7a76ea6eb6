"""Figure 6: Best-of-N gain at each N per head, beside the golden reward's own."""

from __future__ import annotations

import re

import pandas as pd

from ..summary import t_interval
from .settings import SETTING_KEYS, _curve_points
from .spec import Figure
from .style import _common_settings, _heads, _log_ticks, _title, _world_titles, _wrap


def _curve_columns(frame: pd.DataFrame, prefix: str) -> dict[int, str]:
    pattern = re.compile(rf"^{prefix}(\d+)$")
    found = {int(m.group(1)): c for c in frame.columns if (m := pattern.match(c))}
    return dict(sorted(found.items()))


def draw_bon_curves(summary: pd.DataFrame, palette: dict):
    import seaborn as sns

    data, settings = _common_settings(summary, "head", ["world"], SETTING_KEYS)
    gains = _curve_columns(data, "bon_gain_at_")
    long = data.melt(
        id_vars=["world", "head", "seed"],
        value_vars=list(gains.values()),
        var_name="column",
        value_name="gain",
    ).dropna(subset=["gain"])
    long["N"] = long["column"].map({c: n for n, c in gains.items()})
    per_seed = long.groupby(["world", "head", "N", "seed"])["gain"].mean().reset_index()
    titles = _world_titles(summary)
    per_seed["panel"] = per_seed["world"].map(titles)
    panels = per_seed["panel"].nunique()
    heads = _heads(per_seed, palette)
    grid = sns.relplot(
        data=per_seed,
        x="N",
        y="gain",
        hue="head",
        hue_order=heads,
        style="head",
        style_order=heads,
        markers=True,
        dashes=False,
        kind="line",
        errorbar=t_interval,
        err_style="bars",
        palette=palette,
        col="panel",
        col_wrap=_wrap(panels),
        height=3.8,
        aspect=1.3,
        facet_kws={"sharey": False, "sharex": False},
    )
    oracle = _curve_columns(data, "oracle_bon_gain_at_")
    for panel, ax in grid.axes_dict.items():
        world = next(w for w, t in titles.items() if t == panel)
        rows = data[data["world"] == world]
        ns = [n for n, c in oracle.items() if rows[c].notna().any()]
        ax.plot(
            ns,
            [rows[oracle[n]].mean() for n in ns],
            color="black",
            linestyle="--",
            marker=".",
            label="oracle (golden reward)",
        )
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.text(0.99, 0.01, "0 = random pick", transform=ax.transAxes, ha="right", fontsize=8)
        _log_ticks(ax, ns, lambda v: f"{int(v)}")
    handles, labels = grid.axes.flat[0].get_legend_handles_labels()
    if grid.legend is not None:
        grid.legend.remove()
    grid.figure.legend(
        handles, labels, title="head", loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False
    )
    grid.set_titles("{col_name}")
    grid.set_axis_labels("N responses sampled (log scale)", "BoN gain at N (golden reward)")
    _title(
        grid,
        "Best-of-N curves",
        f"gain over a random pick; mean over {settings} shared setting(s) and seeds, bars: 95% "
        "interval over seeds; dashed: picking by the golden reward",
    )
    return grid.figure


FIGURE = Figure(
    "bon_curves",
    6,
    "Best-of-N curves",
    "two or more Best-of-N sizes N (after clipping to the test responses per prompt)",
    _curve_points,
    draw_bon_curves,
    "Best-of-N gain at each N (log scale) per head: how much better than a random pick "
    "the head's choice among N responses is, averaged over the settings every head ran "
    "and over seeds, one panel per world. The dashed black line picks by the golden "
    "reward itself, the best any reward model can do at that N. A head whose curve "
    "bends down at large N is fooled by responses it over-rates. Bars are 95% intervals "
    "over seeds.",
)
