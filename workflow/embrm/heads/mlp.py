"""MLP heads from the study: D → 1024 → 512 → 1 with ReLU, Adam, early stopping on a validation split.

``bt-mlp`` is the Siamese Bradley-Terry regression, ``clf-mlp`` the pointwise classifier whose logit
is the reward (objectives in :mod:`.torch_common`). ``batch_size`` counts training examples: pairs
for BT (each pair is two forward rows), responses for CLF. An epoch is one pass over a fresh random
permutation of the training examples; after each epoch the validation pairs are scored once and
training stops when the validation loss has not improved for ``patience`` epochs, keeping the best
epoch's weights.

Speed: the rows the pairs touch are loaded once into one float32 tensor (on the device); a batch
is an index into it, gathered in one call, so no per-example Python or NumPy work happens inside
the loop and both sides of a BT pair go through the network in one large matrix product.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar

import numpy as np

from .base import PairData, mean64
from .torch_common import Adam, BTObjective, CLFObjective, TorchHead, build_mlp

log = logging.getLogger("embrm")


class MLPHead(TorchHead):
    defaults: ClassVar[dict] = {
        "hidden": [1024, 512],
        "lr": 1e-3,
        "weight_decay": 0.0,
        "max_epochs": 30,
        "batch_size": 10_240,
        "val_fraction": 0.2,
        "patience": 3,
    }

    def fit(self, data: PairData) -> MLPHead:
        fit = self._fit_data(data)
        torch, device, x, examples, val = fit.torch, fit.device, fit.x, fit.examples, fit.val
        val_pairs = fit.val_pairs
        p = self.params
        n_examples = examples["target"].shape[0]

        self.model_ = build_mlp(self.dim_, self._hidden()).to(device)
        optimizer = Adam(self.model_.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        # Batch order comes from its own CPU generator, so it is the same on every device.
        shuffler = torch.Generator().manual_seed(self.seed)

        best_loss, best_state, stale = float("inf"), None, 0
        self.curves_ = []
        for epoch in range(1, p["max_epochs"] + 1):
            started = time.perf_counter()
            self.model_.train()
            order = torch.randperm(n_examples, generator=shuffler).to(device)
            losses = []
            for start in range(0, n_examples, p["batch_size"]):
                per_example = self.batch_losses(x, examples, order[start : start + p["batch_size"]])
                optimizer.zero_grad()
                per_example.mean().backward()
                optimizer.step()
                losses.append(per_example.detach())
            train_loss = mean64(torch.cat(losses).cpu().numpy())
            val_loss, val_acc = self._validate(x, val)
            self.curves_.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_accuracy": val_acc,
                }
            )
            log.info(
                "%s epoch %d: train loss %.4f, val loss %.4f, val accuracy %.4f (%.1f s)",
                self.type_name,
                epoch,
                train_loss,
                val_loss,
                val_acc,
                time.perf_counter() - started,
            )
            monitored = val_loss if val_pairs.size else train_loss
            monitored = monitored if np.isfinite(monitored) else float("inf")
            if best_state is None or monitored < best_loss:
                best_loss, stale, self.best_epoch_ = monitored, 0, epoch
                best_state = {k: v.detach().clone() for k, v in self.model_.state_dict().items()}
            else:
                stale += 1
                if stale >= p["patience"]:
                    break
        self.model_.load_state_dict(best_state)
        self.model_.eval()
        return self


class BTMLPHead(BTObjective, MLPHead):
    type_name = "bt-mlp"


class CLFMLPHead(CLFObjective, MLPHead):
    type_name = "clf-mlp"
