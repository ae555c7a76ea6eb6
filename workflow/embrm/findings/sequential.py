"""Sequential looks: seeds added until every part is decided (docs/analysis-plan.md, 2.1).

An experiment may declare looks, numbers of seeds (``findings.looks: [5, 10, 20]``): look k uses
the first ``looks[k]`` seeds of ``grid.seeds``, and its information fraction is
``t_k = looks[k] / looks[-1]``. Every one-sided test of a part (replicated; each half of
negligible; contradicted, with Holm's rule run step-down across looks) spends its level over the
looks by the Lan-DeMets O'Brien-Fleming-type function ``a(t) = 2 − 2Φ(z_{1−a/2} / √t)``
(:func:`spent`). The group-sequential boundaries that spend it exactly under the canonical joint
distribution of the looks' statistics (Brownian motion, correlation √(t_i/t_j)) are found by
recursive numerical integration (:func:`nominal_levels`); look k then decides with the
crossed interval's bounds (the MLS interval, t quantiles at each source's df) at the nominal
one-sided level of that boundary, 1 − Φ(c_k), instead of alpha / 2 (:func:`step`).

A part decided at a look stays decided (its row and the look are carried to later looks); an
open part stops for futility when its conditional power for every verdict it could still reach,
at the plan's smallest effect, is below ``futility_power`` (:func:`conditional_power`). Only the
runs the open parts' weights cover are run for the next look's new seeds (:func:`look_runs`).
One look's findings table and pages are :mod:`.looks`.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import optimize, stats

from . import statistics as st
from .plan import Plan

OPEN, DECIDED, FUTILE, LAST = (
    "open",
    "decided",
    "stopped for futility",
    "undecided at the last look",
)
SETTING = ("world", "design", "n", "annotator", "head")  # a run without its seed
LOOK_COLUMNS = [
    "look",
    "looks",
    "seeds_used",
    "information",
    "alpha_spent",
    "nominal_level",
    "state",
    "decided_at_look",
    "conditional_power",
]


# ---------------------------------------------------------------------------------------------
# Spending and boundaries


def spent(fraction, level: float):
    """Cumulative one-sided level spent at information ``fraction`` (Lan-DeMets,
    O'Brien-Fleming type): 0 at 0, ``level`` at 1."""
    t = np.asarray(fraction, dtype=float)
    with np.errstate(divide="ignore"):
        z = stats.norm.isf(level / 2) / np.sqrt(t)
    return np.where(t > 0, 2 * stats.norm.sf(z), 0.0)


@functools.cache
def _boundaries(fractions: tuple[float, ...], level: float, points: int = 801) -> tuple:
    """Upper boundaries c_k (z scale) whose first-crossing probabilities under H0 are the
    increments of :func:`spent`: the density of the score W(t_k) = Z_k √t_k on the continuation
    region is carried from look to look on a grid (trapezoid rule; 801 points put the
    boundaries within 1e-5 of a grid twice as fine)."""
    t = np.asarray(fractions, dtype=float)
    increments = np.diff(np.concatenate([[0.0], spent(t, level)]))
    c = [float(stats.norm.isf(increments[0]))]
    low = -8.0 * np.sqrt(t[-1])
    x = np.linspace(low, c[0] * np.sqrt(t[0]), points)
    density = stats.norm.pdf(x, scale=np.sqrt(t[0]))
    for k in range(1, len(t)):
        step = np.sqrt(t[k] - t[k - 1])
        weights = np.full(points, (x[1] - x[0]))
        weights[[0, -1]] /= 2
        mass = density * weights

        def crossing(ck, mass=mass, x=x, k=k, step=step):
            return float(mass @ stats.norm.sf((ck * np.sqrt(t[k]) - x) / step))

        target = increments[k]
        if crossing(40.0) >= target:  # nothing left to spend (rounding): never cross
            ck = 40.0
        else:
            ck = optimize.brentq(
                lambda v, target=target: crossing(v) - target, -10.0, 40.0, xtol=1e-10
            )
        c.append(float(ck))
        y = np.linspace(low, ck * np.sqrt(t[k]), points)
        kernel = np.exp(-0.5 * ((y[:, None] - x[None, :]) / step) ** 2) / np.sqrt(2 * np.pi)
        density = kernel @ mass / step
        x = y
    return tuple(c)


def nominal_levels(fractions, level: float) -> np.ndarray:
    """One-sided nominal level of each look's test (1 − Φ(c_k)) for a total one-sided ``level``
    spent over the looks at information ``fractions`` (increasing, the last 1)."""
    key = tuple(round(float(f), 12) for f in fractions)
    return stats.norm.sf(np.asarray(_boundaries(key, float(level))))


def information(looks) -> np.ndarray:
    """Information fraction of each look: its seeds over the last look's."""
    looks = np.asarray(looks, dtype=float)
    return looks / looks[-1]


# ---------------------------------------------------------------------------------------------
# One look's decisions (vectorized over leading axes, so the simulation runs many experiments)


def half_widths(result: dict):
    """The MLS half-width of a crossed interval at any one-sided level ``a`` (a function of a):
    the seed piece with the t quantile of S − 1 df, the prompt piece with that of P − 1 df."""
    seeds, prompts = result["ms"]["shape"]
    s_seed, s_prompt = st._split(result["ms"])
    return lambda a: st._halfwidth(s_seed, s_prompt, seeds, prompts, a)


def holm_levels(fractions, alpha: float, parts: int) -> np.ndarray:
    """(parts, looks) nominal one-sided levels for "contradicted": row j − 1 is a hypothesis's
    boundary when j of the claim's hypotheses are not yet rejected (its share (alpha/2)/j,
    Holm's weights passed on step-down, spent over the looks)."""
    return np.stack([nominal_levels(fractions, alpha / 2 / j) for j in range(1, parts + 1)])


def step(
    verdict,
    effect,
    half,
    usable,
    threshold,
    distance,
    superiority,
    k: int,
    fractions,
    alpha: float,
    rejected_before,
) -> np.ndarray:
    """Verdicts of a claim's parts after look ``k`` (0-based), every array (..., parts).
    ``verdict``: "" for parts still open, else the verdict they keep. ``half(a)``: each part's
    MLS half-width at one-sided level a; ``usable``: a finite, non-degenerate interval.

    Open parts, at the look's nominal level q_k: negligible when the interval lies within
    ±``distance`` (``superiority`` parts: both one-sided tests), replicated when it lies above
    ``threshold``; contradicted by Holm's step-down, each hypothesis's level spent over the
    looks: with r of the claim's m parts contradicted (``rejected_before``: at earlier looks),
    every open part whose bound at the level of (alpha/2)/(m − r) lies below the threshold is
    contradicted, r grows and the step repeats (Holm's sorted rule, taken in batches)."""
    verdict = np.array(verdict, dtype=object, copy=True)
    effect = np.asarray(effect, dtype=float)
    parts = verdict.shape[-1]
    q = nominal_levels(fractions, alpha / 2)[k]
    levels = holm_levels(fractions, alpha, parts)[:, k]
    below = np.stack([effect + half(level) < threshold for level in levels])  # (m, ..., parts)
    open_ = (verdict == "") & np.asarray(usable, dtype=bool)
    rejected = np.zeros(verdict.shape, dtype=bool)
    count = np.asarray(rejected_before, dtype=int)
    for _ in range(parts):
        remaining = np.clip(parts - count, 1, parts)
        at_level = np.take_along_axis(below, (remaining - 1)[None, ..., None], axis=0)[0]
        hits = open_ & ~rejected & at_level
        if not hits.any():
            break
        rejected |= hits
        count = count + hits.sum(axis=-1)
    h = half(q)
    new = np.full(verdict.shape, "", dtype=object)
    new[rejected] = st.CONTRADICTED
    new[open_ & (effect - h > threshold)] = st.REPLICATED
    inside = (effect + h < distance) & (effect - h > -np.asarray(distance))
    new[open_ & np.asarray(superiority, dtype=bool) & inside] = st.NEGLIGIBLE
    return np.where(verdict == "", new, verdict)


def conditional_power(
    comp: dict,
    effect,
    seeds: int,
    final_seeds: int,
    prompts: int,
    truth,
    threshold: float,
    level: float,
    side: str,
):
    """Probability, given the look's estimate, that the last look decides ``side``
    ("replicated": bound above ``threshold``; "contradicted": below; "negligible": within ±
    ``threshold``) at one-sided nominal ``level`` if the true effect is ``truth``.

    The last look's estimate is (S_k θ̂_k + (S_K − S_k) m)/S_K, m the new seeds' mean: the new
    seeds bring fresh seed and interaction terms but share the test prompts, whose part of the
    error (σ_p²/P) the look's estimate already carries, so m is normal with mean
    θ + β(θ̂_k − θ) and variance (σ_s² + σ_e²/P)/(S_K − S_k) + σ_p²/P · (1 − β), β the prompts'
    share of Var θ̂_k. The bound is the last look's expected MLS half-width. With the test set's
    floor dominant (β near 1) more seeds move nothing, and the power is that of the look's own
    estimate."""
    vs, vp, ve = (
        np.asarray(comp[key], dtype=float) for key in ("var_seed", "var_prompt", "var_inter")
    )
    floor = vp / prompts
    v_now = vs / seeds + floor + ve / (seeds * prompts)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = np.where(v_now > 0, floor / v_now, 0.0)
    added = final_seeds - seeds
    f = seeds / final_seeds
    v_new = (vs + ve / prompts) / added + floor * (1 - beta)
    mean = f * effect + (1 - f) * (truth + beta * (effect - truth))
    sd = (1 - f) * np.sqrt(v_new)
    _, half = st._design(comp, np.asarray(final_seeds), prompts, level)
    with np.errstate(invalid="ignore", divide="ignore"):
        if side == st.REPLICATED:
            return stats.norm.sf((threshold + half - mean) / sd)
        if side == st.CONTRADICTED:
            return stats.norm.cdf((threshold - half - mean) / sd)
        inside = stats.norm.cdf((threshold - half - mean) / sd) - stats.norm.cdf(
            (-threshold + half - mean) / sd
        )
        return np.where(half < threshold, np.maximum(inside, 0.0), 0.0)


def futility(
    result: dict,
    k: int,
    looks,
    threshold: float,
    distance: float,
    superiority: bool,
    plan: Plan,
    tested: int,
):
    """Largest conditional power over the verdicts a part can still reach at the last look, at
    the plan's effects: replicated if the truth lies ``distance`` beyond the threshold,
    contradicted (Holm's strictest level) if it lies as far on the other side, negligible
    (superiority parts) if it is 0."""
    seeds, prompts = result["ms"]["shape"]
    fractions = information(looks)
    last = len(looks) - 1
    comp = {key: result[key] for key in ("var_seed", "var_prompt", "var_inter")}
    args = (result["effect"], seeds, int(looks[-1]), prompts)
    q = nominal_levels(fractions, plan.alpha / 2)[last]
    strict = nominal_levels(fractions, plan.alpha / 2 / max(tested, 1))[last]
    power = np.maximum(
        conditional_power(comp, *args, threshold + distance, threshold, q, st.REPLICATED),
        conditional_power(comp, *args, threshold - distance, threshold, strict, st.CONTRADICTED),
    )
    if superiority:
        power = np.maximum(power, conditional_power(comp, *args, 0.0, distance, q, st.NEGLIGIBLE))
    return power


# ---------------------------------------------------------------------------------------------
# Runs per look


def look_seeds(seeds_order, looks, k: int) -> list[int]:
    return [int(s) for s in seeds_order[: looks[k]]]


def look_runs(planned, seeds_order, looks, k: int, previous: dict | None = None) -> list:
    """The runs look ``k`` (0-based) stands on: every planned run of the first look's seeds; at
    a later look, the previous look's runs and, of the seeds it adds, the runs whose setting an
    open part needs (``previous``: the previous look's decisions)."""
    seeds = set(look_seeds(seeds_order, looks, k))
    if k == 0:
        return [run for run in planned if run.seed in seeds]
    assert previous is not None, "a later look needs the previous look's decisions"
    done = set(previous["runs"])
    needed = {tuple(s) for s in previous["needed"]}
    new = seeds - set(look_seeds(seeds_order, looks, k - 1))
    return [
        run
        for run in planned
        if run.run_dir in done
        or (run.seed in new and (run.world, run.design, run.n, run.annotator, run.head) in needed)
    ]


# ---------------------------------------------------------------------------------------------
# The whole procedure on simulated experiments (the error-rate tests use it)


def run_looks(y, looks, threshold: float, distance: float, superiority: bool, plan: Plan):
    """Verdicts of every part of one claim over all looks: ``y`` (..., parts, S, P), look k
    reading its first ``looks[k]`` seeds. Returns the verdicts, the look each was decided at
    and the look each was stopped for futility at (0: never). The same :func:`step` and
    :func:`futility` as the findings at a look."""
    fractions = information(looks)
    shape = y.shape[:-2]
    parts = shape[-1]
    verdict = np.full(shape, "", dtype=object)
    at = np.zeros(shape, dtype=int)
    stopped = np.zeros(shape, dtype=bool)
    stopped_at = np.zeros(shape, dtype=int)
    for k, seeds in enumerate(looks):
        result = st.crossed_interval(y[..., :seeds, :])
        current = np.where(stopped, st.INCONCLUSIVE, verdict)
        rejected_before = (verdict == st.CONTRADICTED).sum(axis=-1)
        new = step(
            current,
            result["effect"],
            half_widths(result),
            result["se"] > 1e-12,
            threshold,
            distance,
            superiority,
            k,
            fractions,
            plan.alpha,
            rejected_before,
        )
        at[(current == "") & (new != "")] = k + 1
        verdict = np.where(stopped, verdict, new)
        if k < len(looks) - 1:
            power = futility(result, k, looks, threshold, distance, superiority, plan, parts)
            now = ~stopped & (verdict == "") & (power < plan.futility_power)
            stopped_at[now] = k + 1
            stopped |= now
    verdict[verdict == ""] = st.INCONCLUSIVE
    return verdict, at, stopped_at
