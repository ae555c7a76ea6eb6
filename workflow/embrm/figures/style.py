"""Drawing helpers shared by the figures: head colours, panels and their labels, titles, legends
and log-scale ticks."""

from __future__ import annotations

import textwrap

import pandas as pd

from ..summary import t_interval

HEAD_ORDER = ["bt-mlp", "clf-mlp", "clf-lgb", "bt-linear", "clf-linear"]
MAX_PANELS = 12  # beyond this, figures average over further settings instead of adding panels
LABELS = {
    "world": "world",
    "design": "design",
    "n": "pairs",
    "annotator": "annotator",
    "candidates": "candidates",
    "beta": "β",
}


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
