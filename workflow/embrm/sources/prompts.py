"""Prompts for the ``hf`` source: from a HuggingFace dataset (or a local copy) or local files.

HH-RLHF rows are whole dialogues (``chosen`` / ``rejected``); the prompt is the dialogue cut right
after its last ``"\\n\\nAssistant:"``, so the model continues as the assistant (paper-spec §2).
Prompts longer than ``max_prompt_tokens`` tokens of the generation model are skipped, duplicates
within a split dropped (``deduplicate``), and the first ``train_prompts`` / ``test_prompts``
remaining ones kept in dataset order.
"""

from __future__ import annotations

import logging
from collections import Counter

import pandas as pd

from ..errors import ConfigError, DataError
from ..world import SPLITS

log = logging.getLogger("embrm")

ASSISTANT = "\n\nAssistant:"
PROMPT_COLUMNS = ["split", "p", "prompt_id", "prompt"]
DEFAULTS = {
    "data_dir": None,
    "splits": {"train": "train", "test": "test"},
    "format": "hh-rlhf",
    "column": None,
    "train_prompts": 40000,
    "test_prompts": 2000,
    "max_prompt_tokens": 450,
    "deduplicate": True,
}
TOKENIZE_CHUNK = 1024


def hh_prompt(dialogue: str) -> str | None:
    """The HH-RLHF dialogue up to and including its last assistant turn marker."""
    at = dialogue.rfind(ASSISTANT)
    return None if at == -1 else dialogue[: at + len(ASSISTANT)]


def _column(spec: dict) -> str:
    return spec["column"] or ("chosen" if spec["format"] == "hh-rlhf" else "prompt")


def load_rows(spec: dict, key: str) -> dict[str, list]:
    """Raw text cells per split, in source order."""
    column = _column(spec)
    if spec.get("files"):
        from .table import read_table

        rows = {}
        for split in SPLITS:
            path = spec["files"][split]
            frame = read_table(path)
            if column not in frame.columns:
                raise DataError(
                    f"{path}: no column '{column}'; found {list(map(str, frame.columns))}"
                )
            rows[split] = frame[column].tolist()
        return rows
    return _dataset_rows(spec, column, key)


def _dataset_rows(spec: dict, column: str, key: str) -> dict[str, list]:
    import datasets

    datasets.disable_progress_bars()
    name = spec["dataset"]
    try:
        loaded = datasets.load_dataset(name, data_dir=spec["data_dir"])
    except Exception as exc:  # hub, cache and builder errors share no base class
        raise ConfigError(
            f"config key '{key}.dataset': cannot load '{name}' ({type(exc).__name__}: {exc}). "
            "Without hub access, point it at a local copy of the dataset or use 'files'"
        ) from None
    rows = {}
    for split in SPLITS:
        wanted = spec["splits"][split]
        if wanted not in loaded:
            raise ConfigError(
                f"config key '{key}.splits.{split}': dataset '{name}' has no split '{wanted}' "
                f"(it has {sorted(loaded)})"
            )
        part = loaded[wanted]
        if column not in part.column_names:
            raise ConfigError(
                f"config key '{key}.column': dataset '{name}' split '{wanted}' has no column "
                f"'{column}' (it has {part.column_names})"
            )
        rows[split] = part[column]
    return rows


def select_prompts(spec: dict, tokenizer, key: str = "prompts") -> pd.DataFrame:
    """The prompts table: ``split, p, prompt_id, prompt`` (``prompt_id`` = split and source row)."""
    spec = {**DEFAULTS, **spec}
    if bool(spec.get("dataset")) == bool(spec.get("files")):
        raise ConfigError(f"config key '{key}': give exactly one of 'dataset' or 'files'")
    rows = load_rows(spec, key)
    frames = []
    for split in SPLITS:
        wanted = spec[f"{split}_prompts"]
        kept, seen, skipped = [], set(), Counter()
        candidates = []
        for row, cell in enumerate(rows[split]):
            if not isinstance(cell, str):
                skipped["not text"] += 1
                continue
            prompt = hh_prompt(cell) if spec["format"] == "hh-rlhf" else cell
            if prompt is None:
                skipped["no assistant turn"] += 1
                continue
            if spec["deduplicate"]:
                if prompt in seen:
                    skipped["duplicate"] += 1
                    continue
                seen.add(prompt)
            candidates.append((row, prompt))
        # Token counts in chunks, stopping once enough prompts are kept (40k of ~43k rows).
        for start in range(0, len(candidates), TOKENIZE_CHUNK):
            if wanted is not None and len(kept) >= wanted:
                break
            chunk = candidates[start : start + TOKENIZE_CHUNK]
            if spec["max_prompt_tokens"] is None:
                lengths = [0] * len(chunk)
            else:
                lengths = [len(ids) for ids in tokenizer([p for _, p in chunk])["input_ids"]]
            for (row, prompt), length in zip(chunk, lengths, strict=True):
                if spec["max_prompt_tokens"] is not None and length > spec["max_prompt_tokens"]:
                    skipped["too long"] += 1
                    continue
                kept.append((row, prompt))
                if wanted is not None and len(kept) >= wanted:
                    break
        if wanted is not None and len(kept) < wanted:
            log.warning(
                "%s: only %d of the %d requested %s prompts remain", key, len(kept), wanted, split
            )
        if len(kept) < 2:
            raise DataError(
                f"config key '{key}': the {split} split yields {len(kept)} usable prompt(s) "
                f"(skipped: {dict(skipped)}); at least 2 are needed"
            )
        log.info("%s prompts: kept %d, skipped %s", split, len(kept), dict(skipped))
        frames.append(
            pd.DataFrame(
                {
                    "split": split,
                    "p": range(len(kept)),
                    "prompt_id": [f"{split}-{row}" for row, _ in kept],
                    "prompt": [prompt for _, prompt in kept],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[PROMPT_COLUMNS]


def check_spec(spec: dict, key: str) -> None:
    if bool(spec.get("dataset")) == bool(spec.get("files")):
        raise ConfigError(
            f"config key '{key}': give exactly one of 'dataset' (a HuggingFace dataset id or "
            "local dataset directory) or 'files' (local train and test tables)"
        )
