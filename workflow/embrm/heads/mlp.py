"""MLP heads from the paper: D → 1024 → 512 → 1 with ReLU, Adam, early stopping on a validation split.

``bt-mlp`` is the Siamese Bradley-Terry regression: BCE(σ(f(e_a) − f(e_b)), label), each pair fed
once in its (random) presentation order; feeding both orders doubles the work for the same gradient.
``clf-mlp`` is the order-consistent classifier: winners labelled 1, losers 0, pointwise BCE; the
logit is the reward. ``batch_size`` counts training examples: pairs for BT, responses for CLF.
Validation accuracy is pairwise for both, so the two are comparable.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from .base import PairData, RewardHead, resolve_device


def _torch():
    # Deterministic cuBLAS needs this before CUDA initializes; harmless on CPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    return torch


def build_mlp(dim: int, hidden: list[int]):
    torch = _torch()
    layers, width = [], dim
    for size in hidden:
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
        width = size
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


class MLPHead(RewardHead):
    defaults: ClassVar[dict] = {
        "hidden": [1024, 512],
        "lr": 1e-3,
        "weight_decay": 0.0,
        "max_epochs": 30,
        "batch_size": 10_240,
        "val_fraction": 0.2,
        "patience": 3,
    }
    objective: ClassVar[str] = ""

    def fit(self, data: PairData) -> MLPHead:
        torch = _torch()
        torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        device = resolve_device(self.device)
        if device == "cuda":
            # CPU kernels are deterministic already (checked at 1 and 2 threads); on CPU this
            # call would only cost ~3 s of start-up importing torch._inductor.
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.device_ = device
        self.dim_ = data.dim
        p = self.params

        rows, a, b = data.compact()
        label = data.label.astype(np.float32)
        train_pairs, val_pairs = data.split(p["val_fraction"], np.random.default_rng(self.seed))
        x = torch.from_numpy(rows).to(device)
        self.model_ = build_mlp(self.dim_, p["hidden"]).to(device)
        optimizer = torch.optim.Adam(
            self.model_.parameters(), lr=p["lr"], weight_decay=p["weight_decay"]
        )
        train = self._examples(a, b, label, train_pairs, device)
        val = self._examples(a, b, label, val_pairs, device)
        val_pairwise = tuple(torch.from_numpy(v[val_pairs]).to(device) for v in (a, b, label))
        shuffler = torch.Generator().manual_seed(self.seed)

        best_loss, best_state, stale = float("inf"), None, 0
        self.curves_ = []
        for epoch in range(1, p["max_epochs"] + 1):
            self.model_.train()
            order = torch.randperm(train[-1].shape[0], generator=shuffler).to(device)
            total = 0.0
            for start in range(0, order.shape[0], p["batch_size"]):
                batch = order[start : start + p["batch_size"]]
                loss = self._loss(x, *(t[batch] for t in train))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * batch.shape[0]
            train_loss = total / max(order.shape[0], 1)
            val_loss, val_acc = self._validate(x, val, val_pairwise)
            self.curves_.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_accuracy": val_acc,
                }
            )
            monitored = val_loss if val_pairs.size else train_loss
            if monitored < best_loss:
                best_loss, stale = monitored, 0
                best_state = {k: v.detach().clone() for k, v in self.model_.state_dict().items()}
            else:
                stale += 1
                if stale >= p["patience"]:
                    break
        self.model_.load_state_dict(best_state)
        key = "val_loss" if val_pairs.size else "train_loss"
        self.best_epoch_ = min(self.curves_, key=lambda c: c[key])["epoch"]
        return self

    @abstractmethod
    def _examples(self, a, b, label, pairs, device) -> tuple:
        """Training examples built from the given pairs, as device tensors (target last)."""

    @abstractmethod
    def _loss(self, x, *batch):
        """Mean loss of a batch of examples."""

    def _validate(self, x, val, val_pairwise) -> tuple[float, float]:
        torch = _torch()
        if val[-1].shape[0] == 0:
            return float("nan"), float("nan")
        self.model_.eval()
        with torch.inference_mode():
            val_loss = float(self._loss(x, *val))
            a, b, label = val_pairwise
            margin = self._scores(x, a) - self._scores(x, b)
            correct = torch.where(margin == 0, 0.5, ((margin > 0).float() == label).float())
        return val_loss, float(correct.mean())

    def _scores(self, x, index):
        return self.model_(x[index]).squeeze(-1)

    def _predict_block(self, block: np.ndarray) -> np.ndarray:
        torch = _torch()
        self.model_.eval()
        with torch.inference_mode():
            return (
                self._scores(torch.from_numpy(block).to(self.device_), slice(None))
                .float()
                .cpu()
                .numpy()
            )

    def _save_weights(self, directory: Path) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.model_.state_dict().items()}
        save_file(state, directory / "model.safetensors")

    def _load_weights(self, directory: Path) -> None:
        from safetensors.torch import load_file

        _torch().set_num_threads(self.threads)
        self.device_ = resolve_device(self.device)
        self.model_ = build_mlp(self.dim_, self.params["hidden"])
        self.model_.load_state_dict(load_file(directory / "model.safetensors"))
        self.model_.to(self.device_)


class BTMLPHead(MLPHead):
    type_name = "bt-mlp"
    objective = "bt"

    def _examples(self, a, b, label, pairs, device):
        torch = _torch()
        return tuple(torch.from_numpy(v[pairs]).to(device) for v in (a, b, label))

    def _loss(self, x, a, b, label):
        torch = _torch()
        scores = self._scores(x, torch.cat([a, b]))
        margin = scores[: a.shape[0]] - scores[a.shape[0] :]
        return torch.nn.functional.binary_cross_entropy_with_logits(margin, label)


class CLFMLPHead(MLPHead):
    type_name = "clf-mlp"
    objective = "clf"

    def _examples(self, a, b, label, pairs, device):
        torch = _torch()
        won = label[pairs] > 0.5
        winners = np.where(won, a[pairs], b[pairs])
        losers = np.where(won, b[pairs], a[pairs])
        index = np.concatenate([winners, losers])
        target = np.concatenate([np.ones(pairs.size), np.zeros(pairs.size)]).astype(np.float32)
        return torch.from_numpy(index).to(device), torch.from_numpy(target).to(device)

    def _loss(self, x, index, target):
        torch = _torch()
        return torch.nn.functional.binary_cross_entropy_with_logits(self._scores(x, index), target)
