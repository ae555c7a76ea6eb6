"""Golden rewards from a sequence-classification reward model (the annotator the study simulates).

The model reads ``template`` filled with prompt and response (default: their concatenation, the
paper's scoring input), truncated to ``max_length`` tokens (512 in the paper) from the side set by
``truncation_side`` (default left, so the end of the response is always scored). The reward is
the logit of output ``label``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .embedders import pick_device, render, texts_digest
from .errors import ConfigError, DataError
from .hashing import stable_hash
from .hfmodels import (
    batches,
    length_order,
    load_model,
    load_tokenizer,
    resolve_device,
    resolve_dtype,
    run_batches,
    set_threads,
)

log = logging.getLogger("embrm")

DEFAULTS = {
    "max_length": 512,
    "batch_size": 16,
    "dtype": "auto",
    "device": "auto",
    "template": "{prompt}{response}",
    "truncation_side": "left",
    "label": 0,
}


class RewardModel:
    def __init__(
        self, spec: dict, *, device: str = "auto", threads: int = 1, key: str = "reward_model"
    ):
        import torch
        from transformers import AutoModelForSequenceClassification

        self.spec = spec = {**DEFAULTS, **spec}
        self.key = key
        self.device = resolve_device(pick_device(spec["device"], device), f"{key}.device")
        self.dtype = resolve_dtype(spec["dtype"], self.device, f"{key}.dtype")
        set_threads(threads, self.device)
        # Right padding: classification heads read the last non-pad token, found from pad ids.
        self.tokenizer = load_tokenizer(
            spec["model"],
            f"{key}.model",
            padding_side="right",
            truncation_side=spec["truncation_side"],
        )
        self.model = load_model(
            AutoModelForSequenceClassification,
            spec["model"],
            f"{key}.model",
            dtype=self.dtype,
            device=self.device,
        )
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        labels = self.model.config.num_labels
        if not 0 <= spec["label"] < labels:
            raise ConfigError(
                f"config key '{key}.label': {spec['label']} is out of range; '{spec['model']}' "
                f"has {labels} output(s)"
            )
        self._torch = torch

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        encoded = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.spec["max_length"],
            return_tensors="pt",
        )
        with torch.inference_mode():
            logits = self.model(
                input_ids=encoded["input_ids"].to(self.device),
                attention_mask=encoded["attention_mask"].to(self.device),
            ).logits
        return logits[:, self.spec["label"]].float().cpu().numpy().astype(np.float64)


def score(
    prompts: Sequence[str],
    responses: Sequence[str],
    spec: dict,
    *,
    work_log: str | Path,
    label: str = "score",
    device: str = "auto",
    threads: int = 1,
    key: str = "reward_model",
    model: RewardModel | None = None,
) -> np.ndarray:
    """Golden reward of each (prompt, response) pair, batched and resumable."""
    full = {**DEFAULTS, **spec}
    texts = render(full["template"], prompts, responses)
    model = model or RewardModel(full, device=device, threads=threads, key=key)
    fingerprint = stable_hash(
        {"spec": full, "texts": texts_digest(texts), "dtype": str(model.dtype)}
    )
    groups = batches(length_order(texts), full["batch_size"])
    done = run_batches(
        Path(work_log),
        fingerprint,
        groups,
        label,
        lambda rows: model.score_texts([texts[i] for i in rows]).tolist(),
    )
    rewards = np.empty(len(texts))
    for index, rows in enumerate(groups):
        rewards[rows] = done[index]
    bad = ~np.isfinite(rewards)
    if bad.any():
        raise DataError(
            f"{work_log}: reward model '{full['model']}' returned NaN or inf for pair {int(np.argmax(bad))}"
        )
    return rewards
