"""A run as its row of settings: the one place that spells a run's world, design, annotator and
head as table columns.

The summary (:mod:`embrm.summary`, from a finished run's metrics.json) and the figure checks (from
the plan, before any job runs) both call :func:`run_settings`, so the two tables name and fill
their settings alike. Columns derive from the registries: a design contributes its declared
settings (``prompt_pairing``, ``candidates``), an annotator its model and one column per parameter
(:mod:`embrm.annotators`), and an annotator's quality knob is found by :func:`quality_column`
whatever its name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .annotators import MODELS
from .designs import columns as design_columns
from .designs import get as design

RUN_KEYS = ("world", "design", "n", "seed", "annotator", "head")
# The study's quality knob β keeps the bare column the summaries have always had (a number; empty
# for models without it); every other parameter, any other model's quality knob included, is
# `annotator_<name>`.
BARE_PARAMETERS = ("beta",)
# The model that run names spell by its quality alone (`β=1`): the study's annotator.
DEFAULT_MODEL = "bt"
# Keys of a head's hyperparameters that are not settings: the seed is derived from the run seed,
# the device is where it ran.
HEAD_PARAM_SKIP = {"type", "members", "seed", "device"}
SETTING_PREFIXES = ("world_", "annotator_", "head_param_")


def base_settings() -> list[str]:
    """The named setting columns, in table order; parameter columns (``SETTING_PREFIXES``) follow."""
    return [
        "world",
        "source",
        "design",
        *design_columns(),
        "n",
        "annotator",
        "annotator_model",
        *BARE_PARAMETERS,
        "head",
        "head_type",
        "members",
    ]


def flatten_settings(prefix: str, mapping: Mapping, skip=()) -> dict:
    """Scalar settings as columns; nested mappings as ``prefix<key>.<sub>``; lists as JSON."""
    out = {}
    for key, value in mapping.items():
        if key in skip:
            continue
        if isinstance(value, dict):
            out.update(flatten_settings(f"{prefix}{key}.", value))
        elif isinstance(value, list | tuple):
            out[f"{prefix}{key}"] = json.dumps(value)
        else:
            out[f"{prefix}{key}"] = value
    return out


def parameter_column(name: str) -> str:
    """The column of an annotator parameter."""
    return name if name in BARE_PARAMETERS else f"annotator_{name}"


def quality_column(model: str) -> str | None:
    """The column holding a model's quality knob (None for a model without one)."""
    knob = MODELS[model].quality
    return parameter_column(knob) if knob else None


def quality(frame: pd.DataFrame) -> pd.Series:
    """Each run's annotation quality: the value of its own model's quality knob (NaN for models
    without one)."""
    out = pd.Series(np.nan, index=frame.index, dtype=float)
    if "annotator_model" not in frame:
        return out
    for model, rows in frame.groupby("annotator_model").groups.items():
        column = quality_column(model) if model in MODELS else None
        if column and column in frame:
            out[rows] = pd.to_numeric(frame.loc[rows, column], errors="coerce")
    return out


def quality_text(spec: Mapping) -> str | None:
    """How a run name spells an annotator whose only parameter is its quality knob: ``β=1`` for
    the study's model, ``thurstone β=1`` for another; None when the label must say more."""
    model = MODELS.get(spec.get("model"))
    knob = model.quality if model else None
    if not knob or set(model.parameters) != {knob} or not isinstance(spec.get(knob), int | float):
        return None
    symbol = model.parameters[knob].get("title", knob)
    text = f"{symbol}={spec[knob]:g}"
    return text if spec["model"] == DEFAULT_MODEL else f"{spec['model']} {text}"


def annotator_settings(spec: Mapping) -> dict:
    """``annotator_model``, the bare parameter columns, then ``annotator_<param>`` columns."""
    row = {"annotator_model": spec["model"]}
    for name in BARE_PARAMETERS:
        value = spec.get(name)
        row[name] = float(value) if isinstance(value, int | float) else np.nan
    row.update(flatten_settings("annotator_", spec, skip=("model", *BARE_PARAMETERS)))
    return row


def run_settings(
    run: Mapping,
    *,
    world: Mapping,
    annotator: Mapping,
    head: Mapping | None = None,
    extra: Mapping | None = None,
) -> dict:
    """One run's settings as columns.

    ``run``: the grid cell (``RUN_KEYS``, and ``source``); ``world``: the world's spec;
    ``annotator``: the annotator's spec (``model`` and its parameters); ``head``: the head's
    resolved hyperparameters (``type``, ``members`` and the rest), when known; ``extra``: columns
    placed after the run's keys (the summary's ``status``).
    """
    row = {k: run[k] for k in RUN_KEYS}
    row.update(extra or {})
    row["source"] = run.get("source", world.get("source", ""))
    row.update(design(run["design"]).settings)
    annotator_row = annotator_settings(annotator)
    params = {k: annotator_row.pop(k) for k in list(annotator_row) if k.startswith("annotator_")}
    row["annotator_model"] = params.pop("annotator_model")
    row.update(annotator_row)  # the bare parameter columns
    if head is not None:
        row["head_type"] = head["type"]
        row["members"] = int(head.get("members", 1))
    row.update(flatten_settings("world_", world, skip=("source",)))
    row.update(params)
    if head is not None:
        row.update(flatten_settings("head_param_", head, skip=HEAD_PARAM_SKIP))
    return row


def plan_settings(plan) -> pd.DataFrame:
    """One row per planned run (before any job): the settings the summary will hold, without the
    head's hyperparameters (resolved only when the head is built)."""
    rows = []
    for run in plan.runs:
        world = plan.world_spec(run.world)
        head = plan.head_spec(run.head)
        rows.append(
            run_settings(
                {**run.as_dict(), "source": world["source"]},
                world=world,
                annotator=plan.annotator_spec(run.annotator),
                head={"type": head["type"], "members": head["members"]},
            )
        )
    return pd.DataFrame(rows)
