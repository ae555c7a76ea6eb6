"""The study's claims as a registry of contrasts.

Every part is one linear contrast of run values *within a seed*: a weight per run (the runs of
seed s carry weights summing the part's paired differences, averaged over the cells of that seed),
so the part's value for seed s is ``Σ_r w_r · value_r`` and, on test prompt p,
``Σ_r w_r · value_rp``. The weights are declared once, here; the point estimate, the crossed
interval over seeds and test prompts and the planning numbers all apply the same weights
(:mod:`embrm.findings.table`). Adding a claim is one :class:`Contrast` entry in :data:`REGISTRY`.

Two runs are paired when they share world, seed and every setting but the factor under test (the
heads of a cell share its pairs and labels; two numbers of pairs, two β, the two prompt pairings
of a candidate rule share the world and the seed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .plan import Plan
from .statistics import NONINFERIORITY, SUPERIORITY

BT_REFERENCE = "bt-mlp"  # the study's Bradley-Terry head type

CLAIMS = {
    "1": "Classifier heads match or beat Bradley-Terry when label error exceeds 10%; "
    "Bradley-Terry is ahead only below 10%.",
    "2": "Gains fall with fewer and with noisier annotations, and classifier heads degrade "
    "more gracefully than Bradley-Terry.",
    "3": "Cross-prompt annotation beats same-prompt annotation; the gain is largest for similar "
    "candidates and smallest, never negative, for diversified ones.",
    "4": "The cross-prompt gain tracks the mean |Δr| of the annotated pairs.",
}


@dataclass
class Built:
    """One tested instance of a part: its statement and the weight of every run (index: the
    frame's row labels) and how many paired cells it averages."""

    statement: str
    weights: pd.Series
    cells: int
    note: str = ""


@dataclass(frozen=True)
class Contrast:
    """A part of a claim: how it is tested (kind, and the plan's margin or smallest effect of
    interest by name) and how its weights are built from a world's runs. ``build`` returns the
    tested instances, or a reason the grid cannot test the part."""

    claim: str
    part: str
    statement: str  # the part in words, when the grid cannot test it
    kind: str  # superiority ("beats", threshold 0) or non-inferiority ("matches or beats")
    margin: str  # the Plan attribute: the non-inferiority margin, or the smallest effect
    build: Callable[[pd.DataFrame, Plan], list[Built] | str]

    def threshold(self, plan: Plan) -> float:
        return -getattr(plan, self.margin) if self.kind == NONINFERIORITY else 0.0

    def distance(self, plan: Plan) -> float:
        """How far from the threshold a true effect must be to matter (for planning)."""
        return getattr(plan, self.margin)


# ---------------------------------------------------------------------------------------------
# Weights


def match(frame: pd.DataFrame, keys: list[str], **levels: dict) -> pd.DataFrame:
    """Cells: rows ``keys`` + one column per level holding the row label of the run that
    matches the level's settings (inner join: a cell needs every level)."""
    cells = None
    for name, settings in levels.items():
        mask = np.ones(len(frame), dtype=bool)
        for column, value in settings.items():
            mask &= (frame[column] == value).to_numpy()
        sub = frame.loc[mask, keys].copy()
        sub[name] = frame.index[mask]
        sub = sub.drop_duplicates(keys)
        cells = sub if cells is None else cells.merge(sub, on=keys)
    return cells


def cell_mean(cells: pd.DataFrame, **coefficients: float) -> pd.Series:
    """Weights that average ``Σ coefficient · run`` over each seed's cells."""
    if cells is None or cells.empty:
        return pd.Series(dtype=float)
    per_seed = cells.groupby("seed")["seed"].transform("size").to_numpy(dtype=float)
    pieces = [
        pd.Series(coef / per_seed, index=cells[name].to_numpy())
        for name, coef in coefficients.items()
    ]
    return pd.concat(pieces).groupby(level=0).sum()


def _heads(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    types = frame.drop_duplicates("head").set_index("head")["head_type"].astype(str)
    bt = [h for h, t in types.items() if t == BT_REFERENCE]
    clf = [h for h, t in types.items() if t.startswith("clf")]
    return sorted(bt), sorted(clf)


def _study_designs(frame: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    return frame[frame["design"].isin(plan.claims_1_2_designs)]


def _beta_axis(frame: pd.DataFrame) -> bool:
    beta = frame["beta"].where(np.isfinite(frame["beta"].astype(float)))
    return bool((beta.groupby(frame["family"]).nunique() >= 2).any())


# ---------------------------------------------------------------------------------------------
# Claim 1: classifier heads vs Bradley-Terry by label error, on the study's designs, compared
# within each (design, n, annotator) cell


def _error_levels(frame: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """The label error of a setting is its realized error averaged over seeds (a property of
    the labels, not of the outcome)."""
    error = frame.groupby(["design", "n", "annotator"])["annotation_realized_error_rate"].transform(
        "mean"
    )
    return frame.assign(
        high_error=error > plan.error_threshold, low_error=error < plan.error_threshold
    )


def _claim1(frame: pd.DataFrame, plan: Plan, level: str, sign: float, template: str):
    sub = _study_designs(frame, plan)
    if sub.empty:
        return f"no run on the designs claim 1 is stated for ({', '.join(plan.claims_1_2_designs)})"
    if not _beta_axis(sub):
        return (
            "the grid has a single annotation quality β on the study's designs; the claim is "
            "about how the comparison changes with label error, which needs β values on both "
            "sides of 10% error"
        )
    bt, clf = _heads(sub)
    if not bt or not clf:
        return f"needs a {BT_REFERENCE} head and a classifier head in the grid"
    sub = _error_levels(sub, plan)
    sub = sub[sub[level]]
    if sub.empty:
        return f"no setting {'above' if level == 'high_error' else 'below'} 10% label error"
    out = []
    for reference in bt:
        for head in clf:
            cells = match(
                sub,
                ["design", "n", "annotator", "seed"],
                bt={"head": reference},
                clf={"head": head},
            )
            weights = cell_mean(cells, clf=sign, bt=-sign)
            out.append(Built(template.format(clf=head, bt=reference), weights, len(cells)))
    return out


def claim1a(frame, plan):
    return _claim1(
        frame, plan, "high_error", 1.0, "{clf} − {bt} at label error above 10% (matches or beats)"
    )


def claim1b(frame, plan):
    return _claim1(
        frame,
        plan,
        "low_error",
        -1.0,
        "{bt} − {clf} at label error below 10% (Bradley-Terry ahead)",
    )


# ---------------------------------------------------------------------------------------------
# Claim 2: fewer and noisier annotations, on the study's designs


AXES = {
    "n": ("fewer annotations", ["design", "annotator"], "pairs"),
    "beta": ("noisier annotations", ["design", "n", "family"], "β"),
}


def _levels(frame: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Runs at the smallest and largest ``axis`` value of their setting, tagged ``level``."""
    group = AXES[axis][1]
    sub = frame[np.isfinite(frame[axis].astype(float))] if axis == "beta" else frame
    values = sub[axis].astype(float)
    keys = [sub[g] for g in [*group, "head", "seed"]]
    lo, hi = values.groupby(keys).transform("min"), values.groupby(keys).transform("max")
    out = sub[(lo < hi) & ((values == lo) | (values == hi))].copy()
    out["level"] = np.where(out[axis].astype(float) == hi[out.index], "high", "low")
    return out


def per_head(levels: pd.DataFrame, group, statement) -> list[Built]:
    """One part per head of ``levels`` (rows with a ``level`` of high or low): its value at the
    high level minus at the low one, cells matched within group and seed."""
    out = []
    for head in sorted(levels["head"].unique()):
        cells = match(
            levels[levels["head"] == head],
            [*group, "seed"],
            high={"level": "high"},
            low={"level": "low"},
        )
        out.append(Built(statement(head), cell_mean(cells, high=1.0, low=-1.0), len(cells)))
    return out


def _claim2_gain(axis):
    words, group, label = AXES[axis]

    def build(frame, plan):
        levels = _levels(_study_designs(frame, plan), axis)
        if levels.empty:
            return f"the grid has one value of {label} in every setting of the study's designs"
        return per_head(
            levels,
            group,
            lambda head: (
                f"{head}: gain at the largest {label} minus at the smallest ({words} lower it)"
            ),
        )

    return build


# (BT's high − low) − (the classifier's high − low): BT's loss minus the classifier's going from
# the high to the low level (positive: the classifier degrades more gracefully).
GRACE = {"bt_high": 1.0, "bt_low": -1.0, "clf_high": -1.0, "clf_low": 1.0}


def head_pairs(levels: pd.DataFrame, group, statement, weights: dict, note: str = ""):
    """One part per (Bradley-Terry head, classifier head) of ``levels`` (rows with a ``level`` of
    high or low): the four runs of each matched (group, seed) cell weighted by ``weights`` (keys
    bt_high, bt_low, clf_high, clf_low), and ``statement(reference, head)``; or why it cannot."""
    bt, clf = _heads(levels)
    if not bt or not clf:
        return f"needs a {BT_REFERENCE} head and a classifier head"
    out = []
    for reference in bt:
        for head in clf:
            cells = match(
                levels,
                [*group, "seed"],
                bt_high={"head": reference, "level": "high"},
                bt_low={"head": reference, "level": "low"},
                clf_high={"head": head, "level": "high"},
                clf_low={"head": head, "level": "low"},
            )
            out.append(
                Built(statement(reference, head), cell_mean(cells, **weights), len(cells), note)
            )
    return out


def _claim2_grace(axis):
    _, group, label = AXES[axis]

    def build(frame, plan):
        levels = _levels(_study_designs(frame, plan), axis)
        if levels.empty:
            return f"the grid has one value of {label} in every setting of the study's designs"
        return head_pairs(
            levels,
            group,
            lambda reference, head: (
                f"{reference} loss minus {head} loss going to the smallest {label} "
                f"({head} degrades more gracefully)"
            ),
            GRACE,
        )

    return build


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


def _pairing_cells(frame, keys, **rules):
    """Cells with a same- and a cross-prompt run of each candidate rule named."""
    levels = {}
    for name, candidates in rules.items():
        levels[f"{name}_cross"] = {"candidates": candidates, "prompt_pairing": "cross"}
        levels[f"{name}_same"] = {"candidates": candidates, "prompt_pairing": "same"}
    return match(frame, keys, **levels)


def _claim3a(frame, plan):
    out = []
    for candidates in ("random", "similar"):
        cells = _pairing_cells(frame, ["n", "annotator", "head", "seed"], r=candidates)
        statement = f"cross − same, {candidates} candidates (cross-prompt wins)"
        if cells.empty:
            out.append(
                Built(
                    statement,
                    pd.Series(dtype=float),
                    0,
                    f"{candidates} candidates not run with both pairings",
                )
            )
            continue
        out.append(Built(statement, cell_mean(cells, r_cross=1.0, r_same=-1.0), len(cells)))
    return out


def _ordering(part_rules):
    def build(frame, plan):
        out = []
        for larger, smaller, statement in part_rules:
            cells = _pairing_cells(frame, ["n", "annotator", "head", "seed"], a=larger, b=smaller)
            if cells.empty:
                reason = f"needs {larger} and {smaller} candidates, each with both pairings"
                out.append(Built(statement, pd.Series(dtype=float), 0, reason))
                continue
            weights = cell_mean(cells, a_cross=1.0, a_same=-1.0, b_cross=-1.0, b_same=1.0)
            out.append(Built(statement, weights, len(cells)))
        return out

    return build


def _claim3d(frame, plan):
    heads = sorted(frame["head"].unique())
    out = []
    for head in heads:
        cells = _pairing_cells(
            frame[frame["head"] == head], ["n", "annotator", "seed"], r="diversified"
        )
        if cells.empty:
            continue
        out.append(
            Built(
                f"{head}: cross − same, diversified candidates (never negative)",
                cell_mean(cells, r_cross=1.0, r_same=-1.0),
                len(cells),
            )
        )
    return out or "diversified candidates not run with both pairings"


def _claim4(frame, plan):
    """Per seed, the least-squares slope of the cross − same gain (averaged over the cells of a
    candidate rule) on the cross − same mean |Δr| of its annotated pairs. The heads of a rule
    share its pairs, so each seed has one x per candidate rule: three at most."""
    matched = cross_minus_same(frame)
    if matched.empty:
        return "no candidate rule was run with both same- and cross-prompt pairing"
    rows_of = frame.assign(_row=frame.index)
    same = rows_of[rows_of["prompt_pairing"] == "same"][[*MATCH, "_row"]]
    cross = rows_of[rows_of["prompt_pairing"] == "cross"][[*MATCH, "_row"]]
    cells = same.merge(cross, on=MATCH, suffixes=("_same", "_cross")).merge(
        matched[[*MATCH, "dr_difference"]], on=MATCH
    )
    cells = cells.dropna(subset=["dr_difference"])
    pieces, used, rules_seen = [], 0, set()
    for _, rows in cells.groupby("seed"):
        x = rows.groupby("candidates")["dr_difference"].mean()
        if len(x) < 2:
            continue
        centred = x - x.mean()
        ss = float((centred**2).sum())
        if ss <= 0:
            continue
        per_rule = rows.groupby("candidates")["candidates"].transform("size").to_numpy(float)
        coef = (centred[rows["candidates"]].to_numpy() / ss) / per_rule
        pieces.append(pd.Series(coef, index=rows["_row_cross"].to_numpy()))
        pieces.append(pd.Series(-coef, index=rows["_row_same"].to_numpy()))
        used += len(rows)
        rules_seen |= set(x.index)
    if not pieces:
        return (
            "needs same- and cross-prompt runs of at least two candidate rules (whose mean "
            "|Δr| differ by design)"
        )
    weights = pd.concat(pieces).groupby(level=0).sum()
    statement = (
        "slope of the cross − same gain on the cross − same mean |Δr| over candidate rules "
        "(rises with it)"
    )
    note = (
        f"{len(rules_seen)} distinct |Δr| per seed (one per candidate rule; heads share pairs): "
        "an ordering of the rules, the same evidence as 3b and 3c, not independent support"
    )
    return [Built(statement, weights, used, note)]


REGISTRY: list[Contrast] = [
    Contrast("1", "1a", "classifier − Bradley-Terry above 10% error (matches or beats)", NONINFERIORITY, "match_margin", claim1a),
    Contrast("1", "1b", "Bradley-Terry − classifier below 10% error (Bradley-Terry ahead)", SUPERIORITY, "sesoi", claim1b),
    Contrast("2", "2a", "gain falls with fewer annotations", SUPERIORITY, "sesoi", _claim2_gain("n")),
    Contrast("2", "2b", "gain falls with noisier annotations", SUPERIORITY, "sesoi", _claim2_gain("beta")),
    Contrast("2", "2c", "classifiers degrade less with fewer annotations", SUPERIORITY, "sesoi", _claim2_grace("n")),
    Contrast("2", "2d", "classifiers degrade less with noisier annotations", SUPERIORITY, "sesoi", _claim2_grace("beta")),
    Contrast("3", "3a", "cross − same (cross-prompt wins)", SUPERIORITY, "sesoi", _claim3a),
    Contrast(
        "3",
        "3b",
        "largest for similar",
        SUPERIORITY,
        "sesoi",
        _ordering(
            [
                ("similar", "random", "largest for similar: (cross − same) similar minus random"),
                ("similar", "diversified", "largest for similar: (cross − same) similar minus diversified"),
            ]
        ),
    ),
    Contrast(
        "3",
        "3c",
        "smallest for diversified",
        SUPERIORITY,
        "sesoi",
        _ordering([("random", "diversified", "smallest for diversified: (cross − same) random minus diversified")]),
    ),
    Contrast("3", "3d", "cross − same, diversified candidates (never negative)", NONINFERIORITY, "never_negative_margin", _claim3d),
    Contrast("4", "4", "the cross − same gain rises with the cross − same mean |Δr|", SUPERIORITY, "slope_sesoi", _claim4),
]  # fmt: skip
