"""``booster`` (clf-lgb): the LightGBM settings and number of rounds.

``notebook`` (released): the authors' exploratory notebook, ``lgb.train`` with objective
``binary`` and LightGBM's stock settings, 1,000 rounds. ``tuned`` (embrm): the head's parameters
(chosen on validation data only, docs/heads.md), ``n_estimators`` rounds. Both are scored by the
raw score (the logit; heads.lgb says why not the notebook's probability).
"""

from __future__ import annotations

from . import Choices, Component

NOTEBOOK_ROUNDS = 1000  # lgb.train(num_boost_round=1000) in the notebook
# The LightGBM parameters the notebook leaves at LightGBM's own defaults.
TUNED_KEYS = (
    "num_leaves",
    "learning_rate",
    "n_estimators",
    "min_child_samples",
    "feature_fraction",
    "bagging_fraction",
    "bagging_freq",
    "lambda_l2",
    "max_bin",
)


class Notebook:
    @staticmethod
    def settings(head) -> tuple[dict, int]:
        """(booster parameters, rounds)."""
        params = {
            "objective": "binary",
            "metric": "None",  # the metrics are computed by embrm (heads.lgb)
            "num_threads": head.threads,
            # Neither changes the trees (column-wise histograms build the same ones, bit for
            # bit); they make the result independent of the thread count.
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }
        return params, NOTEBOOK_ROUNDS


class Tuned:
    @staticmethod
    def settings(head) -> tuple[dict, int]:
        return head.booster_params(), head.params["n_estimators"]


COMPONENT = Component(
    key="booster",
    description="LightGBM settings: the 'notebook' stock ones with 1,000 rounds (released) or "
    "the 'tuned' parameters with n_estimators rounds (embrm)",
    families=("lgb",),
    choices=Choices({"notebook": Notebook(), "tuned": Tuned()}),
    presets={"study": "notebook", "embrm": "tuned"},
    ignores={"notebook": TUNED_KEYS},
)
