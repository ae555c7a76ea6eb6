"""``clf-lgb``: a LightGBM binary classifier on the pointwise (winner → 1, loser → 0) data.

Each protocol is a preset of the training components clf-lgb reads (:mod:`.recipe`: split,
seeding, stopping, kept weights, booster settings), and a component set explicitly overrides it.

``protocol: embrm`` (default): the reward is the raw score (the logit); boosting stops early when
the validation log-loss (on the held-out 20% of the training pairs) has not improved for
``early_stopping_rounds`` rounds, and the best round is kept. The study never published LightGBM
settings; the defaults below come from a search scored on validation data only
(``benchmarks/heads.py --tune-lgb``, space and numbers in ``docs/heads.md``).

``protocol: study``: the settings of the authors' exploratory notebook (``exps_0919.ipynb``; the
paper and the released training script have none): ``lgb.train`` with objective ``binary`` and
LightGBM's stock settings otherwise, 1,000 rounds, no early stopping. The notebook scored by the
predicted probability; embrm scores by the raw score under both protocols (the same order, but
float32 probabilities near 1 tie, and a tie leaves the pick to the responses' order). The
notebook's split is unseeded; embrm gives clf-lgb the study split of the MLP heads (CLF examples split by example, ``random_state = 42 + study_member``), so all three
study heads learn from the same examples.

Training is deterministic for a given seed at any thread count (``deterministic`` with column-wise
histograms; checked at 1 and 2 threads); neither changes which trees are built. LightGBM runs on
the CPU with the job's threads whatever ``training.device`` says; ``cuda`` is still checked, so a
config that asks for a GPU that is not there fails the same way for every head.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..costs import Compute, HeadCost, Shapes, rows_mb
from ..errors import DataError
from ..progress import report
from . import study
from .base import PairData, RewardHead, mean64, pair_accuracy, resolve_device
from .recipe.bt_examples import pointwise

log = logging.getLogger("embrm")


# Long fits (the study's D = 2048 takes minutes) report their progress this often.
LOG_EVERY_ROUNDS = 100
# Speeds for the cost model (CPU seconds on one core, docs/slurm.md): about 25 ns per pointwise
# row × sampled feature × boosting round, and 0.2 µs per response and tree when scoring (measured
# 0.15 µs at D = 2048). Boosting usually stops early (a few hundred rounds at the default learning
# rate): at most EXPECTED_ROUNDS are charged; a fit that needs far more exceeds its wall time and
# is retried with twice as much.
SECONDS_PER_CELL = 25e-9
PREDICT_SECONDS_PER_TREE = 2e-7
EXPECTED_ROUNDS = 1000


def log_progress(env) -> None:
    """LightGBM callback: one log line every LOG_EVERY_ROUNDS rounds."""
    done = env.iteration + 1
    if done % LOG_EVERY_ROUNDS:
        return
    values = ", ".join(
        f"{data} {metric} {value:.4f}" for data, metric, value, *_ in env.evaluation_result_list
    )
    # Early stopping may end the fit before the last round.
    report("clf-lgb", "round", done, env.end_iteration, at_most=True, details=values)


class CLFLGBHead(RewardHead):
    type_name = "clf-lgb"
    defaults: ClassVar[dict] = {
        "num_leaves": 7,
        "learning_rate": 0.1,
        "n_estimators": 2000,
        "min_child_samples": 80,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 10.0,
        "max_bin": 255,
        "early_stopping_rounds": 50,
        "val_fraction": 0.2,
        "protocol": "embrm",
        "study_member": study.STUDY_ENSEMBLE - 1,
    }
    RECIPE: ClassVar[tuple[str, ...]] = ("lgb",)
    PARAMS: ClassVar[dict[str, dict]] = {
        "num_leaves": {"minimum": 2, "description": "leaves per tree"},
        "learning_rate": {"exclusiveMinimum": 0, "description": "shrinkage per boosting round"},
        "n_estimators": {"exclusiveMinimum": 0, "description": "most boosting rounds"},
        "min_child_samples": {"minimum": 0, "description": "fewest rows in a leaf"},
        "feature_fraction": {
            "exclusiveMinimum": 0,
            "maximum": 1,
            "description": "share of the dimensions sampled per tree",
        },
        "bagging_fraction": {
            "exclusiveMinimum": 0,
            "maximum": 1,
            "description": "share of the rows sampled per bagging round",
        },
        "bagging_freq": {"minimum": 0, "description": "rounds between baggings (0: none)"},
        "lambda_l2": {"minimum": 0, "description": "L2 penalty on the leaf values"},
        "max_bin": {"minimum": 2, "description": "histogram bins per dimension"},
        "early_stopping_rounds": {
            "exclusiveMinimum": 0,
            "description": "rounds without improvement before stopping",
        },
    }
    TEST_PARAMS: ClassVar[dict] = {
        "n_estimators": 400,
        "learning_rate": 0.1,
        "num_leaves": 4,
        "feature_fraction": 1.0,
        "lambda_l2": 0.0,
        "early_stopping_rounds": 20,
    }
    SAVED_FILES: ClassVar[tuple[str, ...]] = ("model.txt",)
    # LightGBM trains on the CPU whatever training.device says (a requested GPU is still checked).
    DEVICES: ClassVar[tuple[str, ...]] = ("cpu",)

    def booster_params(self) -> dict:
        """The LightGBM parameters of booster 'tuned': the head's own."""
        p = self.params
        return {
            "objective": "binary",
            "metric": "None",  # see the metrics in fit
            "num_leaves": p["num_leaves"],
            "learning_rate": p["learning_rate"],
            "min_child_samples": p["min_child_samples"],
            "feature_fraction": p["feature_fraction"],
            "bagging_fraction": p["bagging_fraction"],
            "bagging_freq": p["bagging_freq"],
            "lambda_l2": p["lambda_l2"],
            "max_bin": p["max_bin"],
            "num_threads": self.threads,
            "seed": self.seed,
            "deterministic": True,
            # Column-wise histograms: identical results at 1 and 2 threads (tested), and at
            # D = 2048 they take a third of the time row-wise ones do (docs/paper-scale.md).
            "force_col_wise": True,
            "verbosity": -1,
        }

    def fit(self, data: PairData) -> CLFLGBHead:
        """Boost by ``self.recipe``: split, booster settings, stopping and kept round are its
        components (heads.recipe)."""
        import lightgbm as lgb

        if self.device != "auto":
            resolve_device(self.device)  # a missing GPU is a config error for every head
        self.device_ = "cpu"
        self.dim_ = data.dim
        rows, a, b = data.compact()
        p, recipe = self.params, self.recipe
        split = recipe.impl("split")
        train, val = split.divide(
            data, a, b, pointwise, self.seed, p["val_fraction"], p["study_member"]
        )
        self.split_pairs_ = (train["pair"], val["pair"])
        if split.validation == "pair":
            # Winners first, then losers in the same pair order: pair i is rows i and n + i.
            val = pointwise(val["a"], val["b"], val["label"], np.arange(val["pair"].size))
        params, rounds = recipe.impl("booster").settings(self)

        def metrics(preds, dataset):
            # Computed here rather than by LightGBM, whose multi-threaded metric sums differ in
            # the last bits between thread counts; early stopping uses the first (the log-loss).
            # Accuracy is per pair under split 'pair', per example under split 'example'.
            p = np.clip(preds, 1e-15, 1 - 1e-15)
            y = dataset.get_label()
            losses = -(y * np.log(p) + (1 - y) * np.log1p(-p))
            if split.validation == "pair":
                half = p.shape[0] // 2
                losses = -np.concatenate([np.log(p[:half]), np.log1p(-p[half:])])
                accuracy = pair_accuracy(p[:half] - p[half:])
            else:
                accuracy = float(np.mean((preds > 0.5) == (y > 0.5)))
            return [("logloss", mean64(losses), False), ("accuracy", accuracy, True)]

        def dataset(examples, **kwargs):
            return lgb.Dataset(rows[examples["row"]], examples["target"], **kwargs)

        train_set = dataset(train, params=params, free_raw_data=True)
        valid_sets, names, callbacks, history = [], [], [], {}
        if split.validation == "pair":
            # The training loss is logged per round (the released notebook logs validation only).
            valid_sets, names = [train_set], ["train"]
        if val["target"].size:
            valid_sets.append(dataset(val, reference=train_set))
            names.append("val")
            if recipe["stopping"] == "patience":
                callbacks.append(
                    lgb.early_stopping(
                        p["early_stopping_rounds"], first_metric_only=True, verbose=False
                    )
                )
        callbacks.append(lgb.record_evaluation(history))
        callbacks.append(log_progress)
        keep_best = recipe.impl("weights").keep_best
        self.booster_ = lgb.train(
            params,
            train_set,
            num_boost_round=rounds,
            valid_sets=valid_sets,
            valid_names=names,
            feval=metrics,
            callbacks=callbacks,
            # Once early stopping fires, lgb.train rebuilds the booster from its best round and
            # drops the rounds after it; the final weights keep every round built, so the
            # booster is then kept whole. Without early stopping the two are the same booster.
            keep_training_booster=not keep_best and recipe["stopping"] == "patience",
        )
        val_curve = history.get("val", {})
        built = self.booster_.current_iteration()
        # Every round evaluated has a row in the curves, also those a best-round booster drops.
        evaluated = max((len(v) for h in history.values() for v in h.values()), default=built)
        nan = [float("nan")] * evaluated
        if not keep_best:
            self.best_epoch_ = built  # every round built, as the notebook keeps them
        elif self.booster_.best_iteration:
            self.best_epoch_ = int(self.booster_.best_iteration)  # early stopping's best round
        elif val_curve:
            self.best_epoch_ = int(np.argmin(val_curve["logloss"])) + 1  # first lowest
        else:
            self.best_epoch_ = built
        self.curves_ = [
            {
                "epoch": i + 1,
                "train_loss": float(t),
                "val_loss": float(v),
                "val_accuracy": float(acc),
            }
            for i, (t, v, acc) in enumerate(
                zip(
                    history.get("train", {}).get("logloss", nan),
                    val_curve.get("logloss", nan),
                    val_curve.get("accuracy", nan),
                    strict=True,
                )
            )
        ]
        best = self.curves_[self.best_epoch_ - 1]
        log.info(
            "clf-lgb: %d rounds, kept %d: val loss %.4f, val accuracy %.4f",
            len(self.curves_),
            self.best_epoch_,
            best["val_loss"],
            best["val_accuracy"],
        )
        return self

    def _prepare_predict(self) -> None:
        """Nothing to set: LightGBM takes its thread count per call."""

    def _predict_block(self, block: np.ndarray) -> np.ndarray:
        # The raw score (the log-odds) under every recipe. The notebook scored by probability,
        # which orders responses alike except that float32 rounds probabilities near 1 into
        # ties, leaving the pick among the top responses to their order.
        return self.booster_.predict(
            block,
            raw_score=True,
            num_iteration=self.best_epoch_,
            num_threads=self.threads,
        ).astype(np.float32)

    def _save_weights(self, directory: Path) -> None:
        # Text format, trees up to the best round only: what predictions use.
        self.booster_.save_model(str(directory / "model.txt"), num_iteration=self.best_epoch_)

    def _load_weights(self, directory: Path) -> None:
        import lightgbm as lgb

        path = directory / "model.txt"
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        self.device_ = "cpu"
        self.booster_ = lgb.Booster(model_file=str(path))
        self.best_epoch_ = self.booster_.current_iteration()

    # Cost model (embrm.costs). Training: histograms over the pointwise rows (two per pair) and
    # the sampled features, per boosting round; LightGBM also holds float64 and binned copies of
    # the rows (six in all). Scoring walks every tree once per response.
    @classmethod
    def estimate(cls, shapes: Shapes, params: Mapping, pairs: int, compute: Compute) -> HeadCost:
        rounds = min(params["n_estimators"], EXPECTED_ROUNDS)
        cells = 2 * pairs * shapes.dim * params["feature_fraction"] * rounds
        return HeadCost(
            fit_mb=rows_mb(shapes.annotated(pairs), shapes.dim, 6),
            fit_seconds=cells * SECONDS_PER_CELL / compute.threads,
            score_seconds=shapes.rows("test") * rounds * PREDICT_SECONDS_PER_TREE / compute.threads,
        )


# What this module registers (embrm.heads.MODULES).
HEADS = (CLFLGBHead,)
