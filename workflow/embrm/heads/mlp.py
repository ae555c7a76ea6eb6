"""MLP heads from the study: D → 1024 → 512 → 1 with ReLU and Adam, under one of two protocols.

``bt-mlp`` is the Siamese Bradley-Terry regression, ``clf-mlp`` the pointwise classifier whose logit
is the reward (objectives in :mod:`.torch_common`). How they train is ``self.recipe``: one value
per training component (:mod:`.recipe`: split, BT examples, seeding, steps, batches, loss,
stopping, kept weights), which :meth:`MLPHead.fit` reads step by step. ``protocol`` is a preset of
them all; a component set explicitly overrides it. The two presets:

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
from .base import PairData, bce_np, mean64
from .recipe.bt_examples import pointwise
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


class TrainingHistory:
    """What stopping rules read after each epoch: the curves, and the monitored loss per epoch
    (validation, or training without a validation split; non-finite as +inf)."""

    def __init__(self):
        self.curves: list[dict] = []
        self.monitored: list[float] = []

    def add(self, row: dict, monitored: float) -> None:
        self.curves.append(row)
        self.monitored.append(monitored if np.isfinite(monitored) else float("inf"))

    def improved(self) -> bool:
        """Whether the newest epoch is the (first) best so far."""
        return len(self.monitored) == 1 or self.monitored[-1] < min(self.monitored[:-1])


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
    RECIPE: ClassVar[tuple[str, ...]] = ("torch",)
    PARAMS: ClassVar[dict[str, dict]] = {
        "hidden": {"description": "hidden layer widths ([] is a linear model)"},
        "min_steps_per_epoch": {
            "exclusiveMinimum": 0,
            "description": "steps min-steps: fewest optimizer steps per epoch",
        },
    }
    TEST_PARAMS: ClassVar[dict] = {
        "hidden": [32, 16],
        "batch_size": 256,
        "max_epochs": 15,
        "lr": 1e-2,
    }

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
        """Train by ``self.recipe``: each step below is one training component (heads.recipe)."""
        p, recipe = self.params, self.recipe
        seeding, split = recipe.impl("seeding"), recipe.impl("split")
        torch, device = setup_torch(
            self.device, self.threads, seeding.torch_seed(self.seed, p["study_member"])
        )
        self.device_, self.dim_ = device, data.dim
        rows, a, b = data.compact()
        build = recipe.impl("bt_examples") if self.objective == "bt" else pointwise
        train, val = split.divide(
            data, a, b, build, self.seed, p["val_fraction"], p["study_member"]
        )
        self.split_pairs_ = (train["pair"], val["pair"])

        def tensors(examples: dict, keys) -> dict:
            return {k: torch.from_numpy(np.ascontiguousarray(examples[k])).to(device) for k in keys}

        sides = ("row",) if self.objective == "clf" else ("a", "b")
        x = torch.from_numpy(rows).to(device)
        train_t = tensors(train, (*sides, "target"))
        if split.validation == "pair":
            val_t = tuple(tensors(val, ("a", "b", "label")).values())
            validate = self._validate
        else:
            val_t = tensors(val, (*sides, "target"))
            validate = self._study_validate
        n_train = train["target"].size
        # The network is built right after the seed is set (setup_torch), so the released seed
        # gives the released initial weights (same layer order).
        self.model_ = build_mlp(self.dim_, self._hidden()).to(device)
        loss_of = recipe.impl("loss")
        decay = 0.0 if recipe["loss"] == "released" else p["weight_decay"]
        optimizer = Adam(self.model_.parameters(), lr=p["lr"], weight_decay=decay)
        generator = seeding.batch_generator(torch, self.seed)
        batch, steps = recipe.impl("steps").schedule(p, n_train)
        self.steps_per_epoch_ = steps
        draw = recipe.impl("batches").epoch
        keep_best = recipe.impl("weights").keep_best

        history = TrainingHistory()
        self.curves_ = history.curves
        best_state = None
        for epoch in range(1, p["max_epochs"] + 1):
            started = time.perf_counter()
            self.model_.train()
            records = []
            for idx in draw(torch, generator, n_train, batch, steps, device):
                loss, record = loss_of.step(self, torch, x, train_t, idx)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                records.append(record)
            train_loss = loss_of.epoch_loss(torch, records)
            val_loss, val_acc = validate(x, val_t)
            history.add(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_accuracy": val_acc,
                },
                val_loss if val["pair"].size else train_loss,
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
            if keep_best and history.improved():
                self.best_epoch_ = epoch
                best_state = {k: v.detach().clone() for k, v in self.model_.state_dict().items()}
            if recipe.should_stop(history, p):
                break
        if keep_best:
            self.model_.load_state_dict(best_state)
        else:
            # The released script saves the model as it is when the loop ends.
            self.best_epoch_ = len(self.curves_)
        self.model_.eval()
        return self

    def probability(self, x, examples: dict, idx):
        """σ(output) for CLF, σ(r̂(a) − r̂(b)) for BT; the two sides in separate calls, as
        released."""
        torch = import_torch()
        if self.objective == "clf":
            return torch.sigmoid(self.score_rows(x, examples["row"][idx]))
        first = self.score_rows(x, examples["a"][idx])
        second = self.score_rows(x, examples["b"][idx])
        return torch.sigmoid(first - second)

    def _study_validate(self, x, val: dict) -> tuple[float, float]:
        """Validation under split 'example', as released: BCE of the sigmoid output on all validation examples, and the
        share of examples whose output is on the right side of ½ (example, not pair, accuracy).

        The loss is summed in float64 here (same value up to rounding, the same at any thread
        count); the sigmoid is torch's float32 one, so saturation matches the released loss.
        """
        torch = import_torch()
        self.model_.eval()
        with torch.inference_mode():
            prob = self.probability(x, val, slice(None)).float().cpu().numpy()
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
    RECIPE: ClassVar[tuple[str, ...]] = ("torch", "bt")


class CLFMLPHead(CLFObjective, MLPHead):
    type_name = "clf-mlp"


# What this module registers (embrm.heads.MODULES).
HEADS = (BTMLPHead, CLFMLPHead)
