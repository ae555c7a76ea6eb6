"""``clf-lgb``: a LightGBM binary classifier on the pointwise (winner → 1, loser → 0) data.

The reward is the raw score (the logit). The study never released its settings; the defaults
below were chosen on the synthetic world (see README, "Heads"). Training is deterministic for a
given seed whatever the thread count (``deterministic`` with row-wise histograms).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from .base import PairData, RewardHead


class CLFLGBHead(RewardHead):
    type_name = "clf-lgb"
    defaults: ClassVar[dict] = {
        "num_leaves": 31,
        "learning_rate": 0.05,
        "n_estimators": 1000,
        "min_child_samples": 20,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "early_stopping_rounds": 30,
        "val_fraction": 0.2,
    }

    def _booster_params(self) -> dict:
        p = self.params
        return {
            "objective": "binary",
            "num_leaves": p["num_leaves"],
            "learning_rate": p["learning_rate"],
            "min_child_samples": p["min_child_samples"],
            "feature_fraction": p["feature_fraction"],
            "bagging_fraction": p["bagging_fraction"],
            "bagging_freq": p["bagging_freq"],
            "lambda_l2": p["lambda_l2"],
            "num_threads": self.threads,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def fit(self, data: PairData) -> CLFLGBHead:
        import lightgbm as lgb

        self.dim_ = data.dim
        self.device_ = "cpu"
        rows, a, b = data.compact()
        train_pairs, val_pairs = data.split(
            self.params["val_fraction"], np.random.default_rng(self.seed)
        )

        def pointwise(pairs):
            won = data.label[pairs] > 0
            index = np.concatenate(
                [np.where(won, a[pairs], b[pairs]), np.where(won, b[pairs], a[pairs])]
            )
            return rows[index], np.concatenate([np.ones(pairs.size), np.zeros(pairs.size)])

        train_set = lgb.Dataset(*pointwise(train_pairs), free_raw_data=True)
        valid_sets, callbacks, history = [train_set], [], {}
        names = ["train"]
        if val_pairs.size:
            valid_sets.append(lgb.Dataset(*pointwise(val_pairs), reference=train_set))
            names.append("val")
            callbacks.append(
                lgb.early_stopping(
                    self.params["early_stopping_rounds"], first_metric_only=True, verbose=False
                )
            )
        callbacks.append(lgb.record_evaluation(history))
        self.booster_ = lgb.train(
            self._booster_params(),
            train_set,
            num_boost_round=self.params["n_estimators"],
            valid_sets=valid_sets,
            valid_names=names,
            callbacks=callbacks,
        )
        self.best_epoch_ = self.booster_.best_iteration or self.booster_.current_iteration()
        val_acc = self._pair_accuracy(rows, a[val_pairs], b[val_pairs], data.label[val_pairs])
        train_curve = history["train"]["binary_logloss"]
        val_curve = history.get("val", {}).get("binary_logloss", [float("nan")] * len(train_curve))
        self.curves_ = [
            {"epoch": i + 1, "train_loss": t, "val_loss": v, "val_accuracy": float("nan")}
            for i, (t, v) in enumerate(zip(train_curve, val_curve, strict=True))
        ]
        if self.curves_:
            self.curves_[self.best_epoch_ - 1]["val_accuracy"] = val_acc
        return self

    def _pair_accuracy(self, rows, a, b, label) -> float:
        if a.size == 0:
            return float("nan")
        margin = self._predict_block(rows[a]) - self._predict_block(rows[b])
        return float(np.mean(np.where(margin == 0, 0.5, (margin > 0) == (label > 0))))

    def _predict_block(self, block: np.ndarray) -> np.ndarray:
        return self.booster_.predict(
            block, raw_score=True, num_iteration=self.best_epoch_, num_threads=self.threads
        ).astype(np.float32)

    def _save_weights(self, directory: Path) -> None:
        self.booster_.save_model(str(directory / "model.txt"), num_iteration=self.best_epoch_)

    def _load_weights(self, directory: Path) -> None:
        import lightgbm as lgb

        self.device_ = "cpu"
        self.booster_ = lgb.Booster(model_file=str(directory / "model.txt"))
        self.best_epoch_ = self.booster_.current_iteration()
