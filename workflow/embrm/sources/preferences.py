"""Preference datasets as worlds without a golden reward: the units read by
:mod:`embrm.sources.preference_rows` embedded and written as a world.

The world (see :mod:`embrm.world`) has no golden reward. Pairwise forms give one *unit* per row:
``K = 2`` responses, chosen first, with pseudo-rewards ``(+margin/2, −margin/2)`` (``(0, 0)`` for a
tie), so the golden order of the existing machinery *is* the observed preference and the gap is
the dataset's margin. The multi-response form gives one unit per prompt with the dataset's scores
as rewards (every prompt of a split needs the same number of responses). ``world.json`` carries a
``preferences`` block (form, subsets, sections) that marks the world as one without a golden
reward; ``{split}_subsets.npy`` holds each unit's subset code.

Each distinct rendered text is embedded once with the configured embedder
(:func:`embrm.embedders.embed_to_npy`: batches resume after an interruption; a finished embedding
file is reused while texts and embedder are unchanged).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..seeding import rng
from ..world import FILES, SPLITS, reward_stats
from .preference_rows import read_units

log = logging.getLogger("embrm")

SUBSETS_FILE = "{split}_subsets.npy"
UNITS_FILE = "preferences.parquet"
WORK = "preferences"


# --- building -----------------------------------------------------------------------------------


def rendered(units: pd.DataFrame, template: str) -> list[str]:
    from ..embedders import render

    prompts = [p for p, rs in zip(units["prompt"], units["responses"], strict=True) for _ in rs]
    return render(template, prompts, [r for rs in units["responses"] for r in rs])


def embed_unique(texts: list[str], spec: dict, out: Path, *, device: str, threads: int) -> None:
    """Each distinct text once; a finished file is reused while texts and embedder match."""
    from ..embedders import embed_to_npy, texts_digest, with_defaults
    from ..hashing import stable_hash
    from ..io import read_json, write_json

    stamp_path = out.with_name(out.name + ".json")
    stamp = stable_hash({"texts": texts_digest(texts), "embedder": with_defaults(spec)})
    if out.exists() and stamp_path.exists() and read_json(stamp_path).get("stamp") == stamp:
        log.info("%s: %d texts already embedded", out, len(texts))
        return
    summary = embed_to_npy(
        texts,
        spec,
        out,
        shape=(len(texts), 1),
        device=device,
        threads=threads,
        key="worlds.*.embedder",
        label="embed responses",
    )
    write_json(stamp_path, {"stamp": stamp, **summary})


def build(spec: dict, out_dir: Path, *, threads: int = 1, device: str = "auto") -> None:
    from ..embedders import check_template
    from ..io import open_npy, write_json, write_npy

    check_template(spec.get("template", "{prompt}{response}"), "worlds.*.template")
    units, shapes = read_units(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / WORK
    work.mkdir(exist_ok=True)
    threads = spec.get("threads", threads)
    texts = {split: rendered(units[units["split"] == split], spec["template"]) for split in SPLITS}
    index, unique = pd.factorize(pd.Series(texts["train"] + texts["test"]), sort=False)
    embeddings_path = work / "unique_embeddings.npy"
    embed_unique(
        list(unique), spec.get("embedder", {"type": "sentence"}), embeddings_path,
        device=device, threads=threads,
    )  # fmt: skip
    vectors = open_npy(embeddings_path)
    vectors = vectors.reshape(vectors.shape[0], -1)
    subsets = sorted(units["subset"].unique())
    stats, layout, start = {}, {}, 0
    for split in SPLITS:
        part = units[units["split"] == split]
        prompts, responses = shapes[split]
        rows = index[start : start + prompts * responses]
        start += prompts * responses
        write_npy(
            out_dir / FILES[split]["embeddings"],
            np.asarray(vectors[rows]).reshape(prompts, responses, -1),
        )
        rewards = np.array(part["rewards"].tolist(), dtype=np.float64)
        write_npy(out_dir / FILES[split]["rewards"], rewards)
        codes = np.searchsorted(subsets, part["subset"].to_numpy()).astype(np.int32)
        write_npy(out_dir / SUBSETS_FILE.format(split=split), codes)
        stats[split] = reward_stats(rewards, rng(0, "preferences", "stats", split))
        layout[split] = {
            "units": prompts,
            "responses": responses,
            "prompts": int(part["prompt"].nunique()),
            "ties": int(part["tie"].sum()),
        }
    frame = units.assign(p=units.groupby("split").cumcount())
    frame = frame.drop(columns=[c for c in ("file",) if c in frame])
    frame["responses"] = frame["responses"].map(list)
    frame["rewards"] = frame["rewards"].map(list)
    frame.to_parquet(out_dir / UNITS_FILE, index=False)
    write_json(
        out_dir / "world.json",
        {
            "source": spec,
            "stats": stats,
            "preferences": {
                "form": units.attrs["form"],
                "golden": False,
                "scores": units.attrs["form"] == "multi",
                "subsets": subsets,
                "sections": spec.get("sections") or {},
                "splits": layout,
                "unique_texts": len(unique),
            },
        },
    )
    log.info(
        "preferences %s: %s, %d distinct texts embedded",
        units.attrs["form"],
        {s: f"{p} units × {k} responses" for s, (p, k) in shapes.items()},
        len(unique),
    )


TEXTS_PER_SECOND = 50  # a sentence model on 2 CPU cores embeds ~250/s; slack for larger models
MODEL_MB = 2048  # an embedding model and its activations


def estimate(shapes) -> tuple[float, float]:
    """(working MB, seconds) of building a preference world of these shapes (one text per
    response at most; duplicates are embedded once)."""
    rows = sum(shapes.rows(split) for split in SPLITS)
    values = sum(shapes.values(split) for split in SPLITS)
    return MODEL_MB + 3 * values * 4 / 2**20, rows / TEXTS_PER_SECOND
