"""The table of run settings the figures are checked on, and the checks behind their ``needs``.

The workflow builds the table from the plan before running anything (:func:`plan_settings`; the
columns are those of the summary) and asks only for the figures it can draw (:func:`available`);
the same checks run again on the summary before drawing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..summary import flatten_settings
from .spec import Figure

CANDIDATE_ORDER = ["random", "similar", "diversified"]
# The columns that identify a setting in the figures (the annotator label includes β).
SETTING_KEYS = ["design", "n", "annotator"]


def _test_responses(spec: dict) -> int | None:
    """Responses per test prompt a world will have, when its config says so."""
    if "test_responses" in spec:
        return int(spec["test_responses"])
    generation = spec.get("generation")
    if isinstance(generation, dict) and "test_responses" in generation:
        return int(generation["test_responses"])
    return None


def plan_settings(plan) -> pd.DataFrame:
    """One row per planned run with the columns the figure checks use (as in the summary)."""
    rows = []
    n_values = plan.config["evaluation"]["n_values"]
    for run in plan.runs:
        spec = plan.annotator_spec(run.annotator)
        world = plan.world_spec(run.world)
        responses = _test_responses(world)
        ns = {min(int(n), responses) if responses else int(n) for n in n_values}
        beta = spec.get("beta")
        rows.append(
            {
                "world": run.world,
                "source": world["source"],
                "design": run.design,
                "prompt_pairing": run.prompt_pairing,
                "candidates": run.candidates,
                "n": run.n,
                "seed": run.seed,
                "annotator": run.annotator,
                "annotator_model": spec["model"],
                "beta": float(beta) if isinstance(beta, int | float) else np.nan,
                **flatten_settings("annotator_", spec, skip=("model", "beta")),
                "head": run.head,
                "bon_points": len(ns),
            }
        )
    return pd.DataFrame(rows)


def _annotator_keys(frame: pd.DataFrame) -> list[str]:
    """Annotator columns other than β: model and parameters."""
    return [c for c in frame.columns if c.startswith("annotator_")]


def _varies_within(frame: pd.DataFrame, axis: str, others: list[str]) -> pd.Series:
    """Rows whose group (same values of ``others``) holds two or more values of ``axis``."""
    if frame.empty or axis not in frame:
        return pd.Series(False, index=frame.index)
    keys = [c for c in others if c in frame.columns]
    values = frame[axis]
    counts = values.groupby([frame[k] for k in keys], dropna=False).transform("nunique")
    return (counts >= 2) & values.notna()


def _beta_rows(frame: pd.DataFrame) -> pd.Series:
    positive = frame.get("beta", pd.Series(np.nan, index=frame.index))
    positive = positive.where(np.isfinite(positive) & (positive > 0))
    others = ["world", "design", "n", "head", *_annotator_keys(frame)]
    return _varies_within(frame.assign(beta=positive), "beta", others)


def _n_rows(frame: pd.DataFrame) -> pd.Series:
    return _varies_within(frame, "n", ["world", "design", "annotator", "head"])


MATCH_KEYS = ["world", "candidates", "n", "annotator", "head", "seed"]


def _matched(frame: pd.DataFrame, columns=()) -> pd.DataFrame:
    """Same- and cross-prompt runs that differ only in the prompt pairing, side by side."""
    keep = [*MATCH_KEYS, *columns]
    # The static candidate rules only: active designs are compared in the learning-curve figure.
    frame = frame[frame["candidates"].isin(CANDIDATE_ORDER)]
    same = frame[frame["prompt_pairing"] == "same"][keep]
    cross = frame[frame["prompt_pairing"] == "cross"][keep]
    return same.merge(cross, on=MATCH_KEYS, suffixes=("_same", "_cross"))


def _has_matched(frame: pd.DataFrame) -> bool:
    return not _matched(frame).empty


def _matched_spread(frame: pd.DataFrame) -> bool:
    matched = _matched(frame)
    if matched.empty:
        return False
    return bool((matched.groupby("world")[["candidates", "n"]].apply(_len_unique) >= 2).any())


def _len_unique(group: pd.DataFrame) -> int:
    return len(group.drop_duplicates())


def _matched_gains(summary: pd.DataFrame) -> pd.DataFrame:
    matched = _matched(summary, ["bon_gain", "annotation_mean_abs_dr"])
    matched["gain_difference"] = matched["bon_gain_cross"] - matched["bon_gain_same"]
    matched["dr_difference"] = (
        matched["annotation_mean_abs_dr_cross"] - matched["annotation_mean_abs_dr_same"]
    )
    return matched


def _any_runs(frame: pd.DataFrame) -> bool:
    return not frame.empty


def _curve_points(frame: pd.DataFrame) -> bool:
    return bool(not frame.empty and frame["bon_points"].max() >= 2)


def available(
    settings: pd.DataFrame, figures: Mapping[str, Figure]
) -> tuple[list[str], dict[str, str]]:
    """Of ``figures``, those the grid can draw, and for each of the others the reason it is not."""
    drawable, skipped = [], {}
    for name, fig in figures.items():
        if fig.drawable(settings):
            drawable.append(name)
        else:
            skipped[name] = f"figure {fig.label!r} needs {fig.needs}; the grid has none"
    return drawable, skipped
