"""Exact Best-of-N: expectations over every N-subset of a prompt's K responses, no sampling.

Best-of-N draws N of the K responses uniformly without replacement and keeps the one with the
highest predicted reward. Sort a prompt's responses by predicted reward, lowest first: the j-th
(1-based) is the pick exactly when it is in the subset and the other N − 1 come from the j − 1
below it, which happens in C(j − 1, N − 1) of the C(K, N) subsets. So the pick is the j-th with
probability

    w(N, j) = C(j − 1, N − 1) / C(K, N),        and  sum_{i <= j} w(N, i) = C(j, N) / C(K, N).

Responses with equal predicted rewards (a tie group, sorted positions a..b) share the group's
combined probability equally: a tie is a uniformly random order among them, which is what the
study's sampled estimator (first in a random order wins) does on average. Every expectation below
is therefore ``sum_j w(N, j) * v̄_j`` with ``v̄`` a per-response value (golden reward, quantile,
win rate, proxy score) sorted by predicted reward and averaged within tie groups.

These weights do not depend on the prompt, so the curve averaged over prompts is one
(K,) @ (K, K) product for every N from 1 to K; the cost of a run is one sort per prompt.
Weights come from log-binomials in float64 (``C(500, 250)`` overflows nothing in logs).
Only numpy is imported.

The exact estimator (``evaluation.bon: exact``, the default: :func:`best_of_n_exact`) and the
pick's exact properties whatever the estimator (:func:`pick_quality`) are built on these below.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .evaluation_bon import bon_summary, check_shapes, clip_n_values


def _log_factorials(k: int) -> np.ndarray:
    """log(i!) for i = 0..k."""
    out = np.zeros(k + 1)
    out[1:] = np.cumsum(np.log(np.arange(1, k + 1, dtype=np.float64)))
    return out


def _log_binomial(a: np.ndarray, b: np.ndarray, log_fact: np.ndarray) -> np.ndarray:
    """log C(a, b) elementwise; -inf where b < 0 or b > a."""
    valid = (b >= 0) & (b <= a)
    a_, b_ = np.where(valid, a, 0), np.where(valid, b, 0)
    return np.where(valid, log_fact[a_] - log_fact[b_] - log_fact[a_ - b_], -np.inf)


def pick_probabilities(responses: int) -> np.ndarray:
    """(K, K) ``w[N - 1, j - 1]``: probability that Best-of-N picks the j-th lowest of K distinct
    scores, for every N = 1..K. Each row sums to 1."""
    k = int(responses)
    if k < 1:
        raise ValueError("Best-of-N needs at least one response per prompt")
    log_fact = _log_factorials(k)
    n = np.arange(1, k + 1)[:, None]
    j = np.arange(1, k + 1)[None, :]
    log_w = _log_binomial(j - 1, n - 1, log_fact) - _log_binomial(np.full_like(n, k), n, log_fact)
    return np.exp(log_w)


def cumulative_pick_probabilities(responses: int) -> np.ndarray:
    """(K, K + 1) ``F[N - 1, j] = C(j, N) / C(K, N)``: probability that the pick is among the j
    lowest, j = 0..K (closed form of the running sum of :func:`pick_probabilities`)."""
    k = int(responses)
    log_fact = _log_factorials(k)
    n = np.arange(1, k + 1)[:, None]
    j = np.arange(0, k + 1)[None, :]
    return np.exp(
        _log_binomial(np.broadcast_to(j, (k, k + 1)), np.broadcast_to(n, (k, k + 1)), log_fact)
        - _log_binomial(np.full_like(n, k), n, log_fact)
    )


class RankedPrompts:
    """A (P, K) prediction array sorted within each prompt, with its tie groups.

    ``order`` sorts each row ascending. ``groups`` lists the tie groups of two or more equal
    predictions as (row, first, last) sorted positions; every other response is alone.
    """

    def __init__(self, predictions: np.ndarray):
        predictions = np.asarray(predictions)
        if predictions.ndim != 2:
            raise ValueError(f"predictions must be (P, K), got {predictions.shape}")
        rows, cols = predictions.shape
        self.shape = (rows, cols)
        # Any sort: tied responses are averaged, so their order among themselves never matters.
        self.order = np.argsort(predictions, axis=1)
        self._flat = (self.order + (np.arange(rows) * cols)[:, None]).ravel()
        ordered = predictions.reshape(-1).take(self._flat).reshape(rows, cols)
        # same[:, j]: sorted positions j and j + 1 tie. A group runs from a position that ties
        # with the next but not the previous to one that ties with the previous but not the next.
        same = np.zeros((rows, cols + 1), dtype=bool)
        same[:, 1:-1] = ordered[:, 1:] == ordered[:, :-1]
        self.has_ties = bool(same.any())
        if self.has_ties:
            group_rows, firsts = np.nonzero(same[:, 1:] & ~same[:, :-1])
            lasts = np.nonzero(same[:, :-1] & ~same[:, 1:])[1]
            self.groups = (group_rows, firsts, lasts)

    def sorted_values(self, values: np.ndarray) -> np.ndarray:
        """(P, K) per-response ``values`` in ascending order of predicted reward, averaged within
        each tie group (float64)."""
        values = np.asarray(values, dtype=np.float64)
        return self._tie_averaged(values.reshape(-1).take(self._flat))

    def average_ranks(self) -> np.ndarray:
        """(P, K) 1-based rank of each response within its prompt, tied ones sharing their
        average rank (like ``scipy.stats.rankdata``), in the responses' own order."""
        rows, cols = self.shape
        positions = np.tile(np.arange(1.0, cols + 1), rows)
        ranks = np.empty(rows * cols)
        ranks[self._flat] = self._tie_averaged(positions).ravel()
        return ranks.reshape(self.shape)

    def _tie_averaged(self, ordered: np.ndarray) -> np.ndarray:
        """Flat values in sorted order -> (P, K), each tie group replaced by its mean."""
        if self.has_ties:
            group_rows, firsts, lasts = self.groups
            starts = group_rows * self.shape[1] + firsts
            sizes = lasts - firsts + 1
            bounds = np.empty(2 * starts.size, dtype=np.int64)
            bounds[0::2], bounds[1::2] = starts, starts + sizes
            padded = np.append(ordered, 0.0)  # a group may end at the very last response
            means = np.add.reduceat(padded, bounds)[0::2] / sizes
            offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            ordered[np.repeat(starts, sizes) + offsets] = np.repeat(means, sizes)
        return ordered.reshape(self.shape)


def expected_curve(ranked: RankedPrompts, values, weights: np.ndarray) -> np.ndarray:
    """(K,) mean over prompts of the expected ``values`` of the Best-of-N pick, N = 1..K."""
    return weights @ ranked.sorted_values(values).mean(axis=0)


def _xlogx_k(p: np.ndarray, k: int) -> np.ndarray:
    """p * log(p * k), 0 where p = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * np.log(p * k), 0.0)


def kl_from_uniform(ranked: RankedPrompts, ns, weights: np.ndarray) -> np.ndarray:
    """(len(ns),) exact KL(Best-of-N pick || uniform pick over K), averaged over prompts.

    Without ties it is ``sum_j w(N, j) log(w(N, j) K)`` for every prompt. A tie group of m
    responses (positions a..b) with combined probability S holds m responses of probability S/m
    each, contributing ``S log(S K / m)`` in place of its positions' own terms; running sums over
    positions give both in O(1) per group and N, so only tie groups cost anything.
    """
    prompts, k = ranked.shape
    rows = np.asarray(ns, dtype=np.int64) - 1
    w = weights[rows]  # (len N, K)
    terms = _xlogx_k(w, k)
    base = terms.sum(axis=1)
    if not ranked.has_ties:
        return np.maximum(base, 0.0)  # KL >= 0; rounding can leave -1e-17 at N = 1
    running_terms = np.zeros((len(rows), k + 1))
    np.cumsum(terms, axis=1, out=running_terms[:, 1:])
    cumulative = cumulative_pick_probabilities(k)[rows]  # (len N, K + 1)
    group_rows, firsts, lasts = ranked.groups
    size = (lasts - firsts + 1).astype(np.float64)
    combined = cumulative[:, lasts + 1] - cumulative[:, firsts]  # (len N, groups)
    own = running_terms[:, lasts + 1] - running_terms[:, firsts]
    shared = _xlogx_k(combined / size, k) * size
    correction = np.zeros((len(rows), prompts))
    np.add.at(correction.T, group_rows, (shared - own).T)
    return np.maximum(base + correction.mean(axis=1), 0.0)


def kl_upper_bound(ns) -> np.ndarray:
    """The usual Best-of-N KL formula ``log N − (N − 1)/N``.

    Beirami et al. prove it an upper bound on the KL of Best-of-N over N *independent* draws
    (with replacement). The study draws N of K responses *without* replacement, which
    concentrates the pick more: for distinct scores its exact KL is above this formula at every
    N ≥ 2 (log K against log K − 1 + 1/K at N = K). Ties lower the exact KL, which can then fall
    below the formula. So it is reported beside the exact KL for comparison, not as a bound.
    """
    n = np.asarray(ns, dtype=np.float64)
    return np.log(n) - (n - 1) / n


def within_prompt_quantile(average_rank, responses: int):
    """Within-prompt golden quantile of a response from its 1-based average golden rank among the
    prompt's K: the share of the other responses with a lower golden reward (equal ones count
    half). 0 for the worst, 1 for the best, 0.5 on average over a prompt."""
    if responses == 1:
        return np.full_like(np.asarray(average_rank, dtype=np.float64), 0.5)
    return (np.asarray(average_rank, dtype=np.float64) - 1.0) / (responses - 1)


def win_rate_vs_random(average_rank, responses: int):
    """Probability that a response beats one drawn uniformly from the prompt's K (itself
    included) in golden reward, a tie counting half, from its 1-based average golden rank:
    0.5 on average over a prompt."""
    return (np.asarray(average_rank, dtype=np.float64) - 0.5) / responses


def standardized(scores: np.ndarray) -> np.ndarray:
    """Scores standardized within each prompt (0 where a prompt's scores are all equal), so that
    heads with different output scales are comparable."""
    scores = np.asarray(scores, dtype=np.float64)
    centred = scores - scores.mean(axis=1, keepdims=True)
    spread = centred.std(axis=1, keepdims=True)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)


# -- The exact estimator and the exact properties of the pick ---------------------------------
@lru_cache(maxsize=4)
def _weights(responses: int) -> np.ndarray:
    weights = pick_probabilities(responses)
    weights.flags.writeable = False  # shared by every call with the same K
    return weights


def exact_oracle(golden: np.ndarray, ns: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's exact Best-of-N (picking by golden reward): the mean golden reward of its pick
    at each N of ``ns``, and each prompt's at ``ns[-1]``."""
    golden = np.asarray(golden, dtype=np.float64)
    weights = _weights(golden.shape[1])
    # Sorted by itself: golden ties hold equal values, so averaging them would change nothing.
    ordered = np.sort(golden, axis=1)
    curve = weights[np.asarray(ns) - 1] @ ordered.mean(axis=0)
    return curve, ordered @ weights[ns[-1] - 1]


def best_of_n_exact(
    predictions: np.ndarray,
    golden: np.ndarray,
    n_values,
    *,
    oracle: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Exact Best-of-N of ``predictions`` and of the oracle: the same keys as :func:`embrm.evaluation_sampled.best_of_n`,
    each an expectation over every N-subset (ties broken uniformly at random)."""
    return exact_best_of_n(predictions, golden, n_values, oracle)[0]


def exact_best_of_n(predictions, golden, n_values, oracle):
    """(summary, per-prompt golden reward of the pick at the largest N, the oracle's, the
    ranked predictions)."""
    predictions = np.asarray(predictions)
    golden = np.asarray(golden, dtype=np.float64)
    check_shapes(predictions, golden)
    ns = clip_n_values(n_values, golden.shape[1])
    ranked, weights = RankedPrompts(predictions), _weights(golden.shape[1])
    ordered = ranked.sorted_values(golden)
    curve = weights[np.asarray(ns) - 1] @ ordered.mean(axis=0)
    picked = ordered @ weights[ns[-1] - 1]
    if oracle is None:
        oracle = exact_oracle(golden, ns)
    return bon_summary(ns, curve, oracle[0], golden), picked, oracle[1], ranked


def pick_quality(
    predictions: np.ndarray, golden: np.ndarray, ns: list[int], *, ranked=None
) -> dict:
    """Exact properties of the Best-of-N pick at each N of ``ns`` (whatever the estimator of
    ``bon_reward``), each a mean over prompts; ``*_curve`` lists follow ``ns``, the scalars are
    at the largest N:

    - ``bon_kl``: KL divergence of the pick's distribution from a uniform pick among the K
      responses, exactly; ``bon_kl_bound``: the common formula log N − (N − 1)/N, an upper
      bound for N independent draws only: drawing without replacement, as here, the exact KL
      is above it for distinct scores (see :func:`embrm.evaluation_exact.kl_upper_bound`);
    - ``bon_quantile``: the pick's within-prompt golden quantile (0 worst, 1 best, 0.5 random);
    - ``bon_win_rate``: probability that the pick beats a uniformly drawn response of the
      prompt in golden reward (ties half; 0.5 for a random pick);
    - over-optimization (``embrm.overoptimization``): the pick's proxy reward (the model's own
      score) and golden reward, both standardized within the prompt (``bon_proxy_z``,
      ``bon_gold_z``), the fit of Gao et al.'s gold(d) = d(α − βd) to the golden gain against
      d = sqrt(KL) (``gao_alpha``, ``gao_beta``), the N and KL where the expected golden reward
      peaks over N = 1..K (``bon_peak_n``, ``bon_peak_kl``; ``bon_peak_before_k`` is 1 when
      that is below K), and the proxy–gold gap at N = K (``proxy_gold_gap``).
    """
    from .overoptimization import gao_fit, peak

    predictions = np.asarray(predictions)
    golden = np.asarray(golden, dtype=np.float64)
    check_shapes(predictions, golden)
    responses = golden.shape[1]
    ranked = RankedPrompts(predictions) if ranked is None else ranked
    weights = _weights(responses)
    rows = np.asarray(ns) - 1
    kl = kl_from_uniform(ranked, ns, weights)
    bound = kl_upper_bound(ns)
    # The quantile and the win rate are both affine in the response's average golden rank.
    rank = expected_curve(ranked, RankedPrompts(golden).average_ranks(), weights)
    quantile = within_prompt_quantile(rank, responses)
    win = win_rate_vs_random(rank, responses)
    gold = expected_curve(ranked, golden, weights)
    gold_z = expected_curve(ranked, standardized(golden), weights)
    proxy_z = expected_curve(ranked, standardized(predictions), weights)
    gain = gold[rows] - golden.mean()
    alpha, beta = gao_fit(np.sqrt(kl), gain)
    peak_n = peak(gold)
    out = {
        "bon_kl_curve": kl.tolist(),
        "bon_kl_bound_curve": bound.tolist(),
        "bon_quantile_curve": quantile[rows].tolist(),
        "bon_win_rate_curve": win[rows].tolist(),
        "bon_proxy_z_curve": proxy_z[rows].tolist(),
        "bon_gold_z_curve": gold_z[rows].tolist(),
        "bon_kl": float(kl[-1]),
        "bon_kl_bound": float(bound[-1]),
        "bon_quantile": float(quantile[rows[-1]]),
        "bon_win_rate": float(win[rows[-1]]),
        "gao_alpha": alpha,
        "gao_beta": beta,
        "bon_peak_n": peak_n,
        "bon_peak_kl": float(kl_from_uniform(ranked, [peak_n], weights)[0]),
        "bon_peak_before_k": float(peak_n < responses),
        "proxy_gold_gap": float(proxy_z[-1] - gold_z[-1]),
    }
    return out
