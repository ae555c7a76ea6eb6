"""MLP heads from the study: D → 1024 → 512 → 1 with ReLU and Adam, under one of two protocols.

``bt-mlp`` is the Siamese Bradley-Terry regression, ``clf-mlp`` the pointwise classifier whose logit
is the reward (objectives in :mod:`.torch_common`). ``protocol`` chooses how they train:

``embrm`` (default)
    The pairs are split 80/20 *by pair*; BT feeds each training pair once. An epoch is one pass
    over a fresh random permutation of the training examples in :meth:`MLPHead.epoch_schedule`'s
    batches: at most ``batch_size`` examples and at least ``min_steps_per_epoch`` steps, so a
    small training set still gets many optimizer steps (with the study's batch of 10,240 a
    2,000-pair set would get one step per epoch, and early stopping could keep the model of its
    first step). After each epoch the validation pairs are scored; training stops when the
    validation loss has not improved for ``patience`` epochs and the best epoch's weights are
    kept. Every choice is made on the training pairs and their validation split.
``study``
    The authors' released procedure, quirks included (see :mod:`.study`): examples in both orders
    (BT), split 80/20 by example, batches drawn as a fresh random-permutation prefix for each of
    ceil(n / batch) steps per epoch, sigmoid + BCE, the stopping rule "newest validation loss
    above each of the previous 3", the final weights kept, torch seed ``seed·42 + study_member``.

``batch_size`` counts training examples: pairs for BT (each pair is two forward rows), responses
for CLF; under ``study`` a BT example is an ordered pair of the doubled set.

Speed: the rows the pairs touch are loaded once into one float32 tensor (on the device); a batch
is an index into it, gathered in one call, so no per-example Python or NumPy work happens inside
the loop and (under ``embrm``) both sides of a BT pair go through the network in one large matrix
product.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from ..costs import Compute, HeadCost, Shapes, network_cost
from ..progress import report
from . import study
from .base import PROTOCOL_PARAMS, PairData, bce_np, mean64, require
from .torch_common import (
    Adam,
    BTObjective,
    CLFObjective,
    TorchHead,
    build_mlp,
    import_torch,
    setup_torch,
)

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
        "min_steps_per_epoch": 10,
        "protocol": "embrm",
        "study_member": study.STUDY_ENSEMBLE - 1,
    }
    # Overrides the study protocol has no use for (it fixes these by its procedure).
    study_ignores: ClassVar[tuple[str, ...]] = ("weight_decay", "min_steps_per_epoch")
    PARAMS: ClassVar[dict[str, dict]] = {
        **PROTOCOL_PARAMS,
        "hidden": {"description": "hidden layer widths ([] is a linear model)"},
    }
    TEST_PARAMS: ClassVar[dict] = {
        "hidden": [32, 16],
        "batch_size": 256,
        "max_epochs": 15,
        "lr": 1e-2,
    }

    @classmethod
    def _check_values(cls, params: dict, where: str) -> None:
        super()._check_values(params, where)
        require(
            params["min_steps_per_epoch"] >= 1, where, "min_steps_per_epoch", "must be positive"
        )
        require(params["study_member"] >= 0, where, "study_member", "must be non-negative")
        if params["protocol"] == "study":
            require(
                params["val_fraction"] > 0,
                where,
                "val_fraction",
                "must be positive under protocol 'study' (its stopping rule needs validation)",
            )

    @staticmethod
    def epoch_schedule(params: Mapping, n_examples: int) -> tuple[int, int]:
        """embrm's schedule: (batch size, optimizer steps per epoch) for ``n_examples``.

        The batch is ``batch_size`` examples, made smaller when that would leave fewer than
        ``min_steps_per_epoch`` steps: a small training set gets many small steps per epoch
        instead of one full-batch step, so no epoch (and no kept model) rests on a single step.
        An epoch is one pass over a fresh permutation, in ceil(n / batch) batches.
        """
        n = max(int(n_examples), 1)
        batch = max(1, min(params["batch_size"], math.ceil(n / params["min_steps_per_epoch"])))
        return batch, math.ceil(n / batch)

    def fit(self, data: PairData) -> MLPHead:
        if self.params["protocol"] == "study":
            return self._fit_study(data)
        fit = self._fit_data(data)
        torch, device, x, examples, val = fit.torch, fit.device, fit.x, fit.examples, fit.val
        val_pairs = fit.val_pairs
        p = self.params
        n_examples = examples["target"].shape[0]
        batch_size, _ = self.epoch_schedule(p, n_examples)

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
            for start in range(0, n_examples, batch_size):
                per_example = self.batch_losses(x, examples, order[start : start + batch_size])
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
            report(
                self.type_name,
                "epoch",
                epoch,
                p["max_epochs"],
                at_most=True,
                details=f"train loss {train_loss:.4f}, val loss {val_loss:.4f}, "
                f"val accuracy {val_acc:.4f} ({time.perf_counter() - started:.1f} s)",
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

    # -- the study's released procedure ------------------------------------------------------
    def _fit_study(self, data: PairData) -> MLPHead:
        """Train as the released scripts do (module notes of :mod:`.study` list the quirks)."""
        p = self.params
        member = p["study_member"]
        torch, device = setup_torch(self.device, self.threads, study.torch_seed(self.seed, member))
        self.device_, self.dim_ = device, data.dim
        rows, a, b = data.compact()
        examples = study.examples(a, b, data.label, self.objective, self.seed)
        train, val = study.split(examples["target"].size, p["val_fraction"], member)
        self.split_pairs_ = (examples["pair"][train], examples["pair"][val])
        sides = ("row",) if self.objective == "clf" else ("first", "second")

        def tensors(positions):
            return {
                key: torch.from_numpy(np.ascontiguousarray(examples[key][positions])).to(device)
                for key in (*sides, "target")
            }

        x = torch.from_numpy(rows).to(device)
        train_t, val_t = tensors(train), tensors(val)
        n_train = train.size
        # torch.manual_seed(seed·42 + member) came first (setup_torch); the network is built
        # next, so its initial weights are those of the released MLP (same layer order).
        self.model_ = build_mlp(self.dim_, self._hidden()).to(device)
        optimizer = Adam(self.model_.parameters(), lr=p["lr"])
        # The batches come from the same global generator, continued after the initialization.
        batches = torch.Generator()
        batches.set_state(torch.get_rng_state())
        batch = min(p["batch_size"], n_train)
        steps = math.ceil(n_train / batch)
        self.steps_per_epoch_ = steps

        self.curves_, val_losses = [], []
        for epoch in range(1, p["max_epochs"] + 1):
            started = time.perf_counter()
            self.model_.train()
            step_losses = []
            for _ in range(steps):
                # Sampling, not a pass: each step takes the first `batch` of a new permutation,
                # so within an epoch some examples are drawn several times and some never.
                idx = torch.randperm(n_train, generator=batches)[:batch].to(device)
                loss = torch.nn.functional.binary_cross_entropy(
                    self._study_probability(x, train_t, idx), train_t["target"][idx]
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step_losses.append(loss.item())
            val_loss, val_acc = self._study_validate(x, val_t)
            val_losses.append(val_loss)
            self.curves_.append(
                {
                    "epoch": epoch,
                    "train_loss": float(np.mean(step_losses)),
                    "val_loss": val_loss,
                    "val_accuracy": val_acc,
                }
            )
            report(
                f"{self.type_name} (study)",
                "epoch",
                epoch,
                p["max_epochs"],
                at_most=True,
                details=f"val loss {val_loss:.4f}, val accuracy {val_acc:.4f} "
                f"({time.perf_counter() - started:.1f} s)",
            )
            if study.should_stop(val_losses, p["patience"]):
                break
        # The final weights are kept, not the best: the released script saves the model as it
        # is when the loop ends.
        self.best_epoch_ = len(self.curves_)
        self.model_.eval()
        return self

    def _study_probability(self, x, examples: dict, idx):
        """σ(output) for CLF, σ(r̂(first) − r̂(second)) for BT; the two sides in separate calls,
        as released."""
        torch = import_torch()
        if self.objective == "clf":
            return torch.sigmoid(self.score_rows(x, examples["row"][idx]))
        first = self.score_rows(x, examples["first"][idx])
        second = self.score_rows(x, examples["second"][idx])
        return torch.sigmoid(first - second)

    def _study_validate(self, x, val: dict) -> tuple[float, float]:
        """The released validation: BCE of the sigmoid output on all validation examples, and the
        share of examples whose output is on the right side of ½ (example, not pair, accuracy).

        The loss is summed in float64 here (same value up to rounding, the same at any thread
        count); the sigmoid is torch's float32 one, so saturation matches the released loss.
        """
        torch = import_torch()
        self.model_.eval()
        with torch.inference_mode():
            prob = self._study_probability(x, val, slice(None)).float().cpu().numpy()
        target = val["target"].cpu().numpy().astype(np.float64)
        loss = mean64(bce_np(prob.astype(np.float64), target))
        accuracy = float(np.mean((prob > 0.5) == (target > 0.5)))
        return loss, accuracy

    # Cost model (embrm.costs): the hidden layers' arithmetic, for every one of max_epochs epochs.
    @classmethod
    def estimate(cls, shapes: Shapes, params: Mapping, pairs: int, compute: Compute) -> HeadCost:
        return network_cost(
            shapes, pairs, compute, hidden=params["hidden"], epochs=params["max_epochs"]
        )


class BTMLPHead(BTObjective, MLPHead):
    type_name = "bt-mlp"


class CLFMLPHead(CLFObjective, MLPHead):
    type_name = "clf-mlp"


# What this module registers (embrm.heads.MODULES).
HEADS = (BTMLPHead, CLFMLPHead)
