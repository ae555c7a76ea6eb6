"""``stopping``: when training ends before ``max_epochs`` (MLP) or ``n_estimators`` (LightGBM).

``released`` (MLP only): the newest validation loss is larger than each of the previous
``patience`` (3) — never before epoch 4, and a loss may rise for many epochs as long as one of the
last three is above the newest. ``patience`` (embrm): the monitored loss (validation, or training
without a validation split) has not improved for ``patience`` epochs; for clf-lgb, LightGBM's
early stopping after ``early_stopping_rounds`` rounds without improvement of the validation
log-loss. ``none``: every epoch or round runs.

A loop passes ``history``: its ``curves`` (one dict per epoch) and ``monitored`` (per epoch, the
monitored loss with non-finite values as +inf).
"""

from __future__ import annotations

import numpy as np

from .. import study
from . import Choices, Component


class Released:
    @staticmethod
    def should_stop(history, params) -> bool:
        return study.should_stop([row["val_loss"] for row in history.curves], params["patience"])


class Patience:
    @staticmethod
    def should_stop(history, params) -> bool:
        monitored = history.monitored
        # Epochs since the first best one (an improvement must be strict); an improving epoch
        # never stops, even at patience 0.
        stale = len(monitored) - 1 - int(np.argmin(monitored))
        return stale > 0 and stale >= params["patience"]


class Never:
    @staticmethod
    def should_stop(history, params) -> bool:
        return False


COMPONENT = Component(
    key="stopping",
    description="stopping rule: 'released' (newest validation loss above each of the previous "
    "3), 'patience' on the best loss (embrm) or 'none'",
    families=("torch", "lgb"),
    choices=Choices(
        {"released": Released(), "patience": Patience(), "none": Never()},
        families={"released": ("torch",)},
    ),
    presets={"study": {"torch": "released", "lgb": "none"}, "embrm": "patience"},
    ignores={"none": ("patience", "early_stopping_rounds")},
    needs_validation=("released",),
)
