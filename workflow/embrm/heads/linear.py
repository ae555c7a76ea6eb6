"""Linear baselines: logistic models on the embeddings, fitted to convergence.

``bt-linear`` is Bradley-Terry with a linear reward r̂(e) = ⟨w, e⟩ (P(a ≻ b) = σ(⟨w, e_a − e_b⟩));
``clf-linear`` is logistic regression on the pointwise data (winner → 1, loser → 0), reward = logit.
Both minimise the mean loss over the training split plus ``l2``/2 · ‖w‖² on standardized
features (per-dimension mean and std of the training responses, as a scaler would do), with
full-batch L-BFGS from w = 0. The problem is convex, so the result does not depend on a learning
rate or an initialization: the fit stops when the penalized objective changes by less than
``tolerance`` (relative) or after ``max_iter`` iterations. The standardization is folded into the
saved ``Linear(D, 1)`` layer, so prediction is one matrix-vector product on raw embeddings.

Curves have one row per L-BFGS iteration: training loss (without the penalty), validation loss
and pairwise validation accuracy on the same held-out split as the MLP heads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from ..costs import Compute, HeadCost, Shapes, network_cost
from .base import PairData, mean64
from .torch_common import BTObjective, CLFObjective, TorchHead, build_mlp

STATS_CHUNK_ROWS = 16_384
log = logging.getLogger("embrm")


def feature_stats(rows: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std (float64) over ``rows[used]``, in chunks without a full copy."""
    count = int(used.sum())
    total = np.zeros(rows.shape[1])
    for start in range(0, rows.shape[0], STATS_CHUNK_ROWS):
        block = rows[start : start + STATS_CHUNK_ROWS][used[start : start + STATS_CHUNK_ROWS]]
        total += block.sum(axis=0, dtype=np.float64)
    mean = total / count
    squares = np.zeros(rows.shape[1])
    for start in range(0, rows.shape[0], STATS_CHUNK_ROWS):
        block = rows[start : start + STATS_CHUNK_ROWS][used[start : start + STATS_CHUNK_ROWS]]
        squares += ((block.astype(np.float64) - mean) ** 2).sum(axis=0)
    std = np.sqrt(squares / count)
    # A constant dimension carries no signal; scaling it by 1 keeps its weight at exactly 0.
    return mean, np.where(std > 1e-12, std, 1.0)


class LinearHead(TorchHead):
    defaults: ClassVar[dict] = {
        "l2": 1e-3,
        "max_iter": 100,
        "tolerance": 1e-6,
        "history_size": 10,
        "val_fraction": 0.2,
    }
    PARAMS: ClassVar[dict[str, dict]] = {
        "history_size": {"minimum": 1, "description": "L-BFGS's history of updates"},
    }
    fit_intercept: ClassVar[bool] = True

    def fit(self, data: PairData) -> LinearHead:
        fit = self._fit_data(data)
        torch, device, x, examples, val = fit.torch, fit.device, fit.x, fit.examples, fit.val
        rows, a, b, train_pairs = fit.rows, fit.a, fit.b, fit.train_pairs
        p = self.params
        used = np.zeros(rows.shape[0], dtype=bool)
        used[a[train_pairs]] = used[b[train_pairs]] = True
        mean, std = feature_stats(rows, used)

        everything = torch.arange(examples["target"].shape[0], device=device)
        needed = self.example_rows(examples, everything)
        inv_std = torch.from_numpy((1.0 / std).astype(np.float32)).to(device)
        shift = torch.from_numpy((mean / std).astype(np.float32)).to(device)

        # Parameters live in standardized space; scores use raw rows with the scaling folded in.
        w = torch.zeros(self.dim_, device=device, requires_grad=True)
        bias = torch.zeros((), device=device, requires_grad=self.fit_intercept)
        params = [w, bias] if self.fit_intercept else [w]

        def raw_weights():
            w_raw = w * inv_std
            if not self.fit_intercept:  # BT: the reward's constant is arbitrary; keep it at 0
                return w_raw, bias
            return w_raw, bias - torch.dot(shift, w)

        def objective():
            w_raw, b_raw = raw_weights()
            scores = torch.mv(x, w_raw) + b_raw
            data_loss = self.example_losses(scores[needed], examples, everything).mean()
            return data_loss + 0.5 * p["l2"] * torch.dot(w, w)

        optimizer = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=1,
            history_size=p["history_size"],
            line_search_fn="strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )

        def closure():
            optimizer.zero_grad(set_to_none=True)
            loss = objective()
            loss.backward()
            return loss

        # The prediction model: one Linear(D, 1) layer holding the raw-space weights.
        self.model_ = build_mlp(self.dim_, []).to(device).eval()
        self.curves_ = []
        previous = None
        for iteration in range(1, p["max_iter"] + 1):
            optimizer.step(closure)
            with torch.no_grad():
                w_raw, b_raw = raw_weights()
                scores = torch.mv(x, w_raw) + b_raw
                losses = self.example_losses(scores[needed], examples, everything)
                train_loss = mean64(losses.cpu().numpy())
                w64 = w.detach().cpu().numpy().astype(np.float64)
                penalized = train_loss + 0.5 * p["l2"] * float(np.sum(w64 * w64))
                self.model_[0].weight.copy_(w_raw.reshape(1, -1))
                self.model_[0].bias.copy_(b_raw.reshape(1))
            val_loss, val_acc = self._validate(x, val)
            self.curves_.append(
                {
                    "epoch": iteration,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_accuracy": val_acc,
                }
            )
            self.best_epoch_ = iteration
            if not np.isfinite(penalized):
                break
            if previous is not None and abs(previous - penalized) <= p["tolerance"] * max(
                abs(penalized), 1.0
            ):
                break
            previous = penalized
        last = self.curves_[-1]
        log.info(
            "%s: %d L-BFGS iterations: train loss %.4f, val loss %.4f, val accuracy %.4f",
            self.type_name,
            len(self.curves_),
            last["train_loss"],
            last["val_loss"],
            last["val_accuracy"],
        )
        return self

    # Cost model (embrm.costs): one weight per dimension, at most max_iter L-BFGS iterations.
    @classmethod
    def estimate(cls, shapes: Shapes, params: Mapping, pairs: int, compute: Compute) -> HeadCost:
        return network_cost(shapes, pairs, compute, hidden=[], epochs=params["max_iter"])


class BTLinearHead(BTObjective, LinearHead):
    type_name = "bt-linear"
    # A constant shifts both sides of every pair equally: BT cannot identify it.
    fit_intercept = False


class CLFLinearHead(CLFObjective, LinearHead):
    type_name = "clf-linear"


# What this module registers (embrm.heads.MODULES).
HEADS = (BTLinearHead, CLFLinearHead)
