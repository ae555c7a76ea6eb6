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

Beside the t-interval over seeds, each part gets a two-level bootstrap interval over seeds and
test prompts, from the per-test-prompt values every run's ``metrics.json`` stores (key
``per_prompt``). The test prompts are crossed with the seeds (every run of a world is scored on
the same prompts), so one replicate draws the prompts once, with replacement, for every run and
seed of the world, recomputes each run's value on them, and then draws the seeds with
replacement; the interval is the percentile interval of the part's statistic over the
replicates. The t-interval treats the test set as fixed; the bootstrap also covers the test
prompts, but with few seeds its seed level is too narrow (no t quantile). So the verdict stands on
both: replicated (contradicted) only when both intervals lie on the claimed (other) side of the
threshold, inconclusive otherwise; ``decided_by`` names the interval that kept a part undecided.
Runs without per-prompt values (results written before they were stored) fall back to the
t-interval alone, and the table says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from .designs import columns as design_columns
from .designs import get

METRIC = "bon_gain_normalized"  # share of the oracle's Best-of-N gain: comparable across worlds
CONFIDENCE = 0.95
POWER = 0.8
ERROR_THRESHOLD = 0.10  # the study's boundary between low and high label error
MARGIN = 0.02  # "matches": within 2% of the oracle's gain
MAX_SEEDS = 10_000  # seeds-needed figures above this are reported as this cap
RESAMPLES = 2000  # bootstrap replicates over seeds and test prompts
BOOTSTRAP_SEED = 0  # fixed: the same results give the same bootstrap interval
# Metrics whose per-run value the stored per-prompt values reproduce on any set of prompts.
PROMPT_METRICS = ("bon_gain_normalized", "bon_gain")
RUN_KEYS = ("world", "design", "n", "annotator", "head", "seed")

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
    "boot_low",
    "boot_high",
    "verdict",
    "decided_by",
    "seeds_needed",
    "note",
]
# decided_by: which interval settles the verdict
BOTH, BY_T, BY_BOOTSTRAP, T_ONLY = (
    "both intervals",
    "t-interval",
    "bootstrap interval",
    "t-interval only (no per-prompt values)",
)
NO_INTERVAL = "no interval (one seed)"


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
    boot_low: float = float("nan")
    boot_high: float = float("nan")
    verdict: str = NOT_TESTED
    decided_by: str = ""
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


def interval_verdict(low: float, high: float, threshold: float) -> str:
    """The verdict an interval gives on its own."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return INCONCLUSIVE
    if low > threshold:
        return REPLICATED
    if high < threshold:
        return CONTRADICTED
    return INCONCLUSIVE


def both_intervals(t_verdict: str, boot_verdict: str) -> tuple[str, str]:
    """The verdict on both intervals (decided only when both decide it the same way) and the
    interval that settles it."""
    if t_verdict == boot_verdict:
        return t_verdict, BOTH
    if t_verdict != INCONCLUSIVE and boot_verdict == INCONCLUSIVE:
        return INCONCLUSIVE, BY_BOOTSTRAP
    if t_verdict == INCONCLUSIVE and boot_verdict != INCONCLUSIVE:
        return INCONCLUSIVE, BY_T
    return INCONCLUSIVE, BOTH  # opposite sides: no verdict


def prompt_counts(prompts: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(1 + resamples, P) times each test prompt is drawn: row 0 every prompt once (the value on
    the test set itself), then one draw of P prompts with replacement per replicate."""
    draws = rng.integers(0, prompts, size=(resamples, prompts))
    counts = np.zeros((resamples + 1, prompts))
    counts[0] = 1
    np.add.at(counts, (1 + np.arange(resamples)[:, None], draws), 1)
    return counts


def resampled_values(gain: np.ndarray, oracle: np.ndarray, counts: np.ndarray, metric: str):
    """(runs, 1 + resamples) value of each run on each draw of test prompts.

    ``gain`` and ``oracle`` are (runs, P) per-prompt Best-of-N gains at the largest N of the run
    and of the golden oracle. ``bon_gain`` is the mean of the drawn prompts' gains;
    ``bon_gain_normalized`` the run's mean over the drawn prompts divided by the oracle's (a ratio
    of means, as the evaluation computes it on all prompts).
    """
    if metric not in PROMPT_METRICS:
        raise ValueError(f"no per-prompt values for metric {metric!r}")
    total = gain @ counts.T / counts.sum(axis=1)
    if metric == "bon_gain":
        return total
    oracle_total = oracle @ counts.T / counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(oracle_total > 0, total / oracle_total, np.nan)


def bootstrap_interval(
    replicates: np.ndarray,
    seed_draws: np.ndarray,
    confidence: float = CONFIDENCE,
    *,
    fisher: bool = False,
    prompts: bool = True,
) -> tuple[float, float]:
    """Percentile interval of the mean over resampled seeds of a per-seed statistic.

    ``replicates`` is (S, 1 + B): column 0 the seed's statistic on the test prompts themselves,
    column 1 + b on replicate b's draw of prompts (the same draw for every seed). ``seed_draws``
    is (B, S): the seeds drawn, with replacement, in replicate b. ``prompts=False`` keeps the
    test prompts fixed (a bootstrap over seeds only). ``fisher``: the statistic is a correlation,
    averaged as Fisher's z and reported back as r.
    """
    replicates = np.asarray(replicates, dtype=float)
    seeds, columns = replicates.shape
    resamples = seed_draws.shape[0]
    if seeds < 2:
        return float("nan"), float("nan")
    if prompts and columns < 1 + resamples:
        raise ValueError(f"{resamples} seed draws for {columns - 1} prompt draws")
    if fisher:
        replicates = np.arctanh(np.clip(replicates, -0.999999, 0.999999))
    source = replicates[:, 1 : 1 + resamples] if prompts else replicates[:, [0] * resamples]
    means = np.take_along_axis(source.T, seed_draws, axis=1).mean(axis=1)
    means = means[np.isfinite(means)]
    if means.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    if fisher:
        low, high = np.tanh(low), np.tanh(high)
    return float(low), float(high)


# ---------------------------------------------------------------------------------------------
# Pairing
#
# Every claim is computed twice on a world whose runs have per-prompt values: once on each run's
# value (a float), once on its values over the bootstrap's draws of test prompts (an array, in
# the same ``value`` column). The pairing code is the same; only the two averages below and the
# test at the end (``_part``) see the difference.


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray)


def _array_mean(values: pd.Series):
    """Mean over cells of per-draw arrays, skipping missing cells like pandas' mean does."""
    import warnings

    arrays = [v for v in values if _is_array(v)]
    if not arrays:
        return np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw where every cell is missing
        return np.nanmean(np.stack(arrays), axis=0)


def _holds_arrays(column: pd.Series) -> bool:
    return column.dtype == object and any(_is_array(v) for v in column)


def _point(values: pd.Series) -> pd.Series:
    """The value on the test prompts themselves (column 0 of a per-draw array)."""
    return values.map(lambda v: v[0] if _is_array(v) else v).astype(float)


def _pivot(frame: pd.DataFrame, index: list[str], columns: str, values: str) -> pd.DataFrame:
    if _holds_arrays(frame[values]):
        return frame.groupby([*index, columns])[values].agg(_array_mean).unstack(columns)
    return frame.pivot_table(index=index, columns=columns, values=values)


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
    for column in design_columns():  # a table without them: the designs' registered settings
        if column not in frame:
            frame[column] = frame["design"].map(lambda name, c=column: get(name).settings.get(c))
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
    if _holds_arrays(differences[column]):
        return differences.groupby("seed")[column].agg(_array_mean)
    return differences.groupby("seed")[column].mean()


def _part(world, claim, part, statement, test, values, threshold, cells, note="") -> Part:
    values = pd.Series(values)
    if not np.isfinite(_point(values)).any():
        return _untested(world, claim, part, statement, "no setting of the grid pairs these runs")
    if _holds_arrays(values):  # the per-draw pass: keep the arrays, decide nothing
        row = Part(world, claim, part, statement, test=test, cells=int(cells))
        row.extra["draws"] = values
        return row
    result = decide(values, threshold)
    extra_note = result.pop("note", "")
    row = Part(world, claim, part, statement, test=test, cells=int(cells), **result)
    row.note = "; ".join(x for x in (note, extra_note) if x)
    row.extra["per_seed"] = values
    return row


NO_GOLDEN = (
    "a preference world has no golden reward (docs/preferences.md): its Best-of-N gains are not "
    "the study's"
)


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
        drops = _pivot(diff, [*group, "seed"], "head", "difference")
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
    wide = _pivot(matched, ["n", "annotator", "head", "seed"], "candidates", "difference")
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
    matched = cross_minus_same(frame)
    matched = matched[np.isfinite(_point(matched["difference"]))].dropna(subset=["dr_difference"])
    correlations, points = {}, 0
    for seed, rows in matched.groupby("seed"):
        # The gap varies between candidate rules by design; within one rule only by chance.
        point = _point(rows["difference"])
        if len(rows) >= 3 and rows["candidates"].nunique() >= 2 and point.std():
            if _holds_arrays(rows["difference"]):
                correlations[seed] = _correlations(rows["dr_difference"], rows["difference"])
            else:
                correlations[seed] = float(np.corrcoef(rows["dr_difference"], point)[0, 1])
            points += len(rows)
    if not correlations:
        reason = (
            "needs same- and cross-prompt runs of at least two candidate rules (whose mean |Δr| "
            "differ by design), three or more matched settings per seed"
        )
        return [_untested(world, "4", "4", statement, reason)]
    test = (
        "t-test over seeds of Fisher's z of the per-seed Pearson r, r > 0; "
        "effect and interval are r"
    )
    series = pd.Series(correlations)
    if _holds_arrays(series):
        part = Part(world, "4", "4", statement, test=test, cells=points)
        part.extra.update(draws=series, fisher=True)
        return [part]
    result = decide_correlation(list(correlations.values()))
    note = result.pop("note", "")
    part = Part(world, "4", "4", statement, test=test, cells=points, **result)
    part.note = note
    part.extra.update(per_seed=series, fisher=True)
    return [part]


def _correlations(x: pd.Series, draws: pd.Series) -> np.ndarray:
    """Pearson r between ``x`` and each draw's values (one array per row of ``draws``)."""
    x = x.to_numpy(dtype=float)
    y = np.stack(list(draws))  # (cells, 1 + resamples)
    xc, yc = x - x.mean(), y - y.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc @ yc) / np.sqrt((xc @ xc) * (yc * yc).sum(axis=0))


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


# ---------------------------------------------------------------------------------------------
# The bootstrap over seeds and test prompts


def run_key(values) -> tuple:
    """The identity of a run in the summary and in its metrics.json."""
    world, design, n, annotator, head, seed = (values[k] for k in RUN_KEYS)
    return (str(world), str(design), int(n), str(annotator), str(head), int(seed))


def read_per_prompt(metric_files) -> dict[tuple, dict]:
    """Per-test-prompt values of each run that has them: run key -> ``bon_gain`` and
    ``oracle_bon_gain`` arrays (the ensemble's primary aggregation, like the summary's columns)."""
    from .io import read_json
    from .summary import PRIMARY_AGGREGATION

    out = {}
    for path in metric_files:
        record = read_json(path)
        stored = record.get("per_prompt")
        if not stored:  # written before per-prompt values were stored
            continue
        values = stored["aggregations"][PRIMARY_AGGREGATION]
        out[run_key(record["run"])] = {
            "bon_gain": np.asarray(values["bon_gain"], dtype=float),
            "oracle_bon_gain": np.asarray(stored["oracle_bon_gain"], dtype=float),
        }
    return out


def prompt_draws(
    world: str,
    data: pd.DataFrame,
    metric: str,
    per_prompt: dict | None,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[pd.DataFrame | None, str]:
    """The world's runs with ``value`` replaced by their values on the bootstrap's draws of test
    prompts (arrays: the test prompts themselves, then one per replicate), or None and why not."""
    from .seeding import rng

    if per_prompt is None:
        return None, "no per-run metrics given"
    if metric not in PROMPT_METRICS:
        return None, f"no per-prompt values of {metric}"
    keys = [run_key(row) for _, row in data.iterrows()]
    missing = sum(key not in per_prompt for key in keys)
    if missing:
        return None, (
            f"{missing} of {len(keys)} runs have no per-prompt values (results written before "
            "they were stored; rerun their evaluate jobs)"
        )
    sizes = {per_prompt[k]["bon_gain"].size for k in keys}
    sizes |= {per_prompt[k]["oracle_bon_gain"].size for k in keys}
    if len(sizes) != 1:
        return None, "runs differ in their number of test prompts"
    gain = np.stack([per_prompt[k]["bon_gain"] for k in keys])
    oracle = np.stack([per_prompt[k]["oracle_bon_gain"] for k in keys])
    counts = prompt_counts(gain.shape[1], resamples, rng(seed, "findings", "prompts", world))
    values = resampled_values(gain, oracle, counts, metric)
    if not np.allclose(values[:, 0], data["value"], rtol=1e-9, atol=1e-12, equal_nan=True):
        return None, f"the per-prompt values do not reproduce {metric} of the summary"
    draws = data.copy()
    draws["value"] = pd.Series(list(values), index=data.index, dtype=object)
    return draws, ""


def add_bootstrap(
    world: str,
    parts: list[Part],
    draws: list[Part],
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> None:
    """Each tested part's bootstrap interval, and its verdict on both intervals (in place)."""
    from .seeding import rng

    if [(p.part, p.statement) for p in parts] != [(p.part, p.statement) for p in draws]:
        raise RuntimeError(f"world {world}: the per-draw pass tested other parts")
    for part, drawn in zip(parts, draws, strict=True):
        if part.verdict == NOT_TESTED:
            continue
        values = part.extra["per_seed"].astype(float)
        seeds = values.index[np.isfinite(values)]
        replicates = drawn.extra["draws"].reindex(seeds)
        if len(seeds) < 2:
            part.decided_by = NO_INTERVAL
            continue
        if not all(_is_array(v) for v in replicates):
            raise RuntimeError(f"world {world}, part {part.part}: seeds without per-draw values")
        matrix = np.stack(list(replicates))
        if not np.allclose(matrix[:, 0], values[seeds], rtol=1e-9, atol=1e-12):
            raise RuntimeError(f"world {world}, part {part.part}: the per-draw pass disagrees")
        seed_draws = rng(seed, "findings", "seeds", world, part.part, part.statement).integers(
            0, len(seeds), size=(resamples, len(seeds))
        )
        fisher = bool(part.extra.get("fisher"))
        part.boot_low, part.boot_high = bootstrap_interval(matrix, seed_draws, fisher=fisher)
        t_verdict = part.verdict
        boot_verdict = interval_verdict(part.boot_low, part.boot_high, part.threshold)
        part.verdict, part.decided_by = both_intervals(t_verdict, boot_verdict)
        if part.decided_by == BY_BOOTSTRAP:
            part.note = "; ".join(
                x
                for x in (
                    part.note,
                    f"{t_verdict} on the t-interval over seeds, but the bootstrap interval over "
                    "seeds and test prompts contains the threshold: more test prompts, not "
                    "seeds, would decide it",
                )
                if x
            )
            part.seeds_needed = float("nan")


def findings(
    summary: pd.DataFrame,
    metric: str = METRIC,
    per_prompt: dict | None = None,
    *,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """One row per claim (part ``all``: the combined verdict) and per tested part, per world.

    ``per_prompt`` (from :func:`read_per_prompt`) adds the bootstrap over seeds and test prompts;
    without it, or for a world where a run lacks per-prompt values, the verdicts stand on the
    t-interval over seeds alone (``decided_by`` says so).
    """
    frame = prepare(summary, metric)
    rows, fallbacks = [], {}
    for world, data in frame.groupby("world", sort=True):
        # A preference world has no golden reward: no claim of the study can be tested on it.
        no_golden = "source" in data and bool((data["source"] == "preferences").all())
        drawn, why = (
            (None, "")
            if no_golden
            else prompt_draws(str(world), data, metric, per_prompt, resamples, seed)
        )
        if drawn is None and not no_golden:
            fallbacks[str(world)] = why
        for claim, test in (("1", claim1), ("2", claim2), ("3", claim3), ("4", claim4)):
            parts = (
                [_untested(str(world), claim, claim, CLAIMS[claim], NO_GOLDEN)]
                if no_golden
                else test(str(world), data)
            )
            if drawn is not None:
                add_bootstrap(str(world), parts, test(str(world), drawn), resamples, seed)
            for part in parts:
                part.metric = metric
                if part.verdict != NOT_TESTED and not part.decided_by:
                    part.decided_by = T_ONLY
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
    names = [f.name for f in fields(Part) if f.name != "extra"]
    table = pd.DataFrame([{k: getattr(r, k) for k in names} for r in rows])[COLUMNS]
    # Why a world's verdicts stand on the t-interval alone (read by the pages).
    table.attrs["bootstrap_fallback"] = fallbacks
    table.attrs["resamples"] = resamples
    return table


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


def _boot_interval(row) -> str:
    if not np.isfinite(row["boot_low"]):
        return "–"
    return f"[{row['boot_low']:+.3f}, {row['boot_high']:+.3f}]"


def bootstrap_lines(table: pd.DataFrame) -> list[str]:
    """What the bootstrap intervals stand on, and the worlds that have none (and why)."""
    fallback = table.attrs.get("bootstrap_fallback", {})
    resamples = table.attrs.get("resamples", RESAMPLES)
    worlds = sorted(set(table["world"].astype(str)))
    lines = []
    with_draws = [w for w in worlds if w not in fallback]
    if with_draws:
        lines.append(
            f"- bootstrap over seeds and test prompts: {resamples:,} replicates, seed "
            f"{BOOTSTRAP_SEED}" + (f" (worlds {', '.join(with_draws)})" if fallback else "")
        )
    for world in worlds:
        if world in fallback:
            lines.append(
                f"- world {world}: no bootstrap over test prompts ({fallback[world]}); "
                "verdicts on the t-interval over seeds alone"
            )
    return lines


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
        f"{CONFIDENCE:.0%} t-interval over seeds; bootstrap: {CONFIDENCE:.0%} percentile "
        "interval of a bootstrap over seeds and test prompts (the same draw of prompts for "
        "every run and seed of a world); d_z: effect over its standard deviation "
        "across seeds. **replicated**: both intervals lie on the claimed side of the threshold "
        '(0, or −{m:g} for "matches or beats"); **contradicted**: both on the other side; '
        "**inconclusive**: otherwise; *decided by* names the interval that settles it, and "
        "*seeds needed* is what a t-test would need for {p:.0%} power at the observed effect "
        "and spread (left empty when the test prompts, not the seeds, keep it "
        "undecided).".format(m=MARGIN, p=POWER),
        "",
        *_worlds_note(meta),
        *bootstrap_lines(table),
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
            "| part | statement | seeds | cells | effect | 95% t-interval | bootstrap | d_z | p | "
            "verdict | decided by | seeds needed | note |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for _, row in rows[rows["part"] != "all"].iterrows():
            lines.append(
                f"| {row['part']} | {_escape_md(row['statement'])} | {row['seeds'] or '–'} | "
                f"{row['cells'] or '–'} | {_fmt(row['effect'])} | {_interval(row)} | "
                f"{_boot_interval(row)} | {_fmt(row['effect_size_dz'], 2)} | "
                f"{_p(row['p_value'])} | {row['verdict']} | {row['decided_by'] or ''} | "
                f"{_seeds_needed(row)} | {_escape_md(row['note'])} |"
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

    from .pages import html_page

    body = []
    for world, rows in table.groupby("world", sort=True):
        shown = rows.copy()
        shown["interval"] = [_interval(r) for _, r in shown.iterrows()]
        shown["bootstrap"] = [_boot_interval(r) for _, r in shown.iterrows()]
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
            "bootstrap",
            "effect_size_dz",
            "p_value",
            "decided_by",
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
    ) + "".join(
        f"<li>{html_lib.escape(line.removeprefix('- '))}</li>" for line in bootstrap_lines(table)
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


def write(
    summary_path, csv_path, md_path, rst_path=None, html_path=None, metric_files=None
) -> pd.DataFrame:
    """Read the summary, test every claim, write the findings table and its pages atomically.

    ``metric_files``: the runs' metrics.json, whose per-prompt values give the bootstrap over
    test prompts (without them, the t-interval over seeds alone)."""
    from .io import atomic_path
    from .summary import read_summary

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
