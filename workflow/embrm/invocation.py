"""Recovery from a hard-killed invocation, done safely when the next one starts.

A Snakemake process killed with SIGKILL leaves its locks in ``.snakemake/locks`` (every later run
stops with a LockException until ``snakemake --unlock``) and atomic writes leave their temporary
siblings (``.NAME.*.tmp``, see :mod:`embrm.io`). Both may only be removed when no other
invocation is running in the same working directory. Every invocation therefore holds a shared
``flock`` on one file for its whole life; an invocation that can take it exclusively is alone,
removes the leftovers, and then holds it shared like the others. The kernel drops the lock of a
killed process, so a stale lock never blocks.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("embrm")

# Open for the life of the process: closing the descriptor would release the lock.
_HELD: list[int] = []


def leftovers(results: Path) -> list[Path]:
    """Temporary files and directories of interrupted atomic writes under ``results``."""
    if not results.is_dir():
        return []
    found = [*results.rglob(".*.tmp"), *results.rglob(".*.link")]
    return sorted(path for path in found if path.name.startswith("."))


def claim(state_dir: str | Path = ".snakemake", results: str | Path = "results") -> list[str]:
    """Hold this invocation's shared lock; when alone, first clear stale Snakemake locks and
    leftover temporary files. Returns what was removed (relative paths)."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "embrm-invocations.lock", os.O_RDWR | os.O_CREAT, 0o666)
    removed: list[str] = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        alone = True
    except BlockingIOError:
        alone = False
    if alone:
        for lock in sorted((state_dir / "locks").glob("*.lock")):
            lock.unlink(missing_ok=True)
            removed.append(str(lock))
        for path in leftovers(Path(results)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(str(path))
    fcntl.flock(fd, fcntl.LOCK_SH)
    _HELD.append(fd)
    return removed
