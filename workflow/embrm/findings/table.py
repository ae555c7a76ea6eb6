"""The findings table: every registered contrast tested on every world, one row per part and
one per claim, under the analysis plan (:mod:`embrm.findings.plan`).

For a part: the weights of :mod:`embrm.findings.claims` give its per-seed values and, with the
runs' per-prompt values, its (seeds × test prompts) matrix; :mod:`embrm.findings.part` measures
its effect, interval, variance components and planning numbers; here Holm's rule over the
claim's parts decides "contradicted", each part gets its verdict and each claim its row.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd

from ..designs import columns as design_columns
from ..designs import get
from . import preference_claims
from . import statistics as st
from .claims import CLAIMS, REGISTRY, Contrast
from .part import COLUMNS, DEGENERATE_SE, Part, measure, plan_numbers
from .plan import Plan, load
from .resampling import world_prompt_values

VERDICT_SCORE = {
    st.REPLICATED: 1.0,
    st.INCONCLUSIVE: 0.0,
    st.NEGLIGIBLE: 0.0,
    st.CONTRADICTED: -1.0,
}


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


def prepare(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
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


def _test_words(contrast: Contrast, plan: Plan) -> str:
    # The preference margins are in percentage points of accuracy; the others, shares of the
    # oracle's gain, have no unit.
    unit = " points" if contrast.margin.startswith("preference_") else ""
    if contrast.kind == st.NONINFERIORITY:
        return (
            f"non-inferiority: interval above −{contrast.distance(plan):g}{unit} "
            f"({contrast.margin.replace('_', ' ')})"
        )
    return (
        f"superiority: interval above 0; negligible within ±{contrast.distance(plan):g}{unit} "
        f"({contrast.margin.replace('_', ' ')})"
    )


def decide_world(
    world: str,
    data: pd.DataFrame,
    z,
    plan: Plan,
    metric: str,
    registry: list[Contrast] | None = None,
    claims: dict[str, str] | None = None,
) -> list[Part]:
    """Every part of ``registry`` (the study's by default) tested on one world's runs, and each
    claim's combined row (its statement from ``claims``)."""
    registry = REGISTRY if registry is None else registry  # read at call time: tests extend it
    claims = CLAIMS if claims is None else claims
    rows = []
    for number in claims:
        parts = []
        for contrast in [c for c in registry if c.claim == number]:
            built = contrast.build(data, plan)
            if isinstance(built, str):
                parts.append(Part(world, number, contrast.part, contrast.statement, note=built))
                continue
            for item in built:
                part = Part(
                    world,
                    number,
                    contrast.part,
                    item.statement,
                    test=_test_words(contrast, plan),
                    cells=item.cells,
                    threshold=contrast.threshold(plan),
                    margin=contrast.distance(plan),
                    note=item.note,
                )
                part.extra["contrast"] = contrast
                if item.weights.empty or not (item.weights != 0).any():
                    part.note = item.note or "no setting of the grid pairs these runs"
                    part.test = ""
                    parts.append(part)
                    continue
                measure(part, item, data, z)
                part.verdict = st.INCONCLUSIVE
                parts.append(part)
        tested = [p for p in parts if p.verdict != st.NOT_TESTED]
        if tested:
            holm = st.holm([p.p_contradict for p in tested])
            for p, adjusted in zip(tested, holm, strict=True):
                p.p_contradict_holm = float(adjusted)
                contrast = p.extra["contrast"]
                p.verdict = str(
                    st.verdicts(
                        p.ci_low,
                        p.ci_high,
                        adjusted if np.isfinite(adjusted) else 1.0,
                        p.threshold,
                        contrast.kind,
                        contrast.distance(plan),
                        plan.alpha,
                        p.se if np.isfinite(p.se) and p.se > DEGENERATE_SE else 0.0,
                    ).item()
                )
                plan_numbers(p, contrast, plan, len(tested))
        for p in parts:
            p.metric, p.plan_version, p.plan_sha256 = metric, plan.version, plan.sha256
        verdict, note = combine(parts)
        seeds = max((p.seeds for p in parts), default=0)
        rows.append(
            claim_row(
                world, number, plan, metric, seeds=seeds, verdict=verdict, note=note,
                statement=claims[number],
            )
        )  # fmt: skip
        rows.extend(parts)
    return rows


def claim_row(
    world: str, number: str, plan: Plan, metric: str, statement: str | None = None, **decided
) -> Part:
    """The combined row (part ``all``) of one claim in one world."""
    return Part(
        world,
        number,
        "all",
        CLAIMS[number] if statement is None else statement,
        metric=metric,
        plan_version=plan.version,
        plan_sha256=plan.sha256,
        **decided,
    )


def combine(parts: list[Part]) -> tuple[str, str]:
    """A claim's verdict from its parts: contradicted when any part is (Holm-adjusted),
    replicated when every tested part is, negligible when every tested part is replicated or
    negligible and one is negligible, inconclusive otherwise; the note names the parts."""
    tested = [p for p in parts if p.verdict != st.NOT_TESTED]
    if not tested:
        return st.NOT_TESTED, "; ".join(sorted({p.note for p in parts if p.note}))
    by = {v: sorted({p.part for p in tested if p.verdict == v}) for v in VERDICT_SCORE}
    untested = sorted({p.part for p in parts if p.verdict == st.NOT_TESTED})
    tail = [f"not tested: {', '.join(untested)}"] if untested else []
    if by[st.CONTRADICTED]:
        return st.CONTRADICTED, "; ".join(
            [
                f"contradicted by {', '.join(by[st.CONTRADICTED])} (Holm over the claim's parts)",
                *tail,
            ]
        )
    if by[st.INCONCLUSIVE]:
        extra = [f"negligible: {', '.join(by[st.NEGLIGIBLE])}"] if by[st.NEGLIGIBLE] else []
        return st.INCONCLUSIVE, "; ".join(
            [f"undecided: {', '.join(by[st.INCONCLUSIVE])}", *extra, *tail]
        )
    if by[st.NEGLIGIBLE]:
        return st.NEGLIGIBLE, "; ".join(
            [f"below the smallest effect of interest: {', '.join(by[st.NEGLIGIBLE])}", *tail]
        )
    return st.REPLICATED, "; ".join(tail)


NO_ACCURACY = (
    "a preference world has no golden reward (docs/preferences.md) and this summary has no "
    "{metric}: nothing to test"
)


def without_golden_reward(world: str, plan: Plan, metric: str) -> list[Part]:
    """Every claim of a world without a golden reward whose summary lacks preference accuracy
    (results written before it existed): not tested, with the reason."""
    note = NO_ACCURACY.format(metric=metric)
    return [claim_row(world, number, plan, metric, note=note) for number in CLAIMS]


def findings(
    summary: pd.DataFrame,
    metric: str | None = None,
    per_prompt: dict | None = None,
    *,
    plan: Plan | None = None,
) -> pd.DataFrame:
    """One row per claim (part ``all``: the combined verdict) and per part, per world.

    ``per_prompt`` (from :func:`read_per_prompt`) gives the interval over seeds and test prompts;
    without it, or for a world where a run lacks per-prompt values, the interval is over seeds
    with the test prompts fixed (``interval`` says so)."""
    plan = plan or load()
    metric = metric or plan.metric
    frame = prepare(summary, metric)
    rows, fallbacks = [], {}
    for world, data in frame.groupby("world", sort=True):
        if preference_claims.is_preference_world(data):
            # No golden reward: claims 1 and 2 on held-out preference accuracy, in percentage
            # points (docs/analysis-plan.md, "Worlds without a golden reward").
            accuracy = plan.preference_metric
            if accuracy not in data or not np.isfinite(data[accuracy].astype(float)).any():
                rows.extend(without_golden_reward(str(world), plan, accuracy))
                continue
            data, z, why = preference_claims.prepare_world(data, plan, per_prompt)
            if z is None:
                fallbacks[str(world)] = why
            rows.extend(
                decide_world(
                    str(world), data, z, plan, accuracy,
                    registry=preference_claims.REGISTRY,
                    claims=preference_claims.CLAIMS_ON_ACCURACY,
                )
            )  # fmt: skip
            continue
        data = data[np.isfinite(data["value"])]
        z, why = world_prompt_values(data, metric, per_prompt)
        if z is None:
            fallbacks[str(world)] = why
        rows.extend(decide_world(str(world), data, z, plan, metric))
    names = [f.name for f in fields(Part) if f.name != "extra"]
    table = pd.DataFrame([{k: getattr(r, k) for k in names} for r in rows])[COLUMNS]
    table.attrs["prompt_fallback"] = fallbacks
    table.attrs["plan"] = plan
    return table


def claim_scores(table: pd.DataFrame) -> dict[str, float]:
    """One number per claim (and world, when there are several): +1 replicated, 0 inconclusive
    or negligible, −1 contradicted; claims not tested are left out."""
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
