"""Claims 1 and 2 restated for a world without a golden reward: held-out preference accuracy.

A preference world (:mod:`embrm.sources.preferences`) has the dataset's labels and no golden
reward, so what its runs can test is held-out preference accuracy (``pref_accuracy``), with label
noise added at a known rate by the ``flip`` annotator (``observed`` is rate 0). The parts are
contrasts declared once in :data:`REGISTRY`, like :mod:`embrm.findings.claims`, and decided by
the same machinery (:func:`embrm.findings.table.decide_world`); what they need from the plan is
its section "Worlds without a golden reward" (docs/analysis-plan.md): the scale (percentage
points), the 1-point margin, the designs covered.

The unit of resampling is the test prompt: the pairs of one prompt are not independent draws.
Each run's metrics.json stores per test prompt the sum of right values of its non-tied pairs and
their count (:func:`embrm.preference_metrics.prompt_pair_counts`); :func:`prompt_values` turns them
into per-prompt values whose mean is the run's accuracy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .claims import (
    BT_REFERENCE,
    CLAIMS,
    GRACE,
    Built,
    Contrast,
    _heads,
    cell_mean,
    head_pairs,
    match,
    per_head,
)
from .plan import Plan
from .resampling import run_key
from .statistics import NONINFERIORITY, SUPERIORITY

SOURCE = "preferences"
PERCENT = 100.0  # accuracy is tested in percentage points (docs/analysis-plan.md)
CLAIMS_ON_ACCURACY = {
    "1": "On held-out preference accuracy, classifier heads match or beat Bradley-Terry under "
    "label noise, and their lead grows with the noise.",
    "2": "Accuracy falls with fewer and with noisier labels, and classifier heads degrade more "
    "gracefully than Bradley-Terry.",
    "3": CLAIMS["3"],
    "4": CLAIMS["4"],
}
NO_GOLDEN = (
    "needs a golden reward, which a preference world does not have (docs/preferences.md): {what}"
)


def is_preference_world(data: pd.DataFrame) -> bool:
    return "source" in data and bool((data["source"] == SOURCE).all())


# ---------------------------------------------------------------------------------------------
# Per-test-prompt values


def linearized_accuracy(right: np.ndarray, decided: np.ndarray) -> np.ndarray:
    """Per-prompt accuracy values (percentage points) of (..., P) right sums and non-tied pair
    counts: R + (c_p − R·d_p)/d̄ with R = Σc/Σd, whose mean over the P prompts is R."""
    right, decided = np.asarray(right, dtype=float), np.asarray(decided, dtype=float)
    d_mean = decided.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = right.sum(axis=-1, keepdims=True) / decided.sum(axis=-1, keepdims=True)
        values = np.where(d_mean > 0, ratio + (right - ratio * decided) / d_mean, np.nan)
    return PERCENT * values


def prompt_values(data: pd.DataFrame, per_prompt: dict | None) -> tuple[np.ndarray | None, str]:
    """(runs of ``data`` in row order, test prompts) accuracy values in percentage points whose
    mean over prompts is each run's ``value``, or None and why not.

    A run's accuracy is a ratio of sums, R = Σc_p / Σd_p (c_p: right values, d_p: non-tied pairs
    of prompt p); its per-prompt value is the linearization R + (c_p − R·d_p)/d̄ (delta method),
    as for ``bon_gain_normalized``: the mean over prompts is R exactly, and a prompt with more
    pairs weighs more, as it does in R."""
    if per_prompt is None:
        return None, "no per-run metrics given"
    keys = [run_key(row) for _, row in data.iterrows()]
    missing = sum("pref_right" not in per_prompt.get(key, {}) for key in keys)
    if missing:
        return None, (
            f"{missing} of {len(keys)} runs have no per-prompt pair counts (results written "
            "before they were stored; rerun their evaluate jobs)"
        )
    sizes = {per_prompt[k]["pref_right"].size for k in keys}
    if len(sizes) != 1:
        return None, "runs differ in their number of test prompts"
    right = np.stack([per_prompt[k]["pref_right"] for k in keys])
    decided = np.stack([per_prompt[k]["pref_decided"] for k in keys])
    values = linearized_accuracy(right, decided)
    if not np.allclose(values.mean(axis=1), data["value"], rtol=1e-9, atol=1e-9, equal_nan=True):
        return None, "the per-prompt pair counts do not reproduce pref_accuracy of the summary"
    return values, ""


# ---------------------------------------------------------------------------------------------
# The noise axis


def flip_rate(frame: pd.DataFrame) -> pd.Series:
    """The rate of added label noise of each run, a setting: 0 for ``observed``, the ``flip``
    annotator's rate; NaN for any other annotator (not on the noise axis)."""
    model = frame["annotator_model"].astype(str)
    rate = frame["annotator_rate"] if "annotator_rate" in frame else pd.Series(np.nan, frame.index)
    rate = pd.to_numeric(rate, errors="coerce")
    return pd.Series(
        np.where(model == "observed", 0.0, np.where(model == "flip", rate, np.nan)),
        index=frame.index,
    )


def _covered(frame: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    sub = frame[frame["design"].isin(plan.preference_designs)]
    sub = sub.assign(flip_rate=flip_rate(sub))
    return sub[np.isfinite(sub["flip_rate"])]


def _levels(frame: pd.DataFrame, column: str, group: list[str]) -> pd.DataFrame:
    """Runs at the smallest and largest ``column`` of their setting (``group`` + head + seed),
    tagged ``level`` high or low; settings with a single value are left out."""
    values = frame[column].astype(float)
    keys = [frame[g] for g in [*group, "head", "seed"]]
    lo, hi = values.groupby(keys).transform("min"), values.groupby(keys).transform("max")
    out = frame[(lo < hi) & ((values == lo) | (values == hi))].copy()
    out["level"] = np.where(out[column].astype(float) == hi[out.index], "high", "low")
    return out


# 1b-acc and 2d-acc are one contrast: the classifier's lead growing with the flip rate is
# Bradley-Terry losing more accuracy to the flips. Both claims state it; it is one piece of
# evidence, reported in each.
SAME_AS = "the same contrast as {other}: one piece of evidence, stated by both claims"
NOISE = ("flip_rate", ["design", "n"], "flip rate")
QUANTITY = ("n", ["design", "annotator"], "number of pairs")


def _untestable(frame: pd.DataFrame, plan: Plan) -> tuple[pd.DataFrame, str]:
    sub = _covered(frame, plan)
    if sub.empty:
        return sub, (
            f"no run with observed or flipped labels on the designs covered "
            f"({', '.join(plan.preference_designs)})"
        )
    return sub, ""


# ---------------------------------------------------------------------------------------------
# Claim 1 on accuracy


def _claim1_noisiest(frame, plan):
    sub, why = _untestable(frame, plan)
    if why:
        return why
    bt, clf = _heads(sub)
    if not bt or not clf:
        return f"needs a {BT_REFERENCE} head and a classifier head in the grid"
    top = sub.groupby(["design", "n"])["flip_rate"].transform("max")
    noisiest = sub[(sub["flip_rate"] == top) & (top > 0)]
    if noisiest.empty:
        return "no flipped labels in the grid (a flip annotator with rate > 0)"
    out = []
    for reference in bt:
        for head in clf:
            cells = match(
                noisiest,
                ["design", "n", "annotator", "seed"],
                bt={"head": reference},
                clf={"head": head},
            )
            out.append(
                Built(
                    f"{head} − {reference} at the largest flip rate (matches or beats)",
                    cell_mean(cells, clf=1.0, bt=-1.0),
                    len(cells),
                )
            )
    return out


def _claim1_grows(frame, plan):
    sub, why = _untestable(frame, plan)
    if why:
        return why
    column, group, label = NOISE
    levels = _levels(sub, column, group)
    if levels.empty:
        return f"the grid has one {label} in every setting"
    # the lead at the largest minus at the smallest flip rate: the negative of the grace contrast
    lead = {key: -weight for key, weight in GRACE.items()}
    return head_pairs(
        levels,
        group,
        lambda reference, head: (
            f"({head} − {reference}) at the largest minus at the smallest flip rate "
            "(the lead grows with noise)"
        ),
        lead,
        SAME_AS.format(other="2d-acc"),
    )


# ---------------------------------------------------------------------------------------------
# Claim 2 on accuracy: "high" is the better level (more pairs, fewer flips)


def _better_high(levels: pd.DataFrame, axis) -> pd.DataFrame:
    """The flip axis is better at its low end: swap so that ``high`` is always the better level."""
    if axis is NOISE:
        levels = levels.assign(level=levels["level"].map({"high": "low", "low": "high"}))
    return levels


def _claim2_loss(axis):
    column, group, label = axis
    words = "fewer pairs" if axis is QUANTITY else "more flipped labels"
    better, worse = ("largest", "smallest") if axis is QUANTITY else ("smallest", "largest")

    def build(frame, plan):
        sub, why = _untestable(frame, plan)
        if why:
            return why
        levels = _better_high(_levels(sub, column, group), axis)
        if levels.empty:
            return f"the grid has one {label} in every setting"
        return per_head(
            levels,
            group,
            lambda head: (
                f"{head}: accuracy at the {better} minus at the {worse} {label} ({words} lower it)"
            ),
        )

    return build


def _claim2_grace(axis):
    column, group, label = axis
    worse = "smallest" if axis is QUANTITY else "largest"

    def build(frame, plan):
        sub, why = _untestable(frame, plan)
        if why:
            return why
        levels = _better_high(_levels(sub, column, group), axis)
        if levels.empty:
            return f"the grid has one {label} in every setting"
        return head_pairs(
            levels,
            group,
            lambda reference, head: (
                f"{reference} loss minus {head} loss going to the {worse} {label} "
                f"({head} degrades more gracefully)"
            ),
            GRACE,
            SAME_AS.format(other="1b-acc") if axis is NOISE else "",
        )

    return build


def _needs_golden(what: str):
    def build(frame, plan):
        return NO_GOLDEN.format(what=what)

    return build


BON = "the parts on Best-of-N gain (a share of the golden oracle's gain)"
CROSS = (
    "cross-prompt pairs are not in a dataset's given pairs, and the claim compares Best-of-N gain"
)
REGISTRY: list[Contrast] = [
    Contrast("1", "1a-acc", "classifier − Bradley-Terry at the largest flip rate (matches or beats)", NONINFERIORITY, "preference_match_margin", _claim1_noisiest),
    Contrast("1", "1b-acc", "the classifier's lead grows with the flip rate", SUPERIORITY, "preference_sesoi", _claim1_grows),
    Contrast("1", "1-bon", "claim 1 on Best-of-N gain", SUPERIORITY, "sesoi", _needs_golden(BON + " and the realized label error (against the golden order)")),
    Contrast("2", "2a-acc", "accuracy falls with fewer pairs", SUPERIORITY, "preference_sesoi", _claim2_loss(QUANTITY)),
    Contrast("2", "2b-acc", "accuracy falls with more flipped labels", SUPERIORITY, "preference_sesoi", _claim2_loss(NOISE)),
    Contrast("2", "2c-acc", "classifiers lose less accuracy with fewer pairs", SUPERIORITY, "preference_sesoi", _claim2_grace(QUANTITY)),
    Contrast("2", "2d-acc", "classifiers lose less accuracy with more flipped labels", SUPERIORITY, "preference_sesoi", _claim2_grace(NOISE)),
    Contrast("2", "2-bon", "claim 2 on Best-of-N gain", SUPERIORITY, "sesoi", _needs_golden(BON)),
    Contrast("3", "3", "cross − same pairing", SUPERIORITY, "sesoi", _needs_golden(CROSS)),
    Contrast("4", "4", "the cross − same gain rises with |Δr|", SUPERIORITY, "slope_sesoi", _needs_golden(CROSS + " and the golden |Δr|")),
]  # fmt: skip


def prepare_world(
    frame: pd.DataFrame, plan: Plan, per_prompt: dict | None
) -> tuple[pd.DataFrame, np.ndarray | None, str]:
    """A preference world's runs with ``value`` = accuracy in percentage points, and their
    per-test-prompt values (None and why not: the interval is then over seeds only)."""
    data = frame.assign(value=PERCENT * frame[plan.preference_metric].astype(float))
    data = data[np.isfinite(data["value"])]
    z, why = prompt_values(data, per_prompt)
    return data, z, why
