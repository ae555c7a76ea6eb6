"""Memory maps: passes over large arrays keep a small resident set and lose no data."""

from __future__ import annotations

import numpy as np
import pytest
from embrm.heads import make_head
from embrm.heads.base import PairData, iter_chunks
from embrm.io import npy_writer, open_npy, release_pages

ROWS, DIM = 32_768, 512  # 64 MiB of float32


def resident_file_mb() -> float:
    """Pages of mapped files in this process's resident set (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) / 1024
    pytest.fail("no RssFile line in /proc/self/status")


@pytest.fixture
def big_npy(tmp_path):
    path = tmp_path / "big.npy"
    values = np.random.default_rng(0).standard_normal((ROWS, DIM), dtype=np.float32)
    np.save(path, values)
    return path, values


def test_a_chunked_pass_over_a_memory_map_leaves_no_resident_pages(big_npy):
    path, values = big_npy
    array = open_npy(path)
    before = resident_file_mb()
    total = sum(float(block.sum()) for _, block in iter_chunks(array, DIM, path, "test"))
    assert resident_file_mb() - before < 8  # at most a chunk's worth, not the 64 MiB read
    assert total == pytest.approx(float(values.sum(dtype=np.float64)), rel=1e-4)
    # without release_pages the same pass keeps the whole file resident: the check above can fail
    kept = open_npy(path)
    before = resident_file_mb()
    for start in range(0, ROWS, 4096):
        np.array(kept[start : start + 4096])
    assert resident_file_mb() - before > 48


def test_released_pages_read_back_unchanged(big_npy):
    path, values = big_npy
    array = open_npy(path)
    release_pages(array[: ROWS // 2])
    assert np.array_equal(array, values)


def test_pages_written_and_released_reach_the_file(tmp_path):
    path = tmp_path / "written.npy"
    values = np.arange(ROWS * 64, dtype=np.float32).reshape(ROWS, 64)
    before = resident_file_mb()
    with npy_writer(path, values.shape, values.dtype) as out:
        for start in range(0, ROWS, 1024):
            out[start : start + 1024] = values[start : start + 1024]
            release_pages(out[start : start + 1024])
        assert resident_file_mb() - before < 4
    assert np.array_equal(np.load(path), values)


def test_private_maps_and_ordinary_arrays_are_left_alone(big_npy):
    path, values = big_npy
    ordinary = values.copy()
    release_pages(ordinary)
    assert np.array_equal(ordinary, values)
    private = np.load(path, mmap_mode="c")  # copy-on-write: dropping pages would lose edits
    private[0] = 7.0
    release_pages(private)
    assert (private[0] == 7.0).all()


def test_training_gathers_rows_without_keeping_the_map_resident(big_npy):
    path, values = big_npy
    array = open_npy(path)
    g = np.random.default_rng(1)
    a, b = g.integers(ROWS, size=4000), g.integers(ROWS, size=4000)
    data = PairData(array, a, b, (values[a, 0] > values[b, 0]).astype(np.uint8), source=path)
    before = resident_file_mb()
    rows, _, _ = data.compact()
    assert resident_file_mb() - before < 8
    head = make_head("clf-linear", seed=0, threads=1).fit(data)
    assert np.isfinite(head.predict_reward(array[:100])).all()
    assert rows.dtype == np.float32
