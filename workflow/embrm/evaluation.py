"""Test-set metrics: Best-of-N, per-prompt Spearman, order-consistency accuracy.

Best-of-N is computed one of two ways (``evaluation.bon``). ``exact`` (the default) is the
expectation over every N-subset of a prompt's responses, in closed form over the ranks of the
predictions (``embrm.evaluation_exact``): no sampling noise, and faster. ``sampled`` is the
study's estimator, kept so that its numbers stay reproducible. Whatever the estimator, the
pick's KL from uniform sampling, its within-prompt quantile and win rate, and the
over-optimization curves are exact expectations (:func:`pick_quality`).

The sampled estimator follows the study: for each repeat, one random order of the K responses shared by all
prompts; for each N, the first N responses in that order, pick the argmax of the predicted reward
(the first one in that order on ties), record its golden reward, average over prompts and repeats.

The vectorized version works on all prompts and a block of repeats at once. Predictions are first
replaced by their dense rank within the prompt (equal values share a rank, order kept), which picks
exactly the same responses as the raw values while moving 2-4 bytes per element instead of 8.
For each N, only the segment of the order between the previous N and this one is scanned, so every
response is read once per repeat whatever the number of N values. Only numpy is imported:
evaluation jobs start fast. Runs trained on a GPU pick on it instead (``embrm.evaluation_torch``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# Scalar metrics that depend on the predictions (the others describe the test set and the draws).
PREDICTION_METRICS = (
    "bon_gain",
    "bon_gain_normalized",
    "spearman",
    "spearman_defined_fraction",
    "accuracy_vs_labels",
    "accuracy_vs_golden",
)
BON_METHODS = ("exact", "sampled")


def bon_orders(responses: int, repeats: int, rng: np.random.Generator) -> np.ndarray:
    """(repeats, K) response orders; shared by every prompt and every run with the same seed."""
    return np.stack([rng.permutation(responses) for _ in range(repeats)])


def clip_n_values(n_values, responses: int) -> list[int]:
    """The distinct N values, those above K replaced by K (Best-of-K = pick among all)."""
    if responses < 1:
        raise ValueError("Best-of-N needs at least one response per prompt")
    if any(int(n) < 1 for n in n_values):
        raise ValueError(f"Best-of-N sizes must be >= 1, got {list(n_values)}")
    return sorted({min(int(n), responses) for n in n_values})


def dense_ranks(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Row-wise dense ranks (0 = lowest, equal values share a rank) in the smallest integer type.

    ``a > b`` holds for two ranks exactly when it holds for the scores they replace, so any
    argmax (with first-occurrence tie breaking) is unchanged. Also returns the argsort of each
    row (rank -> response when the row has no ties) and whether any row has ties.
    """
    rows, cols = scores.shape
    # Any sort puts equal values side by side, so the dense ranks do not need a stable one.
    order = np.argsort(scores, axis=1)
    ordered = np.take_along_axis(scores, order, axis=1)
    step = np.zeros((rows, cols), dtype=np.int64)
    step[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    dtype = np.int16 if cols <= np.iinfo(np.int16).max else np.int32
    dense = np.cumsum(step, axis=1)
    ranks = np.empty((rows, cols), dtype=dtype)
    np.put_along_axis(ranks, order, dense.astype(dtype), axis=1)
    has_ties = bool(cols and (dense[:, -1] < cols - 1).any())
    return ranks, order, has_ties


def _check_shapes(scores: np.ndarray, golden: np.ndarray) -> None:
    if scores.shape != golden.shape or golden.ndim != 2:
        raise ValueError(
            f"predictions {scores.shape} and golden rewards {golden.shape} must both be (P, K)"
        )
    if not (np.isfinite(scores).all() and np.isfinite(golden).all()):
        raise ValueError("predictions and golden rewards must be finite (no NaN or inf)")


def _check(scores: np.ndarray, golden: np.ndarray, orders: np.ndarray) -> None:
    _check_shapes(scores, golden)
    responses = golden.shape[1]
    if orders.ndim != 2 or orders.shape[1] != responses:
        raise ValueError(f"orders must be (repeats, {responses}), got {orders.shape}")
    if not (np.sort(orders, axis=1) == np.arange(responses)).all():
        raise ValueError("every row of orders must be a permutation of the responses")


def bon_pick_positions(scores: np.ndarray, orders: np.ndarray, n_values) -> np.ndarray:
    """(repeats, P, len(N)) index of the response Best-of-N picks, per repeat, prompt and N.

    ``n_values`` must be sorted, distinct and at most K (see :func:`clip_n_values`).

    Per repeat, the (K, P) table of ranks in that repeat's order is gathered by whole rows
    (contiguous copies), then reduced over the response axis one N-segment at a time, all
    prompts at once. Without ties the best rank names the response. With ties, the first
    response in the order must win, so the key is ``rank * K + (K - 1 - position)``: the
    maximum key is the highest rank at the earliest position, and the position is read back.
    """
    scores = np.asarray(scores)
    ranks, by_rank, has_ties = dense_ranks(scores)
    prompts, responses = ranks.shape
    repeats, sizes = orders.shape[0], len(n_values)
    if has_ties:
        key_type = np.int32 if responses * responses < np.iinfo(np.int32).max else np.int64
        table = np.ascontiguousarray((ranks.astype(key_type) * responses).T)  # (K, P)
        offset = (responses - 1 - np.arange(responses, dtype=key_type))[:, None]
    else:
        table = np.ascontiguousarray(ranks.T)
    bounds = [0, *n_values]
    best = np.empty((repeats, sizes, prompts), dtype=table.dtype)
    for r, order in enumerate(orders):
        gathered = table[order]  # (K, P): row j is the response at position j of this order
        if has_ties:
            gathered += offset
        running = best[r]
        gathered[: bounds[1]].max(axis=0, out=running[0])
        for i in range(1, sizes):
            np.maximum(
                running[i - 1], gathered[bounds[i] : bounds[i + 1]].max(axis=0), out=running[i]
            )
    if has_ties:
        position = (responses - 1) - best % responses  # (R, N, P) position in the order
        picks = np.take_along_axis(orders, position.reshape(repeats, -1), axis=1)
        picks = picks.reshape(repeats, sizes, prompts)
    else:
        first = (np.arange(prompts) * responses)[None, None, :]
        picks = by_rank.ravel().take(best + first)
    return np.ascontiguousarray(picks.transpose(0, 2, 1), dtype=np.int64)


def pick_positions(scores: np.ndarray, orders: np.ndarray, n_values, device: str | None = None):
    """Best-of-N picks with NumPy (``device`` None) or with torch on ``device`` (``cuda``)."""
    if device is None:
        return bon_pick_positions(scores, orders, n_values)
    from .evaluation_torch import bon_pick_positions as on_device

    return on_device(scores, orders, n_values, device)


def _picked_golden(golden: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Golden reward of each picked response: (repeats, P, len(N))."""
    prompts, responses = golden.shape
    flat = picks + (np.arange(prompts) * responses)[None, :, None]
    return np.ascontiguousarray(golden).ravel().take(flat)


def _bon_summary(ns: list[int], bon: np.ndarray, oracle_bon: np.ndarray, golden) -> dict:
    """Curves and gains from the mean golden reward of the picks at each N, and the oracle's.

    Both sampled implementations end here with identical pick arrays, so their numbers are
    identical; the exact estimator passes its expectations.
    """
    bon = np.asarray(bon, dtype=np.float64)
    oracle_bon = np.asarray(oracle_bon, dtype=np.float64)
    random_pick = float(golden.mean())  # every prompt has K responses: mean of prompt means
    best = float(golden.max(axis=1).mean())
    gain = float(bon[-1] - random_pick)
    oracle_gain = float(oracle_bon[-1] - random_pick)
    return {
        "n_values": list(ns),
        "bon_reward": bon.tolist(),
        "bon_gain_curve": (bon - random_pick).tolist(),
        "oracle_bon_reward": oracle_bon.tolist(),
        "random_pick_reward": random_pick,
        "oracle_best_reward": best,
        "bon_n_max": ns[-1],
        "bon_gain": gain,
        "oracle_bon_gain": oracle_gain,
        # Share of what a perfect reward model would gain at the same N (1 = oracle, 0 = random).
        "bon_gain_normalized": gain / oracle_gain if oracle_gain > 0 else float("nan"),
    }


@lru_cache(maxsize=4)
def _weights(responses: int) -> np.ndarray:
    from .evaluation_exact import pick_probabilities

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
    """Exact Best-of-N of ``predictions`` and of the oracle: the same keys as :func:`best_of_n`,
    each an expectation over every N-subset (ties broken uniformly at random)."""
    return _exact_best_of_n(predictions, golden, n_values, oracle)[0]


def _exact_best_of_n(predictions, golden, n_values, oracle):
    """(summary, per-prompt golden reward of the pick at the largest N, the oracle's, the
    ranked predictions)."""
    from .evaluation_exact import RankedPrompts

    predictions = np.asarray(predictions)
    golden = np.asarray(golden, dtype=np.float64)
    _check_shapes(predictions, golden)
    ns = clip_n_values(n_values, golden.shape[1])
    ranked, weights = RankedPrompts(predictions), _weights(golden.shape[1])
    ordered = ranked.sorted_values(golden)
    curve = weights[np.asarray(ns) - 1] @ ordered.mean(axis=0)
    picked = ordered @ weights[ns[-1] - 1]
    if oracle is None:
        oracle = exact_oracle(golden, ns)
    return _bon_summary(ns, curve, oracle[0], golden), picked, oracle[1], ranked


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
    from .evaluation_exact import (
        RankedPrompts,
        expected_curve,
        kl_from_uniform,
        kl_upper_bound,
        standardized,
        win_rate_vs_random,
        within_prompt_quantile,
    )
    from .overoptimization import gao_fit, peak

    predictions = np.asarray(predictions)
    golden = np.asarray(golden, dtype=np.float64)
    _check_shapes(predictions, golden)
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


def oracle_picks(
    golden: np.ndarray, orders: np.ndarray, ns: list[int], *, device: str | None = None
) -> np.ndarray:
    """Golden rewards of the oracle's Best-of-N picks (picking by golden reward)."""
    return _picked_golden(golden, pick_positions(golden, orders, ns, device))


def _best_of_n_picks(predictions, golden, orders, n_values, oracle, device):
    """(N values, golden rewards of the picks, of the oracle's picks, golden) as float arrays."""
    predictions = np.asarray(predictions)
    golden = np.asarray(golden, dtype=np.float64)
    orders = np.asarray(orders)
    _check(predictions, golden, orders)
    ns = clip_n_values(n_values, golden.shape[1])
    picked = _picked_golden(golden, pick_positions(predictions, orders, ns, device))
    if oracle is None:
        oracle = oracle_picks(golden, orders, ns, device=device)
    return ns, picked, oracle, golden


def best_of_n(
    predictions: np.ndarray,
    golden: np.ndarray,
    orders: np.ndarray,
    n_values,
    *,
    oracle: np.ndarray | None = None,
    device: str | None = None,
) -> dict:
    """Best-of-N curve of ``predictions`` and of the golden oracle, both (P, K) arrays.

    ``oracle`` (from :func:`oracle_picks`) can be passed to score several prediction arrays
    against the same test set without recomputing it. ``device`` picks with torch there.
    """
    ns, picked, oracle, golden = _best_of_n_picks(
        predictions, golden, orders, n_values, oracle, device
    )
    return _bon_summary(ns, picked.mean(axis=(0, 1)), oracle.mean(axis=(0, 1)), golden)


def bon_gain_per_prompt(picked: np.ndarray, golden: np.ndarray) -> np.ndarray:
    """(P,) Best-of-N gain at the largest N of each test prompt: the golden reward of the pick,
    averaged over repeats, minus the prompt's mean golden reward. Their mean over prompts is the
    run's ``bon_gain`` (every prompt has K responses)."""
    return picked[:, :, -1].mean(axis=0) - golden.mean(axis=1)


def best_of_n_loop(
    predictions: np.ndarray, golden: np.ndarray, orders: np.ndarray, n_values
) -> dict:
    """The same protocol written as plain per-prompt loops: the reference for the vectorized one."""
    predictions = np.asarray(predictions)
    golden = np.asarray(golden, dtype=np.float64)
    orders = np.asarray(orders)
    _check(predictions, golden, orders)
    prompts, responses = golden.shape
    ns = clip_n_values(n_values, responses)
    picked = np.empty((orders.shape[0], prompts, len(ns)))
    oracle = np.empty_like(picked)
    for p in range(prompts):
        for r, order in enumerate(orders):
            pred, gold = predictions[p, order], golden[p, order]
            for i, n in enumerate(ns):
                picked[r, p, i] = gold[int(np.argmax(pred[:n]))]
                oracle[r, p, i] = gold[:n].max()
    return _bon_summary(ns, picked.mean(axis=(0, 1)), oracle.mean(axis=(0, 1)), golden)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Row-wise ranks (1-based) with ties given their average rank, like scipy's rankdata."""
    rows, cols = x.shape
    order = np.argsort(x, axis=1, kind="stable")
    ordered = np.take_along_axis(x, order, axis=1)
    start = np.ones((rows, cols), dtype=bool)
    start[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    end = np.ones((rows, cols), dtype=bool)
    end[:, :-1] = start[:, 1:]
    position = np.arange(cols)
    first = np.maximum.accumulate(np.where(start, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(end, position, cols)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((rows, cols))
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return ranks


def spearman_per_prompt(predictions: np.ndarray, golden: np.ndarray) -> np.ndarray:
    """Spearman correlation per prompt (row); NaN where either row is constant."""
    rp = average_ranks(np.asarray(predictions, dtype=np.float64))
    rg = average_ranks(np.asarray(golden, dtype=np.float64))
    rp -= rp.mean(axis=1, keepdims=True)
    rg -= rg.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rp * rp).sum(axis=1) * (rg * rg).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rp * rg).sum(axis=1) / denominator, np.nan)


def spearman_summary(predictions: np.ndarray, golden: np.ndarray) -> dict:
    """Mean per-prompt Spearman over the prompts where it is defined, and their share."""
    return _spearman_summary(spearman_per_prompt(predictions, golden))


def _spearman_summary(rho: np.ndarray) -> dict:
    defined = np.isfinite(rho)
    return {
        "spearman": float(rho[defined].mean()) if defined.any() else float("nan"),
        "spearman_defined_fraction": float(defined.mean()),
    }


def pair_accuracy(scores: np.ndarray, golden: np.ndarray, a, b, label) -> dict:
    """Order consistency on pairs (flat indices): against the labels and against the golden order.

    ``label`` is 1 where the first response of the pair was preferred. A tie in predicted reward
    (or, against the golden order, a golden tie) counts as half right.
    """
    a, b, label = np.asarray(a), np.asarray(b), np.asarray(label)
    if a.size == 0:
        return {"accuracy_vs_labels": float("nan"), "accuracy_vs_golden": float("nan")}
    margin = scores[a] - scores[b]
    golden_margin = golden[a] - golden[b]
    vs_labels = np.where(margin == 0, 0.5, (margin > 0) == (label > 0))
    vs_golden = np.where(
        (margin == 0) | (golden_margin == 0), 0.5, (margin > 0) == (golden_margin > 0)
    )
    return {
        "accuracy_vs_labels": float(vs_labels.mean()),
        "accuracy_vs_golden": float(vs_golden.mean()),
    }


def pair_calibration(predictions, heldout, truth=None) -> dict:
    """Calibration of the pair probabilities σ(s_a − s_b) on the held-out pairs, against their
    labels and, when ``truth`` is given, the annotator's true probabilities."""
    from .calibration import calibration, pair_probability

    a, b, label = (np.asarray(x) for x in heldout)
    p = pair_probability(np.asarray(predictions).ravel(), a, b)
    return calibration(p, label, truth)


def bon_method(evaluation: dict) -> str:
    """The Best-of-N estimator the ``evaluation`` config asks for (``bon``, default exact)."""
    method = evaluation.get("bon", "exact")
    if method not in BON_METHODS:
        raise ValueError(
            f"config key 'evaluation.bon': expected one of {list(BON_METHODS)}, got {method!r}"
        )
    return method


def bon_draws(evaluation: dict, responses: int) -> np.ndarray | None:
    """The sampled estimator's response orders (seeded by ``evaluation.seed`` only, shared by
    every run), or None for the exact estimator, which draws nothing."""
    if bon_method(evaluation) == "exact":
        return None
    from .seeding import rng

    return bon_orders(responses, evaluation["repeats"], rng(evaluation["seed"], "bon"))


def oracle_for(golden: np.ndarray, orders: np.ndarray | None, ns: list[int], *, device=None):
    """The oracle's Best-of-N, computed once per test set and passed to every :func:`evaluate`
    of it: its picks under the sampled estimator (``orders``), its expectations under the exact
    one (``orders`` None)."""
    if orders is None:
        return exact_oracle(golden, ns)
    return oracle_picks(golden, orders, ns, device=device)


def evaluate(
    predictions: np.ndarray,
    golden: np.ndarray,
    orders: np.ndarray | None,
    n_values,
    heldout: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    oracle=None,
    device: str | None = None,
    heldout_truth: np.ndarray | None = None,
) -> dict:
    """All test metrics of one (P, K) prediction array. Best-of-N is exact when ``orders`` is
    None, else the sampled estimator on those orders (picking with torch on ``device``).

    ``heldout_truth``: the annotator's true P(first wins) of each held-out pair, for calibration
    against the truth (``embrm.calibration``)."""
    return evaluate_per_prompt(
        predictions,
        golden,
        orders,
        n_values,
        heldout,
        oracle=oracle,
        device=device,
        heldout_truth=heldout_truth,
    )[0]


def evaluate_per_prompt(
    predictions: np.ndarray,
    golden: np.ndarray,
    orders: np.ndarray | None,
    n_values,
    heldout: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    oracle=None,
    device: str | None = None,
    heldout_truth: np.ndarray | None = None,
) -> tuple[dict, dict]:
    """:func:`evaluate`'s metrics, and the per-test-prompt values behind them: ``bon_gain`` and
    ``oracle_bon_gain`` at the largest N and ``spearman`` (NaN where undefined), (P,) lists each.

    The per-prompt values are kept apart from the metrics so that no table or tracker takes
    them for scalar metrics; the findings resample test prompts with them.
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    golden = np.asarray(golden, dtype=np.float64)
    if not np.isfinite(predictions).all():
        raise ValueError("predictions contain NaN or inf")
    if orders is None:
        metrics, picked, oracle_picked, ranked = _exact_best_of_n(
            predictions, golden, n_values, oracle
        )
        ns = metrics["n_values"]
        gain = picked - golden.mean(axis=1)
        oracle_gain = oracle_picked - golden.mean(axis=1)
    else:
        ns, picked, oracle, golden = _best_of_n_picks(
            predictions, golden, orders, n_values, oracle, device
        )
        metrics = _bon_summary(ns, picked.mean(axis=(0, 1)), oracle.mean(axis=(0, 1)), golden)
        gain = bon_gain_per_prompt(picked, golden)
        oracle_gain = bon_gain_per_prompt(oracle, golden)
        ranked = None
    metrics.update(pick_quality(predictions, golden, ns, ranked=ranked))
    rho = spearman_per_prompt(predictions, golden)
    metrics.update(_spearman_summary(rho))
    metrics.update(pair_accuracy(predictions.ravel(), golden.ravel(), *heldout))
    metrics.update(pair_calibration(predictions, heldout, heldout_truth))
    per_prompt = {
        "bon_gain": gain.tolist(),
        "oracle_bon_gain": oracle_gain.tolist(),
        "spearman": rho.tolist(),
    }
    return metrics, per_prompt
