"""Released embedding arrays (the companion paper's layout), read in place.

Per split: embeddings ``(N, K, D)`` ("prompt-major") or ``(K, N, D)`` ("response-major"), float16
or float32; rewards ``(N, K)``, ``(N, K, 1)`` or ``(K, N)``. The world directory gets:

- prompt-major embeddings: a symbolic link to the user's file (``link: symlink``, the default),
  so paper-scale arrays are never duplicated, or a streamed ``copy``;
- response-major embeddings: a prompt-major copy, written block by block through a memory map
  (bounded memory; see ``benchmarks/npy_transpose.py`` for the measured speed);
- rewards as ``(N, K)`` float64 (small).

Axis order with ``layout: auto``: rewards ``(N, K, 1)`` are prompt-major by construction and fix
the order. For 2-D rewards the two leading axes of the embeddings must equal the reward shape or
its transpose, and the longer of the two axes is taken as the prompts (true of every released
array: 10 or 500 responses against thousands of prompts); equal lengths need an explicit
``layout``. With an explicit ``layout`` the rewards may be in either order.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from ..costs import MB, Shapes
from ..errors import ConfigError, DataError
from ..io import atomic_path, open_npy, release_pages, write_npy
from ..seeding import rng
from ..world import FILES, SPLITS, reward_stats, write_world_info

log = logging.getLogger("embrm")

EMBEDDING_DTYPES = (np.dtype(np.float16), np.dtype(np.float32))
LAYOUTS = ("auto", "prompt-major", "response-major")
LINK_MODES = ("symlink", "copy")
BLOCK_BYTES = 64 * 2**20  # bytes of embeddings per block when copying or scanning


def resolve_layout(
    emb_shape: tuple[int, ...],
    rew_shape: tuple[int, ...],
    layout: str,
    emb_path: str | Path,
    rew_path: str | Path,
) -> tuple[str, bool, str]:
    """Return (embeddings layout, rewards need transposing, how it was decided)."""
    if len(emb_shape) != 3:
        raise DataError(
            f"{emb_path}: embeddings have shape {emb_shape}; expected 3 axes, (N, K, D) or (K, N, D)"
        )
    mismatch = DataError(
        f"{rew_path}: reward array shape {tuple(rew_shape)} does not match embeddings {emb_path} "
        f"shape {tuple(emb_shape)}; expected rewards (N, K), (N, K, 1) or (K, N) for embeddings "
        "(N, K, D) or (K, N, D)"
    )
    if (len(rew_shape) == 3 and rew_shape[2] != 1) or len(rew_shape) not in (2, 3):
        raise mismatch
    lead, rewards = tuple(emb_shape[:2]), tuple(rew_shape[:2])
    flipped = rewards[::-1]
    if lead not in (rewards, flipped):
        raise mismatch
    if layout != "auto":
        n, k = lead if layout == "prompt-major" else lead[::-1]
        if len(rew_shape) == 3:
            if rewards != (n, k):
                raise mismatch
            return layout, False, "explicit"
        if n == k:
            # Square 2-D rewards cannot show their order: assume the embeddings' order.
            return layout, layout == "response-major", "explicit"
        return layout, rewards != (n, k), "explicit"
    if len(rew_shape) == 3:
        detected = "prompt-major" if lead == rewards else "response-major"
        return detected, False, "rewards are (N, K, 1)"
    # 2-D rewards fit both readings (rewards may be (N, K) or (K, N)); a guess from the axis
    # lengths would silently transpose e.g. a 40-prompt × 64-response test split.
    raise ConfigError(
        f"{emb_path}: 'layout: auto' cannot decide the axis order of embeddings shape "
        f"{tuple(emb_shape)} with 2-D rewards {rew_path} {tuple(rew_shape)}: prompt-major reads "
        f"{lead[0]} prompts × {lead[1]} responses, response-major reads {lead[1]} prompts × "
        f"{lead[0]} responses; set 'layout' to prompt-major or response-major (or give rewards "
        "as (N, K, 1))"
    )


def read_header(path: str | Path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of an ``.npy`` file from its header alone (no data is read)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config key '{key}': {path} is a directory; expected an .npy file")
    if not path.is_file():
        raise ConfigError(f"config key '{key}': {path} does not exist")
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read(handle)
            data_offset = handle.tell()
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} (config key '{key}'): not a readable .npy file ({exc})") from None
    shape, dtype = tuple(int(x) for x in shape), np.dtype(dtype)
    # A copy cut short keeps a valid header: its size alone shows it.
    expected = data_offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size < expected:
        raise DataError(
            f"{path} (config key '{key}'): truncated: its header declares {dtype} {shape}, "
            f"{expected:,} bytes with the header, but the file holds {size:,}"
        )
    return shape, dtype


def check_spec(spec: dict, key: str) -> dict[str, tuple[int, int, int]]:
    """Check an npy world from the files' headers before any job runs: existence, embeddings
    (N, K, D) or (K, N, D) in float16/float32, rewards against embeddings, the layout, and equal
    dimensions. Returns each split's (prompts, responses, dim)."""
    shapes = {}
    for split in SPLITS:
        entry = spec[split]
        emb_key, rew_key = f"{key}.{split}.embeddings", f"{key}.{split}.rewards"
        emb_shape, emb_dtype = read_header(entry["embeddings"], emb_key)
        rew_shape, rew_dtype = read_header(entry["rewards"], rew_key)
        if len(emb_shape) != 3:
            raise DataError(
                f"{entry['embeddings']} (config key '{emb_key}'): embeddings have shape "
                f"{emb_shape} ({len(emb_shape)} axes); expected 3 axes, (N, K, D) or (K, N, D)"
            )
        if emb_dtype not in EMBEDDING_DTYPES:
            raise DataError(
                f"{entry['embeddings']} (config key '{emb_key}'): embeddings have dtype "
                f"{emb_dtype}; expected float16 or float32"
            )
        if not (np.issubdtype(rew_dtype, np.floating) or np.issubdtype(rew_dtype, np.integer)):
            raise DataError(
                f"{entry['rewards']} (config key '{rew_key}'): rewards have dtype {rew_dtype}; "
                "expected a real number type"
            )
        try:
            layout, _, _ = resolve_layout(
                emb_shape,
                rew_shape,
                entry.get("layout", "auto"),
                entry["embeddings"],
                entry["rewards"],
            )
        except ConfigError as exc:
            raise ConfigError(f"config key '{key}.{split}.layout': {exc}") from None
        prompts, responses = emb_shape[:2] if layout == "prompt-major" else emb_shape[1::-1]
        if prompts < 2 or responses < 2:
            raise DataError(
                f"{entry['embeddings']} (config key '{emb_key}'): {prompts} prompts × "
                f"{responses} responses; a world needs at least 2 of each"
            )
        shapes[split] = (prompts, responses, emb_shape[2])
    if shapes["train"][2] != shapes["test"][2]:
        raise DataError(
            f"{spec['test']['embeddings']} (config key '{key}.test.embeddings'): embedding "
            f"dimension {shapes['test'][2]} differs from {spec['train']['embeddings']} "
            f"({shapes['train'][2]})"
        )
    return shapes


def _check_embeddings(array: np.ndarray, path: Path) -> None:
    if array.dtype not in EMBEDDING_DTYPES:
        raise DataError(
            f"{path}: embeddings have dtype {array.dtype}; expected float16 or float32 "
            "(convert once, e.g. np.save(path, np.load(path, mmap_mode='r').astype('float32')))"
        )


def _load_rewards(path: Path) -> np.ndarray:
    array = open_npy(path)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataError(f"{path}: rewards have dtype {array.dtype}; expected a real number type")
    return np.asarray(array, dtype=np.float64)


# A float is NaN or inf exactly when all its exponent bits are set; integer tests on the raw bits
# are several times faster than np.isfinite on float16, which numpy emulates.
EXPONENT_BITS = {
    np.dtype(np.float16): (np.uint16, 0x7C00),
    np.dtype(np.float32): (np.uint32, 0x7F800000),
}


def _first_bad(block: np.ndarray) -> tuple[int, int] | None:
    """(prompt, response) of the first non-finite vector in a prompt-major block, if any."""
    if block.dtype in EXPONENT_BITS:
        unsigned, mask = EXPONENT_BITS[block.dtype]
        bits = np.ascontiguousarray(block).view(unsigned)
        bad = ((bits & unsigned(mask)) == unsigned(mask)).any(axis=-1)
    else:
        bad = ~np.isfinite(block).all(axis=-1)
    if not bad.any():
        return None
    p, k = np.argwhere(bad)[0]
    return int(p), int(k)


def _prompt_block(shape: tuple[int, ...], itemsize: int) -> int:
    per_prompt = int(np.prod(shape[1:])) * itemsize
    return max(1, BLOCK_BYTES // max(per_prompt, 1))


def scan_finite(array: np.ndarray, path: Path, layout: str) -> None:
    """Chunked NaN/inf scan of a memory map; names the file and the first bad (prompt, response)."""
    prompt_axis = 0 if layout == "prompt-major" else 1
    prompts = array.shape[prompt_axis]
    step = _prompt_block(array.shape, array.dtype.itemsize)
    for start in range(0, prompts, step):
        stop = min(prompts, start + step)
        block = array[start:stop] if prompt_axis == 0 else np.swapaxes(array[:, start:stop], 0, 1)
        bad = _first_bad(np.asarray(block))
        release_pages(array)
        if bad is not None:
            raise DataError(
                f"{path}: embeddings contain NaN or inf (prompt {start + bad[0]}, response {bad[1]})"
            )


def transpose_copy(source: np.ndarray, path: Path, out: Path) -> None:
    """Write ``(K, N, D)`` as ``(N, K, D)`` block by block, scanning for NaN on the way.

    Blocks are appended with ordinary writes after the ``.npy`` header, so the new file is never
    mapped and its pages never count against this process; memory stays at about two blocks.
    """
    responses, prompts, dim = source.shape
    step = _prompt_block(source.shape, source.dtype.itemsize)
    with atomic_path(out) as tmp:
        header = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=source.dtype, shape=(prompts, responses, dim)
        )
        offset = header.offset
        del header
        with open(tmp, "r+b") as handle:
            handle.seek(offset)
            for start in range(0, prompts, step):
                stop = min(prompts, start + step)
                block = np.ascontiguousarray(np.swapaxes(source[:, start:stop], 0, 1))
                release_pages(source)
                bad = _first_bad(block)
                if bad is not None:
                    raise DataError(
                        f"{path}: embeddings contain NaN or inf (prompt {start + bad[0]}, response {bad[1]})"
                    )
                handle.write(memoryview(block).cast("B"))


def publish_file(source: Path, out: Path, mode: str) -> str:
    """Put ``source`` at ``out`` without copying when possible; returns the mode used.

    ``hardlink-or-copy`` falls back to a streamed copy where hard links are impossible (another
    file system). The entry appears atomically (made under a temporary name, then renamed).
    """
    source = Path(source).resolve()
    with atomic_path(out) as tmp:
        tmp.unlink()
        try:
            if mode == "copy":
                shutil.copyfile(source, tmp)  # streamed in chunks, never loaded whole
            elif mode == "symlink":
                os.symlink(source, tmp)
            else:
                os.link(source, tmp)
        except OSError as exc:
            if mode != "hardlink-or-copy" or exc.errno not in (
                errno.EXDEV,
                errno.EPERM,
                errno.EMLINK,
            ):
                raise DataError(f"{out}: cannot {mode.split('-')[0]} {source} ({exc})") from None
            shutil.copyfile(source, tmp)
            mode = "copy"
    return mode.split("-")[0]


def read_split(entry: dict) -> tuple[np.ndarray, np.ndarray, str, str]:
    """One split's embeddings (a memory map, in the file's own layout), its rewards as a
    prompt-major ``(N, K)`` float64 array, the layout and how it was decided; every check that
    needs no scan of the embeddings (dtypes, shapes, finite rewards, at least 2 × 2)."""
    emb_path, rew_path = Path(entry["embeddings"]), Path(entry["rewards"])
    embeddings = open_npy(emb_path)
    _check_embeddings(embeddings, emb_path)
    rewards = _load_rewards(rew_path)
    layout, flip, how = resolve_layout(
        embeddings.shape, rewards.shape, entry.get("layout", "auto"), emb_path, rew_path
    )
    rewards = rewards.reshape(rewards.shape[:2])
    if flip:
        rewards = rewards.T
    bad = ~np.isfinite(rewards)
    if bad.any():
        p, k = np.argwhere(bad)[0]
        raise DataError(f"{rew_path}: rewards contain NaN or inf (prompt {p}, response {k})")
    prompts, responses = rewards.shape
    if prompts < 2 or responses < 2:
        raise DataError(
            f"{emb_path}: {prompts} prompts × {responses} responses; a world needs at least "
            "2 of each"
        )
    return embeddings, rewards, layout, how


def _check_dims(spec: dict, dims: dict[str, int]) -> None:
    if dims["train"] != dims["test"]:
        raise DataError(
            f"{spec['test']['embeddings']}: embedding dimension {dims['test']} differs from "
            f"{spec['train']['embeddings']} ({dims['train']})"
        )


def verify(spec: dict) -> None:
    """Every check of :func:`build`, writing nothing: run before any job, so a bad array stops
    the experiment before anything is built from it. Reads each file once, in bounded blocks."""
    dims = {}
    for split in SPLITS:
        embeddings, _, layout, _ = read_split(spec[split])
        scan_finite(embeddings, Path(spec[split]["embeddings"]), layout)
        dims[split] = embeddings.shape[2]
    _check_dims(spec, dims)


def build(spec: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    link = spec.get("link", "symlink")
    if link not in LINK_MODES:
        raise ConfigError(
            f"config key 'worlds.*.link': unknown mode '{link}'; expected one of {LINK_MODES}"
        )
    resolved, stats, dims = {}, {}, {}
    for split in SPLITS:
        entry = spec[split]
        emb_path, rew_path = Path(entry["embeddings"]), Path(entry["rewards"])
        embeddings, rewards, layout, how = read_split(entry)
        prompts, responses = rewards.shape
        out_emb = out_dir / FILES[split]["embeddings"]
        if layout == "prompt-major" and embeddings.flags.c_contiguous:
            scan_finite(embeddings, emb_path, layout)
            used = publish_file(emb_path, out_emb, link)
        else:
            source = embeddings if layout == "response-major" else np.swapaxes(embeddings, 0, 1)
            transpose_copy(source, emb_path, out_emb)
            used = "transposed copy"
        write_npy(out_dir / FILES[split]["rewards"], rewards)
        dims[split] = embeddings.shape[2]
        stats[split] = reward_stats(rewards, rng(0, "npy", "stats", split))
        resolved[split] = {
            "layout": layout,
            "decided_by": how,
            "stored_as": used,
            "embeddings": str(emb_path.resolve()),
            "rewards": str(rew_path.resolve()),
            "dtype": embeddings.dtype.name,
            "shape": [prompts, responses, int(embeddings.shape[2])],
        }
        log.info("%s: %s %s (%s); %s", split, emb_path, layout, how, used)
    _check_dims(spec, dims)
    write_world_info(out_dir, {**spec, "resolved": resolved}, stats)


# Cost model (embrm.costs, embrm.resources). Memory: a block read, its finiteness mask and the
# transposed block being written, each charged ESTIMATE_BLOCK_MB, four times BLOCK_BYTES (a margin
# kept from the first estimate, not measured). Time: streaming the arrays at MB_PER_SECOND.
ESTIMATE_BLOCK_MB = 256
MB_PER_SECOND = 50


def estimate(shapes: Shapes) -> tuple[float, float]:
    """(working MB, seconds) of building an npy world of these shapes."""
    values = sum(shapes.values(split) for split in ("train", "test"))
    return 3 * ESTIMATE_BLOCK_MB, values * shapes.itemsize / MB / MB_PER_SECOND
