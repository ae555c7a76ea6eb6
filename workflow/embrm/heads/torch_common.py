"""What the torch heads share: device and thread set-up, the two objectives, validation, I/O.

Objectives
    ``bt``: Bradley-Terry regression, BCE(σ(r̂(e_a) − r̂(e_b)), label) per pair, each pair fed once
    in its presentation order (embrm's protocol). The reversed copy of a pair has the same loss
    gradient, so on a fixed set of pairs the two feedings minimise the same objective; the
    *training runs* differ all the same. The study's released procedure (``protocol: study``,
    :mod:`.study`) doubles the set and then splits it by example, so most of its validation
    examples mirror training examples, and its schedule, stopping rule and kept weights differ
    too; docs/heads.md measures both.
    ``clf``: the order-consistent classifier, pointwise BCE with winners labelled 1 and losers 0;
    the logit is the reward.

Under embrm's protocol validation is pairwise for both objectives (accuracy = share of held-out
pairs ordered like their labels), so BT and CLF curves compare directly; the validation loss is
each objective's own loss. (Under the study's protocol the curves are the released script's:
loss and accuracy per validation example.)

Determinism: gradients never depend on the order of a reduction (the derivative of a mean is
1/n whatever the summation order), the CPU matrix kernels give bit-identical results at 1 and 2
threads (checked in the tests), and every logged loss is summed in float64 by NumPy, so the same
seed and data give the same model, curves and predictions at any of those thread counts. On CUDA,
deterministic algorithms are switched on and cuBLAS gets a fixed workspace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .base import (
    PairData,
    RewardHead,
    bce_with_logits_np,
    mean64,
    pair_accuracy,
    resolve_device,
    winners_losers,
)

# Rows per forward pass when scoring validation pairs without gradients.
SCORE_CHUNK_ROWS = 16_384


def import_torch():
    # cuBLAS reads this when its first handle is created; a fixed workspace makes its matrix
    # products deterministic. Harmless on CPU, and it must be set before any CUDA work.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    return torch


def setup_torch(device: str, threads: int, seed: int):
    """Threads, seed and device for one fit; returns ``(torch, resolved_device)``."""
    torch = import_torch()
    resolved = resolve_device(device)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    if resolved == "cuda":
        # Only on CUDA: on CPU the kernels used here are deterministic already, and this call
        # costs about 3 s of start-up (it imports torch._inductor).
        torch.use_deterministic_algorithms(True)
        torch.backends.cuda.matmul.allow_tf32 = False  # full fp32, as on CPU
        torch.backends.cudnn.allow_tf32 = False
    return torch, resolved


class Adam:
    """Adam with the arithmetic of ``torch.optim.Adam(foreach=True)`` (no amsgrad, L2 weight decay
    added to the gradient), which it reproduces bit for bit (tested).

    Why not torch's class: its first ``step`` imports ``torch._dynamo``, about 3 s of start-up in
    every training job, longer than many small fits take.
    """

    def __init__(self, params, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999), eps=1e-8):
        torch = import_torch()
        self.params = list(params)
        self.lr, self.weight_decay, self.eps = lr, weight_decay, eps
        self.beta1, self.beta2 = betas
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        torch = import_torch()
        with torch.no_grad():
            self.steps += 1
            grads = [p.grad for p in self.params]
            if self.weight_decay:
                grads = torch._foreach_add(grads, self.params, alpha=self.weight_decay)
            torch._foreach_lerp_(self.exp_avgs, grads, 1 - self.beta1)
            torch._foreach_mul_(self.exp_avg_sqs, self.beta2)
            torch._foreach_addcmul_(self.exp_avg_sqs, grads, grads, 1 - self.beta2)
            n = len(self.params)
            step_size = -(self.lr / (1 - self.beta1**self.steps))
            denominators = torch._foreach_sqrt(self.exp_avg_sqs)
            torch._foreach_div_(denominators, [(1 - self.beta2**self.steps) ** 0.5] * n)
            torch._foreach_add_(denominators, self.eps)
            torch._foreach_addcdiv_(self.params, self.exp_avgs, denominators, [step_size] * n)


class BTObjective:
    """Siamese Bradley-Terry loss on pairs; one training example per pair."""

    objective: ClassVar[str] = "bt"

    @staticmethod
    def training_examples(a, b, label, pairs) -> dict[str, np.ndarray]:
        return {"a": a[pairs], "b": b[pairs], "target": label[pairs].astype(np.float32)}

    @staticmethod
    def example_rows(examples: dict, idx):
        """Rows to score for the examples at positions ``idx``: both sides, in one index."""
        torch = import_torch()
        return torch.cat([examples["a"][idx], examples["b"][idx]])

    @staticmethod
    def example_losses(scores, examples: dict, idx):
        """Per-example losses, given the scores of :meth:`example_rows`."""
        torch = import_torch()
        half = scores.shape[0] // 2
        return torch.nn.functional.binary_cross_entropy_with_logits(
            scores[:half] - scores[half:], examples["target"][idx], reduction="none"
        )

    @staticmethod
    def validation_loss(score_a: np.ndarray, score_b: np.ndarray, label: np.ndarray) -> float:
        return mean64(bce_with_logits_np(score_a - score_b, label.astype(np.float64)))


class CLFObjective:
    """Pointwise classification: each pair gives (winner, 1) and (loser, 0)."""

    objective: ClassVar[str] = "clf"

    @staticmethod
    def training_examples(a, b, label, pairs) -> dict[str, np.ndarray]:
        winners, losers = winners_losers(a[pairs], b[pairs], label[pairs])
        return {
            "row": np.concatenate([winners, losers]),
            "target": np.repeat(np.array([1.0, 0.0], dtype=np.float32), pairs.size),
        }

    @staticmethod
    def example_rows(examples: dict, idx):
        return examples["row"][idx]

    @staticmethod
    def example_losses(scores, examples: dict, idx):
        torch = import_torch()
        return torch.nn.functional.binary_cross_entropy_with_logits(
            scores, examples["target"][idx], reduction="none"
        )

    @staticmethod
    def validation_loss(score_a: np.ndarray, score_b: np.ndarray, label: np.ndarray) -> float:
        won = label > 0
        winners = np.where(won, score_a, score_b)
        losers = np.where(won, score_b, score_a)
        losses = np.concatenate(
            [bce_with_logits_np(winners, np.ones(1)), bce_with_logits_np(losers, np.zeros(1))]
        )
        return mean64(losses)


def build_mlp(dim: int, hidden: list[int]):
    """D → hidden… → 1 with ReLU; ``hidden = []`` is a linear model."""
    torch = import_torch()
    layers, width = [], dim
    for size in hidden:
        # In place: the Linear backward does not need its output, so this saves one activation
        # write and read per layer.
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU(inplace=True)]
        width = size
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


@dataclass
class FitData:
    """The inputs of one torch fit (see :meth:`TorchHead._fit_data`)."""

    torch: Any
    device: str
    rows: np.ndarray
    a: np.ndarray
    b: np.ndarray
    train_pairs: np.ndarray
    val_pairs: np.ndarray
    x: Any
    examples: dict
    val: Any


class TorchHead(RewardHead):
    """A torch ``nn.Sequential`` reward model; subclasses add an objective and a training loop."""

    SAVED_FILES: ClassVar[tuple[str, ...]] = ("model.safetensors",)
    DEVICES: ClassVar[tuple[str, ...]] = ("cpu", "cuda")

    def _hidden(self) -> list[int]:
        return list(self.params.get("hidden", []))

    # -- scoring -------------------------------------------------------------------------------
    def _fit_data(self, data: PairData) -> FitData:
        """What every torch fit starts from: threads, seed and device set, the pairs' rows on the
        device, the train/validation split, and the objective's training examples."""
        torch, device = setup_torch(self.device, self.threads, self.seed)
        self.device_ = device
        self.dim_ = data.dim
        rows, a, b = data.compact()
        train, val = data.split(self.params["val_fraction"], np.random.default_rng(self.seed))
        examples = {
            key: torch.from_numpy(np.ascontiguousarray(value)).to(device)
            for key, value in self.training_examples(a, b, data.label, train).items()
        }
        return FitData(
            torch=torch,
            device=device,
            rows=rows,
            a=a,
            b=b,
            train_pairs=train,
            val_pairs=val,
            x=torch.from_numpy(rows).to(device),
            examples=examples,
            val=self._validation_tensors(a, b, data.label, val, device),
        )

    def score_rows(self, x, index):
        """r̂ of rows ``x[index]`` (with gradients when training)."""
        return self.model_(x[index]).squeeze(-1)

    def batch_losses(self, x, examples: dict, idx):
        """Per-example losses of the training examples at positions ``idx``."""
        return self.example_losses(
            self.score_rows(x, self.example_rows(examples, idx)), examples, idx
        )

    def _score_chunks(self, x, index) -> np.ndarray:
        """r̂ of ``x[index]`` without gradients, chunked, as float32 NumPy."""
        torch = import_torch()
        out = np.empty(index.shape[0], dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, index.shape[0], SCORE_CHUNK_ROWS):
                part = index[start : start + SCORE_CHUNK_ROWS]
                out[start : start + part.shape[0]] = self.score_rows(x, part).float().cpu().numpy()
        return out

    def _validate(self, x, val: tuple) -> tuple[float, float]:
        """(validation loss, pairwise validation accuracy); NaN when there is no validation split."""
        torch = import_torch()
        a, b, label = val
        if a.shape[0] == 0:
            return float("nan"), float("nan")
        was_training = self.model_.training
        self.model_.eval()
        scores = self._score_chunks(x, torch.cat([a, b]))
        self.model_.train(was_training)
        score_a, score_b = scores[: a.shape[0]], scores[a.shape[0] :]
        label_np = label.cpu().numpy()
        loss = self.validation_loss(score_a, score_b, label_np)
        margin = np.where(label_np > 0, score_a - score_b, score_b - score_a)
        return loss, pair_accuracy(margin)

    def _validation_tensors(self, a, b, label, val_pairs, device) -> tuple:
        torch = import_torch()
        return tuple(
            torch.from_numpy(np.ascontiguousarray(v[val_pairs])).to(device) for v in (a, b, label)
        )

    # -- prediction ----------------------------------------------------------------------------
    def _prepare_predict(self) -> None:
        import_torch().set_num_threads(self.threads)
        self.model_.eval()

    def _predict_block(self, block: np.ndarray) -> np.ndarray:
        torch = import_torch()
        with torch.inference_mode():
            x = torch.from_numpy(block).to(self.device_)
            return self.model_(x).squeeze(-1).float().cpu().numpy()

    # -- persistence ---------------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.model_.state_dict().items()}
        save_file(state, str(directory / "model.safetensors"))

    def _load_weights(self, directory: Path) -> None:
        from safetensors.torch import load_file

        torch = import_torch()
        torch.set_num_threads(self.threads)
        self.device_ = resolve_device(self.device)
        self.model_ = build_mlp(self.dim_, self._hidden())
        path = directory / "model.safetensors"
        try:
            state = load_file(str(path))
        except FileNotFoundError:
            from ..errors import DataError

            raise DataError(f"{path}: file not found") from None
        self.model_.load_state_dict(state)
        self.model_.to(self.device_)
        self.model_.eval()
