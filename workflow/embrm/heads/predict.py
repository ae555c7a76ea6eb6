"""Scoring several fitted heads in one chunked pass over a (memory-mapped) embedding array."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import release_pages

# Prediction reads this many bytes of float32 embeddings per chunk (rows = bytes / (4·D)), so
# memory stays bounded at any D while blocks stay large enough for efficient matrix products.
PREDICT_CHUNK_BYTES = 64 * 2**20
PREDICT_CHUNK_ROWS = (1024, 65_536)  # lower and upper bound on rows per chunk


def predict_together(
    heads: Sequence,  # of fitted RewardHead
    embeddings: np.ndarray,
    *,
    source: str | Path | None = None,
    seconds: list[float] | None = None,
) -> np.ndarray:
    """(len(heads), ...) rewards of several fitted heads from one chunked pass over ``embeddings``.

    Each chunk is read from the (memory-mapped) array, converted to float32 and checked for NaN
    and inf once, then handed to every head, so scoring many models costs one read of the test
    set. All heads must have been trained on the same dimension. When given, ``seconds`` receives
    each head's own scoring time (the shared read is not in it).
    """
    if not heads:
        raise ValueError("predict_together needs at least one head")
    first = heads[0]
    for head in heads:
        head._check_fitted()
        if head.dim_ != first.dim_:
            raise ValueError(
                f"heads trained on different dimensions ({first.dim_} and {head.dim_}) cannot "
                "share a pass over one embedding array"
            )
        head._prepare_predict()
    rows = int(np.prod(embeddings.shape[:-1]))
    out = np.empty((len(heads), rows), dtype=np.float32)
    spent = [0.0] * len(heads)
    for start, block in iter_chunks(embeddings, first.dim_, source, first.type_name):
        for i, head in enumerate(heads):
            started = time.perf_counter()
            out[i, start : start + block.shape[0]] = head._predict_block(block)
            spent[i] += time.perf_counter() - started
    if seconds is not None:
        seconds[:] = spent
    return out.reshape((len(heads), *embeddings.shape[:-1]))


def iter_chunks(embeddings: np.ndarray, dim: int, source, head: str):
    """Yield ``(first_row, float32 block)`` over the rows of (..., D) embeddings.

    Checks the dimension and that every value is finite; errors name ``source`` (the file).
    """
    name = str(source) if source is not None else "embeddings"
    if embeddings.ndim < 1 or embeddings.shape[-1] != dim:
        found = embeddings.shape[-1] if embeddings.ndim else "none"
        raise DataError(
            f"{name}: embedding dimension {found} does not match the {dim} this {head} head "
            f"was trained on"
        )
    flat = embeddings.reshape(-1, dim)
    low, high = PREDICT_CHUNK_ROWS
    step = int(np.clip(PREDICT_CHUNK_BYTES // (4 * dim), low, high))
    for start in range(0, flat.shape[0], step):
        # A writable float32 copy: reads the memory map once and suits every library.
        source_rows = flat[start : start + step]
        block = np.array(source_rows, dtype=np.float32)
        release_pages(source_rows)  # a pass over a memory map must not pile up resident pages
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            raise DataError(
                f"{name}: embeddings contain NaN or inf (first at flat row "
                f"{start + int(np.argmax(bad))})"
            )
        yield start, block
