"""Cost of bringing released arrays into a world (the ``npy`` source).

    python benchmarks/npy_source.py [--prompts 20000] [--responses 10] [--dim 2048] [--dtype float16]

Writes a synthetic released-style array pair in both axis orders to a temporary directory, then
times building a world from each: prompt-major input is scanned for NaN and symlinked (no copy),
response-major input is transposed into a prompt-major copy block by block through a memory map.
Prints seconds, throughput (GB/s of embeddings), the peak resident memory of each build process
(VmHWM; it stays far below the array size: blocks are read through a memory map whose pages are
released as it goes), and a plain file copy for scale.
The page cache is warm for all three, as in a second run on the same node.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

BUILD = """
import json, sys, time
sys.path.insert(0, {workflow!r})
from embrm.sources import build_world
spec = json.loads(sys.argv[1])
started = time.perf_counter()
build_world(spec, sys.argv[2])
peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({{"seconds": time.perf_counter() - started, "peak_rss_mb": int(peak) / 1024}}))
"""


def write_arrays(root: Path, prompts: int, responses: int, dim: int, dtype) -> None:
    g = np.random.default_rng(0)
    block = 1000
    for split, n in (("train", prompts), ("test", max(2, prompts // 10))):
        nkd = np.lib.format.open_memmap(root / f"{split}_nkd.npy", "w+", dtype, (n, responses, dim))
        knd = np.lib.format.open_memmap(root / f"{split}_knd.npy", "w+", dtype, (responses, n, dim))
        for start in range(0, n, block):
            chunk = g.standard_normal((min(block, n - start), responses, dim), dtype=np.float32)
            nkd[start : start + len(chunk)] = chunk
            knd[:, start : start + len(chunk)] = chunk.transpose(1, 0, 2)
        nkd.flush()
        knd.flush()
        del nkd, knd
        rewards = g.standard_normal((n, responses))
        np.save(root / f"{split}_nk.npy", rewards)
        np.save(root / f"{split}_kn.npy", rewards.T.copy())


def build(root: Path, name: str, emb: str, rew: str) -> dict:
    spec = {
        "source": "npy",
        "link": "symlink",
        **{
            split: {
                "embeddings": str(root / f"{split}_{emb}.npy"),
                "rewards": str(root / f"{split}_{rew}.npy"),
                "layout": "auto",
            }
            for split in ("train", "test")
        },
    }
    script = BUILD.format(workflow=str(REPO / "workflow"))
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(spec), str(root / name)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=20000)
    parser.add_argument("--responses", type=int, default=10)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    root = Path(tempfile.mkdtemp(prefix="embrm-npy-bench-", dir=args.dir))
    try:
        write_arrays(root, args.prompts, args.responses, args.dim, dtype)
        size = sum((root / f"{s}_nkd.npy").stat().st_size for s in ("train", "test")) / 1e9
        print(
            f"arrays: train ({args.prompts}, {args.responses}, {args.dim}) + test, {args.dtype}, "
            f"{size:.2f} GB of embeddings; {os.cpu_count()} CPUs"
        )
        started = time.perf_counter()
        for split in ("train", "test"):
            shutil.copyfile(root / f"{split}_nkd.npy", root / f"{split}_copy.npy")
        copy_seconds = time.perf_counter() - started
        linked = build(root, "world-linked", "nkd", "nk")
        transposed = build(root, "world-transposed", "knd", "kn")
        rows = [
            ("prompt-major: NaN scan + symlink", linked),
            ("response-major: transposed copy", transposed),
            ("plain file copy (reference)", {"seconds": copy_seconds, "peak_rss_mb": float("nan")}),
        ]
        for label, row in rows:
            print(
                f"{label:36s} {row['seconds']:7.2f} s  {size / row['seconds']:6.2f} GB/s"
                f"  peak RSS {row['peak_rss_mb']:7.0f} MB"
            )
        print(f"transposed copy / plain copy: {transposed['seconds'] / copy_seconds:.2f}×")
        same = np.array_equal(
            np.load(root / "world-linked" / "train_embeddings.npy", mmap_mode="r")[:50],
            np.load(root / "world-transposed" / "train_embeddings.npy", mmap_mode="r")[:50],
        )
        print(f"both worlds hold the same embeddings (first 50 prompts): {same}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
