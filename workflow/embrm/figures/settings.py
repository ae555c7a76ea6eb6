"""The table of run settings the figures are checked on, and the checks behind their ``needs``.

The workflow builds the table from the plan before running anything (:func:`plan_settings`; the
columns are those of the summary) and asks only for the figures it can draw (:func:`available`);
the same checks run again on the summary before drawing.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..annotators import MODELS
from ..designs import DESIGNS
from ..settings import plan_settings as run_settings
from ..settings import quality, quality_column
from .spec import Figure

# Candidate rules of the designs that deal their own pairs, in registry order: the same- versus
# cross-prompt figures match runs on them (active designs have the learning-curve figure).
CANDIDATE_ORDER = list(
    dict.fromkeys(d.settings["candidates"] for d in DESIGNS.values() if not d.active)
)
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
    """One row per planned run with the columns the figure checks use: the run's settings as the
    summary holds them (:func:`embrm.settings.plan_settings`) and its number of Best-of-N sizes."""
    frame = run_settings(plan)
    n_values = plan.config["evaluation"]["n_values"]
    points = {}
    for world in plan.unique("world"):
        responses = _test_responses(plan.world_spec(world))
        points[world] = len({min(int(n), responses) if responses else int(n) for n in n_values})
    frame["bon_points"] = frame["world"].map(points)
    return frame


def quality_columns() -> set[str]:
    """The summary columns that hold some model's quality knob (``beta``, ``annotator_ability``)."""
    return {quality_column(m) for m in MODELS if quality_column(m)}


def quality_symbol(frame: pd.DataFrame) -> str:
    """How axes name the quality of the rows' annotators: the knob's symbol (β), or one per
    model when the models' knobs differ."""
    symbols = {}
    for model in dict.fromkeys(frame.get("annotator_model", [])):
        knob = MODELS[model].quality if model in MODELS else None
        if knob:
            symbols[model] = MODELS[model].parameters[knob].get("title", knob)
    if len(set(symbols.values())) == 1:
        return next(iter(symbols.values()))
    return "(" + ", ".join(f"{model}: {symbol}" for model, symbol in symbols.items()) + ")"


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


def _quality_keys(frame: pd.DataFrame) -> list[str]:
    """Annotator columns other than the quality knobs: the model and its other parameters."""
    return [c for c in _annotator_keys(frame) if c not in quality_columns()]


def _quality_rows(frame: pd.DataFrame) -> pd.Series:
    """Rows whose annotator's quality knob (β, or any model's own) takes two or more positive
    values with everything else fixed."""
    positive = quality(frame)
    positive = positive.where(np.isfinite(positive) & (positive > 0))
    others = ["world", "design", "n", "head", *_quality_keys(frame)]
    return _varies_within(frame.assign(quality=positive), "quality", others)


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
