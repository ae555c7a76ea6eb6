"""Atomic, memory-map friendly file I/O.

Every output is first written to a temporary sibling and renamed into place, so an interrupted
job never leaves a file that looks complete; Snakemake then reruns the job.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError

# np.memmap modes that map the file shared: their pages can leave the resident set without loss.
SHARED_MODES = ("r", "r+", "w+")


def _process_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; outputs should get the usual permissions
# (shared clusters, MLflow servers run by another user), so apply the process umask instead.
FILE_MODE = 0o666 & ~_process_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, FILE_MODE)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Like :func:`atomic_path` for a directory: built aside, swapped in whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def link(path: str | os.PathLike, target: str | os.PathLike) -> None:
    """Make ``path`` a relative symbolic link to ``target``, replacing what was there atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(Path(target).resolve(), path.parent.resolve())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    os.symlink(relative, tmp)
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array))


@contextlib.contextmanager
def npy_writer(path: str | os.PathLike, shape: tuple[int, ...], dtype) -> Iterator[np.memmap]:
    """A writable memory map of a new ``.npy`` file, filled chunk by chunk, published atomically."""
    with atomic_path(path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        yield array
        array.flush()
        del array


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def read_npz(path: str | os.PathLike, *required: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc})") from None
    missing = [key for key in required if key not in arrays]
    if missing:
        raise DataError(f"{path}: missing arrays {missing}; found {sorted(arrays)}")
    return arrays


def release_pages(view: np.ndarray) -> None:
    """Take the pages under ``view``, a slice of a shared memory map, out of this process's
    resident set.

    The data stay in the kernel's page cache (and a writable map's changes are still written to
    the file), so reading them again costs no disk I/O. Without this, a job that streams through
    a 4 GB memory map ends with a 4 GB resident set, which is what schedulers and Snakemake's
    benchmark files measure. Anything that is not a shared map (a private copy-on-write map, an
    ordinary array) is left alone: dropping those pages would lose data.
    """
    if not hasattr(mmap, "MADV_DONTNEED"):
        return
    mapping = getattr(view, "_mmap", None)  # set by np.memmap on views that share its buffer
    if mapping is None or getattr(view, "mode", None) not in SHARED_MODES:
        return
    if view.nbytes == 0 or not view.flags.c_contiguous:
        return
    base = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
    start = view.ctypes.data - base
    end = start + view.nbytes
    # Whole pages inside the view only, so a neighbouring slice in use keeps its pages.
    first = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE
    last = end // mmap.PAGESIZE * mmap.PAGESIZE
    if last > first:
        mapping.madvise(mmap.MADV_DONTNEED, first, last - first)


def open_npy(path: str | os.PathLike) -> np.ndarray:
    """Memory-map an ``.npy`` file read-only; nothing is loaded until it is indexed."""
    try:
        return np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None
