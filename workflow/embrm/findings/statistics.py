"""The interval every part stands on, its verdict and the planning numbers.

A part's per-seed, per-test-prompt contrast values Y (S seeds × P prompts) follow the crossed
random-effects model ``Y_sp = θ + a_s + b_p + e_sp``: every seed is scored on the same test
prompts, so seed (a, training noise), prompt (b, which test prompts were drawn) and their
interaction plus residual (e) are the three sources of error. The estimate is the grand mean;
its variance is ``σ_s²/S + σ_p²/P + σ_e²/(SP)``, estimated from the two-way ANOVA mean squares,
and the interval is the modified large-sample one (:func:`crossed_interval`). Every term counts
once (a bootstrap that draws prompts and seeds jointly counts the interaction twice).

Everything is vectorized over leading axes, so the simulation tests run thousands of experiments
in one call.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

REPLICATED, CONTRADICTED, NEGLIGIBLE, INCONCLUSIVE, NOT_TESTED = (
    "replicated",
    "contradicted",
    "negligible",
    "inconclusive",
    "not tested",
)
SUPERIORITY, NONINFERIORITY = "superiority", "non-inferiority"


def mean_squares(y: np.ndarray) -> dict:
    """Two-way ANOVA without replication of Y (..., S, P): mean squares and their df."""
    y = np.asarray(y, dtype=float)
    seeds, prompts = y.shape[-2:]
    grand = y.mean(axis=(-2, -1), keepdims=True)
    row = y.mean(axis=-1, keepdims=True)
    col = y.mean(axis=-2, keepdims=True)
    df_s, df_p = seeds - 1, prompts - 1
    df_e = df_s * df_p
    ms_s = prompts * ((row - grand) ** 2).sum(axis=(-2, -1)) / max(df_s, 1)
    ms_p = seeds * ((col - grand) ** 2).sum(axis=(-2, -1)) / max(df_p, 1)
    resid = y - row - col + grand
    ms_e = (resid**2).sum(axis=(-2, -1)) / max(df_e, 1)
    if df_p == 0:  # one "prompt": the seeds-only case
        ms_p = np.zeros_like(ms_s)
        ms_e = np.zeros_like(ms_s)
    return {
        "mean": grand[..., 0, 0],
        "ms_seed": ms_s,
        "ms_prompt": ms_p,
        "ms_inter": ms_e,
        "df": (df_s, df_p, df_e),
        "shape": (seeds, prompts),
    }


def components(ms: dict) -> dict:
    """Variance components σ_s², σ_p², σ_e² (truncated at 0) from the mean squares."""
    seeds, prompts = ms["shape"]
    var_e = ms["ms_inter"]
    var_s = np.maximum(0.0, (ms["ms_seed"] - var_e) / prompts)
    var_p = np.maximum(0.0, (ms["ms_prompt"] - var_e) / seeds) if prompts > 1 else 0 * var_e
    return {"var_seed": var_s, "var_prompt": var_p, "var_inter": var_e}


def _halfwidth(s_seed, s_prompt, seeds: int, prompts: int, alpha_one_sided):
    """Modified large-sample half-width: each source's standard error times its own t quantile
    (seed and interaction: S − 1 df; prompt: P − 1 df), combined in quadrature."""
    q_seed = stats.t.ppf(1 - alpha_one_sided, max(seeds - 1, 1))
    q_prompt = stats.t.ppf(1 - alpha_one_sided, max(prompts - 1, 1))
    return np.sqrt((q_seed * s_seed) ** 2 + (q_prompt * s_prompt) ** 2)


def _split(ms: dict):
    """The mean's standard error from the seeds (seed and interaction terms: MS_S/(SP), never
    cut) and from the prompts ((MS_P − MS_E)/(SP), cut at 0)."""
    seeds, prompts = ms["shape"]
    s_seed = np.sqrt(ms["ms_seed"] / (seeds * prompts))
    if prompts == 1:
        return s_seed, np.zeros_like(s_seed)
    s_prompt = np.sqrt(np.maximum(0.0, ms["ms_prompt"] - ms["ms_inter"]) / (seeds * prompts))
    return s_seed, s_prompt


def crossed_interval(y, confidence: float = 0.95) -> dict:
    """Mean of Y (..., S, P), its standard error and the interval under the crossed model; the
    variance components and the share of the mean's variance from each source.

    Var(mean) = σ_s²/S + σ_p²/P + σ_e²/(SP) = [MS_S + (MS_P − MS_E)] / (SP). The interval is
    the modified large-sample (MLS) one: each of the two pieces gets the t quantile of its own
    df, the half-widths add in quadrature. Satterthwaite's single df was measured liberal here
    (one-sided rates 1.5–2.2 times nominal at Holm's levels with 5 seeds: when the seeds happen
    to agree, the prompts' large df takes over); MLS keeps every level (tests/test_findings.py).
    ``df`` is the effective df: t_df times the standard error gives the 95% half-width.
    """
    ms = mean_squares(y)
    seeds, prompts = ms["shape"]
    comp = components(ms)
    s_seed, s_prompt = _split(ms)
    se = np.sqrt(s_seed**2 + s_prompt**2)
    if seeds < 2:
        nan = np.full_like(se, np.nan)
        half, df = nan, nan
    else:
        half = _halfwidth(s_seed, s_prompt, seeds, prompts, (1 - confidence) / 2)
        df = _effective_df(half, se, confidence)
    parts = np.stack(
        [
            comp["var_seed"] / seeds,
            comp["var_prompt"] / prompts,
            comp["var_inter"] / (seeds * prompts),
        ]
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = parts / parts.sum(axis=0)
    return {
        "effect": ms["mean"],
        "se": se,
        "df": df,
        "ci_low": ms["mean"] - half,
        "ci_high": ms["mean"] + half,
        **comp,
        "share_seed": shares[0],
        "share_prompt": shares[1],
        "share_interaction": shares[2],
        "ms": ms,
    }


def _effective_df(half, se, confidence):
    """df at which t's quantile times ``se`` is ``half`` (bisection on log df, vectorized)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        target = np.asarray(half / se, dtype=float)
    lo, hi = np.zeros_like(target), np.full_like(target, 6.0)  # log10 df in [0, 6]
    for _ in range(40):
        mid = (lo + hi) / 2
        too_wide = stats.t.ppf(0.5 + confidence / 2, 10**mid) > target
        lo, hi = np.where(too_wide, mid, lo), np.where(too_wide, hi, mid)
    return np.where(np.isfinite(target), 10 ** ((lo + hi) / 2), np.nan)


def one_sided_p(y_or_result, threshold: float, upper: bool):
    """One-sided p-value of H0 θ ≤ threshold (``upper``: evidence θ > threshold) or θ ≥
    threshold, by inverting the MLS interval: the level at which its bound touches the
    threshold (bisection on log α, vectorized over leading axes)."""
    r = y_or_result if isinstance(y_or_result, dict) else crossed_interval(y_or_result)
    ms = r["ms"]
    seeds, prompts = ms["shape"]
    s_seed, s_prompt = _split(ms)
    distance = (r["effect"] - threshold) * (1 if upper else -1)
    if seeds < 2:
        return np.full_like(np.asarray(distance, dtype=float), np.nan)
    size = np.abs(distance)
    lo, hi = np.full_like(size, -15.0), np.full_like(size, np.log10(0.5))  # log10 α
    for _ in range(50):
        mid = (lo + hi) / 2
        reaches = _halfwidth(s_seed, s_prompt, seeds, prompts, 10**mid) > size
        lo, hi = np.where(reaches, mid, lo), np.where(reaches, hi, mid)
    alpha = 10 ** ((lo + hi) / 2)
    degenerate = ~(r["se"] > 0)
    p = np.where(distance > 0, alpha, 1 - alpha)
    return np.where(degenerate, np.nan, p)


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values over the last axis (NaN: not tested, left out)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    finite = np.isfinite(p)
    if p.ndim == 1:
        idx = np.flatnonzero(finite)
        if idx.size == 0:
            return out
        order = idx[np.argsort(p[idx], kind="stable")]
        k = order.size
        adjusted = np.maximum.accumulate((k - np.arange(k)) * p[order])
        out[order] = np.minimum(adjusted, 1.0)
        return out
    # all parts tested (the simulation's case): vectorized over leading axes
    k = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=-1)
    adjusted = np.minimum(np.maximum.accumulate((k - np.arange(k)) * sorted_p, axis=-1), 1.0)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return out


def verdicts(
    low, high, p_contradict_adjusted, threshold, kind: str, sesoi: float, alpha: float, se
):
    """Each part's verdict (vectorized): negligible first (the whole interval within ±sesoi of
    0, a "beats" part only), then replicated (interval above the threshold), contradicted (Holm
    adjusted one-sided p below alpha / 2), else inconclusive. A part whose variance is
    estimated as 0 is inconclusive: a point interval is a degenerate estimate, not certainty."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    out = np.full(low.shape, INCONCLUSIVE, dtype=object)
    ok = np.isfinite(low) & np.isfinite(high) & (np.asarray(se) > 0)
    contradicted = ok & (np.asarray(p_contradict_adjusted) < alpha / 2)
    out[contradicted] = CONTRADICTED
    out[ok & (low > threshold)] = REPLICATED
    if kind == SUPERIORITY:
        out[ok & (low > -sesoi) & (high < sesoi)] = NEGLIGIBLE
    return out


# ---------------------------------------------------------------------------------------------
# Planning


def _design(comp: dict, seeds, prompts: int, alpha_one_sided: float):
    """Standard error and MLS half-width of the mean at ``seeds`` seeds (array), the test set of
    ``prompts`` prompts fixed, at the expected mean squares of the components."""
    seeds = np.asarray(seeds, dtype=float)
    vs, vp, ve = comp["var_seed"], comp["var_prompt"], comp["var_inter"]
    s_seed = np.sqrt(vs / seeds + ve / (seeds * prompts))
    s_prompt = np.sqrt(vp / prompts) * np.ones_like(seeds)
    q_seed = stats.t.ppf(1 - alpha_one_sided, np.maximum(seeds - 1, 1))
    q_prompt = stats.t.ppf(1 - alpha_one_sided, max(prompts - 1, 1))
    half = np.sqrt((q_seed * s_seed) ** 2 + (q_prompt * s_prompt) ** 2)
    return np.sqrt(s_seed**2 + s_prompt**2), half


def _spread(comp: dict) -> float:
    return comp["var_seed"] + comp["var_prompt"] + comp["var_inter"]


def seeds_for_power(comp, prompts, distance, alpha_one_sided, power, max_seeds):
    """Fewest seeds (≥ 2) at which a true effect ``distance`` beyond the threshold is decided
    with ``power`` by the one-sided test at ``alpha_one_sided`` (the estimate normal around the
    truth, the bound at its expected MLS half-width); inf when the test set's floor σ_p²/P keeps
    it out of reach at any number of seeds, NaN without a spread."""
    if not np.isfinite(distance) or distance <= 0 or not _spread(comp) > 0:
        return float("nan")
    grid = np.arange(2, max_seeds + 1)
    se, half = _design(comp, grid, prompts, alpha_one_sided)
    achieved = stats.norm.cdf((distance - half) / se)
    hit = np.flatnonzero(achieved >= power)
    return float(grid[hit[0]]) if hit.size else float("inf")


def seeds_for_halfwidth(comp, prompts, halfwidth, confidence, max_seeds):
    """Fewest seeds whose expected 95% half-width is at most ``halfwidth``; inf when the test
    set's floor alone is wider."""
    if not _spread(comp) > 0:
        return float("nan")
    grid = np.arange(2, max_seeds + 1)
    _, half = _design(comp, grid, prompts, (1 - confidence) / 2)
    hit = np.flatnonzero(half <= halfwidth)
    return float(grid[hit[0]]) if hit.size else float("inf")


def upper_components(ms: dict, level: float) -> dict:
    """Components with the seed and interaction mean squares at their one-sided ``level``
    upper confidence bound (χ²): the spread five seeds cannot rule out, for planning."""
    df_s, _, df_e = ms["df"]
    ms_s = ms["ms_seed"] * df_s / stats.chi2.ppf(1 - level, df_s) if df_s > 0 else np.nan
    ms_e = ms["ms_inter"] * df_e / stats.chi2.ppf(1 - level, df_e) if df_e > 0 else 0.0
    return components({**ms, "ms_seed": ms_s, "ms_inter": ms_e})


def detectable_now(comp, seeds, prompts, alpha_one_sided, power) -> float:
    """The smallest distance from the threshold the current seeds decide with ``power``."""
    if not _spread(comp) > 0:
        return float("nan")
    se, half = _design(comp, seeds, prompts, alpha_one_sided)
    return float(half + stats.norm.ppf(power) * se)
