"""Figures 9 and 10: over-optimization under Best-of-N (Gao et al.): golden and proxy reward of
the pick against sqrt(KL) per head, and the fitted α, β against label error and pairs."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..summary import t_interval
from .settings import SETTING_KEYS, _curve_points
from .spec import Figure
from .style import _common_settings, _heads, _log_ticks, _title, _world_titles, _wrap

CURVES = {"kl": "bon_kl_at_", "gold": "bon_gold_z_at_", "proxy": "bon_proxy_z_at_"}


def _long_curves(data: pd.DataFrame) -> pd.DataFrame:
    """One row per run and N: sqrt(KL), standardized golden and proxy reward of the pick."""
    found: dict[int, dict[str, str]] = {}
    for column in data.columns:
        for name, prefix in CURVES.items():
            if m := re.fullmatch(rf"{prefix}(\d+)", column):
                found.setdefault(int(m.group(1)), {})[name] = column
    ns = sorted(n for n, columns in found.items() if len(columns) == len(CURVES))
    if not ns:
        raise ValueError(
            "the summary has no bon_kl_at_<N>, bon_gold_z_at_<N>, bon_proxy_z_at_<N> columns "
            "(runs evaluated before they existed): re-run the evaluate jobs"
        )
    parts = []
    for n in ns:
        part = data[["world", "head", "seed"]].copy()
        part["N"] = n
        part["d"] = np.sqrt(data[found[n]["kl"]].astype(float))
        part["gold"] = data[found[n]["gold"]].astype(float)
        part["proxy"] = data[found[n]["proxy"]].astype(float)
        parts.append(part)
    return pd.concat(parts, ignore_index=True).dropna(subset=["d", "gold", "proxy"])


def draw_overoptimization(summary: pd.DataFrame, palette: dict):
    import matplotlib.pyplot as plt

    data, settings = _common_settings(summary, "head", ["world"], SETTING_KEYS)
    long = _long_curves(data)
    per_seed = long.groupby(["world", "head", "N", "seed"])[["d", "gold", "proxy"]].mean()
    per_seed = per_seed.reset_index()
    titles = _world_titles(summary)
    worlds = list(dict.fromkeys(per_seed["world"]))
    columns = _wrap(len(worlds))
    rows = -(-len(worlds) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.0 * rows), squeeze=False)
    heads = _heads(per_seed, palette)
    for ax, world in zip(axes.flat, worlds, strict=False):
        for head in heads:
            rows_ = per_seed[(per_seed["world"] == world) & (per_seed["head"] == head)]
            if rows_.empty:
                continue
            by_n = rows_.groupby("N")
            d = by_n["d"].mean()
            for name, style, label in (
                ("gold", "-", "golden"),
                ("proxy", "--", "proxy (own score)"),
            ):
                mean = by_n[name].mean()
                low, high = zip(*(t_interval(v) for _, v in by_n[name]), strict=True)
                error = np.abs(np.array([mean - np.array(low), np.array(high) - mean]))
                ax.errorbar(
                    d,
                    mean,
                    yerr=np.nan_to_num(error),
                    color=palette[head],
                    linestyle=style,
                    marker="o" if name == "gold" else "x",
                    capsize=2,
                    label=f"{head}: {label}",
                )
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_title(titles.get(world, f"world {world}"))
        ax.set_xlabel("sqrt(KL(Best-of-N pick ‖ uniform)), exact")
        ax.set_ylabel("reward of the pick (SDs within the prompt)")
    for ax in list(axes.flat)[len(worlds) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    _title(
        _Grid(figure),
        "Over-optimization: golden vs proxy reward of the Best-of-N pick",
        f"solid: golden reward, dashed: the head's own score, both standardized within the prompt; "
        f"points are the evaluated N; mean over {settings} shared setting(s) and seeds, bars: 95% "
        "interval over seeds",
    )
    return figure


class _Grid:
    """The two members of a seaborn grid that :func:`_title` uses."""

    def __init__(self, figure):
        self.figure = figure

    def tight_layout(self):
        self.figure.tight_layout()


FIT_ROWS = {"gao_alpha": "α (initial slope)", "gao_beta": "β (bend down)"}
FIT_COLUMNS = {
    "annotation_realized_error_rate": "label error rate (realized)",
    "n": "annotated pairs (log scale)",
}


def draw_gao_fit(summary: pd.DataFrame, palette: dict):
    import matplotlib.pyplot as plt

    missing = [c for c in (*FIT_ROWS, *FIT_COLUMNS) if c not in summary]
    if missing:
        raise ValueError(f"the summary has no {', '.join(missing)} column(s): re-run evaluation")
    heads = _heads(summary, palette)
    worlds = list(dict.fromkeys(summary["world"]))
    markers = dict(zip(worlds, "osD^v<>", strict=False))
    figure, axes = plt.subplots(2, 2, figsize=(10.5, 7.5), squeeze=False)
    for r, (metric, metric_label) in enumerate(FIT_ROWS.items()):
        for c, (x, x_label) in enumerate(FIT_COLUMNS.items()):
            ax = axes[r, c]
            # Per world, head and x value: mean over the other settings within each seed, then
            # the mean over seeds and its interval. The label error is a run's own measurement,
            # so its points sit at the setting's mean error (the annotator fixes it).
            key = "annotator" if x == "annotation_realized_error_rate" else "n"
            values = [metric] if x == key else [metric, x]
            per_seed = summary.groupby(["world", "head", key, "seed"])[values].mean().reset_index()
            for (world, head), group in per_seed.groupby(["world", "head"], sort=False):
                if head not in heads:
                    continue
                by_x = group.groupby(key)
                xs, ys = by_x[x].mean(), by_x[metric].mean()
                bounds = np.array([t_interval(v) for _, v in by_x[metric]])
                error = np.abs(np.array([ys - bounds[:, 0], bounds[:, 1] - ys]))
                order = np.argsort(xs.to_numpy())
                ax.errorbar(
                    xs.to_numpy()[order],
                    ys.to_numpy()[order],
                    yerr=np.nan_to_num(error[:, order]),
                    color=palette[head],
                    marker=markers.get(world, "o"),
                    capsize=2,
                    label=f"{head}" + (f" · world {world}" if len(worlds) > 1 else ""),
                )
            if x == "n":
                _log_ticks(ax, sorted(summary["n"].unique()), lambda v: f"{int(v):,}")
            ax.axhline(0, color="grey", linewidth=0.8)
            ax.set_xlabel(x_label)
            ax.set_ylabel(metric_label)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    _title(
        _Grid(figure),
        "Gao et al.'s fit gold(d) = d(α − βd) per run",
        "d = sqrt(exact KL); gold: Best-of-N gain in golden-reward units; points: mean over the "
        "other settings and seeds, bars: 95% interval over seeds",
    )
    return figure


OVEROPTIMIZATION = Figure(
    "overoptimization",
    9,
    "Over-optimization: golden and proxy reward against sqrt(KL)",
    "two or more Best-of-N sizes N (after clipping to the test responses per prompt)",
    _curve_points,
    draw_overoptimization,
    "For each head, the golden reward (solid) and the head's own score (dashed, the proxy) of "
    "the response Best-of-N picks, both standardized within the prompt (0 = the prompt's "
    "average response, 1 = one standard deviation above it), against the square root of the "
    "exact KL divergence of the pick from a uniform pick (more candidates: further right). A "
    "perfect reward model has the two lines on top of each other. The gap between them is how "
    "much the head over-rates what it picks; a golden line that flattens or falls while the "
    "proxy line keeps rising is over-optimization (Gao et al., 2023). Bars are 95% intervals "
    "over seeds.",
)

GAO_FIT = Figure(
    "gao_fit",
    10,
    "Over-optimization fit: α and β against label error and pairs",
    "two or more Best-of-N sizes N (after clipping to the test responses per prompt)",
    _curve_points,
    draw_gao_fit,
    "Each run's golden Best-of-N gain against d = sqrt(exact KL) is fitted by Gao et al.'s "
    "gold(d) = d(α − βd). Top: α, the initial slope (golden reward gained per unit of d, in "
    "golden-reward units: higher is a better reward model); bottom: β, the bend (above 0 the "
    "golden reward stops rising and eventually falls as N grows). Left: against the realized "
    "share of training labels that contradict the golden order (noisier annotators to the "
    "right); right: against the number of annotated pairs. Expect α to fall with label error "
    "and rise with pairs. Bars are 95% intervals over seeds.",
)
