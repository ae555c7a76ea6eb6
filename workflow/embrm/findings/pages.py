"""The findings written out: findings.csv, findings.md (the report's first page and docs), the
landing page's reStructuredText and the report's HTML entry."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .plan import load
from .table import findings

WORLD_KNOBS = ("world_tau", "world_sigma", "world_shared_quality", "world_nonlinearity")
WORLD_DEPENDENCE = (
    "The verdicts are about this world as configured. What no claim's data identify and what "
    "decides some of them: `shared_quality` (how much of the prompt effect is carried by "
    "response quality) decides the sign of claim 3a (in the measured map at tau/sigma 2 and 4, "
    "cross − same is below or around 0 at shared_quality 0 and above 0 at 0.5 and 1, "
    "docs/findings.md), and `nonlinearity` (how far the "
    "quality direction turns between prompts) sets how much cross-prompt pairs can teach; "
    "tau/sigma sets the gap between pairings. Claim 4's slope has one |Δr| per candidate rule "
    "and seed: it orders the rules like 3b and 3c and adds no independent evidence."
)


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–" if value is None or np.isnan(value) else ("∞" if value > 0 else "−∞")
    if isinstance(value, float):
        return f"{value:+.{digits}f}" if digits else f"{value:g}"
    return str(value)


def _interval(row) -> str:
    if not np.isfinite(row["ci_low"]):
        return "–"
    return f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"


def _seeds(value) -> str:
    if value != value:
        return ""
    return "never (test-set floor)" if value == float("inf") else f"{int(value)}"


def _df(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.1f}"


def _p(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.2g}"


def _shares(row) -> str:
    if not np.isfinite(row["share_seed"]):
        return "–"
    if not np.isfinite(row["share_prompt"]) or row["interval"] == "seeds only":
        return "seeds 100%"
    return (
        f"seeds {row['share_seed']:.0%} · prompts {row['share_prompt']:.0%} · "
        f"seed×prompt {row['share_interaction']:.0%}"
    )


def _golden(table: pd.DataFrame) -> bool:
    """Whether a world of the table has a golden reward (the world knobs concern only those)."""
    plan = table.attrs.get("plan") or load()
    return bool((table["metric"] != plan.preference_metric).any())


def _escape_md(text: str) -> str:
    return str(text).replace("|", "\\|")


def plan_lines(table: pd.DataFrame) -> list[str]:
    plan = table.attrs.get("plan") or load()
    lines = [
        f"- decided under {plan.label}, docs/analysis-plan.md: smallest effect of interest "
        f"±{plan.sesoi:g}, match margin {plan.match_margin:g}, never-negative margin "
        f"{plan.never_negative_margin:g} (share of the oracle's gain); claims 1 and 2 on "
        f"{', '.join(plan.claims_1_2_designs)}"
    ]
    if (table["metric"] == plan.preference_metric).any():
        lines.append(
            f"- worlds without a golden reward: claims 1 and 2 on held-out `"
            f"{plan.preference_metric}` in percentage points, smallest effect of interest "
            f"±{plan.preference_sesoi:g} point, match margin {plan.preference_match_margin:g} "
            f"point, on {', '.join(plan.preference_designs)}; test prompts as the unit of "
            "resampling; the parts that need a golden reward are not tested"
        )
    fallback = table.attrs.get("prompt_fallback", {})
    for world in sorted(fallback):
        lines.append(
            f"- world {world}: intervals over seeds only ({fallback[world]}); the test prompts "
            "are taken as fixed"
        )
    return lines


def _worlds_note(meta: dict | None) -> list[str]:
    return [f"- {key}: {value}" for key, value in (meta or {}).items()]


def markdown(table: pd.DataFrame, meta: dict | None = None) -> str:
    """findings.md: the verdict per claim, then every part with its test and numbers."""
    plan = table.attrs.get("plan") or load()
    metrics = [m for m in dict.fromkeys(table["metric"]) if m]
    words = {
        plan.metric: "share of the oracle's Best-of-N gain",
        plan.preference_metric: "held-out preference accuracy in percentage points, in a world "
        "without a golden reward",
    }
    metric = " or ".join(f"`{m}`" + (f" ({words[m]})" if m in words else "") for m in metrics)
    lines = [
        "# Findings: the study's claims tested on this experiment",
        "",
        f"Each claim is split into parts; each part is a contrast of {metric} between paired "
        "runs, averaged within each seed. Interval: "
        "95%, over seeds and test prompts (crossed random effects: seed, prompt, seed × "
        "prompt; modified large-sample interval, df: its effective degrees of freedom); "
        "*limited by*: the source that contributes most to the variance of the effect. **replicated**: the interval lies above the threshold (0, or minus the margin "
        "of a 'matches' part); **contradicted**: Holm-adjusted over the claim's parts, the "
        "effect is below it; **negligible**: the interval lies within ± the smallest effect of "
        "interest; **inconclusive**: otherwise. Planning: *detectable now* is the smallest "
        "distance from the threshold the current seeds detect with 80% power; *seeds to "
        "replicate / contradict*: seeds for 80% power at the plan's smallest effect; *seeds "
        "for ± margin*: seeds for an interval half-width at the margin, on the upper 95% bound "
        "of the seed spread.",
        "",
        *_worlds_note(meta),
        *plan_lines(table),
        "",
        *([WORLD_DEPENDENCE, ""] if _golden(table) else []),
    ]
    for world, rows in table.groupby("world", sort=True):
        if table["world"].nunique() > 1:
            lines += [f"## World `{world}`", ""]
        claims = rows[rows["part"] == "all"]
        lines += ["| claim | verdict | seeds | why |", "| --- | --- | --- | --- |"]
        for row in claims.itertuples():
            lines.append(
                f"| {row.claim}. {_escape_md(row.statement)} | **{row.verdict}** | "
                f"{row.seeds or '–'} | {_escape_md(row.note)} |"
            )
        lines += [
            "",
            "| part | statement | seeds | cells | effect | 95% interval | df | p (Holm, against) | "
            "verdict | limited by | variance shares | detectable now | seeds to replicate | "
            "seeds to contradict | seeds for ± margin | note |",
            "| --- " * 16 + "|",
        ]
        for _, row in rows[rows["part"] != "all"].iterrows():
            lines.append(
                f"| {row['part']} | {_escape_md(row['statement'])} | {row['seeds'] or '–'} | "
                f"{row['cells'] or '–'} | {_fmt(row['effect'])} | {_interval(row)} | "
                f"{_df(row['df'])} | "
                f"{_p(row['p_contradict_holm'])} | {row['verdict']} | {row['limited_by'] or ''} | "
                f"{_shares(row)} | {_fmt(row['detectable_now'])} | "
                f"{_seeds(row['seeds_to_replicate'])} | {_seeds(row['seeds_to_contradict'])} | "
                f"{_seeds(row['seeds_for_halfwidth'])} | {_escape_md(row['note'])} |"
            )
        lines.append("")
    lines += ["Tests: " + "; ".join(sorted({t for t in table["test"] if t})) + ".", ""]
    return "\n".join(lines)


def _rst_escape(text: str) -> str:
    import re

    return re.sub(r"([\\`*_|])", r"\\\1", str(text))


def rst(table: pd.DataFrame) -> str:
    """The verdict per claim as reStructuredText, for the report's landing page."""
    lines = []
    several = table["world"].nunique() > 1
    plan = table.attrs.get("plan") or load()
    for world, rows in table.groupby("world", sort=True):
        lines.append(f"**Findings{f' in world {_rst_escape(world)}' if several else ''}.**")
        lines.append(f"Decided under {_rst_escape(plan.label)}.")
        lines.append("")
        for row in rows[rows["part"] == "all"].itertuples():
            note = f" ({_rst_escape(row.note)})" if row.note else ""
            seeds = f", {row.seeds} seeds" if row.seeds else ""
            lines.append(
                f"- Claim {row.claim}, **{row.verdict}**{seeds}: {_rst_escape(row.statement)}{note}"
            )
        lines.append("")
    return "\n".join(lines)


def html(table: pd.DataFrame, meta: dict | None = None) -> str:
    """The findings as a self-contained HTML page (the report's Findings entry)."""
    import html as html_lib

    from ..pages import html_page

    body = []
    for world, rows in table.groupby("world", sort=True):
        shown = rows.copy()
        shown["95% interval"] = [_interval(r) for _, r in shown.iterrows()]
        for column in ("seeds_to_replicate", "seeds_to_contradict", "seeds_for_halfwidth"):
            shown[column] = [_seeds(v) for v in shown[column]]
        columns = [
            "claim",
            "part",
            "statement",
            "verdict",
            "seeds",
            "cells",
            "effect",
            "95% interval",
            "df",
            "p_contradict_holm",
            "limited_by",
            "detectable_now",
            "seeds_to_replicate",
            "seeds_to_contradict",
            "seeds_for_halfwidth",
            "note",
        ]
        body.append(f"<h2>World {html_lib.escape(str(world))}</h2>")
        body.append(
            shown[columns].to_html(
                index=False, na_rep="", float_format=lambda v: f"{v:.3g}", classes="grid"
            )
        )
    items = [*_worlds_note(meta), *plan_lines(table)]
    meta_html = "".join(f"<li>{html_lib.escape(line.removeprefix('- '))}</li>" for line in items)
    intro = (
        "A verdict per claim of the study: replicated, contradicted, negligible, inconclusive "
        "(with what more seeds could do) or not tested (the grid lacks the axis). Part 'all' "
        "combines a claim's parts. See docs/findings.md and docs/analysis-plan.md. "
        + (WORLD_DEPENDENCE if _golden(table) else "")
    )
    return html_page("Findings", intro, f"<ul>{meta_html}</ul>" + "".join(body))


def grid_meta(summary: pd.DataFrame) -> dict:
    """What the findings stand on: runs, seeds, test prompts."""
    meta = {
        "runs": len(summary),
        "seeds": f"{summary['seed'].nunique()} "
        f"({', '.join(str(s) for s in sorted(summary['seed'].unique()))})",
    }
    if "test_prompts" in summary:
        meta["test prompts"] = ", ".join(
            str(int(v)) for v in sorted(summary["test_prompts"].unique())
        )
    # The world knobs the verdicts depend on and no claim's data identify (docs/analysis-plan.md).
    knobs = [c for c in WORLD_KNOBS if c in summary]
    if knobs:
        for world, row in summary.drop_duplicates("world").set_index("world")[knobs].iterrows():
            values = ", ".join(
                f"{c.removeprefix('world_')} {row[c]:g}" for c in knobs if pd.notna(row[c])
            )
            if values:
                meta[f"world {world}"] = values
    return meta


def write(
    summary_path, csv_path, md_path, rst_path=None, html_path=None, metric_files=None
) -> pd.DataFrame:
    """Read the summary, test every claim, write the findings table and its pages atomically.

    ``metric_files``: the runs' metrics.json, whose per-prompt values give the interval over
    seeds and test prompts (without them, over seeds alone)."""
    from ..io import atomic_path
    from ..summary import read_summary
    from .resampling import read_per_prompt

    summary = read_summary(summary_path)
    per_prompt = None if metric_files is None else read_per_prompt(metric_files)
    table = findings(summary, per_prompt=per_prompt)
    meta = grid_meta(summary)
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    pages = [(md_path, markdown(table, meta))]
    if rst_path is not None:
        pages.append((rst_path, rst(table)))
    if html_path is not None:
        pages.append((html_path, html(table, meta)))
    for path, text in pages:
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return table
