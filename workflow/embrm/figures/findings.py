"""Figures of the findings: the verdicts' effects with their paired intervals, and where
cross-prompt annotation helps over the plane of world structure.

They are drawn by the workflow's ``findings_figure`` rule, beside the study's figures
(:data:`embrm.figures.FIGURES`) and with the same conventions; :data:`FINDINGS_FIGURES` says
what each needs from the grid, checked on the plan (:func:`available`) and again on the summary.

Intervals are paired: a seed's value is the mean over the cells it covers of the difference
between runs that share everything but the factor compared; the findings figure draws the
interval of :mod:`embrm.findings` (over seeds and test prompts), the map a t-interval over the
per-seed values. Panels that compare the same quantity share
their y-axis, and every title states the number of seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import findings as F
from ..summary import read_summary, t_interval
from .settings import _has_matched
from .settings import available as available_of
from .spec import Figure
from .style import _title, head_palette

METRIC = F.METRIC
# World parameters that span the sensitivity plane, as summary columns.
TAU, SIGMA, SHARED, NONLINEAR = (
    "world_tau",
    "world_sigma",
    "world_shared_quality",
    "world_nonlinearity",
)


def world_structure(summary: pd.DataFrame) -> pd.DataFrame:
    """Per world: τ/σ, shared_quality (0 when absent) and nonlinearity."""
    frame = summary.drop_duplicates("world").set_index("world")
    out = pd.DataFrame(index=frame.index)
    tau = frame[TAU].astype(float) if TAU in frame else np.nan
    sigma = frame[SIGMA].astype(float) if SIGMA in frame else np.nan
    out["tau_over_sigma"] = tau / sigma
    out["shared_quality"] = frame[SHARED].astype(float).fillna(0.0) if SHARED in frame else 0.0
    out["nonlinearity"] = frame[NONLINEAR].astype(float) if NONLINEAR in frame else np.nan
    return out


def _spans_plane(frame: pd.DataFrame) -> bool:
    """Same- and cross-prompt runs in two or more worlds (on run settings: two worlds; on the
    summary: two different (τ/σ, shared_quality) points)."""
    if not _has_matched(frame) or frame["world"].nunique() < 2:
        return False
    if TAU not in frame:
        return True
    structure = world_structure(frame)
    return len(structure[["tau_over_sigma", "shared_quality"]].drop_duplicates()) >= 2


def map_points(summary: pd.DataFrame) -> pd.DataFrame:
    """Per world, head and seed: the mean cross − same difference of the metric and of the
    annotated pairs' mean |Δr| over the world's matched cells (a paired value per seed)."""
    rows = []
    for world, data in summary.groupby("world", sort=True):
        matched = F.cross_minus_same(F.prepare(data, METRIC))
        if matched.empty:
            continue
        per_seed = (
            matched.groupby(["head", "seed"])[["difference", "dr_difference"]].mean().reset_index()
        )
        per_seed["world"] = world
        rows.append(per_seed)
    if not rows:
        return pd.DataFrame(columns=["world", "head", "seed", "difference", "dr_difference"])
    points = pd.concat(rows, ignore_index=True)
    return points.merge(world_structure(summary), left_on="world", right_index=True)


def draw_cross_prompt_map(summary: pd.DataFrame, palette: dict):
    import matplotlib.pyplot as plt
    import seaborn as sns

    points = map_points(summary)
    heads = [h for h in palette if h in set(points["head"])]
    nonlinear = sorted(points["nonlinearity"].dropna().unique()) or [np.nan]
    shares = sorted(points["shared_quality"].unique())
    colours = dict(zip(shares, sns.color_palette("viridis", n_colors=len(shares)), strict=True))
    columns = len(nonlinear) + 1
    figure, axes = plt.subplots(
        len(heads),
        columns,
        figsize=(3.6 * columns, 2.9 * len(heads)),
        sharey=True,  # every panel shows the same quantity: one y-axis
        squeeze=False,
    )
    seeds = int(points["seed"].nunique())
    for row, head in enumerate(heads):
        mine = points[points["head"] == head]
        for col, lam in enumerate(nonlinear):
            ax = axes[row, col]
            panel = mine if np.isnan(lam) else mine[mine["nonlinearity"] == lam]
            for share in shares:
                line = panel[panel["shared_quality"] == share]
                stats = (
                    line.groupby("tau_over_sigma")["difference"]
                    .agg(["mean", lambda v: t_interval(v)[0], lambda v: t_interval(v)[1]])
                    .sort_index()
                )
                if stats.empty:
                    continue
                mean, low, high = stats.iloc[:, 0], stats.iloc[:, 1], stats.iloc[:, 2]
                ax.errorbar(
                    stats.index,
                    mean,
                    yerr=[mean - low, high - mean],
                    color=colours[share],
                    marker="o",
                    capsize=3,
                    label=f"{share:g}",
                )
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set_xscale("log")
            xs = sorted(panel["tau_over_sigma"].dropna().unique())
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
            ax.minorticks_off()
            title = head if np.isnan(lam) else f"{head} · nonlinearity λ = {lam:g}"
            ax.set_title(title, fontsize=10)
            if row == len(heads) - 1:
                ax.set_xlabel("prompt spread τ / response spread σ")
            if col == 0:
                ax.set_ylabel("cross − same\nnormalized BoN gain")
        ax = axes[row, -1]
        for share in shares:
            dots = mine[mine["shared_quality"] == share]
            ax.scatter(
                dots["dr_difference"], dots["difference"], color=colours[share], s=14, alpha=0.7
            )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(f"{head} · every world and seed", fontsize=10)
        if row == len(heads) - 1:
            ax.set_xlabel("cross − same mean |Δr|\nof annotated pairs")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        figure.legend(
            handles,
            labels,
            title="shared quality ρ",
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            frameon=False,
        )

    class _Grid:  # _title lays out any figure that exposes .figure and .tight_layout
        def __init__(self, fig):
            self.figure = fig

        def tight_layout(self):
            self.figure.tight_layout()

    _title(
        _Grid(figure),
        "Where cross-prompt annotation helps",
        f"cross − same normalized Best-of-N gain, mean over each world's matched settings, per "
        f"head; whiskers: paired 95% t-interval over {seeds} seed(s). Right: one dot per world "
        "and seed against the gap difference of the annotated pairs.",
    )
    return figure


def _effects(summary: pd.DataFrame, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The tested parts: from the findings table the findings stage wrote (its verdicts and
    intervals over seeds and test prompts), else recomputed from the summary (intervals over
    seeds only)."""
    if table is None:
        table = F.findings(summary)
    return table[(table["part"] != "all") & table["effect"].notna()]


def read_findings(path: str | Path) -> pd.DataFrame:
    """findings.csv as the findings stage wrote it (claim and part names stay strings)."""
    return pd.read_csv(path, dtype={"claim": str, "part": str})


VERDICT_COLOURS = {
    F.REPLICATED: "#1b9e77",
    F.CONTRADICTED: "#d95f02",
    F.NEGLIGIBLE: "#e6ab02",
    F.INCONCLUSIVE: "#7570b3",
}


def draw_findings(summary: pd.DataFrame, palette: dict, table: pd.DataFrame | None = None):
    """One row per tested part: effect and paired 95% interval, coloured by verdict; claims 1–3
    (differences of the normalized gain) share an x-axis, claim 4 (a correlation) has its own.
    With the findings table, the intervals are those over seeds and test prompts."""
    import matplotlib.pyplot as plt

    effects = _effects(summary, table)
    seeds = int(summary["seed"].nunique())
    worlds = sorted(effects["world"].unique()) or ["–"]
    figure, axes = plt.subplots(
        len(worlds),
        2,
        figsize=(12, 0.35 * max(6, effects.groupby("world").size().max() if len(effects) else 6)
                 * len(worlds) + 1.5),
        gridspec_kw={"width_ratios": [4, 1]},
        squeeze=False,
        # worlds on one scale share the x-axis; accuracy points and gain shares do not
        sharex="col" if effects["metric"].nunique() <= 1 else False,
    )  # fmt: skip
    for row, world in enumerate(worlds):
        mine = effects[effects["world"] == world]
        accuracy = bool((mine["metric"] == F.load().preference_metric).any())
        scale = "accuracy, points" if accuracy else "normalized gain"
        panels = (mine[mine["claim"] != "4"], mine[mine["claim"] == "4"])
        rows = max(1, *(len(p) for p in panels))
        for col, subset in enumerate(panels):
            ax = axes[row, col]
            labels = [f"{r.part}: {r.statement}" for r in subset.itertuples()]
            # Top-aligned rows of the same height in both panels (claim 4 beside claim 1).
            y = rows - 1 - np.arange(len(subset))
            for yi, r in zip(y, subset.itertuples(), strict=True):
                colour = VERDICT_COLOURS.get(r.verdict, "grey")
                if np.isfinite(r.ci_low):
                    ax.plot([r.ci_low, r.ci_high], [yi, yi], color=colour, linewidth=2)
                ax.plot(r.effect, yi, "o", color=colour)
                if r.threshold < 0:
                    ax.plot([r.threshold], [yi], "|", color="black", markersize=10)
            ax.axvline(0, color="black", linewidth=0.8)
            # Autoscaling would stretch claim 4's single row over its whole panel.
            ax.set_ylim(-0.75, rows - 0.25)
            ax.set_yticks(y, labels if col == 0 else [r.part for r in subset.itertuples()])
            ax.tick_params(axis="y", labelsize=7)
            ax.set_title(
                (f"world {world}: " if len(worlds) > 1 else "")
                + (f"paired difference of {scale}" if col == 0 else "claim 4: slope"),
                fontsize=10,
            )
    handles = [plt.Line2D([], [], color=c, marker="o", label=v) for v, c in VERDICT_COLOURS.items()]
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)

    class _Grid:
        def __init__(self, fig):
            self.figure = fig

        def tight_layout(self):
            self.figure.tight_layout(rect=(0, 0.04, 1, 1))

    _title(
        _Grid(figure),
        "Findings: effect per tested part",
        f"mean paired difference over {seeds} seed(s) with its 95% interval over seeds and test "
        "prompts (crossed random effects; over seeds alone where no per-prompt values are "
        "stored); colour: verdict; a bar mark: the non-inferiority threshold of a 'matches or "
        "beats' part",
    )
    return figure


def _any_runs(frame: pd.DataFrame) -> bool:
    return not frame.empty


FINDINGS_FIGURES = [
    Figure(
        "findings",
        8,
        "Findings: effect and paired interval per tested part",
        "at least one run",
        _any_runs,
        draw_findings,
        "Every tested part of the study's claims (findings.md): the mean paired difference "
        "(runs that share world, seed and everything but the factor compared) with its 95% "
        "interval over seeds and test prompts (crossed random effects, docs/analysis-plan.md), "
        "coloured by the verdict of findings.md. Claims 1–3 are differences of the "
        "normalized Best-of-N gain (share of the oracle's gain): a part is replicated when its "
        "interval lies above 0 (or above the small negative margin marked on 'matches or "
        "beats' parts), negligible when it lies within the smallest effect of interest. Claim 4 "
        "is the slope of the cross − same gain on the cross − same reward gap of the annotated "
        "pairs.",
    ),
    Figure(
        "cross_prompt_map",
        9,
        "Where cross-prompt annotation helps",
        "same- and cross-prompt runs in two or more worlds of different structure (τ/σ or "
        "shared_quality)",
        _spans_plane,
        draw_cross_prompt_map,
        "The cross − same normalized Best-of-N gain per head (rows) over the plane of world "
        "structure: x is the ratio τ/σ of the spread of prompt mean rewards to the spread of "
        "one prompt's responses, colour the share ρ of the prompt-mean variance carried by the "
        "same quality features that order a prompt's responses (0: separate prompt effect, "
        "1: one reward function of response quality), columns the nonlinearity λ. Whiskers "
        "are paired 95% t-intervals over seeds; all panels share the y-axis. Right column: "
        "each world and seed's gain difference against how much larger the mean |Δr| of the "
        "annotated pairs is with cross-prompt pairing.",
    ),
]

FINDINGS_FIGURES = {fig.name: fig for fig in FINDINGS_FIGURES}


def available(settings: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """The findings figures the grid can draw, and why the others are not drawn."""
    return available_of(settings, FINDINGS_FIGURES)


# Figures drawn from the findings stage's own table, so that they show its verdicts.
FROM_FINDINGS_TABLE = {"findings"}


def render(
    name: str,
    summary_path: str | Path,
    png: str | Path,
    svg: str | Path,
    findings_path: str | Path | None = None,
) -> None:
    """Draw findings figure ``name`` from the summary table (and findings.csv, for the figures
    that show the findings' verdicts) and save it as PNG and SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from ..io import atomic_path

    spec = FINDINGS_FIGURES[name]
    summary = read_summary(summary_path)
    if not spec.drawable(summary):
        raise ValueError(f"{summary_path}: figure {spec.label!r} needs {spec.needs}")
    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams["svg.hashsalt"] = "embrm"  # byte-identical SVGs for the same results
    extra = {}
    if name in FROM_FINDINGS_TABLE and findings_path is not None:
        extra["table"] = read_findings(findings_path)
    figure = spec.draw(summary, head_palette(summary["head"]), **extra)
    metadata = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
    for path, fmt in ((png, "png"), (svg, "svg")):
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata[fmt])
    plt.close(figure)
