"""Shared plumbing for the text stages: devices, dtypes, tokenizers, progress and resumable batches.

torch and transformers are imported inside the functions that need them, so importing this module
(and the config and workflow code that reference it) stays cheap.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError
from .progress import report

log = logging.getLogger("embrm")

DTYPES = ("float32", "float16", "bfloat16")


def quiet_transformers() -> None:
    """Loading bars and advisory warnings drown the job logs; errors still surface."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def resolve_device(device: str, key: str) -> str:
    """``auto`` → CUDA when visible, else CPU; an explicit ``cuda`` without a GPU is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"config key '{key}': 'cuda' requested but no CUDA device is visible")
    return device


def resolve_dtype(dtype: str, device: str, key: str):
    """The torch dtype for a model. ``auto``: bfloat16 (or float16) on CUDA, float32 on CPU,
    because bfloat16 matrix products on these CPUs are two orders of magnitude slower."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in DTYPES:
        raise ConfigError(f"config key '{key}': unknown dtype '{dtype}'; expected one of {DTYPES}")
    if device == "cpu" and dtype != "float32":
        log.warning("%s: %s on CPU is much slower than float32", key, dtype)
    return getattr(torch, dtype)


def set_threads(threads: int, device: str) -> None:
    import torch

    if device == "cpu":
        torch.set_num_threads(max(1, int(threads)))


def load_tokenizer(model: str, key: str, *, padding_side: str, truncation_side: str = "right"):
    """A tokenizer that can pad: models without a pad token (GPT-2, Llama) pad with EOS or UNK.

    Which token pads never matters for the results: padded positions are masked out of attention
    and never pooled.
    """
    from transformers import AutoTokenizer

    quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"config key '{key}': cannot load a tokenizer from '{model}' ({exc})"
        ) from None
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ConfigError(
                f"config key '{key}': the tokenizer of '{model}' has no pad, EOS or UNK token to pad with"
            )
        tokenizer.pad_token = fallback
    tokenizer.padding_side = padding_side
    tokenizer.truncation_side = truncation_side
    return tokenizer


def load_model(auto_class, model: str, key: str, *, dtype, device: str):
    quiet_transformers()
    try:
        loaded = auto_class.from_pretrained(model, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"config key '{key}': cannot load '{model}' ({exc})") from None
    return loaded.to(device).eval()


def length_order(texts: Sequence[str]) -> list[int]:
    """Indices sorted by character length (stable): batches of similar length waste little padding.

    The order depends only on the texts, so an interrupted job resumes with the same batches.
    """
    return sorted(range(len(texts)), key=lambda i: len(texts[i]))


def batches(order: Sequence[int], size: int) -> list[list[int]]:
    return [list(order[start : start + size]) for start in range(0, len(order), size)]


class Progress:
    """Progress lines (embrm.progress) with count, rate and ETA, at most every ``every`` seconds
    (job logs are files)."""

    def __init__(
        self, label: str, total: int, *, done: int = 0, every: float = 10.0, unit: str = "texts"
    ):
        self.label, self.total, self.done, self.every = label, total, done, every
        self.unit = unit
        self.start_done = done
        self.started = self.last = time.perf_counter()
        report(label, unit, done, total, details="resuming" if done else "starting")

    def update(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            rate = (self.done - self.start_done) / max(now - self.started, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else math.inf
            report(
                self.label,
                self.unit,
                self.done,
                self.total,
                eta_seconds=eta,
                details=f"{100.0 * self.done / max(self.total, 1):.1f}%, {rate:.1f}/s",
            )


class BatchLog:
    """Append-only record of finished batches, so a restarted job skips them.

    Each line is ``{"batch": i, "fingerprint": f, "values": [...]}``, flushed and fsynced before
    the next batch starts. A line cut short by a crash is ignored; a record made with different
    inputs or settings (another fingerprint) is discarded whole.
    """

    def __init__(self, path: str | Path, fingerprint: str):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.done: dict[int, list[Any]] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break
                if record.get("fingerprint") != fingerprint:
                    self.done.clear()
                    break
                self.done[int(record["batch"])] = record["values"]
            if not self.done:
                self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a")
        if self.done:
            log.info("%s: %d finished batches found; resuming", self.path.name, len(self.done))

    def record(self, batch: int, values: list[Any]) -> None:
        line = json.dumps({"batch": batch, "fingerprint": self.fingerprint, "values": values})
        self._handle.write(line + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.done[batch] = values

    def close(self) -> None:
        self._handle.close()


def run_batches(
    log_path: Path,
    fingerprint: str,
    groups: list[list[int]],
    label: str,
    compute,
    unit: str = "texts",
) -> dict[int, list[Any]]:
    """``compute(indices) -> values`` for every batch not yet recorded in ``log_path``.

    Returns all batches' values by batch number. The caller publishes its output and then
    deletes ``log_path``.
    """
    record = BatchLog(log_path, fingerprint)
    done = sum(len(groups[i]) for i in record.done if i < len(groups))
    progress = Progress(label, sum(map(len, groups)), done=done, unit=unit)
    try:
        for index, group in enumerate(groups):
            if index in record.done:
                continue
            record.record(index, compute(group))
            progress.update(len(group))
    finally:
        record.close()
    return record.done


def check_texts(texts: Sequence[str], where: str) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"{where}: text {i} is {type(text).__name__}, expected a string")
