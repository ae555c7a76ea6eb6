"""One part of a claim in one world: its row of the findings table (:class:`Part`,
:data:`COLUMNS`) and the numbers measured for it from the runs.

:func:`measure` turns the part's per-seed weights and the runs' values (per test prompt when
they are known) into its effect, the interval of :func:`statistics.crossed_interval` over seeds
and test prompts, the variance components and the one-sided p-values; :func:`plan_numbers` says
what more seeds can and cannot do at the plan's smallest effect. The decisions across parts
(Holm, the verdicts, the claim's row) are :mod:`embrm.findings.table`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import statistics as st
from .claims import Built, Contrast
from .plan import Plan

# interval: what the part's interval covers
CROSSED, SEEDS_ONLY, NO_INTERVAL = (
    "seeds and test prompts (crossed random effects)",
    "seeds only (no per-prompt values: test prompts fixed)",
    "no interval (one seed)",
)
SOURCES = ("seeds", "test prompts", "seed × prompt")
# A standard error below this (in units of the metric, a share of the oracle's gain) is
# rounding, not spread: the part's values do not vary and no interval is estimated.
DEGENERATE_SE = 1e-12

COLUMNS = [
    "world",
    "claim",
    "part",
    "statement",
    "test",
    "metric",
    "plan_version",
    "plan_sha256",
    "seeds",
    "prompts",
    "cells",
    "threshold",
    "margin",
    "effect",
    "se",
    "df",
    "ci_low",
    "ci_high",
    "p_replicate",
    "p_contradict",
    "p_contradict_holm",
    "var_seed",
    "var_prompt",
    "var_interaction",
    "share_seed",
    "share_prompt",
    "share_interaction",
    "limited_by",
    "interval",
    "verdict",
    "detectable_now",
    "seeds_to_replicate",
    "seeds_to_contradict",
    "seeds_for_halfwidth",
    "note",
]


@dataclass
class Part:
    world: str
    claim: str
    part: str
    statement: str
    test: str = ""
    metric: str = ""
    plan_version: str = ""
    plan_sha256: str = ""
    seeds: int = 0
    prompts: int = 0
    cells: int = 0
    threshold: float = float("nan")
    margin: float = float("nan")
    effect: float = float("nan")
    se: float = float("nan")
    df: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    p_replicate: float = float("nan")
    p_contradict: float = float("nan")
    p_contradict_holm: float = float("nan")
    var_seed: float = float("nan")
    var_prompt: float = float("nan")
    var_interaction: float = float("nan")
    share_seed: float = float("nan")
    share_prompt: float = float("nan")
    share_interaction: float = float("nan")
    limited_by: str = ""
    interval: str = ""
    verdict: str = st.NOT_TESTED
    detectable_now: float = float("nan")
    seeds_to_replicate: float = float("nan")
    seeds_to_contradict: float = float("nan")
    seeds_for_halfwidth: float = float("nan")
    note: str = ""
    extra: dict = field(default_factory=dict)


def measure(part: Part, built: Built, data: pd.DataFrame, z: np.ndarray | None) -> None:
    """Effect, interval and variance components of one tested part (in place)."""
    weights = built.weights[built.weights != 0]
    position = pd.Series(np.arange(len(data)), index=data.index)
    seeds_of = data.loc[weights.index, "seed"].to_numpy()
    seeds = np.unique(seeds_of)
    w = np.zeros((seeds.size, len(data)))
    w[np.searchsorted(seeds, seeds_of), position[weights.index].to_numpy()] = weights.to_numpy()
    part.seeds = int(seeds.size)
    part.extra["weights"] = w
    if z is None:
        y = (w @ data["value"].to_numpy(dtype=float))[:, None]
        part.interval = SEEDS_ONLY
    else:
        y = w @ z
        part.interval = CROSSED
    part.prompts = int(y.shape[1]) if z is not None else 0
    part.extra["y"] = y
    part.effect = float(y.mean())
    if seeds.size < 2:
        part.interval = NO_INTERVAL
        part.note = "; ".join(x for x in (part.note, "one seed: no interval") if x)
        return
    result = st.crossed_interval(y)
    for key in ("se", "df", "ci_low", "ci_high", "share_seed", "share_prompt", "share_interaction"):
        setattr(part, key, float(result[key]))
    part.var_seed = float(result["var_seed"])
    part.var_prompt = float(result["var_prompt"]) if z is not None else float("nan")
    part.var_interaction = float(result["var_inter"]) if z is not None else float("nan")
    part.extra["ms"] = result["ms"]
    shares = [part.share_seed, part.share_prompt, part.share_interaction]
    if np.isfinite(shares).all() and z is not None:
        part.limited_by = SOURCES[int(np.argmax(shares))]
    elif z is None:
        part.limited_by = "seeds"
    if part.se > DEGENERATE_SE:
        part.p_replicate = float(st.one_sided_p(result, part.threshold, True))
        part.p_contradict = float(st.one_sided_p(result, part.threshold, False))
    else:
        part.note = "; ".join(
            x
            for x in (
                part.note,
                "no variation between seeds or prompts: a degenerate estimate, not a decision",
            )
            if x
        )


def plan_numbers(part: Part, contrast: Contrast, plan: Plan, tested: int) -> None:
    """What more seeds can do for the part, at the plan's smallest effect (in place)."""
    if part.se != part.se or part.se <= DEGENERATE_SE:
        return
    comp = {
        "var_seed": part.var_seed,
        "var_prompt": 0.0 if part.interval == SEEDS_ONLY else part.var_prompt,
        "var_inter": 0.0 if part.interval == SEEDS_ONLY else part.var_interaction,
    }
    prompts = max(part.prompts, 1)
    distance = contrast.distance(plan)
    one_sided = plan.alpha / 2
    part.detectable_now = st.detectable_now(comp, part.seeds, prompts, one_sided, plan.power)
    part.seeds_to_replicate = st.seeds_for_power(
        comp, prompts, distance, one_sided, plan.power, plan.max_seeds
    )
    # Holm's first step: the smallest p of the claim's parts is compared with alpha / 2 / k.
    part.seeds_to_contradict = st.seeds_for_power(
        comp, prompts, distance, one_sided / max(tested, 1), plan.power, plan.max_seeds
    )
    upper = st.upper_components(part.extra["ms"], plan.spread_upper_bound)
    if part.interval == SEEDS_ONLY:
        upper = {**upper, "var_prompt": 0.0, "var_inter": 0.0}
    part.seeds_for_halfwidth = st.seeds_for_halfwidth(
        upper, prompts, distance, plan.confidence, plan.max_seeds
    )
    if part.verdict == st.INCONCLUSIVE and part.seeds_to_replicate == float("inf"):
        part.note = "; ".join(
            x
            for x in (
                part.note,
                "the test set's prompt variance alone keeps an effect at the smallest effect of "
                "interest undecided at any number of seeds: more test prompts would decide it",
            )
            if x
        )
