"""The study's figures, drawn with seaborn from the summary table and saved as PNG and SVG.

Every figure says what it needs from the grid (:attr:`Figure.needs`) and checks it on a table of
run settings (:attr:`Figure.drawable`). The workflow checks the plan before running anything
(:func:`plan_settings`, :func:`available`): a figure whose axis has a single value in the grid
is not asked for, and the reason is logged; the same check runs again on the summary before
drawing. Heads keep one colour in every figure (:func:`head_palette`).

Values are golden rewards, in the world's own reward units. Intervals are 95% t-intervals over
seeds, the same as in ``aggregate.csv``; when a figure averages over other settings, it first
averages within each seed and then takes the interval over seeds.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path
from ..summary import degenerate, flatten_settings, t_interval

log = logging.getLogger("embrm")

HEAD_ORDER = ["bt-mlp", "clf-mlp", "clf-lgb", "bt-linear", "clf-linear"]
CANDIDATE_ORDER = ["random", "similar", "diversified"]
MAX_PANELS = 12  # beyond this, figures average over further settings instead of adding panels
MAX_SETTINGS = 30  # rows of the Spearman figure per panel
# The columns that identify a setting in the figures (the annotator label includes β).
SETTING_KEYS = ["design", "n", "annotator"]
LABELS = {
    "world": "world",
    "design": "design",
    "n": "pairs",
    "annotator": "annotator",
    "candidates": "candidates",
    "beta": "β",
}


@dataclass(frozen=True)
class Figure:
    name: str
    number: int
    title: str
    needs: str  # what the grid must provide, in words; the note when the figure is skipped
    drawable: Callable[[pd.DataFrame], bool]  # checks `needs` on a table of run settings
    draw: Callable[[pd.DataFrame, dict], object]  # (summary, head palette) -> matplotlib figure
    caption: str  # shown in the Snakemake report: what the figure shows and how to read it

    @property
    def label(self) -> str:
        return f"{self.number}. {self.title}"


# ---------------------------------------------------------------------------------------------
# Settings tables and the checks behind `needs`


def _test_responses(spec: dict) -> int | None:
    """Responses per test prompt a world will have, when its config says so."""
    if "test_responses" in spec:
        return int(spec["test_responses"])
    generation = spec.get("generation")
    if isinstance(generation, dict) and "test_responses" in generation:
        return int(generation["test_responses"])
    return None


def plan_settings(plan) -> pd.DataFrame:
    """One row per planned run with the columns the figure checks use (as in the summary)."""
    rows = []
    n_values = plan.config["evaluation"]["n_values"]
    for run in plan.runs:
        spec = plan.annotator_spec(run.annotator)
        world = plan.world_spec(run.world)
        responses = _test_responses(world)
        ns = {min(int(n), responses) if responses else int(n) for n in n_values}
        beta = spec.get("beta")
        rows.append(
            {
                "world": run.world,
                "source": world["source"],
                "design": run.design,
                "prompt_pairing": run.prompt_pairing,
                "candidates": run.candidates,
                "n": run.n,
                "seed": run.seed,
                "annotator": run.annotator,
                "annotator_model": spec["model"],
                "beta": float(beta) if isinstance(beta, int | float) else np.nan,
                **flatten_settings("annotator_", spec, skip=("model", "beta")),
                "head": run.head,
                "bon_points": len(ns),
            }
        )
    return pd.DataFrame(rows)


def _annotator_keys(frame: pd.DataFrame) -> list[str]:
    """Annotator columns other than β: model and parameters."""
    return [c for c in frame.columns if c.startswith("annotator_")]


def _varies_within(frame: pd.DataFrame, axis: str, others: list[str]) -> pd.Series:
    """Rows whose group (same values of ``others``) holds two or more values of ``axis``."""
    if frame.empty or axis not in frame:
        return pd.Series(False, index=frame.index)
    keys = [c for c in others if c in frame.columns]
    values = frame[axis]
    counts = values.groupby([frame[k] for k in keys], dropna=False).transform("nunique")
    return (counts >= 2) & values.notna()


def _beta_rows(frame: pd.DataFrame) -> pd.Series:
    positive = frame.get("beta", pd.Series(np.nan, index=frame.index))
    positive = positive.where(np.isfinite(positive) & (positive > 0))
    others = ["world", "design", "n", "head", *_annotator_keys(frame)]
    return _varies_within(frame.assign(beta=positive), "beta", others)


def _n_rows(frame: pd.DataFrame) -> pd.Series:
    return _varies_within(frame, "n", ["world", "design", "annotator", "head"])


MATCH_KEYS = ["world", "candidates", "n", "annotator", "head", "seed"]


def _matched(frame: pd.DataFrame, columns=()) -> pd.DataFrame:
    """Same- and cross-prompt runs that differ only in the prompt pairing, side by side."""
    keep = [*MATCH_KEYS, *columns]
    # The static candidate rules only: active designs are compared in the learning-curve figure.
    frame = frame[frame["candidates"].isin(CANDIDATE_ORDER)]
    same = frame[frame["prompt_pairing"] == "same"][keep]
    cross = frame[frame["prompt_pairing"] == "cross"][keep]
    return same.merge(cross, on=MATCH_KEYS, suffixes=("_same", "_cross"))


def _has_matched(frame: pd.DataFrame) -> bool:
    return not _matched(frame).empty


def _matched_spread(frame: pd.DataFrame) -> bool:
    matched = _matched(frame)
    if matched.empty:
        return False
    return bool((matched.groupby("world")[["candidates", "n"]].apply(_len_unique) >= 2).any())


def _len_unique(group: pd.DataFrame) -> int:
    return len(group.drop_duplicates())


def _any_runs(frame: pd.DataFrame) -> bool:
    return not frame.empty


def _curve_points(frame: pd.DataFrame) -> bool:
    return bool(not frame.empty and frame["bon_points"].max() >= 2)


# ---------------------------------------------------------------------------------------------
# Helpers for drawing


def head_palette(heads) -> dict:
    """One colour per head, fixed by the head's name, so every figure uses the same colours."""
    import seaborn as sns

    present = set(heads)
    ordered = [h for h in HEAD_ORDER if h in present] + sorted(present - set(HEAD_ORDER))
    base = sns.color_palette("colorblind", n_colors=10)
    extra = [h for h in ordered if h not in HEAD_ORDER]
    palette = {h: base[HEAD_ORDER.index(h)] for h in ordered if h in HEAD_ORDER}
    free = base[len(HEAD_ORDER) :]
    more = sns.color_palette("husl", n_colors=max(0, len(extra) - len(free)))
    for head, colour in zip(extra, [*free, *more], strict=False):
        palette[head] = colour
    return {h: palette[h] for h in ordered}


def _heads(frame: pd.DataFrame, palette: dict) -> list[str]:
    present = set(frame["head"])
    return [h for h in palette if h in present]


def _format(key: str, value) -> str:
    if key == "n":
        return f"{int(value):,} pairs"
    if key == "beta":
        return f"β = {value:g}"
    if key == "world":
        return f"world {value}"
    return str(value)


def _panel_labels(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """' · '-joined labels of the ``keys`` that vary in ``frame`` ('' when none does)."""
    varying = [k for k in keys if k in frame and frame[k].nunique(dropna=False) > 1]
    if not varying:
        return pd.Series("", index=frame.index)
    parts = [frame[k].map(lambda v, k=k: _format(k, v)) for k in varying]
    label = parts[0]
    for part in parts[1:]:
        label = label + " · " + part
    return label


def _label_order(frame: pd.DataFrame, keys: list[str], labels: pd.Series) -> list[str]:
    """Labels in the natural order of their settings (numbers as numbers, not as text)."""
    keys = [k for k in keys if k in frame]
    order = frame.assign(_label=labels).sort_values(keys, kind="stable")["_label"]
    return list(dict.fromkeys(order))


def _reduce_keys(frame: pd.DataFrame, keys: list[str], drop_order: list[str], limit: int):
    """Drop keys (in ``drop_order``) until their combinations number at most ``limit``."""
    keys = [k for k in keys if k in frame]
    dropped = []
    for key in drop_order:
        if len(frame[keys].drop_duplicates()) <= limit:
            break
        if key in keys:
            keys.remove(key)
            dropped.append(key)
    return keys, dropped


def _common_settings(frame: pd.DataFrame, across: str, within: list[str], keys: list[str]):
    """Rows of the settings (``keys``) that every value of ``across`` has, per ``within`` group.

    Averages compare like with like this way. If no setting is shared, all rows are kept.
    Returns the rows and how many settings each ``within`` group kept.
    """
    keys = [k for k in keys if k in frame and k != across]
    kept = []
    for _, group in frame.groupby(within, dropna=False, sort=False):
        tuples = group[keys].apply(tuple, axis=1)
        sets = [set(tuples[group[across] == value]) for value in group[across].unique()]
        shared = set.intersection(*sets) if sets else set()
        kept.append(group[tuples.isin(shared)] if shared else group)
    result = pd.concat(kept) if kept else frame
    return result, len(result[keys].drop_duplicates()) if keys else 1


def _world_titles(frame: pd.DataFrame) -> dict:
    """Panel title of each world: its name and, when known, its source."""
    if "source" not in frame:
        return {w: f"world {w}" for w in frame["world"].unique()}
    sources = frame.groupby("world")["source"].first()
    return {w: f"world {w} (source: {s})" if s else f"world {w}" for w, s in sources.items()}


def _n_max_label(frame: pd.DataFrame) -> str:
    values = sorted(set(frame["bon_n_max"].dropna().astype(int)))
    return f"BoN-{values[0]}" if len(values) == 1 else "BoN-N_max"


def _title(grid, text: str, note: str = "") -> None:
    """Lay the panels out, then put the title and its note above everything drawn."""
    grid.tight_layout()
    figure = grid.figure
    renderer = figure.canvas.get_renderer()
    top = max(ax.get_tightbbox(renderer).y1 for ax in figure.axes) / figure.bbox.height
    # About 12 characters of 10-point text per inch of figure width.
    lines = textwrap.wrap(note, width=max(50, int(figure.get_size_inches()[0] * 12)))
    title = figure.suptitle("\n".join([text, *lines]), y=top + 0.01, va="bottom", fontsize=12)
    title.set_linespacing(1.4)


def _wrap(panels: int) -> int:
    """Columns of the panel grid: at most four, rows filled evenly."""
    if panels <= 3:
        return max(panels, 1)
    return 2 if panels == 4 else (3 if panels in (5, 6, 9) else 4)


def _finish_legend(grid, title: str = "head") -> None:
    if grid.legend is not None:
        grid.legend.set_title(title)


# ---------------------------------------------------------------------------------------------
# The figures


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


def _line_panels(summary, rows, x, keys, drop_order, palette, xlabel, ylabel):
    """Lines of BoN gain against ``x`` per head, one panel per combination of ``keys``."""
    import seaborn as sns

    data = summary[rows].copy()
    keys, dropped = _reduce_keys(data, keys, drop_order, MAX_PANELS)
    data["panel"] = _panel_labels(data, keys)
    order = _label_order(data, keys, data["panel"])
    group = ["panel", x, "head", "seed"]
    per_seed = (
        data.groupby(group)[["bon_gain", "annotation_realized_error_rate"]].mean().reset_index()
    )
    panels = per_seed["panel"].nunique()
    heads = _heads(per_seed, palette)
    grid = sns.relplot(
        data=per_seed,
        x=x,
        y="bon_gain",
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
        col="panel" if panels > 1 else None,
        col_order=order if panels > 1 else None,
        col_wrap=_wrap(panels) if panels > 1 else None,
        height=3.4,
        aspect=1.3,
        facet_kws={"sharey": False, "sharex": False},
        markersize=7,
    )
    grid.set_titles("{col_name}" if panels > 1 else "")
    grid.set_axis_labels(xlabel, ylabel)
    _finish_legend(grid)
    note = f"averaged over {', '.join(LABELS.get(k, k) for k in dropped)}; " if dropped else ""
    return grid, per_seed, note


def _log_ticks(ax, values, formatter=lambda v: f"{v:g}") -> None:
    from matplotlib.ticker import FixedLocator, NullLocator

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(values))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([formatter(v) for v in values])
    low, high = min(values), max(values)
    ax.set_xlim(low / 1.25, high * 1.25)


def draw_gain_vs_beta(summary: pd.DataFrame, palette: dict):
    from matplotlib.ticker import FixedLocator, NullLocator

    keys = ["world", "design", "n", *_annotator_keys(summary)]
    grid, per_seed, note = _line_panels(
        summary,
        _beta_rows(summary),
        "beta",
        keys,
        ["n", "design"],
        palette,
        "annotation quality β (log scale)",
        f"{_n_max_label(summary)} gain (golden reward)",
    )
    single = per_seed["panel"].nunique() == 1
    for panel, ax in [("", grid.ax)] if single else grid.axes_dict.items():
        rows = per_seed if single else per_seed[per_seed["panel"] == panel]
        errors = rows.groupby("beta")["annotation_realized_error_rate"].mean()
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
        "Best-of-N gain vs annotation quality β",
        f"{note}points: mean over seeds, bars: 95% interval; top axis: share of training labels "
        "that contradict the golden order",
    )
    return grid.figure


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


def _matched_gains(summary: pd.DataFrame) -> pd.DataFrame:
    matched = _matched(summary, ["bon_gain", "annotation_mean_abs_dr"])
    matched["gain_difference"] = matched["bon_gain_cross"] - matched["bon_gain_same"]
    matched["dr_difference"] = (
        matched["annotation_mean_abs_dr_cross"] - matched["annotation_mean_abs_dr_same"]
    )
    return matched


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


_BON = (
    "The Best-of-N gain is the golden reward of the response a head picks among N sampled test "
    "responses of a prompt minus the mean golden reward of that prompt's responses (what a "
    "random pick earns), averaged over test prompts and repeated draws; it is in the world's "
    "golden-reward units. Higher is better; 0 is no better than random."
)

FIGURES = {
    fig.name: fig
    for fig in [
        Figure(
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
            "of what picking by the golden reward gains (100% = a perfect reward model). " + _BON,
        ),
        Figure(
            "gain_vs_beta",
            2,
            "Best-of-N gain vs annotation quality",
            "two or more values of β within one combination of world, design, number of pairs "
            "and head",
            lambda frame: bool(_beta_rows(frame).any()),
            draw_gain_vs_beta,
            "Best-of-N gain against annotation quality β (log scale), one line per head and "
            "one panel per world, design and number of pairs (averaged over the number of pairs, "
            "then the design, when that would make too many panels). Small β gives noisy labels, "
            "large β clean ones; the top axis shows the realized share of training labels that "
            "contradict the golden order at each β. The study expects classification heads to "
            "lose less than Bradley-Terry as β falls, and Bradley-Terry to win only at low label "
            "error. Bars are 95% intervals over seeds. " + _BON,
        ),
        Figure(
            "gain_vs_n",
            3,
            "Best-of-N gain vs number of annotations",
            "two or more numbers of pairs within one combination of world, design, annotator "
            "and head",
            lambda frame: bool(_n_rows(frame).any()),
            draw_gain_vs_n,
            "Best-of-N gain against the number of annotated training pairs (log scale), one line "
            "per head and one panel per world, design and annotator (averaged over designs, then "
            "annotators, when that would make too many panels). Steeper lines mean a head needs "
            "more annotations; the study expects classification heads to degrade more gracefully "
            "with fewer pairs. Bars are 95% intervals over seeds. " + _BON,
        ),
        Figure(
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
        ),
        Figure(
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
        ),
        Figure(
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
        ),
        Figure(
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
        ),
    ]
}


# Figures defined in their own modules join the registry here (after the helpers they use).
from .active import LEARNING_CURVES  # noqa: E402

FIGURES[LEARNING_CURVES.name] = LEARNING_CURVES


def available(settings: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """Figures the grid can draw, and for each of the others the reason it is not drawn."""
    drawable, skipped = [], {}
    for name, fig in FIGURES.items():
        if fig.drawable(settings):
            drawable.append(name)
        else:
            skipped[name] = f"figure {fig.label!r} needs {fig.needs}; the grid has none"
    return drawable, skipped


def rst_escape(text: str) -> str:
    """Text safe to drop into reStructuredText (``|Δr|`` would be a substitution reference)."""
    return re.sub(r"([\\`*_|])", r"\\\1", text)


def read_summary(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def render(name: str, summary_path: str | Path, png: str | Path, svg: str | Path) -> None:
    """Draw figure ``name`` from the summary table and save it as PNG and SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    spec = FIGURES[name]
    summary = read_summary(summary_path)
    if not spec.drawable(summary):
        raise ValueError(f"{summary_path}: figure {spec.label!r} needs {spec.needs}")
    # Degenerate runs (status column of the summary) are left out of every figure and counted in
    # a footnote; a figure whose runs are all degenerate says so instead of plotting.
    excluded = degenerate(summary)
    sns.set_theme(style="whitegrid", context="notebook")
    # Fixed metadata keeps the SVG byte-identical between runs of the same results.
    plt.rcParams["svg.hashsalt"] = "embrm"
    kept = summary[~excluded]
    if len(kept) and spec.drawable(kept):
        figure = spec.draw(kept, head_palette(summary["head"]))
    else:
        figure = plt.figure(figsize=(6, 2))
        figure.text(0.5, 0.5, f"{spec.label}: every run it needs is degenerate", ha="center")
    if excluded.any():
        figure.text(
            0.0,
            0.0,
            f"{int(excluded.sum())} degenerate run(s) left out (status column of summary.csv)",
            ha="left",
            va="top",
            fontsize=8,
        )
    metadata = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
    for path, fmt in ((png, "png"), (svg, "svg")):
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata[fmt])
    plt.close(figure)
    log.info(
        "figure %s drawn from %d runs (%d degenerate left out)", name, len(kept), excluded.sum()
    )
