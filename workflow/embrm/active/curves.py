"""Learning-curve points from a summary table: quality against the number of labels.

An active run contributes one point per round (the model trained on the labels of the rounds
before it, ``annotation_active_curve`` in the summary) and its final point at its quantity n; a
static design contributes one point per quantity. Points stay per seed; figures and the budget
planner average or fit over them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

CURVE_COLUMN = "annotation_active_curve"
METRICS = ("bon_gain", "bon_gain_normalized", "spearman")
KEYS = ["world", "annotator", "head", "design"]


def learning_points(summary: pd.DataFrame) -> pd.DataFrame:
    """Columns: world, annotator, head, design, seed, labels, bon_gain, bon_gain_normalized,
    spearman, point ('round' or 'final')."""
    rows = []
    has_curve = CURVE_COLUMN in summary.columns
    for record in summary.to_dict("records"):
        base = {key: record[key] for key in [*KEYS, "seed"]}
        rows.append(
            {
                **base,
                "labels": int(record["n"]),
                **{m: record[m] for m in METRICS},
                "point": "final",
            }
        )
        text = record.get(CURVE_COLUMN) if has_curve else None
        if isinstance(text, str) and text:
            for point in json.loads(text):
                rows.append(
                    {
                        **base,
                        "labels": int(point["labels"]),
                        **{m: point.get(m, np.nan) for m in METRICS},
                        "point": "round",
                    }
                )
    columns = [*KEYS, "seed", "labels", *METRICS, "point"]
    frame = pd.DataFrame(rows, columns=columns)
    # A static run's final point and an active run's round can share a label count only across
    # designs; within one design and seed a label count appears once.
    return frame.drop_duplicates([*KEYS, "seed", "labels"], keep="last").reset_index(drop=True)


def has_curves(frame: pd.DataFrame) -> bool:
    """Whether some (world, annotator, head, design) has two or more label counts: from a
    summary (rounds and quantities), or from plan settings (an active design always has rounds
    unless its quantity fits in the seed batch, which the plan cannot see)."""
    if frame.empty:
        return False
    keys = [k for k in KEYS if k in frame.columns]
    from . import is_active

    if "design" in frame.columns and CURVE_COLUMN not in frame.columns:
        if frame["design"].map(is_active).any():
            return True
        return bool((frame.groupby(keys)["n"].nunique() >= 2).any())
    points = learning_points(frame)
    return bool((points.groupby(keys)["labels"].nunique() >= 2).any())
