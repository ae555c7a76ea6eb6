"""Drawing a figure from the summary table and saving it as PNG and SVG, byte-identical for the
same results."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..io import atomic_path
from ..summary import degenerate, read_summary
from .spec import Figure
from .style import head_palette

log = logging.getLogger("embrm")


def rst_escape(text: str) -> str:
    """Text safe to drop into reStructuredText (``|Δr|`` would be a substitution reference)."""
    return re.sub(r"([\\`*_|])", r"\\\1", text)


def save(spec: Figure, summary_path: str | Path, png: str | Path, svg: str | Path) -> None:
    """Draw figure ``spec`` from the summary table and save it as PNG and SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

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
        "figure %s drawn from %d runs (%d degenerate left out)",
        spec.name,
        len(kept),
        excluded.sum(),
    )
