"""Per-test-prompt values of every run: read from metrics.json, turned into values whose mean
over prompts is the run's metric, so that a part's crossed interval and the summary agree.

``bon_gain_normalized`` is a ratio of means (the run's mean gain over the oracle's), so the
per-prompt value is its linearization (delta method): ``R + (g_p − R·o_p) / ō``. Its mean over
prompts is R exactly, and its spread carries both the run's and the oracle's prompt-to-prompt
variation; ``bon_gain`` is a plain mean and needs nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Metrics whose per-run value the stored per-prompt values reproduce on any set of prompts.
PROMPT_METRICS = ("bon_gain_normalized", "bon_gain")
RUN_KEYS = ("world", "design", "n", "annotator", "head", "seed")


def run_key(values) -> tuple:
    """The identity of a run in the summary and in its metrics.json."""
    world, design, n, annotator, head, seed = (values[k] for k in RUN_KEYS)
    return (str(world), str(design), int(n), str(annotator), str(head), int(seed))


def read_per_prompt(metric_files) -> dict[tuple, dict]:
    """Per-test-prompt values of each run that has them: run key -> ``bon_gain`` and
    ``oracle_bon_gain`` arrays (the ensemble's primary aggregation, like the summary's columns),
    and in a world without a golden reward ``pref_right`` and ``pref_decided``."""
    from ..io import read_json
    from ..summary import PRIMARY_AGGREGATION

    out = {}
    for path in metric_files:
        record = read_json(path)
        stored = record.get("per_prompt")
        if not stored:  # written before per-prompt values were stored
            continue
        values = stored["aggregations"][PRIMARY_AGGREGATION]
        entry = {
            "bon_gain": np.asarray(values["bon_gain"], dtype=float),
            "oracle_bon_gain": np.asarray(stored["oracle_bon_gain"], dtype=float),
        }
        for name in ("pref_right", "pref_decided"):  # worlds without a golden reward
            if name in values:
                entry[name] = np.asarray(values[name], dtype=float)
        out[run_key(record["run"])] = entry
    return out


def resampled_values(gain: np.ndarray, oracle: np.ndarray, counts: np.ndarray, metric: str):
    """(runs, draws) value of each run on each weighting of test prompts (``counts``: (draws, P)
    times each prompt is taken): the mean gain over the prompts taken, divided by the oracle's for
    ``bon_gain_normalized`` (a ratio of means, as the evaluation computes it on all prompts)."""
    if metric not in PROMPT_METRICS:
        raise ValueError(f"no per-prompt values for metric {metric!r}")
    total = gain @ counts.T / counts.sum(axis=1)
    if metric == "bon_gain":
        return total
    oracle_total = oracle @ counts.T / counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(oracle_total > 0, total / oracle_total, np.nan)


def prompt_values(gain: np.ndarray, oracle: np.ndarray, metric: str) -> np.ndarray:
    """(runs, P) per-prompt values whose mean over prompts is each run's ``metric``."""
    if metric not in PROMPT_METRICS:
        raise ValueError(f"no per-prompt values for metric {metric!r}")
    if metric == "bon_gain":
        return gain.astype(float)
    o_mean = oracle.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = gain.mean(axis=1, keepdims=True) / o_mean
        return np.where(o_mean > 0, ratio + (gain - ratio * oracle) / o_mean, np.nan)


def world_prompt_values(
    data: pd.DataFrame, metric: str, per_prompt: dict | None
) -> tuple[np.ndarray | None, str]:
    """(runs of ``data`` in row order, P) per-prompt values, or None and why not."""
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
    values = prompt_values(gain, oracle, metric)
    if not np.allclose(values.mean(axis=1), data["value"], rtol=1e-9, atol=1e-12, equal_nan=True):
        return None, f"the per-prompt values do not reproduce {metric} of the summary"
    return values, ""
