"""Findings: a verdict for each claim of the study, from the summary table.

Every claim is broken into parts, and every part is one statistical test on **paired**
differences. Two runs are paired when they share world, seed and everything else except the
factor under test, so they saw the same world and, where the factor allows, the same pairs and
labels (heads of one cell share pairs and labels; the two pairings of a candidate rule share the
seed of the pair draw and of the annotator). The replicate is the seed: within a seed, the paired
differences of all cells a part covers are averaged, and the test runs over the seeds, so cells
that share a seed never count as independent evidence.

For each part: the mean paired difference (the effect, in units of ``metric``), its 95%
t-interval over seeds, a two-sided one-sample t-test against the part's threshold, Cohen's d_z
(mean minus threshold, over the standard deviation across seeds), and a verdict:

* ``replicated``: the interval lies entirely on the claimed side of the threshold;
* ``contradicted``: it lies entirely on the other side;
* ``inconclusive``: it contains the threshold. Then ``seeds_needed`` is the number of seeds a
  two-sided t-test at the same level would need for 80% power to detect the observed effect with
  the observed spread (statsmodels ``TTestPower``).

Two kinds of threshold: "A beats B" tests A − B against 0; "A matches or beats B" is a
non-inferiority test of A − B against −``margin`` (a difference smaller than the margin, in
share of the oracle's gain, counts as a match). A claim's verdict combines its parts: replicated
when every tested part is, contradicted when any part is, inconclusive otherwise. A part the
grid's axes cannot test is listed as ``not tested`` with the reason.

Intervals are over seeds only. The evaluation keeps one Best-of-N value per run, not one per
test prompt, so there is no bootstrap over test prompts: every seed is scored on the same test
prompts, and the verdicts are about this world's test set.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

METRIC = "bon_gain_normalized"  # share of the oracle's Best-of-N gain: comparable across worlds
CONFIDENCE = 0.95
POWER = 0.8
ERROR_THRESHOLD = 0.10  # the study's boundary between low and high label error
MARGIN = 0.02  # "matches": within 2% of the oracle's gain
MAX_SEEDS = 10_000  # seeds-needed figures above this are reported as this cap

REPLICATED, CONTRADICTED, INCONCLUSIVE, NOT_TESTED = (
    "replicated",
    "contradicted",
    "inconclusive",
    "not tested",
)
VERDICT_SCORE = {REPLICATED: 1.0, INCONCLUSIVE: 0.0, CONTRADICTED: -1.0}

CLAIMS = {
    "1": "Classifier heads match or beat Bradley-Terry when label error exceeds 10%; "
    "Bradley-Terry is ahead only below 10%.",
    "2": "Gains fall with fewer and with noisier annotations, and classifier heads degrade "
    "more gracefully than Bradley-Terry.",
    "3": "Cross-prompt annotation beats same-prompt annotation; the gain is largest for similar "
    "candidates and smallest, never negative, for diversified ones.",
    "4": "The cross-prompt gain tracks the mean |Δr| of the annotated pairs.",
}
BT_REFERENCE = "bt-mlp"  # the study's Bradley-Terry head type

COLUMNS = [
    "world",
    "claim",
    "part",
    "statement",
    "test",
    "metric",
    "seeds",
    "cells",
    "threshold",
    "effect",
    "ci_low",
    "ci_high",
    "effect_size_dz",
    "p_value",
    "verdict",
    "seeds_needed",
    "note",
]


@dataclass
class Part:
    """One tested (or untestable) part of a claim."""

    world: str
    claim: str
    part: str
    statement: str
    test: str = ""
    metric: str = METRIC
    seeds: int = 0
    cells: int = 0
    threshold: float = float("nan")
    effect: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    effect_size_dz: float = float("nan")
    p_value: float = float("nan")
    verdict: str = NOT_TESTED
    seeds_needed: float = float("nan")
    note: str = ""
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The statistics


def seeds_needed(effect_size: float, confidence: float = CONFIDENCE, power: float = POWER) -> int:
    """Seeds a two-sided one-sample t-test needs to detect ``effect_size`` (Cohen's d)."""
    from statsmodels.stats.power import TTestPower

    d = abs(float(effect_size))
    if not np.isfinite(d) or d == 0:
        return MAX_SEEDS
    try:
        n = TTestPower().solve_power(
            effect_size=d, alpha=1 - confidence, power=power, alternative="two-sided"
        )
    except (ValueError, RuntimeError):  # no root below the solver's bound: far too many
        return MAX_SEEDS
    n = float(np.asarray(n).ravel()[0])
    if not np.isfinite(n):
        return MAX_SEEDS
    return int(min(MAX_SEEDS, max(2, math.ceil(n))))


def decide(values, threshold: float = 0.0, confidence: float = CONFIDENCE) -> dict:
    """Test per-seed paired differences against ``threshold`` (the claim: mean > threshold).

    Returns effect (mean), interval, d_z, two-sided p-value, verdict and, when inconclusive, the
    seeds needed.
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    out = {"seeds": int(values.size), "threshold": float(threshold)}
    if values.size == 0:
        return {**out, "verdict": INCONCLUSIVE, "note": "no paired runs"}
    mean = float(values.mean())
    out["effect"] = mean
    if values.size < 2:
        return {**out, "verdict": INCONCLUSIVE, "note": "one seed: no interval"}
    sd = float(values.std(ddof=1))
    if sd == 0:  # every seed agrees exactly: the interval is a point
        low = high = mean
        p = 0.0 if mean != threshold else 1.0
        dz = math.copysign(math.inf, mean - threshold) if mean != threshold else 0.0
    else:
        result = stats.ttest_1samp(values, popmean=threshold)
        interval = result.confidence_interval(confidence)
        low, high, p = float(interval.low), float(interval.high), float(result.pvalue)
        dz = (mean - threshold) / sd
    out.update(ci_low=low, ci_high=high, p_value=p, effect_size_dz=dz)
    if low > threshold:
        out["verdict"] = REPLICATED
    elif high < threshold:
        out["verdict"] = CONTRADICTED
    else:
        out["verdict"] = INCONCLUSIVE
        out["seeds_needed"] = seeds_needed(dz, confidence)
    return out


def decide_correlation(per_seed_r, confidence: float = CONFIDENCE) -> dict:
    """Per-seed correlations, tested through Fisher's z (mean z > 0); interval back in r."""
    r = np.clip(np.asarray(per_seed_r, dtype=float), -0.999999, 0.999999)
    out = decide(np.arctanh(r[np.isfinite(r)]), 0.0, confidence)
    for key in ("effect", "ci_low", "ci_high"):
        if key in out:
            out[key] = float(np.tanh(out[key]))
    return out


# ---------------------------------------------------------------------------------------------
# Pairing


def _family(frame: pd.DataFrame) -> pd.Series:
    """The annotator without its β: model and every other parameter (β varies within a family)."""
    columns = [
        c for c in frame.columns if c.startswith("annotator_") and c not in ("annotator_model",)
    ]
    parts = [
        frame[c].map(lambda v: "" if pd.isna(v) else str(v))
        for c in ["annotator_model", *sorted(columns)]
    ]  # missing parameters (another model's) as ""
    return pd.concat(parts, axis=1).agg("|".join, axis=1)


def prepare(summary: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    """The columns the tests use, one row per run (single-run table, ensembles as their mean)."""
    needed = ["world", "design", "n", "annotator", "head", "seed", metric]
    missing = [c for c in needed if c not in summary.columns]
    if missing:
        raise ValueError(f"summary table lacks column(s) {', '.join(missing)}")
    frame = summary.copy()
    if "prompt_pairing" not in frame:
        frame["prompt_pairing"] = frame["design"].str.split("-").str[0]
    if "candidates" not in frame:
        frame["candidates"] = frame["design"].str.split("-").str[1]
    if "head_type" not in frame:
        frame["head_type"] = frame["head"]
    if "annotator_model" not in frame:
        frame["annotator_model"] = frame["annotator"]
    if "beta" not in frame:
        frame["beta"] = np.nan
    for column in ("annotation_mean_abs_dr", "annotation_realized_error_rate"):
        if column not in frame:
            frame[column] = np.nan
    frame["family"] = _family(frame)
    frame["value"] = frame[metric].astype(float)
    return frame


def paired(frame: pd.DataFrame, factor: str, low, high, keys: list[str]) -> pd.DataFrame:
    """Rows ``keys`` + ``difference`` = value at factor == high minus value at factor == low."""
    a = frame[frame[factor] == low][[*keys, "value"]]
    b = frame[frame[factor] == high][[*keys, "value"]]
    merged = a.merge(b, on=keys, suffixes=("_low", "_high"))
    merged["difference"] = merged["value_high"] - merged["value_low"]
    return merged


def per_seed(differences: pd.DataFrame, column: str = "difference") -> pd.Series:
    """The replicate: mean paired difference within each seed."""
    return differences.groupby("seed")[column].mean()


def _part(world, claim, part, statement, test, values, threshold, cells, note="") -> Part:
    if not np.isfinite(np.asarray(values, dtype=float)).any():
        return _untested(world, claim, part, statement, "no setting of the grid pairs these runs")
    result = decide(values, threshold)
    extra_note = result.pop("note", "")
    row = Part(world, claim, part, statement, test=test, cells=int(cells), **result)
    row.note = "; ".join(x for x in (note, extra_note) if x)
    return row


def _untested(world, claim, part, statement, reason) -> Part:
    return Part(world, claim, part, statement, verdict=NOT_TESTED, note=reason)


GREATER = "paired t-test over seeds, difference > 0"
NONINFERIOR = f"paired non-inferiority t-test over seeds, difference > −{MARGIN:g}"


# ---------------------------------------------------------------------------------------------
# Claim 1: classifier heads vs Bradley-Terry by label error


def _heads(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    types = frame.drop_duplicates("head").set_index("head")["head_type"].astype(str)
    bt = [h for h, t in types.items() if t == BT_REFERENCE]
    clf = [h for h, t in types.items() if t.startswith("clf")]
    return bt, clf


def _beta_axis(frame: pd.DataFrame) -> bool:
    beta = frame["beta"].where(np.isfinite(frame["beta"].astype(float)))
    return bool((beta.groupby(frame["family"]).nunique() >= 2).any())


def claim1(world: str, frame: pd.DataFrame) -> list[Part]:
    statement_a = "{clf} − {bt} at label error above 10% (matches or beats)"
    statement_b = (
        "({clf} − {bt}) above 10% label error minus below 10% (BT ahead only at low error)"
    )
    bt, clf = _heads(frame)
    if not _beta_axis(frame):
        reason = (
            "the grid has a single annotation quality β; the claim is about how the comparison "
            "changes with label error, which needs β values on both sides of 10% error"
        )
        return [_untested(world, "1", "1", CLAIMS["1"], reason)]
    if not bt or not clf:
        reason = f"needs a {BT_REFERENCE} head and a classifier head in the grid"
        return [_untested(world, "1", "1", CLAIMS["1"], reason)]
    label_keys = ["design", "n", "annotator"]
    error = frame.groupby(label_keys)["annotation_realized_error_rate"].transform("mean")
    frame = frame.assign(high_error=error > ERROR_THRESHOLD, low_error=error < ERROR_THRESHOLD)
    keys = ["design", "n", "annotator", "seed", "high_error", "low_error"]
    rows = []
    for reference in bt:
        for head in clf:
            diff = paired(frame, "head", reference, head, keys)
            high, low = diff[diff["high_error"]], diff[diff["low_error"]]
            names = {"clf": head, "bt": reference}
            if high.empty:
                rows.append(
                    _untested(world, "1", "1a", statement_a.format(**names), "no setting above 10%")
                )
            else:
                rows.append(
                    _part(
                        world,
                        "1",
                        "1a",
                        statement_a.format(**names),
                        NONINFERIOR,
                        per_seed(high),
                        -MARGIN,
                        len(high),
                    )
                )
            if high.empty or low.empty:
                reason = "needs settings both above and below 10% label error"
                rows.append(_untested(world, "1", "1b", statement_b.format(**names), reason))
                continue
            did = (per_seed(high) - per_seed(low)).dropna()
            rows.append(
                _part(
                    world,
                    "1",
                    "1b",
                    statement_b.format(**names),
                    GREATER + " (difference of differences)",
                    did,
                    0.0,
                    len(high) + len(low),
                )
            )
    return rows


# ---------------------------------------------------------------------------------------------
# Claim 2: fewer and noisier annotations


def _extremes(frame: pd.DataFrame, axis: str, group: list[str]) -> pd.DataFrame:
    """Rows at the smallest and largest ``axis`` value of their group, tagged ``low``/``high``."""
    values = frame[axis].astype(float)
    lo = values.groupby([frame[g] for g in group]).transform("min")
    hi = values.groupby([frame[g] for g in group]).transform("max")
    out = frame[(lo < hi) & ((values == lo) | (values == hi))].copy()
    out["level"] = np.where(out[axis].astype(float) == hi[out.index], "high", "low")
    return out


def claim2(world: str, frame: pd.DataFrame) -> list[Part]:
    bt, clf = _heads(frame)
    rows = []
    axes = {
        "n": ("fewer annotations", ["design", "annotator"], "pairs"),
        "beta": ("noisier annotations", ["design", "n", "family"], "β"),
    }
    for axis, (words, group, label) in axes.items():
        sub = frame[np.isfinite(frame[axis].astype(float))] if axis == "beta" else frame
        levels = _extremes(sub, axis, [*group, "head", "seed"])
        part_gain, part_grace = ("2a", "2c") if axis == "n" else ("2b", "2d")
        if levels.empty:
            reason = f"the grid has one value of {label} in every setting"
            rows.append(_untested(world, "2", part_gain, f"gain falls with {words}", reason))
            rows.append(
                _untested(world, "2", part_grace, f"classifiers degrade less with {words}", reason)
            )
            continue
        keys = [*group, "head", "seed"]
        diff = paired(levels, "level", "low", "high", keys)
        for head in sorted(diff["head"].unique()):
            mine = diff[diff["head"] == head]
            rows.append(
                _part(
                    world,
                    "2",
                    part_gain,
                    f"{head}: gain at the largest {label} minus at the smallest ({words} lower it)",
                    GREATER,
                    per_seed(mine),
                    0.0,
                    len(mine),
                )
            )
        if not bt or not clf:
            reason = f"needs a {BT_REFERENCE} head and a classifier head"
            rows.append(
                _untested(world, "2", part_grace, f"classifiers degrade less with {words}", reason)
            )
            continue
        drops = diff.pivot_table(index=[*group, "seed"], columns="head", values="difference")
        for reference in bt:
            for head in clf:
                if reference not in drops or head not in drops:
                    continue
                both = drops[[reference, head]].dropna()
                did = (both[reference] - both[head]).rename("difference").reset_index()
                rows.append(
                    _part(
                        world,
                        "2",
                        part_grace,
                        f"{reference} loss minus {head} loss going to the smallest {label} "
                        f"({head} degrades more gracefully)",
                        GREATER + " (difference of differences)",
                        per_seed(did),
                        0.0,
                        len(did),
                    )
                )
    return rows


# ---------------------------------------------------------------------------------------------
# Claims 3 and 4: cross-prompt vs same-prompt pairing


MATCH = ["candidates", "n", "annotator", "head", "seed"]


def cross_minus_same(frame: pd.DataFrame) -> pd.DataFrame:
    """Matched same/cross runs: gain difference and mean |Δr| difference (cross − same)."""
    cols = [*MATCH, "value", "annotation_mean_abs_dr"]
    same = frame[frame["prompt_pairing"] == "same"][cols]
    cross = frame[frame["prompt_pairing"] == "cross"][cols]
    merged = same.merge(cross, on=MATCH, suffixes=("_same", "_cross"))
    merged["difference"] = merged["value_cross"] - merged["value_same"]
    merged["dr_difference"] = (
        merged["annotation_mean_abs_dr_cross"] - merged["annotation_mean_abs_dr_same"]
    )
    return merged


def claim3(world: str, frame: pd.DataFrame) -> list[Part]:
    matched = cross_minus_same(frame)
    if matched.empty:
        reason = "no candidate rule was run with both same- and cross-prompt pairing"
        return [_untested(world, "3", "3", CLAIMS["3"], reason)]
    rows = []
    present = set(matched["candidates"])
    for candidates in ("random", "similar"):
        statement = f"cross − same, {candidates} candidates (cross-prompt wins)"
        if candidates not in present:
            reason = f"{candidates} candidates not run with both pairings"
            rows.append(_untested(world, "3", "3a", statement, reason))
            continue
        mine = matched[matched["candidates"] == candidates]
        rows.append(_part(world, "3", "3a", statement, GREATER, per_seed(mine), 0.0, len(mine)))
    statement = "cross − same, diversified candidates (never negative)"
    if "diversified" in present:
        mine = matched[matched["candidates"] == "diversified"]
        rows.append(
            _part(world, "3", "3d", statement, NONINFERIOR, per_seed(mine), -MARGIN, len(mine))
        )
    else:
        rows.append(_untested(world, "3", "3d", statement, "diversified not run with both"))
    # Ordering of the gains between candidate rules: settings (pairs, annotator, head, seed)
    # that ran both rules, difference of the cross − same differences.
    wide = matched.pivot_table(
        index=["n", "annotator", "head", "seed"], columns="candidates", values="difference"
    )
    orderings = [
        ("3b", "similar", "random", "largest for similar: (cross − same) similar minus random"),
        (
            "3b",
            "similar",
            "diversified",
            "largest for similar: (cross − same) similar minus diversified",
        ),
        (
            "3c",
            "random",
            "diversified",
            "smallest for diversified: (cross − same) random minus diversified",
        ),
    ]
    for part, larger, smaller, statement in orderings:
        if larger not in wide or smaller not in wide:
            reason = f"needs {larger} and {smaller} candidates, each with both pairings"
            rows.append(_untested(world, "3", part, statement, reason))
            continue
        both = wide[[larger, smaller]].dropna()
        did = (both[larger] - both[smaller]).rename("difference").reset_index()
        rows.append(
            _part(
                world,
                "3",
                part,
                statement,
                GREATER + " (difference of differences)",
                per_seed(did),
                0.0,
                len(did),
            )
        )
    return rows


def claim4(world: str, frame: pd.DataFrame) -> list[Part]:
    statement = (
        "Pearson r, over matched settings, between the cross − same mean |Δr| of the annotated "
        "pairs and the cross − same gain (rises with it)"
    )
    matched = cross_minus_same(frame).dropna(subset=["dr_difference", "difference"])
    correlations, points = {}, 0
    for seed, rows in matched.groupby("seed"):
        # The gap varies between candidate rules by design; within one rule only by chance.
        if len(rows) >= 3 and rows["candidates"].nunique() >= 2 and rows["difference"].std():
            correlations[seed] = float(np.corrcoef(rows["dr_difference"], rows["difference"])[0, 1])
            points += len(rows)
    if not correlations:
        reason = (
            "needs same- and cross-prompt runs of at least two candidate rules (whose mean |Δr| "
            "differ by design), three or more matched settings per seed"
        )
        return [_untested(world, "4", "4", statement, reason)]
    result = decide_correlation(list(correlations.values()))
    note = result.pop("note", "")
    part = Part(
        world,
        "4",
        "4",
        statement,
        test="t-test over seeds of Fisher's z of the per-seed Pearson r, r > 0; "
        "effect and interval are r",
        cells=points,
        **result,
    )
    part.note = note
    return [part]


# ---------------------------------------------------------------------------------------------
# The table


def combine(parts: list[Part]) -> tuple[str, str]:
    """A claim's verdict from its parts, and a note naming the parts that decided it."""
    tested = [p for p in parts if p.verdict != NOT_TESTED]
    if not tested:
        return NOT_TESTED, "; ".join(sorted({p.note for p in parts if p.note}))
    contradicted = [p.part for p in tested if p.verdict == CONTRADICTED]
    inconclusive = [p.part for p in tested if p.verdict == INCONCLUSIVE]
    untested = sorted({p.part for p in parts if p.verdict == NOT_TESTED})
    notes = []
    if untested:
        notes.append(f"not tested: {', '.join(untested)}")
    if contradicted:
        notes.insert(0, f"contradicted by {', '.join(sorted(set(contradicted)))}")
        return CONTRADICTED, "; ".join(notes)
    if inconclusive:
        notes.insert(0, f"undecided: {', '.join(sorted(set(inconclusive)))}")
        return INCONCLUSIVE, "; ".join(notes)
    return REPLICATED, "; ".join(notes)


def findings(summary: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    """One row per claim (part ``all``: the combined verdict) and per tested part, per world."""
    frame = prepare(summary, metric)
    rows = []
    for world, data in frame.groupby("world", sort=True):
        for claim, test in (("1", claim1), ("2", claim2), ("3", claim3), ("4", claim4)):
            parts = test(str(world), data)
            for part in parts:
                part.metric = metric
            verdict, note = combine(parts)
            seeds = max((p.seeds for p in parts), default=0)
            rows.append(
                Part(
                    str(world),
                    claim,
                    "all",
                    CLAIMS[claim],
                    verdict=verdict,
                    note=note,
                    seeds=seeds,
                    metric=metric,
                )
            )
            rows.extend(parts)
    table = pd.DataFrame([{k: v for k, v in asdict(r).items() if k != "extra"} for r in rows])
    return table[COLUMNS]


def claim_scores(table: pd.DataFrame) -> dict[str, float]:
    """One number per claim (and world, when there are several): +1 replicated, 0 inconclusive,
    −1 contradicted; claims not tested are left out."""
    verdicts = table[table["part"] == "all"]
    several = verdicts["world"].nunique() > 1
    out = {}
    for row in verdicts.itertuples():
        if row.verdict in VERDICT_SCORE:
            name = f"findings.claim{row.claim}" + (f".{row.world}" if several else "")
            out[name] = VERDICT_SCORE[row.verdict]
    return out


def findings_metrics(csv_path) -> dict[str, float]:
    """The per-claim numbers of a findings.csv, for the MLflow parent run."""
    return claim_scores(pd.read_csv(csv_path, dtype={"claim": str, "world": str}))


# ---------------------------------------------------------------------------------------------
# Writing: CSV, Markdown (the report's first page and docs), reStructuredText (Snakemake report)


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


def _seeds_needed(row) -> str:
    value = row["seeds_needed"]
    if not np.isfinite(value):
        return ""
    return f"≥ {MAX_SEEDS:,}" if value >= MAX_SEEDS else f"{int(value)}"


def _p(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.2g}"


def _escape_md(text: str) -> str:
    return str(text).replace("|", "\\|")


def _worlds_note(meta: dict | None) -> list[str]:
    if not meta:
        return []
    lines = []
    for key, value in meta.items():
        lines.append(f"- {key}: {value}")
    return lines


def markdown(table: pd.DataFrame, meta: dict | None = None) -> str:
    """findings.md: the verdict per claim, then every part with its test and numbers."""
    metric = table["metric"].iloc[0] if len(table) else METRIC
    lines = [
        "# Findings: the study's claims tested on this experiment",
        "",
        f"Each claim is split into parts; each part is a paired test over seeds of `{metric}` "
        f"(share of the oracle's Best-of-N gain). Effect: mean paired difference; interval: "
        f"{CONFIDENCE:.0%} t-interval over seeds; d_z: effect over its standard deviation "
        "across seeds. **replicated**: the interval lies on the claimed side of the threshold "
        '(0, or −{m:g} for "matches or beats"); **contradicted**: on the other side; '
        "**inconclusive**: it contains the threshold, and *seeds needed* is what a t-test would "
        "need for {p:.0%} power at the observed effect and spread. Intervals are over seeds "
        "only: per-prompt values are not stored, so there is no bootstrap over test prompts "
        "(every seed is scored on the same test prompts).".format(m=MARGIN, p=POWER),
        "",
        *_worlds_note(meta),
        "",
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
            "| part | statement | seeds | cells | effect | 95% interval | d_z | p | verdict | "
            "seeds needed | note |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for _, row in rows[rows["part"] != "all"].iterrows():
            lines.append(
                f"| {row['part']} | {_escape_md(row['statement'])} | {row['seeds'] or '–'} | "
                f"{row['cells'] or '–'} | {_fmt(row['effect'])} | {_interval(row)} | "
                f"{_fmt(row['effect_size_dz'], 2)} | "
                f"{_p(row['p_value'])} | "
                f"{row['verdict']} | {_seeds_needed(row)} | {_escape_md(row['note'])} |"
            )
        lines.append("")
    lines += [
        "Tests: " + "; ".join(sorted({t for t in table["test"] if t})) + ".",
        "",
    ]
    return "\n".join(lines)


def _rst_escape(text: str) -> str:
    import re

    return re.sub(r"([\\`*_|])", r"\\\1", str(text))


def rst(table: pd.DataFrame) -> str:
    """The verdict per claim as reStructuredText, for the report's landing page."""
    lines = []
    several = table["world"].nunique() > 1
    for world, rows in table.groupby("world", sort=True):
        lines.append(f"**Findings{f' in world {_rst_escape(world)}' if several else ''}.**")
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

    from .summary import html_page

    body = []
    for world, rows in table.groupby("world", sort=True):
        shown = rows.copy()
        shown["interval"] = [_interval(r) for _, r in shown.iterrows()]
        shown["seeds needed"] = [_seeds_needed(r) for _, r in shown.iterrows()]
        columns = [
            "claim",
            "part",
            "statement",
            "verdict",
            "seeds",
            "cells",
            "effect",
            "interval",
            "effect_size_dz",
            "p_value",
            "seeds needed",
            "note",
        ]
        body.append(f"<h2>World {html_lib.escape(str(world))}</h2>")
        body.append(
            shown[columns].to_html(
                index=False, na_rep="", float_format=lambda v: f"{v:.3g}", classes="grid"
            )
        )
    meta_html = "".join(
        f"<li>{html_lib.escape(str(k))}: {html_lib.escape(str(v))}</li>"
        for k, v in (meta or {}).items()
    )
    intro = (
        "A verdict per claim of the study: replicated, contradicted, inconclusive (with the "
        "seeds the observed spread would need) or not tested (the grid lacks the axis). Part "
        "'all' combines a claim's parts. See docs/findings.md for the tests."
    )
    return html_page("Findings", intro, f"<ul>{meta_html}</ul>" + "".join(body))


def grid_meta(summary: pd.DataFrame) -> dict:
    """What the findings stand on: runs, seeds, test prompts, worlds."""
    meta = {
        "runs": len(summary),
        "seeds": f"{summary['seed'].nunique()} "
        f"({', '.join(str(s) for s in sorted(summary['seed'].unique()))})",
    }
    if "test_prompts" in summary:
        meta["test prompts"] = ", ".join(
            str(int(v)) for v in sorted(summary["test_prompts"].unique())
        )
    return meta


def write(summary_path, csv_path, md_path, rst_path=None, html_path=None) -> pd.DataFrame:
    """Read the summary, test every claim, write the findings table and its pages atomically."""
    from .io import atomic_path
    from .summary import read_summary

    summary = read_summary(summary_path)
    table = findings(summary)
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
