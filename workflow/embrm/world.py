"""A world: train and test embeddings with golden rewards, memory-mapped from one directory.

Layout (the companion paper's released-array layout, prompt-major):
``train_embeddings.npy`` (P, K, D), ``train_rewards.npy`` (P, K), the same for ``test_*``, and
``world.json`` with the source parameters and statistics. Pairs refer to responses by flat index
``prompt * K + response``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .io import open_npy, read_json, release_pages, write_json
from .tree import SPLITS as SPLITS  # the splits, read here by every source
from .tree import WORLD_ARRAYS

# Each split's array files, named once in the results tree.
FILES = WORLD_ARRAYS
CHECK_ROWS = 65536  # rows per chunk when scanning embeddings for NaN/inf


@dataclass
class Split:
    embeddings: np.ndarray  # (P, K, D) memory map
    rewards: np.ndarray  # (P, K) float64 in memory
    embeddings_path: Path

    @property
    def prompts(self) -> int:
        return self.rewards.shape[0]

    @property
    def responses(self) -> int:
        return self.rewards.shape[1]

    @property
    def dim(self) -> int:
        return self.embeddings.shape[-1]

    @property
    def flat_embeddings(self) -> np.ndarray:
        """(P*K, D) view; no copy for memory maps."""
        return self.embeddings.reshape(-1, self.dim)


class World:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.info = read_json(self.directory / "world.json")
        self.train = self._open("train")
        self.test = self._open("test")
        if self.train.dim != self.test.dim:
            raise DataError(
                f"{self.test.embeddings_path}: embedding dimension {self.test.dim} differs from "
                f"{self.train.embeddings_path} ({self.train.dim})"
            )

    def _open(self, split: str) -> Split:
        emb_path = self.directory / FILES[split]["embeddings"]
        rew_path = self.directory / FILES[split]["rewards"]
        embeddings = open_npy(emb_path)
        rewards = np.asarray(open_npy(rew_path), dtype=np.float64)
        if embeddings.ndim != 3 or rewards.shape != embeddings.shape[:2]:
            raise DataError(
                f"{emb_path}: shape {embeddings.shape} does not match rewards {rew_path} "
                f"shape {rewards.shape}; expected embeddings (P, K, D) and rewards (P, K)"
            )
        if not np.isfinite(rewards).all():
            raise DataError(f"{rew_path}: rewards contain NaN or inf")
        return Split(embeddings, rewards, emb_path)

    @property
    def reward_std(self) -> float:
        return float(self.info["stats"]["train"]["reward_std"])


def check_finite(embeddings: np.ndarray, path: str | Path) -> None:
    """Scan a (possibly memory-mapped) array in chunks; name the file and first bad row."""
    flat = embeddings.reshape(-1, embeddings.shape[-1])
    for start in range(0, flat.shape[0], CHECK_ROWS):
        rows = flat[start : start + CHECK_ROWS]
        bad = ~np.isfinite(np.asarray(rows)).all(axis=1)
        release_pages(rows)
        if bad.any():
            row = start + int(np.argmax(bad))
            raise DataError(f"{path}: embeddings contain NaN or inf (first at flat row {row})")


PAPER_BETAS = (0.5, 0.7, 1, 3, 5, 10)  # the study's annotation-quality grid
EXACT_PAIR_LIMIT = 2_000_000  # all same-prompt pairs up to this many, a random sample beyond
PROBE_TRAIN_ROWS = 100_000  # training responses the linear probe is fitted on (at most)
PROBE_TEST_PROMPTS = 200  # test prompts it is scored on (at most)
PROBE_RIDGE = 1e-3  # ridge penalty relative to the number of rows (standardized features)


def _mean_abs(rewards: np.ndarray, p: np.ndarray, i: np.ndarray, q: np.ndarray, j: np.ndarray):
    return float(np.abs(rewards[p, i] - rewards[q, j]).mean()) if p.size else float("nan")


def _bt_expected_error(abs_dr: np.ndarray, scale: float) -> dict:
    """E[σ(−β·|Δr|/scale)]: the Bradley-Terry label error rate expected at each paper β."""
    from .annotators import BradleyTerry

    return {
        f"{beta:g}": float(np.mean(1.0 - BradleyTerry(beta).prob_correct(abs_dr, scale)))
        for beta in PAPER_BETAS
    }


def reward_stats(rewards: np.ndarray, rng: np.random.Generator, samples: int = 200_000) -> dict:
    """Spread of the golden rewards and the reward gaps that pairing designs produce.

    - ``reward_mean``, ``reward_std``: over all responses (``reward_std`` is the annotation scale
      ``std``);
    - ``tau_hat``: std of the prompt-level means, corrected for the σ²/K that K responses add to
      the spread of their sample mean; ``sigma_hat``: root mean within-prompt variance;
      ``sigma_spread_hat``: std of log σ_x between prompts, corrected for the sampling noise of a
      K-response standard deviation (exact for normal responses; 0 for the ``gaussian`` world);
    - ``mean_abs_dr_*``: mean |Δr| of random same-prompt pairs (all pairs, or a sample of
      ``samples`` when there are more than 2 million), random cross-prompt pairs (a sample),
      and the first pair of the ``similar`` (two middle ranks) and ``diversified`` (best and
      worst) candidate rules of every prompt;
    - ``bt_expected_error``: the Bradley-Terry label error rate E[σ(−β·|Δr|/scale)] expected on
      random same- and cross-prompt pairs for each β of the study's grid, with scale =
      ``reward_std``.
    """
    from .pairing import first_rank_pair

    rewards = np.asarray(rewards, dtype=np.float64)
    prompts, responses = rewards.shape
    nan = float("nan")
    means = rewards.mean(axis=1)
    scale = float(rewards.std())
    out = {
        "prompts": prompts,
        "responses": responses,
        "reward_mean": float(rewards.mean()),
        "reward_std": scale,
        "prompt_mean_std": float(means.std()),
        "tau_hat": nan,
        "sigma_hat": nan,
        "sigma_spread_hat": nan,
        "mean_abs_dr_same_random": nan,
        "mean_abs_dr_cross_random": nan,
        "mean_abs_dr_same_similar": nan,
        "mean_abs_dr_same_diversified": nan,
        "bt_expected_error": {"same_random": {}, "cross_random": {}},
    }
    if prompts > 1:
        p1 = rng.integers(prompts, size=samples)
        p2 = (p1 + rng.integers(1, prompts, size=samples)) % prompts
        cross = np.abs(
            rewards[p1, rng.integers(responses, size=samples)]
            - rewards[p2, rng.integers(responses, size=samples)]
        )
        out["mean_abs_dr_cross_random"] = float(cross.mean())
        if scale > 0:
            out["bt_expected_error"]["cross_random"] = _bt_expected_error(cross, scale)
    if responses < 2:  # no within-prompt spread, no same-prompt pairs
        return out

    within = rewards.var(axis=1, ddof=1)
    out["sigma_hat"] = float(np.sqrt(within.mean()))
    if prompts > 1:
        tau2 = means.var(ddof=1) - within.mean() / responses
        out["tau_hat"] = float(np.sqrt(max(tau2, 0.0)))
    positive = within[within > 0]
    if positive.size > 1:
        from scipy.special import polygamma

        # Var(log s) = Var(log σ_x) + ψ′((K−1)/2)/4 for normal responses (s² ~ σ_x²·χ²_{K−1}/(K−1)).
        spread2 = (
            np.log(np.sqrt(positive)).var(ddof=1) - float(polygamma(1, (responses - 1) / 2)) / 4
        )
        out["sigma_spread_hat"] = float(np.sqrt(max(spread2, 0.0)))

    if prompts * (responses * (responses - 1) // 2) <= EXACT_PAIR_LIMIT:
        low, high = np.triu_indices(responses, k=1)
        p = np.repeat(np.arange(prompts), low.size)
        i, j = np.tile(low, prompts), np.tile(high, prompts)
    else:
        p = rng.integers(prompts, size=samples)
        i = rng.integers(responses, size=samples)
        j = (i + rng.integers(1, responses, size=samples)) % responses
    same = np.abs(rewards[p, i] - rewards[p, j])
    out["mean_abs_dr_same_random"] = float(same.mean())
    if scale > 0:
        out["bt_expected_error"]["same_random"] = _bt_expected_error(same, scale)
    ranked = np.sort(rewards, axis=1)
    for candidates in ("similar", "diversified"):
        low, high = first_rank_pair(responses, candidates)
        out[f"mean_abs_dr_same_{candidates}"] = float((ranked[:, high] - ranked[:, low]).mean())
    return out


def _chunks(rows: int, step: int = CHECK_ROWS):
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def linear_probe(
    train_embeddings: np.ndarray,
    train_rewards: np.ndarray,
    test_embeddings: np.ndarray,
    test_rewards: np.ndarray,
    rng: np.random.Generator,
) -> dict:
    """How much of the golden order a linear read-out of the embedding recovers.

    A ridge regression (standardized features, intercept, penalty ``PROBE_RIDGE`` × rows) is
    fitted on golden rewards of up to ``PROBE_TRAIN_ROWS`` training responses and scored by the
    mean per-prompt Spearman correlation on up to ``PROBE_TEST_PROMPTS`` test prompts. Far below 1
    means the reward is not a linear function of the embedding; a nonlinear head can do better.
    Embeddings are read in chunks, so memory maps of any size work.
    """
    from .evaluation_agreement import spearman_per_prompt

    dim = train_embeddings.shape[-1]
    flat = train_embeddings.reshape(-1, dim)
    targets = np.asarray(train_rewards, dtype=np.float64).reshape(-1)
    rows = flat.shape[0]
    if rows > PROBE_TRAIN_ROWS:
        chosen = np.sort(rng.choice(rows, size=PROBE_TRAIN_ROWS, replace=False))
    else:
        chosen = np.arange(rows)
    n = chosen.size
    total = np.zeros(dim)
    gram = np.zeros((dim, dim))
    cross = np.zeros(dim)
    for part in _chunks(n):
        x = np.asarray(flat[chosen[part]], dtype=np.float64)
        total += x.sum(axis=0)
        gram += x.T @ x
        cross += x.T @ targets[chosen[part]]
    release_pages(flat)
    mean = total / n
    y_mean = targets[chosen].mean()
    cov = gram / n - np.outer(mean, mean)
    scale = np.sqrt(np.clip(np.diag(cov), 1e-12, None))
    corr = cov / np.outer(scale, scale)
    xy = (cross / n - mean * y_mean) / scale
    weights = np.linalg.solve(corr + PROBE_RIDGE * np.eye(dim), xy) / scale

    prompts = min(test_embeddings.shape[0], PROBE_TEST_PROMPTS)
    responses = test_embeddings.shape[1]
    test_flat = test_embeddings[:prompts].reshape(-1, dim)
    predictions = np.empty(prompts * responses)
    for part in _chunks(test_flat.shape[0]):
        predictions[part] = np.asarray(test_flat[part], dtype=np.float64) @ weights
    release_pages(test_flat)
    rho = spearman_per_prompt(predictions.reshape(prompts, responses), test_rewards[:prompts])
    return {
        "linear_probe_spearman": float(np.nanmean(rho)) if np.isfinite(rho).any() else float("nan"),
        "linear_probe_train_rows": int(n),
        "linear_probe_test_prompts": int(prompts),
    }


def write_world_info(directory: Path, source: dict, stats: dict) -> None:
    write_json(directory / "world.json", {"source": source, "stats": stats})
